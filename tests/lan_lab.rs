//! Members on one network meet with nothing but the LAN beacon: network
//! namespaces on one bridge this test builds itself, no bootstrap node, no
//! Mainline.
//!
//! ```text
//!   h1 10.9.0.11   h2 .12   h3 .13   h4 .14   h5 .15     bridge br0 in "lan"
//! ```
//!
//! Three members of meeting A connect to each other (found by beacon, or
//! through the DHT they then form among themselves: [`LAN_VIAS`]) and
//! exchange a message while a member of meeting B on the same bridge meets
//! nobody; a member of A that starts 30 s later is found within a second;
//! where the network drops multicast, members log the failed beacon and
//! keep running. On an IPv6-only bridge (fd00:9::/64, no IPv4 at all)
//! members meet by beacons to ff02::114, whether bound to their address
//! or to the wildcard. Needs root, `ip` and `iptables`; a machine where
//! namespaces cannot be made fails the test unless `TINYNODE_SKIP_LAN_LAB=1`
//! says to skip it. Beacons stay on the bridge (TTL 1, private addresses).

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use common::netns::{Netns, bridge_lab, bridge_lab_v6, lab_or_skip};
use common::{Running, field, watch_connections};

const HOSTS: [&str; 5] = ["h1", "h2", "h3", "h4", "h5"];

/// How LAN-only members may say they found each other. Beacons come
/// first: with no bootstrap node and no Mainline, nobody knows anybody
/// until one arrives. Once members have met, they are each other's
/// tinynode DHT nodes (a signal is a DHT request), so a third member may
/// reach one through the others' DHT (a pushed record, `dht`) or with
/// its offer (`offer`) before its own beacon gets there; that is the
/// merged membership working. [`first_meeting_was_by_beacon`] keeps the
/// test failing when beacons do not work.
const LAN_VIAS: [&str; 3] = ["lan", "dht", "offer"];

/// Asserts some `connected` line says `"via":"lan"`: without beacons
/// nobody could have met anyone here.
fn first_meeting_was_by_beacon(lines: &std::collections::HashMap<String, Vec<String>>) {
    let by_beacon = lines
        .values()
        .flatten()
        .any(|l| field(l, "event") == Some("connected") && field(l, "via") == Some("lan"));
    assert!(by_beacon, "no connection came from a beacon: {lines:?}");
}

/// Builds the bridge and its hosts; `tag` keeps the tests' labs apart.
fn build(tag: &str) -> Result<Netns, String> {
    bridge_lab(tag, &HOSTS)
}

/// A member of `code` on `host` at its bridge address, LAN only, with
/// debug logs.
fn join(lab: &Netns, host: &str, code: &str) -> (Running, String) {
    let index = HOSTS.iter().position(|h| *h == host).expect("host");
    join_bound(lab, host, &format!("10.9.0.{}:0", 11 + index), code)
}

/// A member of `code` on `host` bound to `bind`, LAN only, with debug logs.
fn join_bound(lab: &Netns, host: &str, bind: &str, code: &str) -> (Running, String) {
    let member = lab.spawn(
        host,
        &[
            "-v",
            "join",
            code,
            "--bind",
            bind,
            "--no-mainline",
            "--json",
        ],
        true,
    );
    let started = member.next_line(Duration::from_secs(10));
    let id = field(&started, "node_id").expect("node_id").to_owned();
    (member, id)
}

