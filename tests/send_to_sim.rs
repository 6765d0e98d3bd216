//! Bytes to one member and text to all, through the public API in the
//! simulator: `Command::SendTo` reaches only its peer, as `Event::Data`,
//! and `Command::Send` reaches every member as `Event::Message`; bytes
//! longer than a message are refused (never cut), as are bytes to a member
//! not connected; `Leave` leaves for good and `Join` while joined leaves
//! the old meeting first.

mod sim;

use std::time::Duration;

use sim::Sim;
use tinynode::{Command, ConnectionReason, Event, MAX_MESSAGE_LEN, Meeting, WriteError};

/// A network of ten and three members of one meeting, fully connected.
fn three_members(seed: u64) -> (Sim, [usize; 3]) {
    let mut sim = Sim::new(seed);
    sim.grow(10, Duration::from_millis(10), Duration::from_secs(5));
    let bootstrap = [sim.addr(0)];
    let members: Vec<usize> = (0..3).map(|_| sim.add_host(None, &bootstrap)).collect();
    let meeting = Meeting::derive("send to").unwrap();
    for &member in &members {
        sim.command(member, Command::Join(meeting.clone()));
    }
    let mut waited = Duration::ZERO;
    while waited < Duration::from_secs(30)
        && !members.iter().all(|&m| sim.open_connections(m).len() == 2)
    {
        sim.run_for(Duration::from_millis(500));
        waited += Duration::from_millis(500);
    }
    assert_eq!(
        sim.open_connections(members[0]).len(),
        2,
        "full mesh (seed {})",
        sim.seed
    );
    (sim, [members[0], members[1], members[2]])
}

fn data(sim: &Sim, host: usize) -> Vec<(tinynode::NodeId, Vec<u8>)> {
    sim.events(host, |e| match e {
        Event::Data { peer, bytes } => Some((*peer, bytes.clone())),
        _ => None,
    })
}

#[test]
fn send_to_reaches_one_member_as_bytes_and_send_reaches_all_as_text() {
    let (mut sim, [a, b, c]) = three_members(0x5e7d_0001);

    let bytes = vec![0, 1, 2, 0xff, b'\n', 0x1b];
    sim.command(
        a,
        Command::SendTo {
            peer: sim.id(b),
            bytes: bytes.clone(),
        },
    );
    sim.command(a, Command::Send("to everyone".into()));
    sim.run_for(Duration::from_secs(2));

    let texts = |host: usize| {
        sim.events(host, |e| match e {
            Event::Message { peer, text } => Some((*peer, text.clone())),
            _ => None,
        })
    };
    assert_eq!(data(&sim, b), [(sim.id(a), bytes)]);
    assert!(data(&sim, c).is_empty(), "bytes for b alone");
    for host in [b, c] {
        assert_eq!(texts(host), [(sim.id(a), "to everyone".to_owned())]);
    }
}

#[test]
fn bytes_longer_than_a_message_or_to_a_stranger_are_refused_not_cut() {
    let (mut sim, [a, b, _]) = three_members(0x5e7d_0002);
    let peer = sim.id(b);
    let long = vec![7u8; MAX_MESSAGE_LEN + 4 * 1024];
    let refused = sim.with_node(a, |node, now| node.send_to(now, peer, &long));
    assert_eq!(refused, Err(WriteError::TooLong));
    let stranger = sim.id(0);
    let refused = sim.with_node(a, |node, now| node.send_to(now, stranger, b"hi"));
    assert_eq!(refused, Err(WriteError::NotConnected));
    sim.command(a, Command::SendTo { peer, bytes: long });
    let fitting = vec![9u8; MAX_MESSAGE_LEN];
    assert_eq!(
        sim.with_node(a, |node, now| node.send_to(now, peer, &fitting)),
        Ok(())
    );
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.events(a, |e| match e {
            Event::SendFailed { peer, reason } => Some((*peer, *reason)),
            _ => None,
        }),
        [(peer, WriteError::TooLong)]
    );
    assert_eq!(
        data(&sim, b),
        [(sim.id(a), fitting)],
        "only the message that fits, whole"
    );
}

#[test]
fn leave_leaves_for_good_and_join_while_joined_switches_cleanly() {
    let (mut sim, [a, b, c]) = three_members(0x5e7d_0003);
    let left = |sim: &Sim, host: usize, who: usize| {
        sim.events(host, |e| match e {
            Event::Disconnected { peer, reason } if *peer == sim.id(who) => Some(*reason),
            _ => None,
        })
    };
    sim.command(a, Command::Leave);
    sim.run_for(Duration::from_secs(1));
    for host in [b, c] {
        assert_eq!(
            left(&sim, host, a),
            [ConnectionReason::PeerLeft],
            "told at once"
        );
    }
    // Long after: a neither announced nor answered, so nobody reconnects.
    sim.run_for(Duration::from_secs(60));
    assert!(sim.open_connections(a).is_empty());
    assert!(!sim.open_connections(b).contains(&sim.id(a)));
    assert_eq!(sim.open_connections(b), [sim.id(c)].into_iter().collect());

    // b switches meetings: c hears at once that b left.
    sim.command(b, Command::Join(Meeting::derive("another").unwrap()));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(left(&sim, c, b), [ConnectionReason::PeerLeft]);
}
