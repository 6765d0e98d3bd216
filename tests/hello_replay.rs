//! Replayed hellos cannot steer a member's signals (`protocol-spec.md`
//! §6.2, §9.6), sans-IO: member A learns member B from B's hello, sent from
//! the address B's signed record lists; the same hello replayed from four
//! addresses of an attacker's (on today's code, enough to push B's real path
//! out) leaves A's offers going to B alone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tinynode::wire::DHT_FRAME_TAG;
use tinynode::wire::hello::{HelloKind, encode};
use tinynode::wire::record::{self, NetworkFacts};
use tinynode::{
    Command, Identity, Input, Meeting, Node, NodeConfig, Output, SignalPath, WallClock,
};

const UNIX_MS: u64 = 1_800_000_000_000;

/// Identities for A and B, A's node ID the lower (A offers).
fn pair() -> (Identity, Identity) {
    let (x, y) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
    if x.node_id() < y.node_id() {
        (x, y)
    } else {
        (y, x)
    }
}

/// The DHT frames (signals) `node` sends, by destination.
fn signals_sent(node: &mut Node) -> Vec<SocketAddr> {
    node.drain()
        .filter_map(|o| match o {
            Output::Transmit(t) if t.payload.first() == Some(&DHT_FRAME_TAG) => Some(t.destination),
            _ => None,
        })
        .collect()
}

#[test]
fn a_hello_replayed_from_four_addresses_does_not_steer_the_offers() {
    let now = Instant::now();
    let meeting = Meeting::derive("hello-replay-able-acid-acorn-actor-adapt").unwrap();
    let (a_identity, b_identity) = pair();
    let clock = WallClock {
        at: now,
        unix_ms: UNIX_MS,
    };
    let config = NodeConfig::new("10.0.0.1:4000".parse().unwrap(), a_identity, clock);
    let mut a = Node::new(now, config, [7; 32]);
    a.handle_input(now, Input::Command(Command::Join(meeting.clone())));
    let _ = a.drain().count();

    let b_addr: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let b_record = record::seal(
        &meeting,
        &b_identity,
        &[b_addr],
        NetworkFacts::UNKNOWN,
        UNIX_MS,
        [3; 12],
    );
    let hello = encode(HelloKind::Hello, &b_record);
    let hear = |a: &mut Node, from: SocketAddr| {
        a.handle_input(
            now,
            Input::Receive {
                source: from,
                destination: "10.0.0.1:4000".parse().unwrap(),
                data: &hello,
            },
        );
        signals_sent(a)
    };
    let first = hear(&mut a, b_addr);
    assert!(first.iter().all(|d| *d == b_addr), "{first:?}");
    assert!(!first.is_empty(), "A offers to B");
    let replayers: Vec<SocketAddr> = (1..=4)
        .map(|i| SocketAddr::from(([10, 0, 66, i], 4000)))
        .collect();
    for &replayer in &replayers {
        let sent = hear(&mut a, replayer);
        assert!(sent.iter().all(|d| *d == b_addr), "{sent:?}");
    }
    let known = a.known_peers();
    assert_eq!(known[0].paths, [SignalPath::Direct(b_addr)], "{known:?}");
    // The offer's repeats over the next seconds go to B only.
    let mut at = now;
    let mut repeats = Vec::new();
    while at < now + Duration::from_secs(8) {
        at += Duration::from_millis(250);
        a.handle_input(at, Input::Timeout);
        repeats.extend(signals_sent(&mut a));
    }
    assert!(!repeats.is_empty(), "the offer is repeated");
    assert!(repeats.iter().all(|d| *d == b_addr), "{repeats:?}");
}