#[test]
fn members_on_one_bridge_meet_by_beacon_alone() {
    let Some(lab) = lab_or_skip(build("la"), "TINYNODE_SKIP_LAN_LAB") else {
        return;
    };
    let a1 = join(&lab, "h1", "lan meeting a");
    let a2 = join(&lab, "h2", "lan meeting a");
    let a3 = join(&lab, "h3", "lan meeting a");
    let b = join(&lab, "h4", "lan meeting b");
    let meeting = [&a1, &a2, &a3];
    let all = [&a1, &a2, &a3, &b];
    let (connected, lines) = watch_connections(&all, Duration::from_secs(15), &LAN_VIAS, |c| {
        meeting
            .iter()
            .all(|(_, id)| c.get(id).is_some_and(|s| s.len() == 2))
    });
    for (_, id) in meeting {
        assert_eq!(
            connected.get(id).map(HashSet::len),
            Some(2),
            "{id}: {:?}",
            lines.get(id)
        );
    }
    first_meeting_was_by_beacon(&lines);
    assert!(!connected.contains_key(&b.1), "meeting B connected");
    assert!(
        !connected.values().any(|peers| peers.contains(&b.1)),
        "someone connected to meeting B's member"
    );

    // A message from one member reaches the other two.
    let stdin = a1.0.child.stdin.as_ref().expect("stdin");
    writeln!(&*stdin, "hello over the lan").expect("write");
    for (member, _) in [&a2, &a3] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = member.next_line(deadline.saturating_duration_since(Instant::now()));
            if field(&line, "event") == Some("message") {
                assert_eq!(field(&line, "text"), Some("hello over the lan"));
                break;
            }
        }
    }

    // Beacons have backed off to 30 s: this wait is the scenario (time
    // must pass for the backoff), not a synchronisation. A newcomer's own
    // beacon (and the hellos that answer it) still make it known at once.
    std::thread::sleep(Duration::from_secs(30));
    let late = join(&lab, "h5", "lan meeting a");
    // From the newcomer's `started` line: its process start-up is not
    // part of what is measured.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    let mut found_after = None;
    while found_after.is_none() && Instant::now() < deadline {
        while let Ok(line) = a1.0.stdout.try_recv() {
            if field(&line, "event") == Some("peer_discovered")
                && field(&line, "peer") == Some(late.1.as_str())
            {
                assert_eq!(field(&line, "via"), Some("lan"), "{line}");
                found_after = Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let found_after = found_after.expect("the late member was found");
    println!("a member that started 30 s later was found after {found_after:?}");
    // The others' next periodic beacon is up to 30 s away: found within
    // 2 s, the newcomer's own beacon did it (a periodic one falls in that
    // window less than 7 % of the time).
    assert!(
        found_after < Duration::from_secs(2),
        "found after {found_after:?}"
    );
    let b_lines: Vec<String> = b.0.stdout.try_iter().collect();
    assert!(
        b_lines
            .iter()
            .chain(lines.get(&b.1).into_iter().flatten())
            .all(|l| field(l, "event") != Some("peer_discovered")),
        "meeting B's member discovered someone: {b_lines:?}"
    );
}

#[test]
fn members_where_multicast_is_dropped_log_it_and_keep_running() {
    let Some(lab) = lab_or_skip(build("lb"), "TINYNODE_SKIP_LAN_LAB") else {
        return;
    };
    for host in ["h1", "h2"] {
        lab.exec(
            host,
            &[
                "iptables",
                "-A",
                "OUTPUT",
                "-d",
                "224.0.0.0/4",
                "-j",
                "DROP",
            ],
        );
    }
    let mut members = [
        join(&lab, "h1", "no multicast"),
        join(&lab, "h2", "no multicast"),
    ];
    for (member, _) in &members {
        let logged = member.wait_stderr("beacon to 239.255.70.77", Duration::from_secs(10));
        println!("logged: {logged}");
    }
    // Still running after the failed send: each answers SIGTERM with a
    // clean leave (exit 0), not an error exit or a crash.
    for (member, id) in &mut members {
        assert!(
            member.child.try_wait().expect("try_wait").is_none(),
            "{id} kept running"
        );
        member.signal(libc::SIGTERM);
        let status = member.wait(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{id} left cleanly");
    }
}

#[test]
fn members_on_an_ipv6_only_bridge_meet_by_beacon_alone() {
    let Some(lab) = lab_or_skip(bridge_lab_v6("l6", &HOSTS), "TINYNODE_SKIP_LAN_LAB") else {
        return;
    };
    // h2 binds the wildcard: its beacons leave from its link-local
    // address, and it must still be answered and connected.
    let binds = [
        ("h1", "[fd00:9::11]:0"),
        ("h2", "[::]:0"),
        ("h3", "[fd00:9::13]:0"),
    ];
    let members: Vec<(Running, String)> = binds
        .iter()
        .map(|(host, bind)| join_bound(&lab, host, bind, "six on the lan"))
        .collect();
    let all: Vec<&(Running, String)> = members.iter().collect();
    let (connected, lines) = watch_connections(&all, Duration::from_secs(15), &LAN_VIAS, |c| {
        all.iter()
            .all(|(_, id)| c.get(id).is_some_and(|s| s.len() == 2))
    });
    for (_, id) in &members {
        assert_eq!(
            connected.get(id).map(HashSet::len),
            Some(2),
            "{id}: {:?}",
            lines.get(id)
        );
        let over_ipv6 = lines
            .get(id)
            .into_iter()
            .flatten()
            .filter(|l| field(l, "event") == Some("connected"))
            .all(|l| field(l, "family") == Some("ipv6"));
        assert!(over_ipv6, "{:?}", lines.get(id));
    }
    first_meeting_was_by_beacon(&lines);
    for line in lines.values().flatten() {
        if field(line, "event") == Some("connected") {
            println!("{line}");
        }
    }
}
