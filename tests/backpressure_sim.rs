//! Sending more than a data channel can take at once, in the simulator: a
//! sender that waits for `Node::ready_to_send` gets every message through
//! in order; one that ignores it loses messages but never queues more than
//! the documented outbox.

mod sim;

use std::time::Duration;

use sim::Sim;
use tinynode::Meeting;
use tinynode::tuning::OUTBOX_LIMIT;
use tinynode::{Command, Event};

/// Messages in a burst: 1 MB, several times what the outbox and str0m's
/// send buffer hold together.
const BURST: usize = 1_000;

fn message(i: usize) -> String {
    format!("{i:04} {}", "x".repeat(1000))
}

/// A small network and two members of one meeting with an open channel;
/// returns (sender, receiver).
fn connected_pair(seed: u64) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed);
    sim.grow(20, Duration::from_millis(10), Duration::from_secs(10));
    let bootstrap = [sim.addr(0)];
    let (a, b) = (
        sim.add_host(None, &bootstrap),
        sim.add_host(None, &bootstrap),
    );
    let meeting = Meeting::derive("bulk").expect("meeting");
    for member in [a, b] {
        sim.command(member, Command::Join(meeting.clone()));
    }
    let connected = |sim: &Sim, member: usize| {
        !sim.events(member, |e| {
            matches!(e, Event::Connected { .. }).then_some(())
        })
        .is_empty()
    };
    for _ in 0..60 {
        if connected(&sim, a) && connected(&sim, b) {
            return (sim, a, b);
        }
        sim.run_for(Duration::from_secs(1));
    }
    panic!("the pair did not connect (seed {seed})");
}

fn received(sim: &Sim, member: usize) -> Vec<String> {
    sim.events(member, |e| match e {
        Event::Message { text, .. } => Some(text.clone()),
        _ => None,
    })
}

/// Sends the burst while the sender is ready, `batch` messages per command
/// (`Send` for one, `SendMany` for more), and checks that it all arrives
/// in order.
fn burst_paced_by_readiness(seed: u64, batch: usize) {
    let (mut sim, sender, receiver) = connected_pair(seed);
    let mut next = 0;
    let mut pauses = 0;
    for _ in 0..6_000 {
        while next < BURST && sim.hosts[sender].node.ready_to_send() {
            let end = (next + batch).min(BURST);
            let command = if batch == 1 {
                Command::Send(message(next))
            } else {
                Command::SendMany((next..end).map(message).collect())
            };
            sim.command(sender, command);
            next = end;
        }
        if next == BURST {
            break;
        }
        pauses += 1;
        sim.run_for(Duration::from_millis(10));
    }
    assert_eq!(next, BURST, "readiness never came back");
    assert!(pauses > 0, "the burst never filled the outbox");
    sim.run_for(Duration::from_secs(10));
    let expected: Vec<String> = (0..BURST).map(message).collect();
    assert_eq!(received(&sim, receiver), expected);
    assert!(sim.hosts[sender].node.ready_to_send());
}

#[test]
fn a_sender_that_waits_until_ready_delivers_a_burst_complete_and_in_order() {
    burst_paced_by_readiness(0x7e57_00b1, 1);
}

#[test]
fn batches_of_lines_arrive_like_single_lines() {
    burst_paced_by_readiness(0x7e57_00b3, 64);
}

#[test]
fn a_sender_that_ignores_readiness_loses_the_excess_not_the_order() {
    let (mut sim, sender, receiver) = connected_pair(0x7e57_00b2);
    for i in 0..BURST {
        sim.command(sender, Command::Send(message(i)));
    }
    assert!(!sim.hosts[sender].node.ready_to_send());
    sim.run_for(Duration::from_secs(30));
    let got = received(&sim, receiver);
    let expected: Vec<String> = (0..BURST).map(message).collect();
    // What was accepted (str0m's send buffer, then the outbox up to its
    // limit) arrives; what came after the outbox was full does not.
    println!("{} of {BURST} messages arrived", got.len());
    let per_message = message(0).len();
    assert!(
        got.len() >= OUTBOX_LIMIT / per_message,
        "{} arrived",
        got.len()
    );
    assert!(
        got.len() < BURST,
        "every message arrived: the outbox is unbounded"
    );
    assert_eq!(got, expected[..got.len()], "a prefix, in order");
    assert!(sim.hosts[sender].node.ready_to_send(), "the outbox drained");
}
