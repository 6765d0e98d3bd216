//! The reference program for the benchmark table: a minimal two-peer str0m
//! data-channel program (two `Rtc`s, each on its own loopback UDP socket and
//! thread, str0m's direct API, in-process signaling), built with the same
//! profile as tinynode, with the same socket buffer sizes.
//!
//! - `str0m_reference idle SECS` connects, prints the time from building the
//!   peers to both channels open, then stays connected and idle for SECS
//!   seconds, so its connect time, binary size and memory can be compared.
//! - `str0m_reference throughput COUNT LEN` connects, then peer 0 sends COUNT
//!   text messages of LEN bytes as fast as its channel's send buffer takes
//!   them, and prints the rate from the first write to the last byte received
//!   by peer 1.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use str0m::channel::{ChannelConfig, ChannelId};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// What a peer thread reports to the main thread.
enum Report {
    Open,
    FirstWrite(Instant),
    AllReceived(Instant),
}

/// Peer 0's sending job in throughput mode.
#[derive(Clone, Copy)]
struct Bulk {
    count: usize,
    len: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok());
    let bulk = match args.first().map(String::as_str) {
        Some("throughput") => Some(Bulk {
            count: number(1).unwrap_or(16_384),
            len: number(2).unwrap_or(1024),
        }),
        _ => None,
    };
    let idle_secs = number(1).unwrap_or(0) as u64;

    let start = Instant::now();
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let sockets: Vec<UdpSocket> = (0..2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    // The socket buffers tinynode asks for, so the rows compare the stacks
    // and not the kernel's defaults.
    for socket in &sockets {
        tinynode::driver::enlarge_buffers(socket);
    }
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    let mut rtcs: Vec<Rtc> = (0..2)
        .map(|_| {
            Rtc::builder()
                .set_crypto_provider(Arc::clone(&crypto))
                .build(Instant::now())
        })
        .collect();
    for (i, rtc) in rtcs.iter_mut().enumerate() {
        rtc.add_local_candidate(Candidate::host(addrs[i], "udp").expect("candidate"));
        rtc.add_remote_candidate(Candidate::host(addrs[1 - i], "udp").expect("candidate"));
    }
    let params: Vec<_> = rtcs
        .iter_mut()
        .map(|r| {
            (
                r.direct_api().local_ice_credentials(),
                r.direct_api().local_dtls_fingerprint().clone(),
            )
        })
        .collect();
    let mut channels = Vec::new();
    for (i, rtc) in rtcs.iter_mut().enumerate() {
        let mut api = rtc.direct_api();
        api.set_remote_ice_credentials(params[1 - i].0.clone());
        api.set_remote_fingerprint(params[1 - i].1.clone());
        api.set_ice_controlling(i == 0);
        api.start_dtls(i == 0).expect("dtls");
        api.start_sctp(i == 0);
        channels.push(api.create_data_channel(ChannelConfig {
            negotiated: Some(0),
            label: "reference".into(),
            ..Default::default()
        }));
    }

    let (reports, received) = channel();
    for (i, ((rtc, socket), channel)) in rtcs.into_iter().zip(sockets).zip(channels).enumerate() {
        let peer = Peer {
            rtc,
            socket,
            local: addrs[i],
            channel,
            reports: reports.clone(),
        };
        let job = if i == 0 {
            bulk.map(Job::Send)
        } else {
            bulk.map(Job::Receive)
        };
        std::thread::spawn(move || peer.run(job));
    }
    let mut open = 0;
    let mut first_write = None;
    while let Ok(report) = received.recv() {
        match report {
            Report::Open => {
                open += 1;
                if open == 2 {
                    println!(
                        "channel open after {:.3} ms",
                        start.elapsed().as_secs_f64() * 1000.0
                    );
                    if bulk.is_none() {
                        std::thread::sleep(Duration::from_secs(idle_secs));
                        return;
                    }
                }
            }
            Report::FirstWrite(at) => first_write = Some(at),
            Report::AllReceived(at) => {
                let (Some(first), Some(bulk)) = (first_write, bulk) else {
                    return;
                };
                let took = at.duration_since(first).as_secs_f64();
                let bytes = bulk.count * bulk.len;
                println!(
                    "throughput {:.2} MB/s ({bytes} bytes in {:.1} ms)",
                    bytes as f64 / took / 1e6,
                    took * 1000.0
                );
                return;
            }
        }
    }
}

/// What a peer does once its channel is open.
#[derive(Clone, Copy)]
enum Job {
    Send(Bulk),
    Receive(Bulk),
}

/// One side: its `Rtc`, socket and channel, driven by its own thread.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    channel: ChannelId,
    reports: Sender<Report>,
}

impl Peer {
    fn run(mut self, job: Option<Job>) {
        let mut buf = vec![0u8; 2048];
        let mut open = false;
        let mut sent = 0;
        let mut received = 0;
        let message = job.map(|job| match job {
            Job::Send(bulk) | Job::Receive(bulk) => "x".repeat(bulk.len),
        });
        loop {
            if let (true, Some(Job::Send(bulk)), Some(message)) = (open, job, &message) {
                while sent < bulk.count {
                    let Some(mut channel) = self.rtc.channel(self.channel) else {
                        break;
                    };
                    if !channel.write(false, message.as_bytes()).unwrap_or(false) {
                        break;
                    }
                    if sent == 0 {
                        let _ = self.reports.send(Report::FirstWrite(Instant::now()));
                    }
                    sent += 1;
                }
            }
            let next = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(Event::ChannelOpen(..))) => {
                        open = true;
                        let _ = self.reports.send(Report::Open);
                    }
                    Ok(Output::Event(Event::ChannelData(data))) => {
                        received += data.data.len();
                        if let Some(Job::Receive(bulk)) = job
                            && received == bulk.count * bulk.len
                        {
                            let _ = self.reports.send(Report::AllReceived(Instant::now()));
                        }
                    }
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(at)) => break at,
                    Err(_) => return,
                }
            };
            let wait = next.saturating_duration_since(Instant::now());
            let _ = self
                .socket
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            let input = match self.socket.recv_from(&mut buf) {
                Ok((len, source)) => {
                    match Receive::new(Protocol::Udp, source, self.local, &buf[..len]) {
                        Ok(receive) => Input::Receive(Instant::now(), receive),
                        Err(_) => continue,
                    }
                }
                Err(_) => Input::Timeout(Instant::now()),
            };
            let _ = self.rtc.handle_input(input);
        }
    }
}
