//! Bytes to one member and text to all, through the public API in the
//! simulator: `Command::SendTo` reaches only its peer, as `Event::Data`,
//! and `Command::Send` reaches every member as `Event::Message`.

mod sim;

use std::time::Duration;

use sim::Sim;
use tinynode::{Command, Event, Meeting};

#[test]
fn send_to_reaches_one_member_as_bytes_and_send_reaches_all_as_text() {
    let mut sim = Sim::new(0x5e7d_0001);
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
    let [a, b, c] = members[..] else {
        unreachable!()
    };
    assert_eq!(
        sim.open_connections(a).len(),
        2,
        "full mesh (seed {})",
        sim.seed
    );

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

    let data = |host: usize| {
        sim.events(host, |e| match e {
            Event::Data { peer, bytes } => Some((*peer, bytes.clone())),
            _ => None,
        })
    };
    let texts = |host: usize| {
        sim.events(host, |e| match e {
            Event::Message { peer, text } => Some((*peer, text.clone())),
            _ => None,
        })
    };
    assert_eq!(data(b), [(sim.id(a), bytes)]);
    assert!(data(c).is_empty(), "bytes for b alone");
    for host in [b, c] {
        assert_eq!(texts(host), [(sim.id(a), "to everyone".to_owned())]);
    }
}
