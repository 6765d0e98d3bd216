//! The DHT and meeting discovery in the simulator: many nodes, virtual time,
//! seeded latency and loss, NATs. Each test prints its seed.

mod sim;

use std::time::Duration;

use sim::Sim;
use tinynode::Meeting;
use tinynode::NodeId;
use tinynode::tuning::DHT_RECORD_TTL as RECORD_TTL;
use tinynode::wire::dht::K;
use tinynode::{Command, Event, LostReason};

/// `count` public hosts that all bootstrap from host 0, added 10 ms apart.
fn network(sim: &mut Sim, count: usize) {
    sim.grow(count, Duration::from_millis(10), Duration::from_secs(30));
}

#[test]
fn thousand_nodes_find_the_true_k_closest() {
    let mut sim = Sim::new(0x7e57_0001);
    network(&mut sim, 1000);
    let lookups = 200;
    let mut exact = 0;
    let mut rounds = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..lookups {
        let from = sim.rng.below(1000) as usize;
        let target = NodeId(sim.rng.bytes32());
        let (closest, r, q) = sim
            .find_node(from, target, Duration::from_secs(10))
            .expect("every lookup finishes");
        // The querying node itself is never in its own result.
        if closest == sim.true_closest(&target, K, &sim.id(from)) {
            exact += 1;
        }
        rounds.push(r);
        requests.push(q);
    }
    rounds.sort_unstable();
    requests.sort_unstable();
    let rate = exact as f64 / lookups as f64;
    println!(
        "1000 nodes, {lookups} lookups: exact k-closest {:.1}%, rounds median {} worst {}, requests median {} worst {}",
        rate * 100.0,
        rounds[lookups / 2],
        rounds[lookups - 1],
        requests[lookups / 2],
        requests[lookups - 1]
    );
    assert_eq!(exact, lookups, "success rate {rate}");
}

/// Joins `members` hosts to `meeting` now.
fn join(sim: &mut Sim, members: &[usize], meeting: &Meeting) {
    for &member in members {
        sim.command(member, Command::Join(meeting.clone()));
    }
}

#[test]
fn two_meetings_find_and_connect_to_exactly_their_own_members_through_nats() {
    let mut sim = Sim::new(0x7e57_0002);
    sim.loss = 0.01;
    network(&mut sim, 200);
    let bootstrap = [sim.addr(0)];
    // Half of each meeting sits behind its own NAT.
    let add_member = |sim: &mut Sim, i: usize| {
        let nat = i.is_multiple_of(2).then(|| sim.add_nat());
        sim.add_host(nat, &bootstrap)
    };
    let red: Vec<usize> = (0..10).map(|i| add_member(&mut sim, i)).collect();
    let blue: Vec<usize> = (0..10).map(|i| add_member(&mut sim, i)).collect();
    let (red_meeting, blue_meeting) = (
        Meeting::derive("red").unwrap(),
        Meeting::derive("blue").unwrap(),
    );
    join(&mut sim, &red, &red_meeting);
    join(&mut sim, &blue, &blue_meeting);
    sim.run_for(Duration::from_secs(30));
    sim.assert_meeting(&red);
    sim.assert_meeting(&blue);

    // Every pair opens a WebRTC data channel (signaled through DHT relays,
    // hole-punched through the NATs); lost signals cost a retry, so allow
    // a few connect timeouts.
    let members: Vec<usize> = red.iter().chain(&blue).copied().collect();
    let mut waited = Duration::ZERO;
    while waited < Duration::from_secs(90)
        && !members
            .iter()
            .all(|&m| sim.open_connections(m) == sim.members_seen(m))
    {
        sim.run_for(Duration::from_secs(1));
        waited += Duration::from_secs(1);
    }
    println!("full mesh of both meetings {waited:?} after discovery");
    for &member in &members {
        assert_eq!(
            sim.open_connections(member),
            sim.members_seen(member),
            "member {member} (seed {})",
            sim.seed
        );
    }
    let speaker = red[3];
    sim.command(speaker, Command::Send("hello, red".into()));
    // SCTP retransmits what the 1% loss takes; give it a few RTOs.
    sim.run_for(Duration::from_secs(10));
    let speaker_id = sim.id(speaker);
    for &member in red.iter().filter(|&&m| m != speaker) {
        let heard = sim.events(member, |e| match e {
            Event::Message { peer, text } => Some((*peer, text.clone())),
            _ => None,
        });
        assert_eq!(
            heard,
            [(speaker_id, "hello, red".to_owned())],
            "member {member}"
        );
    }
    for &member in &blue {
        assert!(
            sim.events(member, |e| matches!(e, Event::Message { .. }).then_some(()))
                .is_empty()
        );
    }
}

