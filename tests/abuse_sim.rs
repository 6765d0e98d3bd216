//! Hostile input in the simulator: amplification attempts, an announce
//! flood from thousands of addresses, and an outsider who knows a meeting's
//! topic but not its code. Each test prints its seed.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::Sim;
use tinynode::Identity;
use tinynode::Meeting;
use tinynode::NodeId;
use tinynode::tuning::MAX_PER_TOPIC;
use tinynode::wire::dht::signed_announce;
use tinynode::wire::dht::{
    Blob, BoundedList, Contact, Message, Request, Response, WireAddr, decode_frame, encode_frame,
};
use tinynode::wire::record;
use tinynode::wire::signal::{self, Envelope, SignalKind};
use tinynode::wire::stun::{Class, MessageEncoder, Method, TransactionId};
use tinynode::{Command, Event};

const UNIX_MS: u64 = 1_800_000_000_000;

fn request(sender: NodeId, body: Request) -> Vec<u8> {
    sim::request_frame([7; 8], sender, body, 0)
}

/// A request with `padding` zero bytes, as a client that wants full answers sends.
fn padded_request(sender: NodeId, body: Request, padding: usize) -> Vec<u8> {
    sim::request_frame([7; 8], sender, body, padding)
}

#[test]
fn answers_to_unproven_addresses_stay_within_three_times_the_request() {
    let mut sim = Sim::new(0xab05_0001);
    let meeting = Meeting::derive("amplification").unwrap();
    let members = sim.network_with_meeting(40, 5, &meeting);
    let victim: SocketAddr = "203.0.113.66:9".parse().unwrap();
    sim.watch(victim);
    let claimed = NodeId([0x42; 32]);
    let stun =
        MessageEncoder::new(Class::Request, Method::Binding, TransactionId([1; 12])).finish();
    let requests = [
        stun,
        request(claimed, Request::Ping),
        request(
            claimed,
            Request::FindNode {
                target: NodeId([0; 32]),
            },
        ),
        request(
            claimed,
            Request::GetPeers {
                topic: meeting.topic(),
            },
        ),
        request(
            claimed,
            Request::Signal {
                to: sim.id(members[0]),
                payload: Blob(vec![0; 64]),
            },
        ),
    ];
    let mut worst: f64 = 0.0;
    for host in 0..sim.hosts.len() {
        for payload in &requests {
            let before: usize = sim.sink[&victim].iter().map(|(_, d)| d.len()).sum();
            let destination = sim.addr(host);
            sim.inject(victim, destination, payload.clone());
            sim.run_for(Duration::from_millis(300));
            let sent: usize = sim.sink[&victim]
                .iter()
                .map(|(_, d)| d.len())
                .sum::<usize>()
                - before;
            let ratio = sent as f64 / payload.len() as f64;
            worst = worst.max(ratio);
            assert!(
                ratio <= 3.0,
                "host {host} sent {sent} bytes for a {}-byte request",
                payload.len()
            );
        }
    }
    println!("worst amplification to an unproven address: {worst:.2}x");
}

