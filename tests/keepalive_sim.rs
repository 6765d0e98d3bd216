//! The two sides of the ICE consent-check interval, in virtual time: how
//! often an idle member wakes up (the benchmark's "≤ 2 wakeups per second"
//! target, checked without depending on machine speed), and how soon a
//! member notices a peer that went silent.

mod sim;

use std::time::Duration;

use sim::Sim;
use tinynode::Meeting;
use tinynode::{Command, Event};

/// A network of one DHT node and `count` members of one meeting that have
/// joined `settle` ago.
fn meeting(seed: u64, count: usize, settle: Duration) -> (Sim, Vec<usize>) {
    let mut sim = Sim::new(seed);
    sim.grow(1, Duration::from_millis(10), Duration::from_secs(1));
    let bootstrap = [sim.addr(0)];
    let members: Vec<usize> = (0..count).map(|_| sim.add_host(None, &bootstrap)).collect();
    let meeting = Meeting::derive("keepalive").expect("meeting");
    for &member in &members {
        sim.command(member, Command::Join(meeting.clone()));
    }
    sim.run_for(settle);
    (sim, members)
}

#[test]
fn a_member_idle_in_a_three_member_meeting_wakes_at_most_twice_a_second() {
    // Every timer that fires and every datagram that arrives counts as a
    // wakeup (a real process may merge some, never split them). Measured
    // after the joining phase: discovery, connections, and the back-off
    // topic lookups (1, 2, 4, 8 and 16 s after joining), as in the benchmark.
    let (mut sim, members) = meeting(0x7e57_001d, 3, Duration::from_secs(35));
    let watched = members[0];
    let connected = sim.events(watched, |e| match e {
        Event::Connected { peer, .. } => Some(*peer),
        _ => None,
    });
    assert_eq!(connected.len(), 2, "seed {}", sim.seed);

    let before = sim.hosts[watched].wakeups;
    let window = Duration::from_secs(60);
    sim.run_for(window);
    let wakeups = sim.hosts[watched].wakeups - before;
    let per_second = wakeups as f64 / window.as_secs_f64();
    println!("{wakeups} wakeups in {window:?}: {per_second:.2} per second");
    assert!(per_second <= 2.0, "{per_second:.2} wakeups per second");
    assert!(
        wakeups > 0,
        "an idle member still keeps its connections alive"
    );
}

#[test]
fn a_peer_that_goes_silent_is_noticed_within_sixteen_seconds() {
    // ICE consent checks every 4 s, then 5 retransmissions (250 ms
    // doubling): 12 to 16 s after the peer's last answer, depending on where
    // in the check interval it went quiet.
    for phase_ms in [0, 1_300, 2_600, 3_900] {
        let settle = Duration::from_secs(20) + Duration::from_millis(phase_ms);
        let (mut sim, members) = meeting(0x7e57_0de7, 2, settle);
        let (stayer, silent) = (members[0], members[1]);
        sim.kill(silent);
        let killed_at = sim.now;
        sim.run_for(Duration::from_secs(30));
        let noticed = sim.hosts[stayer]
            .events
            .iter()
            .find_map(|(at, e)| matches!(e, Event::Disconnected { .. }).then_some(*at - killed_at));
        let noticed = noticed.expect("the silent peer is reported disconnected");
        println!("noticed after {noticed:?}");
        assert!(
            noticed <= Duration::from_secs(16),
            "noticed after {noticed:?} (seed {})",
            sim.seed
        );
    }
}
