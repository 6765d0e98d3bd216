//! Reachability probes in the simulator (`protocol-spec.md` §5.8): a node
//! asks a DHT node to have a third node send it one datagram unasked; it
//! arrives at a public node and not behind a NAT that filters, and no node
//! can be made to aim its probe anywhere but at the asker.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::{Sim, request_frame};
use tinynode::wire::dht::{
    ErrorCode, Message, REACH_ME_REQUEST_LEN, Request, Response, decode_frame,
};
use tinynode::{Command, Event, NodeId, ReachResult};

/// Three public DHT nodes (x bootstraps the others), and the prober.
fn network(seed: u64, behind_nat: bool) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed);
    let x = sim.add_host(None, &[]);
    let boot = [sim.addr(x)];
    for _ in 0..2 {
        sim.add_host(None, &boot);
    }
    sim.run_for(Duration::from_secs(2));
    let nat = behind_nat.then(|| sim.add_nat());
    // The prober joins no DHT: it talks to x alone.
    let prober = sim.add_host(nat, &[]);
    (sim, x, prober)
}

/// Every reachability event of `prober`, in order.
fn reach_events(sim: &Sim, prober: usize) -> Vec<ReachResult> {
    sim.events(prober, |e| match e {
        Event::ReachProbed { result, .. } => Some(*result),
        _ => None,
    })
}

/// What the probes found: [`reach_events`] without the `Forwarded` that
/// says a probe is on its way.
fn reached(sim: &Sim, prober: usize) -> Vec<ReachResult> {
    let mut found = reach_events(sim, prober);
    found.retain(|r| *r != ReachResult::Forwarded);
    found
}

#[test]
fn a_public_node_is_reached_unasked_by_a_third_node() {
    let (mut sim, x, prober) = network(11, false);
    let via = sim.addr(x);
    sim.command(prober, Command::ProbeReach(vec![via]));
    sim.run_for(Duration::from_secs(2));
    let reached = reached(&sim, prober);
    let [ReachResult::Reached(from)] = reached[..] else {
        panic!("one probe arrived: {reached:?}");
    };
    assert_ne!(from.ip(), via.ip(), "from a third node");
}

#[test]
fn a_node_behind_a_filtering_nat_is_not_reached() {
    let (mut sim, x, prober) = network(12, true);
    sim.command(prober, Command::ProbeReach(vec![sim.addr(x)]));
    sim.run_for(Duration::from_secs(3));
    assert_eq!(
        reach_events(&sim, prober),
        [ReachResult::Forwarded],
        "forwarded, and filtered out at the NAT"
    );
}

#[test]
fn a_probe_from_a_node_we_sent_to_proves_nothing() {
    let (mut sim, x, _) = network(15, false);
    // This prober joined the DHT: it has sent to every node there.
    let boot = [sim.addr(x)];
    let prober = sim.add_host(None, &boot);
    sim.run_for(Duration::from_secs(3));
    let before = reached(&sim, prober).len();
    sim.command(prober, Command::ProbeReach(vec![sim.addr(x)]));
    sim.run_for(Duration::from_secs(2));
    let results = reached(&sim, prober);
    // Both third nodes probed; neither proves anything.
    assert_eq!(results.len() - before, 2, "{results:?}");
    assert!(
        results[before..]
            .iter()
            .all(|r| matches!(r, ReachResult::Inconclusive(_))),
        "{results:?}"
    );
}

#[test]
fn a_node_that_knows_nobody_else_says_so() {
    let mut sim = Sim::new(13);
    let x = sim.add_host(None, &[]);
    let prober = sim.add_host(None, &[]);
    sim.command(prober, Command::ProbeReach(vec![sim.addr(x)]));
    sim.run_for(Duration::from_secs(2));
    assert_eq!(reach_events(&sim, prober), [ReachResult::NotForwarded]);
}

#[test]
fn nobody_can_aim_a_probe_at_someone_else() {
    let (mut sim, x, _) = network(14, false);
    let attacker: SocketAddr = "192.0.2.66:4000".parse().unwrap();
    let victim: SocketAddr = "192.0.2.77:4000".parse().unwrap();
    sim.watch(attacker);
    sim.watch(victim);
    let third = (0..sim.hosts.len())
        .find(|&h| h != x && sim.hosts[h].addr.ip() != attacker.ip())
        .unwrap();
    // An unpadded ReachMe is answered, but not forwarded.
    let short = request_frame([1; 8], NodeId([5; 32]), Request::ReachMe, 0);
    assert!(short.len() < REACH_ME_REQUEST_LEN);
    sim.inject(attacker, sim.addr(x), short);
    // A Probe from a node nobody knows is answered, but not carried out.
    let probe = request_frame(
        [2; 8],
        NodeId([5; 32]),
        Request::Probe {
            target: victim.into(),
            txid: [9; 8],
        },
        0,
    );
    sim.inject(attacker, sim.addr(third), probe);
    sim.run_for(Duration::from_secs(2));
    assert!(sim.sink[&victim].is_empty(), "nothing reached the victim");
    let refusals = sim.sink[&attacker]
        .iter()
        .filter(|(_, d)| {
            matches!(
                decode_frame(d),
                Ok(Message::Response {
                    body: Response::Error(ErrorCode::UnknownTarget),
                    ..
                })
            )
        })
        .count();
    assert_eq!(refusals, 2, "both refused");
}

#[test]
fn a_member_that_a_probe_reached_says_so_in_its_record() {
    let (mut sim, x, prober) = network(16, false);
    let boot = [sim.addr(x)];
    let other = sim.add_host(None, &boot);
    sim.command(prober, Command::ProbeReach(vec![sim.addr(x)]));
    sim.run_for(Duration::from_secs(2));
    assert!(matches!(
        reached(&sim, prober)[..],
        [ReachResult::Reached(_)]
    ));
    // Now both join: the other member reads the prober's record.
    let meeting = tinynode::Meeting::derive("reachable").unwrap();
    for member in [prober, other] {
        sim.command(member, Command::Join(meeting.clone()));
    }
    // The prober has no bootstrap of its own: it bootstraps from x now.
    sim.command(prober, Command::Bootstrap(boot.to_vec()));
    sim.run_for(Duration::from_secs(10));
    let seen = sim.hosts[other].node.known_peers();
    let record = seen
        .iter()
        .find(|p| p.node_id == sim.id(prober))
        .expect("the other member found the prober");
    assert!(record.reachable, "its record says it is reachable");
}
