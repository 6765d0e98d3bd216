//! A `serve --relay` node under abuse (`protocol-spec.md` §12.2, §12.5):
//! binds with spoofed sources never create state, so a victim receives at
//! most one small challenge per spoofed bind and never a data frame; one
//! /24 (or /48) cannot hold the relay's pairs; a public relay never binds
//! a private or loopback source, nor its own address.

mod sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sim::Sim;
use tinynode::fuzzing::bind_with_cookie;
use tinynode::wire::relay::{Bind, CHALLENGE_LEN, Frame, RelayRefusal, data_frame};
use tinynode::{
    DropReason, Identity, Input, Node, NodeConfig, NodeId, Output, RelayRole, WallClock,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn bind(token: [u8; 16]) -> Bind {
    Bind {
        token,
        session: 1,
        low: NodeId([1; 32]),
        high: NodeId([2; 32]),
        cookie: None,
    }
}

fn serve_relay(sim: &mut Sim) -> usize {
    let identity = sim.rng.bytes32();
    sim.add_host_configured(None, &[], identity, |c| c.relay = RelayRole::Open)
}

#[test]
fn spoofed_binds_reflect_one_challenge_each_and_no_data() {
    let mut sim = Sim::new(41);
    let relay = serve_relay(&mut sim);
    let relay_addr = sim.addr(relay);
    sim.run_for(Duration::from_secs(1));
    let victim = addr("192.0.2.80:53");
    let attacker = addr("203.0.113.66:4000");
    sim.watch(victim);
    sim.watch(attacker);

    // The attacker binds token T with the victim's address as its source,
    // over and over (it never sees the challenges), and binds T itself from
    // its own address, which works: it receives there.
    const SPOOFED: usize = 20;
    for _ in 0..SPOOFED {
        sim.inject(victim, relay_addr, Frame::Bind(bind([9; 16])).encode());
        // Guessed cookies do not help either.
        let mut guess = bind([9; 16]);
        guess.cookie = Some([0x5a; 16]);
        sim.inject(victim, relay_addr, Frame::Bind(guess).encode());
    }
    sim.run_for(Duration::from_secs(1));
    let own = sim.bind_as_client(attacker, relay_addr, bind([9; 16]));
    let channel = own
        .iter()
        .find_map(|d| match Frame::decode(d) {
            Ok(Frame::Bound { channel, .. }) => Some(channel),
            _ => None,
        })
        .expect("the attacker's own address binds");
    for _ in 0..50 {
        sim.inject(attacker, relay_addr, data_frame(channel, &[0xee; 1000]));
    }
    sim.run_for(Duration::from_secs(1));

    let at_victim = &sim.sink[&victim];
    assert_eq!(at_victim.len(), 2 * SPOOFED, "one answer per spoofed bind");
    for (_, datagram) in at_victim {
        assert_eq!(
            datagram.len(),
            CHALLENGE_LEN,
            "a challenge, smaller than the bind"
        );
        assert!(matches!(
            Frame::decode(datagram),
            Ok(Frame::Challenge { .. })
        ));
    }
    let stats = sim.hosts[relay].node.stats();
    assert_eq!(
        stats.relay_forwarded, 0,
        "nothing was forwarded to the victim"
    );
    assert_eq!(stats.dropped(DropReason::RelayUnpaired), 50);
    assert_eq!(
        sim.hosts[relay].node.sizes().relay_bindings,
        1,
        "only the attacker's own"
    );
}

#[test]
fn one_slash_24_cannot_hold_the_relays_pairs_and_others_still_bind() {
    let mut sim = Sim::new(42);
    let relay = serve_relay(&mut sim);
    let relay_addr = sim.addr(relay);
    sim.run_for(Duration::from_secs(1));

    // 64 self-paired tokens from 64 hosts of one /24, all at once: each
    // host within its own per-IP quota, the /24 as a whole is not.
    let binders: Vec<(SocketAddr, [u8; 16])> = (1..=64u8)
        .flat_map(|host| {
            [1000, 1001].map(|port| (addr(&format!("203.0.113.{host}:{port}")), [host; 16]))
        })
        .collect();
    for (from, token) in &binders {
        sim.watch(*from);
        sim.inject(*from, relay_addr, Frame::Bind(bind(*token)).encode());
    }
    sim.run_for(Duration::from_secs(1));
    for (from, token) in &binders {
        let cookie = sim.sink[from]
            .iter()
            .find_map(|(_, d)| match Frame::decode(d) {
                Ok(Frame::Challenge { cookie, .. }) => Some(cookie),
                _ => None,
            })
            .expect("challenged");
        let mut echo = bind(*token);
        echo.cookie = Some(cookie);
        sim.inject(*from, relay_addr, Frame::Bind(echo).encode());
    }
    sim.run_for(Duration::from_secs(1));
    let held = sim.hosts[relay].node.sizes().relay_bindings;
    assert_eq!(held, 16, "bindings held from one /24");
    let refused = binders
        .iter()
        .filter(|(from, _)| {
            sim.sink[from].iter().any(|(_, d)| {
                matches!(
                    Frame::decode(d),
                    Ok(Frame::Refused {
                        reason: RelayRefusal::TooManyFromSource,
                        ..
                    })
                )
            })
        })
        .count();
    assert_eq!(refused, binders.len() - 16);

    // An honest pair from elsewhere still binds.
    for from in ["192.0.2.10:5000", "198.18.7.7:6000"] {
        let frames = sim.bind_as_client(addr(from), relay_addr, bind([0xaa; 16]));
        assert!(
            frames
                .iter()
                .any(|d| matches!(Frame::decode(d), Ok(Frame::Bound { .. }))),
            "{from} is refused: {:?}",
            frames.iter().map(|d| Frame::decode(d)).collect::<Vec<_>>()
        );
    }
}

/// A `serve --relay` node on the public address `local`.
fn public_relay(now: Instant, local: SocketAddr) -> Node {
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000,
    };
    let mut config = NodeConfig::new(local, Identity::from_seed([3; 32]), clock);
    config.relay = RelayRole::Open;
    Node::new(now, config, [4; 32])
}