#[test]
fn meetings_survive_the_death_of_30_percent_of_nodes() {
    let mut sim = Sim::new(0x7e57_0003);
    network(&mut sim, 300);
    let bootstrap = [sim.addr(0)];
    let mut red: Vec<usize> = (0..6).map(|_| sim.add_host(None, &bootstrap)).collect();
    let meeting = Meeting::derive("survivors").unwrap();
    join(&mut sim, &red, &meeting);
    sim.run_for(Duration::from_secs(30));
    sim.assert_meeting(&red);

    // Kill 30% of all hosts, never the bootstrap node or a member.
    let total = sim.hosts.len();
    let mut killed = 0;
    while killed < total * 3 / 10 {
        let victim = sim.rng.below(total as u64) as usize;
        if victim != 0 && !red.contains(&victim) && sim.hosts[victim].alive {
            sim.kill(victim);
            killed += 1;
        }
    }
    // Newcomers join after the deaths; everyone re-announces within the TTL.
    let newcomers: Vec<usize> = (0..3).map(|_| sim.add_host(None, &bootstrap)).collect();
    join(&mut sim, &newcomers, &meeting);
    red.extend(newcomers);
    sim.run_for(Duration::from_secs(5 * 60));
    sim.assert_meeting(&red);
}

#[test]
fn a_departed_member_is_lost_after_the_record_ttl() {
    let mut sim = Sim::new(0x7e57_0004);
    network(&mut sim, 30);
    let bootstrap = [sim.addr(0)];
    let members: Vec<usize> = (0..3).map(|_| sim.add_host(None, &bootstrap)).collect();
    let meeting = Meeting::derive("ttl").unwrap();
    join(&mut sim, &members, &meeting);
    sim.run_for(Duration::from_secs(30));
    sim.assert_meeting(&members);

    let departed = members[2];
    let departed_id = sim.id(departed);
    sim.kill(departed);
    let killed_at = sim.now;
    sim.run_for(RECORD_TTL + Duration::from_secs(60));
    for &member in &members[..2] {
        let lost = sim.hosts[member].events.iter().find_map(|(at, e)| match e {
            Event::PeerLost { peer, reason } if *peer == departed_id => Some((*at, *reason)),
            _ => None,
        });
        let (at, reason) = lost.expect("departed member reported lost");
        assert_eq!(reason, LostReason::RecordExpired);
        assert_eq!(reason.to_string(), "record expired");
        assert!(
            at - killed_at <= RECORD_TTL,
            "lost after {:?}",
            at - killed_at
        );
    }
    // A member joining now does not find the departed one: no node stores it.
    let late = sim.add_host(None, &bootstrap);
    join(&mut sim, &[late], &meeting);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.members_seen(late), sim.ids(&members[..2]));
}

/// Connections `member` opened to `peer` so far.
fn connections_to(sim: &Sim, member: usize, peer: NodeId) -> usize {
    sim.events(member, |e| match e {
        Event::Connected { peer: p, .. } if *p == peer => Some(()),
        _ => None,
    })
    .len()
}

#[test]
fn a_member_restarted_at_a_new_address_is_reconnected() {
    // Three DHT nodes, as in a small meeting: each stores every record, so
    // signals are often relayed by a member itself, and the offerer's
    // remembered relay for the restarted member may be its old address.
    for seed in 0..4 {
        let mut sim = Sim::new(0x7e57_0010 + seed);
        network(&mut sim, 1);
        let bootstrap = [sim.addr(0)];
        let seeds = [sim.rng.bytes32(), sim.rng.bytes32()];
        let hosts = [
            sim.add_host_with_identity(None, &bootstrap, seeds[0]),
            sim.add_host_with_identity(None, &bootstrap, seeds[1]),
        ];
        // The one that stays offers (lower ID); the one that restarts answers.
        let (stayer, leaver, leaver_seed) = if sim.id(hosts[0]) < sim.id(hosts[1]) {
            (hosts[0], hosts[1], seeds[1])
        } else {
            (hosts[1], hosts[0], seeds[0])
        };
        let leaver_id = sim.id(leaver);
        let meeting = Meeting::derive("comebacks").unwrap();
        join(&mut sim, &[stayer, leaver], &meeting);
        sim.run_for(Duration::from_secs(20));
        assert_eq!(
            connections_to(&sim, stayer, leaver_id),
            1,
            "seed {}",
            sim.seed
        );

        sim.kill(leaver);
        sim.run_for(Duration::from_secs(20));
        let back = sim.add_host_with_identity(None, &bootstrap, leaver_seed);
        assert_eq!(sim.id(back), leaver_id);
        join(&mut sim, &[back], &meeting);
        sim.run_for(Duration::from_secs(60));
        assert_eq!(
            connections_to(&sim, stayer, leaver_id),
            2,
            "not reconnected (seed {})",
            sim.seed
        );
    }
}

#[test]
fn bootstrap_failure_is_reported_and_retried_with_backoff() {
    let mut sim = Sim::new(0x7e57_0005);
    let nobody = "100.64.255.255:4000".parse().unwrap();
    let lonely = sim.add_host(None, &[nobody]);
    sim.run_for(Duration::from_secs(20));
    let retries = sim.events(lonely, |e| match e {
        Event::BootstrapFailed { attempt, retry_in } => Some((*attempt, retry_in.as_secs())),
        _ => None,
    });
    assert_eq!(retries[..4], [(1, 1), (2, 2), (3, 4), (4, 8)]);
}
