//! Relays in the simulator (`protocol-spec.md` §12): members behind
//! symmetric NATs, which no hole punching connects, meet through a
//! `serve --relay` node or through a member connected to both; members
//! that can connect directly do, and release what they bound; with no
//! relay anywhere the failure says so.

mod sim;

use std::time::Duration;

use sim::Sim;
use tinynode::wire::relay::{Bind, Frame, RelayRefusal};
use tinynode::{Command, ConnectionReason, Event, Meeting, NodeId, RelayRole};

/// Whether each `Connected` event of `member` was relayed, in order.
fn connections(sim: &Sim, member: usize) -> Vec<(NodeId, bool)> {
    sim.events(member, |e| match e {
        Event::Connected { peer, relay, .. } => Some((*peer, *relay)),
        _ => None,
    })
}

fn join_all(sim: &mut Sim, members: &[usize], code: &str) {
    let meeting = Meeting::derive(code).expect("meeting");
    for &member in members {
        sim.command(member, Command::Join(meeting.clone()));
    }
}

/// Runs until every pair of `members` has an open channel, or panics with
/// the seed after `limit`.
fn run_until_mesh(sim: &mut Sim, members: &[usize], limit: Duration) -> Duration {
    let start = sim.now;
    while sim.now - start < limit {
        let meshed = members.iter().all(|&m| {
            let open = sim.open_connections(m);
            members
                .iter()
                .filter(|&&o| o != m)
                .all(|&o| open.contains(&sim.id(o)))
        });
        if meshed {
            return sim.now - start;
        }
        sim.run_for(Duration::from_millis(100));
    }
    panic!(
        "no full mesh after {limit:?} (seed {}): {:?}",
        sim.seed,
        members
            .iter()
            .map(|&m| sim.open_connections(m).len())
            .collect::<Vec<_>>()
    );
}

/// A public bootstrap node with the relay role `role`.
fn serve(sim: &mut Sim, role: RelayRole) -> usize {
    let identity = sim.rng.bytes32();
    sim.add_host_configured(None, &[], identity, |config| config.relay = role)
}

fn member(sim: &mut Sim, nat: Option<usize>, bootstrap: usize, role: RelayRole) -> usize {
    let identity = sim.rng.bytes32();
    let bootstrap = [sim.addr(bootstrap)];
    sim.add_host_configured(nat, &bootstrap, identity, |config| config.relay = role)
}

/// Two members behind symmetric NATs, the one with the lower node ID (the
/// one that offers) first.
fn symmetric_pair(sim: &mut Sim, bootstrap: usize) -> (usize, usize) {
    let (nat_x, nat_y) = (sim.add_symmetric_nat(), sim.add_symmetric_nat());
    let x = member(sim, Some(nat_x), bootstrap, RelayRole::Members);
    let y = member(sim, Some(nat_y), bootstrap, RelayRole::Members);
    if sim.id(x) < sim.id(y) {
        (x, y)
    } else {
        (y, x)
    }
}

#[test]
fn two_members_behind_symmetric_nats_connect_through_a_serve_relay() {
    for seed in [1, 2, 3] {
        let mut sim = Sim::new(seed);
        let relay = serve(&mut sim, RelayRole::Open);
        let (nat_a, nat_b) = (sim.add_symmetric_nat(), sim.add_symmetric_nat());
        let a = member(&mut sim, Some(nat_a), relay, RelayRole::Members);
        let b = member(&mut sim, Some(nat_b), relay, RelayRole::Members);
        join_all(&mut sim, &[a, b], "through the relay");
        let took = run_until_mesh(&mut sim, &[a, b], Duration::from_secs(20));
        println!("seed {seed}: relayed mesh in {took:?}");
        assert_eq!(connections(&sim, a), [(sim.id(b), true)], "seed {seed}");
        assert_eq!(connections(&sim, b), [(sim.id(a), true)], "seed {seed}");
        assert!(
            sim.hosts[relay].node.stats().relay_forwarded > 0,
            "seed {seed}"
        );
        // Messages flow both ways through it.
        sim.command(a, Command::Send("over the relay".into()));
        sim.command(b, Command::Send("and back".into()));
        sim.run_for(Duration::from_secs(2));
        let heard = |m: usize| {
            sim.events(m, |e| match e {
                Event::Message { text, .. } => Some(text.clone()),
                _ => None,
            })
        };
        assert_eq!(heard(b), ["over the relay"], "seed {seed}");
        assert_eq!(heard(a), ["and back"], "seed {seed}");
        // Consent checks keep the binding alive well past the idle timeout.
        sim.run_for(Duration::from_secs(90));
        assert_eq!(sim.open_connections(a).len(), 1, "seed {seed}");
        assert_eq!(sim.hosts[relay].node.sizes().relay_bindings, 2);
    }
}