#[test]
fn a_public_relay_never_challenges_private_loopback_or_its_own_sources() {
    let now = Instant::now();
    let local = addr("198.51.100.7:3478");
    let mut node = public_relay(now, local);
    let _ = node.drain().count();
    for source in [
        "10.0.0.5:4000",
        "192.168.1.2:4000",
        "127.0.0.1:4000",
        "100.64.0.9:1",
        "198.51.100.7:3478",
    ] {
        let data = Frame::Bind(bind([1; 16])).encode();
        node.handle_input(
            now,
            Input::Receive {
                source: addr(source),
                destination: local,
                data: &data,
            },
        );
        let sent: Vec<_> = node
            .drain()
            .filter(|o| matches!(o, Output::Transmit(_)))
            .collect();
        assert!(sent.is_empty(), "{source} got {sent:?}");
    }
    assert_eq!(node.stats().dropped(DropReason::RelayForbidden), 5);
    // A public source is challenged, then bound.
    let answer = bind_with_cookie(&mut node, now, addr("203.0.113.9:1"), local, bind([1; 16]));
    assert!(matches!(answer, Some(Frame::Bound { .. })), "{answer:?}");
}

#[test]
fn a_refusal_names_the_cookie_of_the_bind_it_refuses() {
    let now = Instant::now();
    let local = addr("198.51.100.7:3478");
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000,
    };
    // Not a relay: it still challenges first, and refuses only with the
    // cookie it was shown.
    let mut config = NodeConfig::new(local, Identity::from_seed([3; 32]), clock);
    config.relay = RelayRole::Off;
    let mut node = Node::new(now, config, [4; 32]);
    let answer = bind_with_cookie(&mut node, now, addr("203.0.113.9:1"), local, bind([1; 16]));
    match answer {
        Some(Frame::Refused {
            reason: RelayRefusal::NotARelay,
            cookie,
            ..
        }) => assert_ne!(cookie, [0; 16]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_probe_left_unanswered_is_given_up() {
    let now = Instant::now();
    let local = addr("198.51.100.7:3478");
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000,
    };
    let mut node = Node::new(
        now,
        NodeConfig::new(local, Identity::from_seed([3; 32]), clock),
        [4; 32],
    );
    let silent = addr("203.0.113.50:3478");
    node.handle_input(
        now,
        Input::Command(tinynode::Command::ProbeRelays(vec![silent])),
    );
    let token = node
        .drain()
        .find_map(|o| match o {
            Output::Transmit(t) if t.destination == silent => match Frame::decode(&t.payload) {
                Ok(Frame::Bind(bind)) => Some(bind.token),
                _ => None,
            },
            _ => None,
        })
        .expect("a probe bind");
    // Another probe after the timeout gives the first up: its late
    // challenge is then unsolicited.
    let later = now + tinynode::tuning::PROBE_TIMEOUT;
    node.handle_input(
        later,
        Input::Command(tinynode::Command::ProbeRelays(vec![addr(
            "203.0.113.51:3478",
        )])),
    );
    let _ = node.drain().count();
    let late = Frame::Challenge {
        token,
        cookie: [1; 16],
    }
    .encode();
    node.handle_input(
        later,
        Input::Receive {
            source: silent,
            destination: local,
            data: &late,
        },
    );
    let sent: Vec<_> = node
        .drain()
        .filter(|o| matches!(o, Output::Transmit(_)))
        .collect();
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(node.stats().dropped(DropReason::RelayUnsolicited), 1);
}
