//! IPv6 in the simulator (`protocol-spec.md` §1.1): members with an IPv6
//! socket (public addresses, no NAT, optionally a stateful firewall that
//! lets in only answers) meet and connect over IPv6, dual-stack members
//! whose IPv4 paths are symmetric-NATed connect *directly* over IPv6
//! where IPv4 alone needs a relay, a dual-stack member reaches an
//! IPv4-only one over IPv4, an IPv6-only and an IPv4-only member meet
//! through a dual-stack relay, and an IPv6 /64 is rate-limited as one
//! source with answers within the amplification bound.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::Sim;
use tinynode::{Command, ConnectionReason, Event, Family, Meeting, NodeId, RelayRole};

/// Each `Connected` event of `member`: the peer, the address its traffic
/// comes from, and whether through a relay.
fn connections(sim: &Sim, member: usize) -> Vec<(NodeId, SocketAddr, bool)> {
    sim.events(member, |e| match e {
        Event::Connected {
            peer, addr, relay, ..
        } => Some((*peer, *addr, *relay)),
        _ => None,
    })
}

fn join_all(sim: &mut Sim, members: &[usize], code: &str) {
    let meeting = Meeting::derive(code).expect("meeting");
    for &member in members {
        sim.command(member, Command::Join(meeting.clone()));
    }
}

/// Runs until `a` and `b` have a channel, or for `limit`; the time taken.
fn run_until_connected(sim: &mut Sim, a: usize, b: usize, limit: Duration) -> Option<Duration> {
    let start = sim.now;
    while sim.now - start < limit {
        if sim.open_connections(a).contains(&sim.id(b))
            && sim.open_connections(b).contains(&sim.id(a))
        {
            return Some(sim.now - start);
        }
        sim.run_for(Duration::from_millis(100));
    }
    None
}

/// A dual-stack public serve node that relays for nobody.
fn dual_stack_serve(sim: &mut Sim) -> usize {
    sim.add_host_v6(None, false, false, &[], |config| {
        config.relay = RelayRole::Off
    })
}

fn no_relay(config: &mut tinynode::NodeConfig) {
    config.relay = RelayRole::Off;
}

#[test]
fn ipv6_only_members_connect_over_ipv6_through_an_ipv6_serve_node() {
    for seed in [1, 2] {
        let mut sim = Sim::new(seed);
        let serve = sim.add_host_v6(None, true, false, &[], no_relay);
        let bootstrap = [sim.addr(serve)];
        assert!(bootstrap[0].is_ipv6());
        let a = sim.add_host_v6(None, true, true, &bootstrap, no_relay);
        let b = sim.add_host_v6(None, true, true, &bootstrap, no_relay);
        join_all(&mut sim, &[a, b], "six only");
        let took = run_until_connected(&mut sim, a, b, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("seed {seed}: IPv6-only members never connected"));
        println!("seed {seed}: connected in {took:?}");
        for (member, other) in [(a, b), (b, a)] {
            assert_eq!(
                connections(&sim, member),
                [(sim.id(other), sim.hosts[other].addr, false)],
                "seed {seed}: direct, at the other's IPv6 address"
            );
        }
    }
}

#[test]
fn symmetric_ipv4_nats_but_firewalled_ipv6_connect_directly_over_ipv6() {
    for seed in [1, 2, 3] {
        let mut sim = Sim::new(seed);
        let serve = dual_stack_serve(&mut sim);
        let bootstrap = [sim.addr(serve)];
        let (nat_a, nat_b) = (sim.add_symmetric_nat(), sim.add_symmetric_nat());
        let a = sim.add_host_v6(Some(nat_a), false, true, &bootstrap, no_relay);
        let b = sim.add_host_v6(Some(nat_b), false, true, &bootstrap, no_relay);
        join_all(&mut sim, &[a, b], "six beats four");
        let took = run_until_connected(&mut sim, a, b, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("seed {seed}: never connected"));
        println!("seed {seed}: connected in {took:?}");
        for (member, other) in [(a, b), (b, a)] {
            let got = connections(&sim, member);
            assert_eq!(got.len(), 1, "seed {seed}: {got:?}");
            let (peer, addr, relay) = got[0];
            assert_eq!(peer, sim.id(other));
            assert!(!relay, "seed {seed}: no relay");
            assert_eq!(Family::of(addr), Family::V6, "seed {seed}: over IPv6");
            assert_eq!(Some(addr), sim.hosts[other].addr6);
        }
        assert!(
            sim.events(a, |e| matches!(e, Event::ConnectFailed { .. })
                .then_some(()))
                .is_empty(),
            "seed {seed}: the first attempt worked"
        );
    }
}