#[test]
fn an_announce_flood_neither_evicts_members_nor_breaks_the_caps() {
    let mut sim = Sim::new(0xab05_0002);
    let meeting = Meeting::derive("flooded").unwrap();
    let members = sim.network_with_meeting(40, 5, &meeting);
    sim.assert_meeting(&members);

    // The storing nodes: the hosts closest to the topic.
    let topic = meeting.topic();
    let storers = sim.closest_hosts(&topic, 8);

    // 3,000 attacker addresses each fetch a token and announce junk.
    let attackers: Vec<SocketAddr> = (0..3000u32)
        .map(|i| SocketAddr::from(([198, 18, (i / 250) as u8, (i % 250) as u8 + 1], 7000)))
        .collect();
    for attacker in &attackers {
        sim.watch(*attacker);
    }
    for (i, attacker) in attackers.iter().enumerate() {
        // Each has a key of its own: a genuine, signed announce of junk.
        let key = Identity::from_seed(sim.rng.bytes32());
        let sender = key.node_id();
        let target = sim.addr(storers[i % storers.len()]);
        sim.inject(
            *attacker,
            target,
            request(sender, Request::GetPeers { topic }),
        );
        sim.run_for(Duration::from_millis(200));
        let answers = sim::peers_answers(&sim.sink[attacker]);
        let Some(&(_, token, _)) = answers.first() else {
            continue;
        };
        let junk = vec![i as u8; 200];
        sim.inject(
            *attacker,
            target,
            request(sender, signed_announce(&key, topic, token, &junk)),
        );
    }
    sim.run_for(Duration::from_secs(5));
    for &storer in &storers {
        let sizes = sim.hosts[storer].node.sizes();
        assert!(sizes.within_limits(), "{sizes:?}");
        assert!(sizes.stored_records <= MAX_PER_TOPIC, "{sizes:?}");
    }
    // Well past the record TTL, the members still see each other: their
    // re-announces refresh records the flood could not evict.
    sim.run_for(Duration::from_secs(15 * 60));
    sim.assert_meeting(&members);
    for &member in &members {
        let lost = sim.events(member, |e| {
            matches!(e, Event::PeerLost { .. }).then_some(())
        });
        assert!(
            lost.is_empty(),
            "member {member} lost a peer during the flood"
        );
        assert!(
            sim.hosts[member].node.stats().records_rejected > 0,
            "junk was seen and rejected"
        );
    }
}