#[test]
fn with_no_relay_anywhere_the_failure_says_a_relay_is_needed() {
    let mut sim = Sim::new(4);
    let bootstrap = serve(&mut sim, RelayRole::Off);
    let (nat_a, nat_b) = (sim.add_symmetric_nat(), sim.add_symmetric_nat());
    let a = member(&mut sim, Some(nat_a), bootstrap, RelayRole::Members);
    let b = member(&mut sim, Some(nat_b), bootstrap, RelayRole::Members);
    join_all(&mut sim, &[a, b], "no relay");
    sim.run_for(Duration::from_secs(15));
    let failures = sim.events(a, |e| match e {
        Event::ConnectFailed { reason, .. } => Some((sim.now, *reason)),
        _ => None,
    });
    let (_, reason) = failures.first().expect("the attempt fails");
    assert_eq!(*reason, ConnectionReason::NoRelay);
    assert_eq!(reason.to_string(), "needs a relay, none available");
    assert!(connections(&sim, a).is_empty());
    assert!(sim.hosts[bootstrap].node.stats().relay_refused > 0);
}

#[test]
fn a_member_connected_to_both_relays_for_them_instead_of_the_serve_node() {
    let mut sim = Sim::new(5);
    let relay = serve(&mut sim, RelayRole::Open);
    let c = member(&mut sim, None, relay, RelayRole::Members);
    let (a, b) = symmetric_pair(&mut sim, relay);
    // The public member joins first, then the one that will offer, so the
    // offerer has a direct channel to c before it meets b.
    join_all(&mut sim, &[c], "three");
    sim.run_for(Duration::from_secs(1));
    join_all(&mut sim, &[a], "three");
    run_until_mesh(&mut sim, &[a, c], Duration::from_secs(20));
    join_all(&mut sim, &[b], "three");
    run_until_mesh(&mut sim, &[a, b, c], Duration::from_secs(30));
    let a_to_b = sim.events(a, |e| match e {
        Event::Connected {
            peer, addr, relay, ..
        } if *peer == sim.id(b) => Some((*addr, *relay)),
        _ => None,
    });
    assert_eq!(
        a_to_b,
        [(sim.addr(c), true)],
        "a and b talk through member c, not the serve node"
    );
    assert!(sim.hosts[c].node.stats().relay_forwarded > 0);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(
        sim.hosts[relay].node.sizes().relay_bindings,
        0,
        "nothing is left bound at the serve relay"
    );
    for (x, y) in [(a, c), (b, c)] {
        assert!(
            connections(&sim, x)
                .iter()
                .any(|(p, relayed)| *p == sim.id(y) && !relayed),
            "{x} reaches the public member directly"
        );
    }
}

#[test]
fn members_that_can_connect_directly_do_and_release_their_bindings() {
    let mut sim = Sim::new(6);
    let relay = serve(&mut sim, RelayRole::Open);
    let (nat_a, nat_b) = (sim.add_nat(), sim.add_nat());
    let a = member(&mut sim, Some(nat_a), relay, RelayRole::Members);
    let b = member(&mut sim, Some(nat_b), relay, RelayRole::Members);
    join_all(&mut sim, &[a, b], "direct");
    let took = run_until_mesh(&mut sim, &[a, b], Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(3),
        "direct within one attempt: {took:?}"
    );
    sim.run_for(Duration::from_secs(5));
    for (x, y) in [(a, b), (b, a)] {
        let path_now = sim
            .events(x, |e| match e {
                Event::Connected { relay, .. } | Event::PathChanged { relay, .. } => Some(*relay),
                _ => None,
            })
            .last()
            .copied();
        assert_eq!(path_now, Some(false), "{x} talks to {y} directly");
    }
    assert_eq!(
        sim.hosts[relay].node.sizes().relay_bindings,
        0,
        "both sides released their bindings"
    );
}