#[test]
fn without_ipv6_the_same_symmetric_pair_needs_a_relay() {
    // The control for the test above: the same NATs, no IPv6 and no relay
    // anywhere, fail with the reason.
    let mut sim = Sim::new(4);
    let serve = sim.add_host_configured(None, &[], [9; 32], no_relay);
    let bootstrap = [sim.addr(serve)];
    let (nat_a, nat_b) = (sim.add_symmetric_nat(), sim.add_symmetric_nat());
    let a = sim.add_host_configured(Some(nat_a), &bootstrap, [10; 32], no_relay);
    let b = sim.add_host_configured(Some(nat_b), &bootstrap, [11; 32], no_relay);
    join_all(&mut sim, &[a, b], "six beats four");
    assert_eq!(
        run_until_connected(&mut sim, a, b, Duration::from_secs(20)),
        None
    );
    let failures = [a, b].map(|m| {
        sim.events(m, |e| match e {
            Event::ConnectFailed { reason, .. } => Some(*reason),
            _ => None,
        })
    });
    assert!(
        failures
            .iter()
            .flatten()
            .any(|r| *r == ConnectionReason::NoRelay),
        "{failures:?}"
    );
}

#[test]
fn a_dual_stack_member_and_an_ipv4_only_member_connect_over_ipv4() {
    let mut sim = Sim::new(5);
    let serve = dual_stack_serve(&mut sim);
    let bootstrap = [sim.addr(serve)];
    let nat = sim.add_nat();
    let dual = sim.add_host_v6(Some(nat), false, true, &bootstrap, no_relay);
    let identity = sim.rng.bytes32();
    let four = sim.add_host_configured(None, &bootstrap, identity, no_relay);
    join_all(&mut sim, &[dual, four], "mixed families");
    run_until_connected(&mut sim, dual, four, Duration::from_secs(20))
        .expect("a dual-stack and an IPv4-only member connect");
    let got = connections(&sim, dual);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, sim.hosts[four].addr);
    assert!(!got[0].2, "direct");
    let got = connections(&sim, four);
    assert_eq!(Family::of(got[0].1), Family::V4, "{got:?}");
    // The IPv4-only member never tried an IPv6 address it was given.
    for member in [dual, four] {
        assert_eq!(sim.hosts[member].node.stats().unsendable, 0);
    }
}

#[test]
fn a_dual_stack_node_learns_a_public_address_and_a_class_per_family() {
    let mut sim = Sim::new(6);
    sim.grow(6, Duration::from_millis(50), Duration::ZERO);
    // Dual-stack public observers.
    let observers: Vec<usize> = (0..4)
        .map(|_| {
            let bootstrap = [sim.addr(0)];
            sim.add_host_v6(None, false, false, &bootstrap, |_| {})
        })
        .collect();
    let mut bootstrap: Vec<SocketAddr> = observers.iter().map(|&o| sim.addr(o)).collect();
    bootstrap.extend(observers.iter().filter_map(|&o| sim.hosts[o].addr6));
    let nat = sim.add_symmetric_nat();
    let member = sim.add_host_v6(Some(nat), false, true, &bootstrap, |_| {});
    sim.run_for(Duration::from_secs(10));
    sim.command(member, Command::SampleNat);
    sim.run_for(Duration::from_secs(10));
    let node = &sim.hosts[member].node;
    assert_eq!(node.public_addr_of(Family::V6), sim.hosts[member].addr6);
    assert!(
        node.public_addr_of(Family::V4)
            .is_some_and(|a| a.ip() != sim.hosts[member].addr.ip()),
        "the IPv4 public address is the NAT's"
    );
    assert_eq!(node.nat_class_of(Family::V6), tinynode::NatClass::Open);
    assert!(
        node.nat_class_of(Family::V4).mapping_varies(),
        "{}",
        node.nat_class_of(Family::V4)
    );
}