#[test]
fn an_outsider_with_the_topic_but_not_the_code_gets_nothing() {
    let mut sim = Sim::new(0xab05_0003);
    let meeting = Meeting::derive("private club").unwrap();
    let members = sim.network_with_meeting(30, 4, &meeting);
    let topic = meeting.topic();
    let guess = Meeting::derive("public club").unwrap();
    let outsider: SocketAddr = "198.18.200.1:7000".parse().unwrap();
    sim.watch(outsider);
    let outsider_identity = Identity::from_seed([0xee; 32]);
    let sender = outsider_identity.node_id();

    // It can fetch the sealed records, but not read them.
    let storers = sim.closest_hosts(&topic, 1);
    let storer = sim.addr(storers[0]);
    sim.inject(
        outsider,
        storer,
        padded_request(sender, Request::GetPeers { topic }, 400),
    );
    sim.run_for(Duration::from_millis(300));
    let (_, token, records) = sim::peers_answers(&sim.sink[&outsider])
        .into_iter()
        .next()
        .expect("a Peers answer");
    assert!(!records.is_empty(), "the storer holds the members' records");
    assert!(records.iter().all(|r| record::open(&guess, r).is_err()));

    // It cannot inject itself as a member: its record is sealed with the wrong key.
    let fake = record::seal(
        &guess,
        &outsider_identity,
        &[outsider],
        tinynode::wire::record::NetworkFacts::UNKNOWN,
        UNIX_MS,
        [1; 12],
    );
    sim.inject(
        outsider,
        storer,
        request(
            sender,
            signed_announce(&outsider_identity, topic, token, &fake),
        ),
    );
    // Nor get a data channel: an offer sealed with the wrong key is rejected.
    let offer = signal::seal(
        &guess,
        &outsider_identity,
        Envelope {
            to: sim.id(members[0]),
            seq: 1,
            timestamp_ms: UNIX_MS,
            session: 1,
        },
        SignalKind::Close,
        [2; 12],
    );
    sim.inject(
        outsider,
        storer,
        request(
            sender,
            Request::Signal {
                to: sim.id(members[0]),
                payload: Blob(offer),
            },
        ),
    );
    sim.run_for(Duration::from_secs(60));
    for &member in &members {
        assert!(
            !sim.members_seen(member).contains(&sender),
            "the outsider became a member"
        );
        let connected_to_outsider = sim.events(member, |e| match e {
            Event::Connected { peer, .. } => Some(*peer),
            _ => None,
        });
        assert!(!connected_to_outsider.contains(&sender));
    }
    let rejected: u64 = members
        .iter()
        .map(|&m| sim.hosts[m].node.stats().records_rejected)
        .sum();
    assert!(
        rejected > 0,
        "the fake record reached members and was rejected"
    );
    assert!(
        sim.hosts[members[0]].node.stats().signals_rejected > 0,
        "the fake offer was rejected"
    );
    sim.assert_meeting(&members);

    // Replaying the members' records, captured earlier, after they have
    // re-announced newer ones: readers reject the old ones, nobody is lost.
    sim.run_for(Duration::from_secs(5 * 60));
    let rejected_before: u64 = members
        .iter()
        .map(|&m| sim.hosts[m].node.stats().records_rejected)
        .sum();
    let newest_before: Vec<Vec<(NodeId, u64)>> = members
        .iter()
        .map(|&m| {
            sim.hosts[m]
                .node
                .known_peers()
                .iter()
                .map(|p| (p.node_id, p.record_ms))
                .collect()
        })
        .collect();
    sim.sink.get_mut(&outsider).expect("watched").clear();
    sim.inject(
        outsider,
        storer,
        padded_request(sender, Request::GetPeers { topic }, 400),
    );
    sim.run_for(Duration::from_millis(300));
    let (_, fresh_token, _) = sim::peers_answers(&sim.sink[&outsider])
        .into_iter()
        .next()
        .expect("a fresh token");
    for old in &records {
        // Each replay under a fresh key: the storing node takes each for a
        // new announcer and pushes it to the members.
        let key = Identity::from_seed(sim.rng.bytes32());
        let replay = signed_announce(&key, topic, fresh_token, old);
        sim.inject(outsider, storer, request(key.node_id(), replay));
    }
    sim.run_for(Duration::from_secs(60));
    // Each member was pushed every replayed record and rejected all but its own.
    let rejected_after: u64 = members
        .iter()
        .map(|&m| sim.hosts[m].node.stats().records_rejected)
        .sum();
    let expected = (members.len() * (records.len() - 1)) as u64;
    assert!(
        rejected_after - rejected_before >= expected,
        "{rejected_before} -> {rejected_after}, expected +{expected}"
    );
    // Nobody's view went back to an older record.
    for (index, &member) in members.iter().enumerate() {
        let now_known = sim.hosts[member].node.known_peers();
        for (peer, before_ms) in &newest_before[index] {
            let after_ms = now_known
                .iter()
                .find(|p| p.node_id == *peer)
                .map(|p| p.record_ms);
            assert!(
                after_ms.is_some_and(|ms| ms >= *before_ms),
                "member {member} went back to a replayed record"
            );
        }
    }
    sim.assert_meeting(&members);
    for &member in &members {
        assert!(
            sim.events(member, |e| matches!(e, Event::PeerLost { .. })
                .then_some(()))
                .is_empty()
        );
    }
}