#[test]
fn a_member_relay_binds_only_tokens_of_its_own_meeting() {
    let mut sim = Sim::new(7);
    let bootstrap = serve(&mut sim, RelayRole::Off);
    let c = member(&mut sim, None, bootstrap, RelayRole::Members);
    join_all(&mut sim, &[c], "here");
    sim.run_for(Duration::from_secs(1));
    let (low, high) = (NodeId([1; 32]), NodeId([2; 32]));
    let bind = |code: &str, session: u64| {
        let token = Meeting::derive(code)
            .expect("meeting")
            .relay_token(session, &low, &high);
        Bind {
            token,
            session,
            low,
            high,
            cookie: None,
        }
    };
    let asker: std::net::SocketAddr = "192.0.2.50:4000".parse().unwrap();
    let relay = sim.addr(c);
    let mut frames = sim.bind_as_client(asker, relay, bind("elsewhere", 1));
    frames.extend(sim.bind_as_client(asker, relay, bind("here", 2)));
    let answers: Vec<Frame<'_>> = frames
        .iter()
        .filter_map(|d| Frame::decode(d).ok())
        .filter(|f| !matches!(f, Frame::Challenge { .. }))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers.iter().any(|f| matches!(
            f,
            Frame::Refused {
                reason: RelayRefusal::BadToken,
                ..
            }
        )),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|f| matches!(f, Frame::Bound { .. })),
        "{answers:?}"
    );
    assert_eq!(sim.hosts[c].node.sizes().relay_bindings, 1);

    // A member started with `--no-relay` refuses even its own meeting.
    let quiet = member(&mut sim, None, bootstrap, RelayRole::Off);
    join_all(&mut sim, &[quiet], "here");
    sim.run_for(Duration::from_secs(1));
    let asker2: std::net::SocketAddr = "192.0.2.51:4000".parse().unwrap();
    let quiet_addr = sim.addr(quiet);
    let frames = sim.bind_as_client(asker2, quiet_addr, bind("here", 3));
    let answers: Vec<Frame<'_>> = frames
        .iter()
        .filter_map(|d| Frame::decode(d).ok())
        .filter(|f| !matches!(f, Frame::Challenge { .. }))
        .collect();
    assert!(
        matches!(
            answers[..],
            [Frame::Refused {
                reason: RelayRefusal::NotARelay,
                ..
            }]
        ),
        "{answers:?}"
    );
    assert_eq!(sim.hosts[quiet].node.sizes().relay_bindings, 0);
}

#[test]
fn a_relay_that_leaves_mid_session_is_replaced_by_another() {
    let mut sim = Sim::new(8);
    let relay = serve(&mut sim, RelayRole::Open);
    let c = member(&mut sim, None, relay, RelayRole::Members);
    let (a, b) = symmetric_pair(&mut sim, relay);
    join_all(&mut sim, &[c], "relay leaves");
    sim.run_for(Duration::from_secs(1));
    join_all(&mut sim, &[a], "relay leaves");
    run_until_mesh(&mut sim, &[a, c], Duration::from_secs(20));
    join_all(&mut sim, &[b], "relay leaves");
    run_until_mesh(&mut sim, &[a, b, c], Duration::from_secs(30));
    let through = |sim: &Sim| {
        sim.events(a, |e| match e {
            Event::Connected {
                peer, addr, relay, ..
            } if *peer == sim.id(b) => Some((*addr, *relay)),
            _ => None,
        })
    };
    assert_eq!(through(&sim), [(sim.addr(c), true)]);
    // Member c, the relay, goes away without a word.
    sim.kill(c);
    let left_at = sim.now;
    let lost = |sim: &Sim| {
        sim.events(a, |e| match e {
            Event::Disconnected { peer, .. } if *peer == sim.id(b) => Some(()),
            _ => None,
        })
        .len()
    };
    while lost(&sim) == 0 && sim.now - left_at < Duration::from_secs(30) {
        sim.run_for(Duration::from_millis(100));
    }
    assert_eq!(lost(&sim), 1, "ICE noticed the relay is gone");
    run_until_mesh(&mut sim, &[a, b], Duration::from_secs(60));
    assert_eq!(lost(&sim), 1, "the relayed session ended once");
    assert_eq!(
        through(&sim).last(),
        Some(&(sim.addr(relay), true)),
        "a and b reconnected through the serve relay"
    );
    println!("reconnected {:?} after the relay left", sim.now - left_at);
    sim.command(a, Command::Send("still here".into()));
    sim.run_for(Duration::from_secs(2));
    assert!(
        sim.events(b, |e| match e {
            Event::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .contains(&"still here".to_owned())
    );
}