#[test]
fn an_ipv6_only_and_an_ipv4_only_member_meet_through_a_dual_stack_relay() {
    // No pair of candidates shares a family; a dual-stack `serve --relay`
    // pairs a binding made over IPv6 with one made over IPv4, and the
    // relayed candidates (synthetic IPv4 on both sides) connect them.
    let mut sim = Sim::new(7);
    let relay = sim.add_host_v6(None, false, false, &[], |config| {
        config.relay = RelayRole::Open;
    });
    let (relay_v4, relay_v6) = (sim.addr(relay), sim.hosts[relay].addr6.expect("v6"));
    let six = sim.add_host_v6(None, true, true, &[relay_v6], no_relay);
    let nat = sim.add_nat();
    let identity = sim.rng.bytes32();
    let four = sim.add_host_configured(Some(nat), &[relay_v4], identity, no_relay);
    join_all(&mut sim, &[six, four], "across families");
    let took = run_until_connected(&mut sim, six, four, Duration::from_secs(40))
        .expect("an IPv6-only and an IPv4-only member connect through the relay");
    println!("connected through the relay in {took:?}");
    for member in [six, four] {
        let got = connections(&sim, member);
        assert!(
            got.iter()
                .all(|(_, addr, relay)| *relay && (*addr == relay_v4 || *addr == relay_v6)),
            "{got:?}"
        );
    }
    assert_eq!(
        connections(&sim, six)[0].1,
        relay_v6,
        "the IPv6 member reaches it over IPv6"
    );
    assert_eq!(
        connections(&sim, four)[0].1,
        relay_v4,
        "the IPv4 member over IPv4"
    );
    sim.command(six, Command::Send("from six to four".into()));
    sim.run_for(Duration::from_secs(2));
    let heard = sim.events(four, |e| match e {
        Event::Message { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(heard, ["from six to four"]);
}

/// `count` FindNode requests to `target`, each from a new address made by
/// `source(i)`; returns how many the target answered.
fn flood(sim: &mut Sim, target: usize, count: u16, source: impl Fn(u16) -> SocketAddr) -> usize {
    let destination = sim.hosts[target].addr6.expect("an IPv6 host");
    let mut answered = 0;
    for i in 0..count {
        let from = source(i);
        sim.watch(from);
        let frame = sim::request_frame(
            [9; 8],
            NodeId([0x42; 32]),
            tinynode::wire::dht::Request::FindNode {
                target: NodeId([i as u8; 32]),
            },
            200,
        );
        sim.inject(from, destination, frame);
    }
    sim.run_for(Duration::from_millis(500));
    for i in 0..count {
        answered += usize::from(!sim.sink[&source(i)].is_empty());
    }
    answered
}

#[test]
fn an_ipv6_slash_64_is_rate_limited_as_one_source_and_answers_stay_small() {
    let mut sim = Sim::new(8);
    let node = sim.add_host_v6(None, true, false, &[], no_relay);
    // 300 requests from 300 addresses of one /64, at once: one source,
    // whose bucket (100 tokens) runs dry.
    let one_prefix =
        |i: u16| SocketAddr::from(([0x2001, 0xdb8, 0xbad, 1, 0, 0, 0x99, i + 1], 5000));
    let answered_one = flood(&mut sim, node, 300, one_prefix);
    // The same from 300 different /64s: each its own source.
    let many_prefixes =
        |i: u16| SocketAddr::from(([0x2001, 0xdb8, 0xbad, 2 + i, 0, 0, 0, 1], 5000));
    let answered_many = flood(&mut sim, node, 300, many_prefixes);
    println!("one /64: {answered_one} of 300 answered; 300 /64s: {answered_many} of 300");
    assert!(
        answered_one < 150,
        "one /64 is one source: {answered_one} answered"
    );
    assert_eq!(answered_many, 300, "separate /64s are separate sources");
    let limited = sim.hosts[node]
        .node
        .stats()
        .dropped(tinynode::DropReason::RateLimited);
    assert!(limited >= 150, "{limited} rate-limited");
    // No answer to an IPv6 source is more than three times its request
    // (the victim never proved its address).
    let request_len = sim::request_frame(
        [9; 8],
        NodeId([0x42; 32]),
        tinynode::wire::dht::Request::FindNode {
            target: NodeId([0; 32]),
        },
        200,
    )
    .len();
    for i in 0..300 {
        for (_, answer) in &sim.sink[&many_prefixes(i)] {
            assert!(
                answer.len() <= 3 * request_len,
                "{} bytes for {request_len}",
                answer.len()
            );
        }
    }
}
