//! Attacks on who a member is and how its signals travel, in the
//! simulator: announcing under a member's node ID to push its record out of
//! the storing nodes, and replaying members' current records as pushes to
//! make oneself their relay and swallow their offers. Each test prints its
//! seed; each failed on the code before announces were signed and pushes
//! were filtered (see the commit that added this file).

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::{Sim, peers_answers, request_frame};
use tinynode::wire::dht::{
    Blob, ErrorCode, Message, Request, Response, WireAddr, decode_frame, encode_frame,
    signed_announce,
};
use tinynode::{Command, DropReason, Identity, Meeting, NodeId};

/// Hosts in the test networks, and members of the meeting.
const HOSTS: usize = 40;
const MEMBERS: usize = 5;

#[test]
fn announcing_under_a_members_id_from_two_addresses_evicts_nothing() {
    let mut sim = Sim::new(0x7a05_0001);
    let meeting = Meeting::derive("evict the victim").unwrap();
    let members = sim.network_with_meeting(HOSTS, MEMBERS, &meeting);
    sim.assert_meeting(&members);
    let topic = meeting.topic();
    let victim = sim.id(members[0]);
    let storers = sim.closest_hosts(&topic, 8);

    // The attacker holds tokens for two addresses at every storing node and
    // announces junk under the victim's ID from both, every two seconds:
    // in the retired unsigned form, and signed with its own key.
    let attacker_key = Identity::from_seed([0xa7; 32]);
    let addresses: [SocketAddr; 2] = [
        "198.18.0.1:7000".parse().unwrap(),
        "198.18.0.2:7000".parse().unwrap(),
    ];
    for addr in addresses {
        sim.watch(addr);
    }
    let mut late_joiners = Vec::new();
    let mut refused = 0;
    let mut round = 0u32;
    while round < 7 * 60 / 2 {
        round += 1;
        for addr in addresses {
            let received = std::mem::take(sim.sink.get_mut(&addr).expect("watched"));
            refused += received
                .iter()
                .filter(|(_, datagram)| {
                    matches!(
                        decode_frame(datagram),
                        Ok(Message::Response {
                            body: Response::Error(ErrorCode::Unsupported),
                            ..
                        })
                    )
                })
                .count();
            for &storer in &storers {
                let get_peers = request_frame([1; 8], victim, Request::GetPeers { topic }, 400);
                sim.inject(addr, sim.addr(storer), get_peers);
            }
        }
        sim.run_for(Duration::from_millis(300));
        for addr in addresses {
            let answers = peers_answers(&sim.sink[&addr]);
            for (storer, token, _) in answers {
                let junk = vec![round as u8; 200];
                let unsigned = Request::Announce {
                    topic,
                    token,
                    record: Blob(junk.clone()),
                };
                let signed = signed_announce(&attacker_key, topic, token, &junk);
                for body in [unsigned, signed] {
                    sim.inject(addr, storer, request_frame([2; 8], victim, body, 0));
                }
            }
        }
        sim.run_for(Duration::from_millis(1700));
        // Once a minute, past the first record lifetime, a new member joins
        // while the attack goes on: it must find the victim at once.
        if round.is_multiple_of(30) && round >= 4 * 30 {
            let joiner = sim.add_host(None, &[sim.addr(0)]);
            sim.command(joiner, Command::Join(meeting.clone()));
            late_joiners.push((joiner, sim.now));
        }
        for &(joiner, joined_at) in &late_joiners {
            if sim.now.duration_since(joined_at) == Duration::from_secs(20) {
                assert!(
                    sim.members_seen(joiner).contains(&victim),
                    "member {joiner} joined 20 s ago and does not see the victim (seed {})",
                    sim.seed
                );
            }
        }
    }
    assert_eq!(late_joiners.len(), 4);
    sim.run_for(Duration::from_secs(30));
    let mut everyone = members.clone();
    everyone.extend(late_joiners.iter().map(|(joiner, _)| *joiner));
    sim.assert_meeting(&everyone);
    let forged = sim.dropped(&storers, DropReason::DhtForgedAnnounce);
    assert!(
        forged > 0,
        "signed forgeries reached the storers and were dropped"
    );
    assert!(
        refused > 0,
        "the unsigned announces were answered Unsupported"
    );
    println!("{forged} forged announces dropped, {refused} unsigned ones refused");
}

