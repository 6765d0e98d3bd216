//! A running `tinynode serve` under a burst of hostile datagrams from
//! loopback: afterwards it still answers STUN and DHT requests correctly,
//! its memory stayed bounded, and it counted what it dropped.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{counter, start_serve, stun_probe, wait_for_stun};
use tinynode::NodeId;
use tinynode::wire::dht::{Blob, Message, Request, Response, decode_frame, encode_frame};
use tinynode::wire::relay::{Bind, Frame, RelayRefusal, data_frame};

/// Peak resident memory a serve node may reach under the burst.
const RSS_BOUND_KB: u64 = 32 * 1024;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A hostile datagram: random bytes under a first byte from every range,
/// truncated or padded real messages, or nothing at all.
fn hostile(rng: &mut XorShift, samples: &[Vec<u8>]) -> Vec<u8> {
    let kind = rng.next() % 4;
    let len = (rng.next() % 1600) as usize;
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    match kind {
        0 => {
            // First byte from each demux range: STUN, DHT tag, DTLS, others.
            let first =
                [0u8, 1, 0x0a, 0x0a, 20, 22, 63, 64, 128, 200, 255][(rng.next() % 11) as usize];
            if let Some(b) = bytes.first_mut() {
                *b = first;
            }
            bytes
        }
        1 => {
            // A real message cut short.
            let sample = &samples[(rng.next() as usize) % samples.len()];
            sample[..(rng.next() as usize) % sample.len()].to_vec()
        }
        2 => {
            // A real message with a byte flipped.
            let mut sample = samples[(rng.next() as usize) % samples.len()].clone();
            let at = (rng.next() as usize) % sample.len();
            sample[at] ^= 1 << (rng.next() % 8);
            sample
        }
        _ => bytes.into_iter().take(3).collect(),
    }
}

fn rss_peak_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn dht_ping(server: SocketAddr) -> Option<NodeId> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let ping = encode_frame(&Message::Request {
        txid: [9; 8],
        sender: NodeId([3; 32]),
        body: Request::Ping,
        padding: Blob::default(),
    });
    socket.send_to(&ping, server).ok()?;
    let mut buf = [0u8; 2048];
    // The server may first ping us back to verify our address; skip that.
    loop {
        let (len, _) = socket.recv_from(&mut buf).ok()?;
        if let Ok(Message::Response {
            txid: [9, 9, 9, 9, 9, 9, 9, 9],
            sender,
            body,
            ..
        }) = decode_frame(&buf[..len])
        {
            return (body == Response::Pong).then_some(sender);
        }
    }
}

#[test]
fn serve_survives_a_burst_of_hostile_datagrams() {
    let (mut serve, addr) = start_serve();
    assert!(stun_probe(addr, Duration::from_secs(5)).is_some());
    let id = dht_ping(addr).expect("DHT answers before the burst");

    let samples: Vec<Vec<u8>> = [
        "stun_decode/rfc5769_request",
        "dht_frame/get_peers",
        "dht_frame/announce",
        "dht_frame/peers",
    ]
    .iter()
    .map(|name| {
        std::fs::read(format!("{}/fuzz/corpus/{name}", env!("CARGO_MANIFEST_DIR")))
            .expect("corpus sample")
    })
    .collect();
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let senders: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let burst = 20_000;
    for i in 0..burst {
        let datagram = hostile(&mut rng, &samples);
        // Loopback can refuse a send when the receiver lags; that is fine.
        let _ = senders[i % senders.len()].send_to(&datagram, addr);
    }
    // The probes share 127.0.0.1 with the attackers, so they are answered
    // once that source's rate-limit bucket refills: wait for that, bounded.
    wait_for_stun(addr, Duration::from_secs(10));
    assert_eq!(
        dht_ping(addr),
        Some(id),
        "DHT still answered, as the same node"
    );
    let peak = rss_peak_kb(serve.child.id());
    println!("serve peak RSS after {burst} hostile datagrams: {peak} kB");
    assert!(
        peak <= RSS_BOUND_KB,
        "peak RSS {peak} kB over {RSS_BOUND_KB} kB"
    );

    serve.signal(libc::SIGTERM);
    assert_eq!(serve.wait(Duration::from_secs(10)).code(), Some(0));
    let stats = serve.wait_stderr("node stats:", Duration::from_secs(5));
    let dropped = counter(&stats, "dropped");
    println!("{stats}");
    assert!(dropped > 1000, "drops counted: {stats}");
}

