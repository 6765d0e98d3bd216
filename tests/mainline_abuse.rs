//! Hostile Mainline input against one member, sans-IO with virtual time:
//! a storing node that plants a full answer of addresses pointing at a
//! victim (under the meeting's infohash and the relay directory's), and
//! bencode bombs, oversized and stray answers. The member's cost to the
//! victim stays at a few hellos and one relay probe per planted address,
//! and every
//! bad datagram is counted and dropped without an answer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use tinynode::tuning::{HELLO_SCHEDULE, MAX_NEW_CANDIDATES};
use tinynode::wire::hello::HELLO_LEN;
use tinynode::wire::mainline::{self, MAX_VALUES, Response, Value, encode_response};
use tinynode::wire::relay::BIND_LEN;
use tinynode::{
    Command, DropReason, Identity, Input, Meeting, Node, NodeConfig, Output, Transmit, WallClock,
};

const MEMBER: &str = "10.0.0.1:4000";
const STORER: &str = "192.0.2.1:6881";
const VICTIM: [u8; 4] = [198, 51, 100, 7];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A member of "planted" whose only Mainline node is [`STORER`].
fn member(now: Instant) -> Node {
    // Mid-hour, so one infohash window is in use.
    let clock = WallClock {
        at: now,
        unix_ms: 1_800_000_000_000 + 1_800_000,
    };
    let mut config = NodeConfig::new(addr(MEMBER), Identity::from_seed([1; 32]), clock);
    config.mainline_bootstrap = Some(vec![addr(STORER)]);
    let mut node = Node::new(now, config, [1; 32]);
    node.handle_input(
        now,
        Input::Command(Command::Join(Meeting::derive("planted").unwrap())),
    );
    node
}

/// The storing node's answer to a query: no nodes, a token, and
/// `planted` as the values of every `get_peers`.
fn answer(query: &[u8], planted: &[SocketAddrV4]) -> Vec<u8> {
    let decoded = mainline::bencode::decode(query).expect("our queries decode");
    let txid = decoded.value.get(b"t").and_then(Value::as_bytes).unwrap();
    let method = decoded.value.get(b"q").and_then(Value::as_bytes).unwrap();
    let mut body = Response {
        id: [9; 20],
        ..Response::default()
    };
    if method == b"get_peers" {
        body.token = Some(b"tok".to_vec());
        body.values = planted.iter().map(|a| SocketAddr::V4(*a)).collect();
    }
    encode_response(txid, &body)
}

fn outputs(node: &mut Node) -> (Vec<Transmit>, Option<Instant>) {
    let mut drain = node.drain();
    let transmits = drain
        .by_ref()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(t),
            _ => None,
        })
        .collect();
    (transmits, drain.deadline())
}

#[test]
fn planted_peers_cost_the_victim_a_few_hundred_bytes_each() {
    let start = Instant::now();
    let mut node = member(start);
    let planted: Vec<SocketAddrV4> = (0..MAX_VALUES as u16)
        .map(|i| SocketAddrV4::new(VICTIM.into(), 10_000 + i))
        .collect();
    let mut to_victim: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    // Addresses sent a hello (relay probes, §12.6, are counted apart: the
    // directory probes a random sample of what is listed).
    let mut greeted: std::collections::BTreeSet<SocketAddr> = Default::default();
    let mut now = start;
    let mut first_lookup = 0;
    // Ten minutes of lookups, each answered with the same planted list.
    while now < start + Duration::from_secs(600) {
        // Deliver until the member is quiet at this instant.
        let deadline = loop {
            let (transmits, deadline) = outputs(&mut node);
            if transmits.is_empty() {
                break deadline;
            }
            for t in transmits {
                if t.destination == addr(STORER) {
                    let reply = answer(&t.payload, &planted);
                    node.handle_input(
                        now,
                        Input::Receive {
                            source: t.destination,
                            destination: t.source,
                            data: &reply,
                        },
                    );
                } else if t.destination.ip() == IpAddr::from(VICTIM) {
                    *to_victim.entry(t.destination).or_default() += t.payload.len();
                    if t.payload.len() == HELLO_LEN {
                        greeted.insert(t.destination);
                    }
                }
            }
        };
        if now < start + Duration::from_millis(200) {
            // Before the second lookup (250 ms after the first).
            first_lookup = greeted.len();
        }
        let Some(deadline) = deadline else { break };
        now = deadline.max(now + Duration::from_millis(1));
        node.handle_input(now, Input::Timeout);
    }
    let total: usize = to_victim.values().sum();
    let most = to_victim.values().copied().max().unwrap_or(0);
    println!(
        "planted {} addresses; {first_lookup} greeted after the first lookup, {} in all, {total} bytes to the victim in all, \
         at most {most} bytes to one address",
        planted.len(),
        to_victim.len()
    );
    assert!(!to_victim.is_empty(), "the planted addresses were tried");
    assert!(to_victim.len() <= planted.len());
    assert!(
        // Three hellos, and one relay probe if the storing node also
        // listed the address under the relay directory's infohash (§12.6).
        most <= HELLO_SCHEDULE.len() * HELLO_LEN + BIND_LEN,
        "{most} bytes to one planted address"
    );
    assert!(
        first_lookup <= MAX_NEW_CANDIDATES,
        "{first_lookup} addresses greeted after the first lookup"
    );
}

#[test]
fn bombs_oversized_and_stray_answers_are_counted_and_never_answered() {
    let start = Instant::now();
    let mut node = member(start);
    node.handle_input(start, Input::Timeout);
    let (transmits, _) = outputs(&mut node);
    let query = transmits
        .iter()
        .find(|t| t.destination == addr(STORER))
        .expect("the bootstrap query");
    let receive = |node: &mut Node, data: &[u8]| {
        node.handle_input(
            start,
            Input::Receive {
                source: addr(STORER),
                destination: addr(MEMBER),
                data,
            },
        );
    };
    let deep = [b"d1:rl".to_vec(), b"l".repeat(50), b"e".repeat(52)].concat();
    let wide = [&b"d1:rl"[..], &b"i0e".repeat(600), b"ee"].concat();
    let long = b"d1:r99999999:".to_vec();
    let oversized = [&b"d1:r"[..], &vec![b'x'; 3000]].concat();
    for bomb in [&deep, &wide, &long] {
        receive(&mut node, bomb);
    }
    receive(&mut node, &oversized);
    receive(
        &mut node,
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
    );
    receive(&mut node, &encode_response(b"zzzz", &Response::default()));
    let (replies, _) = outputs(&mut node);
    assert!(replies.is_empty(), "nothing answered: {replies:?}");
    let stats = node.stats();
    assert_eq!(stats.dropped(DropReason::MainlineMalformed), 3);
    assert_eq!(stats.dropped(DropReason::Oversized), 1);
    assert_eq!(stats.dropped(DropReason::MainlineQuery), 1);
    assert_eq!(stats.dropped(DropReason::MainlineUnknownTransaction), 1);
    // The genuine answer still counts.
    receive(&mut node, &answer(&query.payload, &[]));
    assert_eq!(node.stats().mainline_messages, 1);
}
