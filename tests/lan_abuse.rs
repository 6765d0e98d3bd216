//! Hostile beacons on the LAN against one member, sans-IO: floods of other
//! meetings' beacons, beacons with our tag and a bad seal, one source over
//! its rate limit, and a genuine beacon replayed from a thousand
//! addresses. Every one is counted; nothing is answered but one hello to
//! the first source of a genuine new member.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tinynode::wire::beacon::{self, LAN_GROUP, LAN_WINDOW};
use tinynode::wire::record;
use tinynode::{
    Command, DropReason, Identity, Input, Meeting, Node, NodeConfig, Output, WallClock,
};

const UNIX_MS: u64 = 1_800_000_000_000;

fn member(now: Instant, meeting: &Meeting) -> Node {
    let clock = WallClock {
        at: now,
        unix_ms: UNIX_MS,
    };
    let mut config = NodeConfig::new(
        "10.0.0.1:4000".parse().unwrap(),
        Identity::from_seed([1; 32]),
        clock,
    );
    config.lan = true;
    let mut node = Node::new(now, config, [1; 32]);
    node.handle_input(now, Input::Command(Command::Join(meeting.clone())));
    let _ = node.drain().count();
    node
}

fn hear(node: &mut Node, now: Instant, source: SocketAddr, data: &[u8]) -> Vec<SocketAddr> {
    node.handle_input(
        now,
        Input::Receive {
            source,
            destination: SocketAddr::V4(LAN_GROUP),
            data,
        },
    );
    node.drain()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(t.destination),
            _ => None,
        })
        .collect()
}

fn source(n: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::from((0x0a01_0000 + n).to_be_bytes()), 4000)
}

#[test]
fn hostile_beacons_are_counted_and_cost_no_answers() {
    let now = Instant::now();
    let meeting = Meeting::derive("lan abuse").unwrap();
    let mut node = member(now, &meeting);
    let window = UNIX_MS / LAN_WINDOW.as_millis() as u64;
    let peer = Identity::from_seed([2; 32]);
    let genuine_record = record::seal(
        &meeting,
        &peer,
        &["10.0.0.2:4000".parse().unwrap()],
        tinynode::wire::record::NetworkFacts::UNKNOWN,
        UNIX_MS,
        [5; 12],
    );
    let genuine = beacon::encode(meeting.lan_tag(window), &genuine_record);

    // Other meetings' beacons from a thousand addresses: a tag comparison
    // each, no answer.
    let other = Meeting::derive("another meeting").unwrap();
    let foreign = beacon::encode(other.lan_tag(window), &genuine_record);
    for n in 0..1000 {
        assert!(hear(&mut node, now, source(n), &foreign).is_empty());
    }
    assert_eq!(node.stats().dropped(DropReason::BeaconOtherMeeting), 1000);

    // Our tag, a bad seal.
    let mut forged = genuine.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    for n in 0..100 {
        assert!(hear(&mut node, now, source(2000 + n), &forged).is_empty());
    }
    assert_eq!(node.stats().dropped(DropReason::BeaconUnverified), 100);

    // One source over its limit: dropped before anything is parsed.
    for _ in 0..300 {
        hear(&mut node, now, source(3000), &foreign);
    }
    assert_eq!(
        node.stats().dropped(DropReason::RateLimited),
        300 - tinynode::tuning::RATE_BURST
    );

    // A genuine beacon: one hello to its source (and the offer that
    // follows from the member it reveals); replayed from a thousand other
    // addresses, no more hellos.
    let first = hear(&mut node, now, source(4000), &genuine);
    assert!(first.iter().all(|d| *d == source(4000)), "{first:?}");
    assert!(!first.is_empty(), "the new member is greeted");
    let mut sent_to_replayers = 0;
    for n in 1..1000 {
        sent_to_replayers += hear(&mut node, now, source(4000 + n), &genuine).len();
    }
    println!("datagrams sent to 999 replayers of a genuine beacon: {sent_to_replayers}");
    assert_eq!(sent_to_replayers, 0, "a known member is not greeted again");
    assert_eq!(node.known_peers().len(), 1);
    assert!(
        node.known_peers()[0].paths.len() <= 4,
        "paths per member stay bounded"
    );
    assert!(node.sizes().within_limits());
}

#[test]
fn a_beacon_sent_to_the_unicast_socket_is_dropped() {
    let now = Instant::now();
    let meeting = Meeting::derive("lan-unicast-able-acid-acorn-actor").unwrap();
    let mut node = member(now, &meeting);
    let window = UNIX_MS / LAN_WINDOW.as_millis() as u64;
    let record = record::seal(
        &meeting,
        &Identity::from_seed([2; 32]),
        &["10.0.0.2:4000".parse().unwrap()],
        tinynode::wire::record::NetworkFacts::UNKNOWN,
        UNIX_MS,
        [5; 12],
    );
    let genuine = beacon::encode(meeting.lan_tag(window), &record);
    let unicast = node.local_addr();
    node.handle_input(
        now,
        Input::Receive {
            source: source(1),
            destination: unicast,
            data: &genuine,
        },
    );
    let sent = node
        .drain()
        .filter(|o| matches!(o, Output::Transmit(_)))
        .count();
    assert_eq!(sent, 0, "no hello to a replayer of a captured beacon");
    assert!(node.known_peers().is_empty());
    assert_eq!(node.stats().dropped(DropReason::BeaconUnicast), 1);
    // The same beacon from the group is a member.
    hear(&mut node, now, source(1), &genuine);
    assert_eq!(node.known_peers().len(), 1);
}
