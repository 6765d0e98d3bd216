//! The reference program for the benchmark table: a minimal two-peer str0m
//! data-channel program (two `Rtc`s on two loopback UDP sockets, str0m's
//! direct API, in-process signaling), built with the same profile as
//! tinynode. `str0m_reference idle SECS` connects, prints the time from
//! building the peers to both channels open, then stays connected and idle
//! for SECS seconds, so its connect time, binary size and memory can be
//! compared.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::channel::ChannelConfig;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

fn main() {
    let idle_secs: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let start = Instant::now();
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let sockets: Vec<UdpSocket> = (0..2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    for socket in &sockets {
        socket.set_nonblocking(true).expect("nonblocking");
    }
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
    for (i, rtc) in rtcs.iter_mut().enumerate() {
        let mut api = rtc.direct_api();
        api.set_remote_ice_credentials(params[1 - i].0.clone());
        api.set_remote_fingerprint(params[1 - i].1.clone());
        api.set_ice_controlling(i == 0);
        api.start_dtls(i == 0).expect("dtls");
        api.start_sctp(i == 0);
        api.create_data_channel(ChannelConfig {
            negotiated: Some(0),
            label: "reference".into(),
            ..Default::default()
        });
    }
    let mut open = [false, false];
    let mut opened_at = None;
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        let mut next = now + Duration::from_millis(100);
        for (i, rtc) in rtcs.iter_mut().enumerate() {
            let _ = rtc.handle_input(Input::Timeout(now));
            loop {
                match rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = sockets[i].send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(Event::ChannelOpen(..))) => open[i] = true,
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(at)) => {
                        next = next.min(at);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        if open[0] && open[1] && opened_at.is_none() {
            opened_at = Some(start.elapsed());
            println!(
                "channel open after {:.3} ms",
                start.elapsed().as_secs_f64() * 1000.0
            );
        }
        if opened_at.is_some_and(|at| start.elapsed() >= at + Duration::from_secs(idle_secs)) {
            return;
        }
        let mut received = false;
        for (i, socket) in sockets.iter().enumerate() {
            while let Ok((len, source)) = socket.recv_from(&mut buf) {
                received = true;
                if let Ok(receive) = Receive::new(Protocol::Udp, source, addrs[i], &buf[..len]) {
                    let _ = rtcs[i].handle_input(Input::Receive(Instant::now(), receive));
                }
            }
        }
        if !received {
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(5)),
            );
        }
    }
}