/// How long until every pair of `MEMBERS` members has an open channel,
/// joining together on a fresh network; with `attack`, an outsider who
/// knows the topic and the members' addresses (as a storing node would)
/// fetches their current records every 100 ms, pushes each to every
/// member, and answers every signal sent to it `Relayed` without
/// forwarding it.
fn time_to_full_mesh(seed: u64, attack: bool) -> Option<Duration> {
    let mut sim = Sim::new(seed);
    let meeting = Meeting::derive("black hole").unwrap();
    sim.grow(HOSTS, Duration::from_millis(10), Duration::from_secs(10));
    let topic = meeting.topic();
    let storers = sim.closest_hosts(&topic, 8);
    let attacker: SocketAddr = "198.18.1.1:7000".parse().unwrap();
    let attacker_id = NodeId([0xbb; 32]);
    sim.watch(attacker);
    let bootstrap = [sim.addr(0)];
    let members: Vec<usize> = (0..MEMBERS)
        .map(|_| sim.add_host(None, &bootstrap))
        .collect();
    let start = sim.now;
    for &member in &members {
        sim.command(member, Command::Join(meeting.clone()));
    }
    let mut swallowed = 0;
    while sim.now.duration_since(start) < Duration::from_secs(120) {
        if attack {
            let received = std::mem::take(sim.sink.get_mut(&attacker).expect("watched"));
            for (_, _, records) in peers_answers(&received) {
                for record in records {
                    let push = encode_frame(&Message::Push {
                        sender: attacker_id,
                        topic,
                        record: Blob(record),
                    });
                    for &member in &members {
                        sim.inject(attacker, sim.addr(member), push.clone());
                    }
                }
            }
            for (from, datagram) in &received {
                if let Ok(Message::Request {
                    txid,
                    body: Request::Signal { .. },
                    ..
                }) = decode_frame(datagram)
                {
                    swallowed += 1;
                    let relayed = encode_frame(&Message::Response {
                        txid,
                        sender: attacker_id,
                        observed: WireAddr::from(*from),
                        body: Response::Relayed,
                    });
                    sim.inject(attacker, *from, relayed);
                }
            }
            for &storer in &storers {
                let get_peers =
                    request_frame([3; 8], attacker_id, Request::GetPeers { topic }, 400);
                sim.inject(attacker, sim.addr(storer), get_peers);
            }
        }
        sim.run_for(Duration::from_millis(100));
        let meshed = members.iter().all(|&m| {
            let open = sim.open_connections(m);
            members
                .iter()
                .all(|&other| other == m || open.contains(&sim.id(other)))
        });
        if meshed {
            if attack {
                let unsolicited = sim.dropped(&members, DropReason::DhtUnsolicitedPush);
                println!(
                    "seed {seed}: {unsolicited} pushes dropped, {swallowed} signals swallowed"
                );
                assert!(unsolicited > 0, "the attacker's pushes arrived");
            }
            return Some(sim.now.duration_since(start));
        }
    }
    None
}

#[test]
fn replayed_records_pushed_to_everyone_do_not_slow_the_meeting() {
    let seeds = [0x7a05_0002u64, 0x7a05_0003, 0x7a05_0004];
    let quiet: Vec<Duration> = seeds
        .iter()
        .map(|&seed| time_to_full_mesh(seed, false).expect("a full mesh without the attacker"))
        .collect();
    let attacked: Vec<Option<Duration>> = seeds
        .iter()
        .map(|&seed| time_to_full_mesh(seed, true))
        .collect();
    println!("full mesh without the attacker: {quiet:?}; with it: {attacked:?}");
    // The simulation's own noise: the spread between seeds without the
    // attacker. Each attacked run must be within it of the slowest quiet one.
    let slowest = *quiet.iter().max().expect("seeds");
    let fastest = *quiet.iter().min().expect("seeds");
    let noise = (slowest - fastest).max(Duration::from_millis(500));
    for (seed, time) in seeds.iter().zip(&attacked) {
        let time = time.unwrap_or_else(|| panic!("seed {seed}: no full mesh in 120 s"));
        assert!(
            time <= slowest + noise,
            "seed {seed}: {time:?} with the attacker, {slowest:?} (noise {noise:?}) without"
        );
    }
}