/// Answers every request that reached an adversary's address: pings
/// honestly (so honest nodes keep it in their tables), lookups with contacts
/// that look closer than anyone but lead nowhere, or are far away.
fn serve_adversaries(sim: &mut Sim, adversaries: &[(SocketAddr, NodeId)]) {
    for &(addr, id) in adversaries {
        let received = std::mem::take(sim.sink.get_mut(&addr).expect("watched"));
        for (source, datagram) in received {
            let Ok(Message::Request { txid, body, .. }) = decode_frame(&datagram) else {
                continue;
            };
            let bogus = |target: NodeId, sim: &mut Sim| {
                let nodes = (0..8u8)
                    .map(|i| {
                        let mut fake = target.0;
                        fake[31] ^= i + 1;
                        let near = sim.rng.below(2) == 0;
                        Contact {
                            id: if near {
                                NodeId(fake)
                            } else {
                                NodeId(sim.rng.bytes32())
                            },
                            addr: WireAddr::V4([192, 0, 2, i], 9),
                        }
                    })
                    .collect();
                BoundedList(nodes)
            };
            let response = match body {
                Request::FindNode { target } => Response::Nodes {
                    nodes: bogus(target, sim),
                },
                Request::GetPeers { topic } => Response::Peers {
                    token: [0; 16],
                    records: BoundedList(Vec::new()),
                    nodes: bogus(topic, sim),
                },
                _ => Response::Pong,
            };
            let reply = encode_frame(&Message::Response {
                txid,
                sender: id,
                observed: WireAddr::from(source),
                body: response,
            });
            sim.inject(addr, source, reply);
        }
    }
}

#[test]
fn lookups_find_the_true_closest_despite_lying_nodes() {
    let mut sim = Sim::new(0xab05_0004);
    let first = sim.add_host(None, &[]);
    let bootstrap = sim.addr(first);
    // 10% of the network lies: it introduces itself to the bootstrap node,
    // then answers every lookup with bogus contacts.
    let adversaries: Vec<(SocketAddr, NodeId)> = (0..20u8)
        .map(|i| {
            (
                SocketAddr::from(([100, 127, 0, i + 1], 4000)),
                NodeId(sim.rng.bytes32()),
            )
        })
        .collect();
    for &(addr, id) in &adversaries {
        sim.watch(addr);
        sim.inject(
            addr,
            bootstrap,
            request(id, Request::FindNode { target: id }),
        );
    }
    for _ in 1..200 {
        sim.add_host(None, &[bootstrap]);
        sim.run_for(Duration::from_millis(10));
        serve_adversaries(&mut sim, &adversaries);
    }
    for _ in 0..600 {
        sim.run_for(Duration::from_millis(50));
        serve_adversaries(&mut sim, &adversaries);
    }
    let participants: Vec<NodeId> = (0..sim.hosts.len())
        .map(|h| sim.id(h))
        .chain(adversaries.iter().map(|(_, id)| *id))
        .collect();
    let lookups = 60;
    let mut exact = 0;
    for _ in 0..lookups {
        let from = 1 + sim.rng.below(sim.hosts.len() as u64 - 1) as usize;
        let target = NodeId(sim.rng.bytes32());
        let before = sim.hosts[from].events.len();
        sim.command(from, Command::FindNode(target));
        for _ in 0..200 {
            sim.run_for(Duration::from_millis(50));
            serve_adversaries(&mut sim, &adversaries);
        }
        let closest = sim.hosts[from].events[before..]
            .iter()
            .find_map(|(_, e)| match e {
                Event::LookupDone {
                    target: t, closest, ..
                } if *t == target => Some(closest.clone()),
                _ => None,
            })
            .expect("the lookup finishes despite the lies");
        // Every honest node among the true k closest of all participants is
        // found; a liar may or may not be (it only introduced itself to one node).
        let me = sim.id(from);
        let mut expected: Vec<NodeId> = participants
            .iter()
            .copied()
            .filter(|id| *id != me)
            .collect();
        expected.sort_by_key(|id| id.distance(&target));
        expected.truncate(tinynode::wire::dht::K);
        assert!(
            closest.iter().all(|id| participants.contains(id)),
            "a bogus contact was reported as answering"
        );
        let liars: Vec<NodeId> = adversaries.iter().map(|(_, id)| *id).collect();
        if expected
            .iter()
            .filter(|id| !liars.contains(id))
            .all(|id| closest.contains(id))
        {
            exact += 1;
        }
    }
    println!(
        "lookups with 10% lying nodes: {exact}/{lookups} found every honest node of the true k closest"
    );
    assert_eq!(exact, lookups, "seed {}", sim.seed);
}
