//! One seed, one run: the simulator and the sans-IO core reproduce a run
//! exactly. Nothing in the core may iterate an OS-seeded hash map where the
//! order reaches its output; these tests fail when something does.
//!
//! Without WebRTC every byte is derived from the seed, so the runs are
//! compared by a hash of every delivered datagram. str0m draws its own ICE
//! credentials and DTLS keys, so with connections the bytes differ from run
//! to run; there the runs are compared by their sequence of events (who
//! discovered, connected to or lost whom, in which order, at which virtual
//! time). Each run prints its seed (`Sim::new`).

mod sim;

use std::time::Duration;

use sim::Sim;
use tinynode::Meeting;
use tinynode::NodeId;
use tinynode::{Command, Event};

/// A 100-node DHT, then 20 lookups of random keys from random nodes;
/// returns the hash of every delivered datagram and how many there were.
fn dht_run(seed: u64) -> (u64, u64) {
    let mut sim = Sim::new(seed);
    sim.loss = 0.01;
    sim.grow(100, Duration::from_millis(10), Duration::from_secs(20));
    for _ in 0..20 {
        let from = sim.rng.below(100) as usize;
        let target = NodeId(sim.rng.bytes32());
        sim.find_node(from, target, Duration::from_secs(5));
    }
    (sim.trace_hash(), sim.delivered)
}

#[test]
fn a_dht_run_is_reproduced_byte_for_byte_by_its_seed() {
    let first = dht_run(0xde7e_0001);
    let again = dht_run(0xde7e_0001);
    assert_eq!(first, again, "seed 0xde7e0001 gave two different runs");
    let other = dht_run(0xde7e_0002);
    assert_ne!(
        first.0, other.0,
        "a different seed must give a different run"
    );
}

/// What a member saw happen, reduced to what str0m's randomness cannot
/// change: (virtual ms, host, what, peer).
type Timeline = Vec<(u128, usize, &'static str, NodeId)>;

/// A 30-node DHT and a meeting of five members, two behind NATs, that
/// connect as a full mesh and exchange one message each.
fn meeting_run(seed: u64) -> Timeline {
    let mut sim = Sim::new(seed);
    sim.grow(30, Duration::from_millis(10), Duration::from_secs(10));
    let bootstrap = [sim.addr(0)];
    let members: Vec<usize> = (0..5)
        .map(|i| {
            let nat = (i % 2 == 1).then(|| sim.add_nat());
            sim.add_host(nat, &bootstrap)
        })
        .collect();
    let meeting = Meeting::derive("determinism").unwrap();
    for &member in &members {
        sim.command(member, Command::Join(meeting.clone()));
    }
    sim.run_for(Duration::from_secs(20));
    for &member in &members {
        sim.command(member, Command::Send(format!("hello from {member}")));
    }
    sim.run_for(Duration::from_secs(5));
    let mut timeline = Timeline::new();
    for &member in &members {
        for (at, event) in &sim.hosts[member].events {
            let entry = match event {
                Event::PeerDiscovered { peer, .. } => ("discovered", *peer),
                Event::Connected { peer, .. } => ("connected", *peer),
                Event::Message { peer, .. } => ("message", *peer),
                Event::Disconnected { peer, .. } => ("disconnected", *peer),
                Event::ConnectFailed { peer, .. } => ("connect_failed", *peer),
                Event::PeerLost { peer, .. } => ("lost", *peer),
                _ => continue,
            };
            let ms = (*at - sim.start).as_millis();
            timeline.push((ms, member, entry.0, entry.1));
        }
    }
    timeline.sort();
    // The run must have done something worth comparing: a full mesh and
    // every message delivered.
    let connected = timeline.iter().filter(|e| e.2 == "connected").count();
    assert_eq!(connected, 5 * 4, "full mesh (seed {seed})");
    let messages = timeline.iter().filter(|e| e.2 == "message").count();
    assert_eq!(messages, 5 * 4, "every message arrives (seed {seed})");
    timeline
}

#[test]
fn a_meeting_run_is_reproduced_event_for_event_by_its_seed() {
    let first = meeting_run(0xde7e_0010);
    let again = meeting_run(0xde7e_0010);
    assert_eq!(first, again, "seed 0xde7e0010 gave two different runs");
    let other = meeting_run(0xde7e_0011);
    assert_ne!(first, other, "a different seed must give a different run");
}