/// Binds `token` from `socket` as a client does (a first bind, then the
/// bind echoing the relay's cookie; each sent again, as a client would, if
/// the relay's socket dropped it while flooded) and returns the answer to
/// the bind with the cookie.
fn bind(socket: &UdpSocket, relay: SocketAddr, token: [u8; 16]) -> Option<Frame<'static>> {
    let mut bind = Bind {
        token,
        session: 1,
        low: NodeId([1; 32]),
        high: NodeId([2; 32]),
        cookie: None,
    };
    let mut buf = [0u8; 64];
    let mut ask = |bind: Bind| {
        let frame = Frame::Bind(bind).encode();
        (0..5).find_map(|_| {
            socket.send_to(&frame, relay).ok()?;
            socket
                .recv_from(&mut buf)
                .ok()
                .map(|(len, _)| buf[..len].to_vec())
        })
    };
    let first = ask(bind)?;
    let Ok(Frame::Challenge { cookie, .. }) = Frame::decode(&first) else {
        panic!("a first bind is answered with a challenge: {first:?}");
    };
    bind.cookie = Some(cookie);
    let answer = ask(bind)?;
    match Frame::decode(&answer).ok()? {
        Frame::Bound {
            token,
            channel,
            lifetime_s,
            rate_kib,
        } => Some(Frame::Bound {
            token,
            channel,
            lifetime_s,
            rate_kib,
        }),
        Frame::Refused {
            token,
            cookie,
            reason,
        } => Some(Frame::Refused {
            token,
            cookie,
            reason,
        }),
        _ => None,
    }
}

#[test]
fn a_relay_under_abuse_refuses_drops_and_counts_and_keeps_its_pair() {
    let (mut serve, relay) = common::start_serve_with(&["--relay", "--no-mainline"]);

    // An honest pair binds one token from two sockets and is paired.
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let channel = |answer: Option<Frame<'_>>| match answer {
        Some(Frame::Bound { channel, .. }) => channel,
        other => panic!("not bound: {other:?}"),
    };
    let (ch_a, ch_b) = (
        channel(bind(&a, relay, [1; 16])),
        channel(bind(&b, relay, [1; 16])),
    );
    let relayed = |payload: &[u8]| {
        a.send_to(&data_frame(ch_a, payload), relay).unwrap();
        let mut buf = [0u8; 2048];
        let (len, _) = b.recv_from(&mut buf).expect("forwarded to b");
        assert_eq!(
            &buf[..len],
            data_frame(ch_b, payload),
            "on b's channel, byte for byte"
        );
    };
    relayed(b"before");

    // Abuse from many sockets: data on channels nobody bound, a third
    // binder for the honest token, binds under fresh tokens from one IP
    // until the per-IP bound, and malformed frames.
    let attackers: Vec<UdpSocket> = (0..16)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, attacker) in attackers.iter().enumerate() {
        attacker
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        for c in 0..300u32 {
            let _ = attacker.send_to(&data_frame(c.wrapping_mul(7919) ^ i as u32, b"junk"), relay);
        }
        let _ = attacker.send_to(&[0x0d, 1, 2, 3], relay);
    }
    let third = bind(&attackers[0], relay, [1; 16]);
    assert!(
        matches!(
            third,
            Some(Frame::Refused {
                reason: RelayRefusal::TokenTaken,
                ..
            })
        ),
        "a third address cannot join the honest pair: {third:?}"
    );
    let mut refused_per_ip = false;
    for (i, attacker) in attackers.iter().enumerate().skip(1) {
        std::thread::sleep(Duration::from_millis(50)); // within the rate limit
        if let Some(Frame::Refused {
            reason: RelayRefusal::TooManyFromSource,
            ..
        }) = bind(attacker, relay, [i as u8 + 10; 16])
        {
            refused_per_ip = true;
        }
    }
    assert!(refused_per_ip, "bindings per source IP are bounded");

    // The honest pair still relays, both ways.
    relayed(b"after");
    b.send_to(&data_frame(ch_b, b"back"), relay).unwrap();
    let mut buf = [0u8; 64];
    let (len, _) = a.recv_from(&mut buf).expect("forwarded to a");
    assert_eq!(&buf[..len], data_frame(ch_a, b"back"));

    let peak = rss_peak_kb(serve.child.id());
    assert!(peak <= RSS_BOUND_KB, "peak RSS {peak} kB");
    serve.signal(libc::SIGTERM);
    assert_eq!(serve.wait(Duration::from_secs(10)).code(), Some(0));
    let stats = serve.wait_stderr("node stats:", Duration::from_secs(5));
    println!("{stats}");
    assert!(counter(&stats, "relay_unknown_channel") > 1000, "{stats}");
    assert!(counter(&stats, "relay_refused") >= 2, "{stats}");
    assert!(counter(&stats, "relay_malformed") >= 1, "{stats}");
    assert_eq!(counter(&stats, "relay_forwarded"), 3, "{stats}");
}
