//! Members behind NATs, in network namespaces this test builds itself:
//!
//! ```text
//!                 pub 198.18.0.1  (serve node)    bridge br0
//!                /                \
//!   nat1 198.18.0.11 | 10.1.0.1    nat2 198.18.0.12 | 10.2.0.1   MASQUERADE routers
//!               |                     |                          that drop unsolicited inbound
//!   a 10.1.0.2 (member)            b 10.2.0.2 (member)
//! ```
//!
//! With endpoint-independent mapping (plain MASQUERADE) the members punch
//! through and exchange a message, first through the serve node, then
//! with no serve node at all: through a Mainline DHT testnet of an
//! independent implementation on the public side (198.18.0.20–27). With
//! one router in random-port mode (`MASQUERADE --random-fully`, a
//! "symmetric" NAT) they report `connect_failed` saying a relay is needed,
//! and keep running; with a `serve --relay` node they connect through it
//! on the first attempt. The testnet's observers classify both router
//! modes (`nat` events).
//!
//! Needs root, `ip` (iproute2) and `iptables`. A missing tool fails the
//! test, and so does a machine where namespaces cannot be made, unless
//! `TINYNODE_SKIP_NAT_LAB=1` says to skip it (printing why): a lab that
//! cannot run must not pass as if it had. All
//! traffic stays inside the namespaces (198.18.0.0/15 is the benchmarking
//! range, 10/8 private).

mod common;
#[path = "common/testnet.rs"]
mod testnet;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::natlab::{Lab, NatMode, SERVE_ADDR};
use common::netns::lab_or_skip;
use common::{Running, counter, field, wait_for};

/// Nodes of the lab's Mainline testnet, at 198.18.0.20.. port 6881.
const LAB_TESTNET_NODES: usize = 8;
/// Set (to anything) in the environment of the helper below.
const TESTNET_HELPER_ENV: &str = "TINYNODE_LAB_TESTNET";

fn join(lab: &Lab, ns: &str, ip: &str, code: &str) -> Running {
    lab.join(ns, ip, code, SERVE_ADDR)
}

/// A `serve --relay` node on the public side (not in the Mainline DHT),
/// started; `extra` options go first (`-v` for debug logs).
fn serve_relay(lab: &Lab, before: &[&str]) -> Running {
    lab.serve_relay(before, &[])
}

/// Not a test of its own: the lab re-runs this test binary inside its
/// public namespace with [`TESTNET_HELPER_ENV`] set, and this runs the
/// Mainline testnet there until its stdin closes. Run plainly it returns.
#[test]
#[ignore = "a helper the NAT lab runs inside its namespace"]
fn lab_testnet_helper() {
    if std::env::var_os(TESTNET_HELPER_ENV).is_none() {
        return;
    }
    let ip = |i: usize| std::net::Ipv4Addr::new(198, 18, 0, 20 + i as u8);
    let _testnet = testnet::Testnet::start_on(LAB_TESTNET_NODES, ip, 6881);
    println!("testnet ready");
    std::io::stdout().flush().expect("stdout");
    // Until the lab closes our stdin (or kills the namespace's processes).
    let _ = std::io::stdin().lock().lines().count();
}

/// Starts the Mainline testnet in the lab's public namespace.
fn start_lab_testnet(lab: &Lab) -> Running {
    for i in 0..LAB_TESTNET_NODES {
        lab.ip("pub", &format!("addr add 198.18.0.{}/24 dev br0", 20 + i));
    }
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &lab.ns("pub")])
        .arg(std::env::current_exe().expect("test binary"))
        .args(["--exact", "lab_testnet_helper", "--ignored", "--nocapture"])
        .env(TESTNET_HELPER_ENV, "1")
        .stdin(Stdio::piped());
    let helper = Running::spawn_with_stdin(command);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match helper.stdout.recv_timeout(left) {
            Ok(line) if line.contains("testnet ready") => return helper,
            Ok(_) => {}
            Err(_) => panic!("the lab's Mainline testnet did not start"),
        }
    }
}

/// A member that finds the others only through the lab's Mainline testnet.
fn join_mainline(lab: &Lab, ns: &str, ip: &str, code: &str) -> Running {
    let bind = format!("{ip}:0");
    lab.spawn(
        ns,
        &[
            "join",
            code,
            "--mainline-bootstrap",
            "198.18.0.23:6881",
            "--bind",
            &bind,
            "--json",
            "--no-lan",
        ],
        true,
    )
}

#[test]
fn members_behind_nats_connect_or_fail_cleanly() {
    let Some(lab) = lab_or_skip(Lab::build("nat"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let serve = lab.spawn("pub", &["serve", "--bind", SERVE_ADDR, "--json"], false);
    serve.next_line(Duration::from_secs(10));

    // Endpoint-independent mapping: the members punch through.
    let mut a = join(&lab, "a", "10.1.0.2", "behind nats");
    let b = join(&lab, "b", "10.2.0.2", "behind nats");
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let public_a = wait_for(&a, "public_address", Duration::from_secs(10), &mut seen_a);
    assert_eq!(
        field(&public_a, "addr").map(|a| a.starts_with("198.18.0.11:")),
        Some(true),
        "{public_a}"
    );
    let connected = wait_for(&a, "connected", Duration::from_secs(30), &mut seen_a);
    assert!(
        field(&connected, "addr").is_some_and(|addr| addr.starts_with("198.18.0.12:")),
        "{connected}"
    );
    assert_eq!(field(&connected, "path"), Some("direct"), "{connected}");
    let connected = wait_for(&b, "connected", Duration::from_secs(30), &mut seen_b);
    assert!(
        field(&connected, "addr").is_some_and(|addr| addr.starts_with("198.18.0.11:")),
        "b reaches a through NAT1's mapping: {connected}"
    );
    let stdin = a.child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "through two NATs")
        .and_then(|()| stdin.flush())
        .expect("write");
    let message = wait_for(&b, "message", Duration::from_secs(10), &mut seen_b);
    assert_eq!(field(&message, "text"), Some("through two NATs"));

    // A's network goes away for a few seconds (sends fail with ENETUNREACH):
    // it keeps running and, once the network is back, messages flow again.
    lab.ip("a", "link set eth0 down");
    let logged = a.wait_stderr("unreachable", Duration::from_secs(20));
    println!("during the outage a logged: {logged}");
    assert!(
        a.child.try_wait().expect("try_wait").is_none(),
        "a survived the outage"
    );
    lab.ip("a", "link set eth0 up");
    lab.ip("a", "route add default via 10.1.0.1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut delivered = false;
    while !delivered && Instant::now() < deadline {
        let stdin = a.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "back online")
            .and_then(|()| stdin.flush())
            .expect("write");
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(line) = b
            .stdout
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if field(&line, "text") == Some("back online") {
                delivered = true;
                break;
            }
        }
    }
    assert!(
        delivered,
        "no message got through after the network came back"
    );
    drop((a, b));

    // Random ports on one router (a port-restricted NAT on the other side):
    // no direct path, and the serve node does not relay, so both say a
    // relay is needed and keep running.
    lab.nat("nat2", true);
    let mut c = join(&lab, "a", "10.1.0.2", "symmetric trouble");
    let mut d = join(&lab, "b", "10.2.0.2", "symmetric trouble");
    let (mut seen_c, mut seen_d) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for (member, seen) in [(&c, &mut seen_c), (&d, &mut seen_d)] {
        let failed = wait_for(member, "connect_failed", Duration::from_secs(20), seen);
        assert_eq!(
            field(&failed, "reason"),
            Some("needs a relay, none available"),
            "{failed}"
        );
    }
    println!(
        "connect_failed reported {:?} after joining",
        started.elapsed()
    );
    assert!(
        !seen_c
            .iter()
            .chain(&seen_d)
            .any(|l| field(l, "event") == Some("connected"))
    );
    for member in [&mut c, &mut d] {
        assert!(
            member.child.try_wait().expect("try_wait").is_none(),
            "the member kept running"
        );
    }
    drop((c, d, serve));

    // The same NATs with a `serve --relay` node: the members connect through
    // it, on their first attempt, and talk.
    let relay = serve_relay(&lab, &[]);
    let mut e = join(&lab, "a", "10.1.0.2", "symmetric relayed");
    let f = join(&lab, "b", "10.2.0.2", "symmetric relayed");
    let (mut seen_e, mut seen_f) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for (member, seen) in [(&e, &mut seen_e), (&f, &mut seen_f)] {
        let connected = wait_for(member, "connected", Duration::from_secs(20), seen);
        assert_eq!(field(&connected, "path"), Some("relay"), "{connected}");
        assert_eq!(field(&connected, "relay"), Some(SERVE_ADDR), "{connected}");
    }
    let took = started.elapsed();
    println!("relayed through serve --relay {took:?} after joining");
    assert!(
        !seen_e
            .iter()
            .chain(&seen_f)
            .any(|l| field(l, "event") == Some("connect_failed")),
        "the first attempt connects"
    );
    let stdin = e.child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "through the relay")
        .and_then(|()| stdin.flush())
        .expect("write");
    let message = wait_for(&f, "message", Duration::from_secs(10), &mut seen_f);
    assert_eq!(field(&message, "text"), Some("through the relay"));
    drop((e, f, relay));

    // No serve node at all: the members meet through the Mainline DHT on
    // the public side, behind endpoint-independent NATs again.
    lab.nat("nat2", false);
    let _testnet = start_lab_testnet(&lab);
    let mut e = join_mainline(&lab, "a", "10.1.0.2", "mainline behind nats");
    let f = join_mainline(&lab, "b", "10.2.0.2", "mainline behind nats");
    let (mut seen_e, mut seen_f) = (Vec::new(), Vec::new());
    let public_e = wait_for(&e, "public_address", Duration::from_secs(10), &mut seen_e);
    assert_eq!(field(&public_e, "via"), Some("mainline"), "{public_e}");
    assert!(
        field(&public_e, "addr").is_some_and(|a| a.starts_with("198.18.0.11:")),
        "the testnet's ip echo is NAT1's mapping: {public_e}"
    );
    let connected = wait_for(&e, "connected", Duration::from_secs(30), &mut seen_e);
    assert!(
        field(&connected, "addr").is_some_and(|addr| addr.starts_with("198.18.0.12:")),
        "{connected}"
    );
    wait_for(&f, "connected", Duration::from_secs(30), &mut seen_f);
    assert!(
        seen_e.iter().chain(&seen_f).any(|l| {
            field(l, "event") == Some("peer_discovered") && field(l, "via") == Some("mainline")
        }),
        "found through Mainline: {seen_e:#?} {seen_f:#?}"
    );
    let stdin = e.child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "mainline through two NATs")
        .and_then(|()| stdin.flush())
        .expect("write");
    let message = wait_for(&f, "message", Duration::from_secs(10), &mut seen_f);
    assert_eq!(field(&message, "text"), Some("mainline through two NATs"));

    // The testnet's eight observers classify each router (protocol-spec
    // §11): MASQUERADE keeps one mapping, --random-fully does not.
    let nat_of = |seen: &[String]| {
        seen.iter()
            .find(|l| field(l, "event") == Some("nat"))
            .and_then(|l| field(l, "mapping").map(str::to_owned))
    };
    if nat_of(&seen_e).is_none() {
        wait_for(&e, "nat", Duration::from_secs(10), &mut seen_e);
    }
    assert_eq!(
        nat_of(&seen_e).as_deref(),
        Some("endpoint-independent"),
        "{seen_e:#?}"
    );
    drop((e, f));
    lab.nat("nat2", true);
    let g = join_mainline(&lab, "b", "10.2.0.2", "classify symmetric");
    let mut seen_g = Vec::new();
    wait_for(&g, "nat", Duration::from_secs(10), &mut seen_g);
    assert_eq!(
        nat_of(&seen_g).as_deref(),
        Some("endpoint-dependent-random"),
        "{seen_g:#?}"
    );
    drop(g);

    // `doctor` behind each router mode, asking the testnet and a
    // `serve --relay` node: it names the mapping, sees that MASQUERADE does
    // not hairpin, finds the relay, and exits 1 only where a relay will be
    // needed; all within its 10 s.
    let relay = lab.spawn(
        "pub",
        &[
            "-v",
            "serve",
            "--bind",
            SERVE_ADDR,
            "--relay",
            "--mainline-bootstrap",
            "198.18.0.23:6881",
            "--json",
        ],
        false,
    );
    relay.next_line(Duration::from_secs(10));
    // It announces itself in the testnet's relay directory (§12.6).
    let listed = wait_for(
        &relay,
        "relay_listed",
        Duration::from_secs(10),
        &mut Vec::new(),
    );
    assert_ne!(field(&listed, "nodes"), Some("0"), "{listed}");

    // Members of a meeting that names no serve node (Mainline only), one
    // behind the symmetric router: no hello gets through, but both find
    // the relay in the directory, meet through it as a DHT node, and
    // connect through it (§12.6).
    let mut h = join_mainline(&lab, "a", "10.1.0.2", "mainline relayed");
    let k = join_mainline(&lab, "b", "10.2.0.2", "mainline relayed");
    let (mut seen_h, mut seen_k) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for (member, seen) in [(&h, &mut seen_h), (&k, &mut seen_k)] {
        let connected = wait_for(member, "connected", Duration::from_secs(30), seen);
        assert_eq!(field(&connected, "path"), Some("relay"), "{connected}");
        assert_eq!(field(&connected, "relay"), Some(SERVE_ADDR), "{connected}");
    }
    println!(
        "Mainline-only members met through the directory's relay in {:?}",
        started.elapsed()
    );
    let stdin = h.child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "found through the directory")
        .and_then(|()| stdin.flush())
        .expect("write");
    let message = wait_for(&k, "message", Duration::from_secs(10), &mut seen_k);
    assert_eq!(field(&message, "text"), Some("found through the directory"));
    drop((h, k));

    // A second DHT node on the public side, which the first asks to probe
    // the doctor unasked (its filtering, §5.8).
    lab.ip("pub", "addr add 198.18.0.2/24 dev br0");
    let second = lab.spawn(
        "pub",
        &[
            "serve",
            "--bind",
            "198.18.0.2:3478",
            "--bootstrap",
            SERVE_ADDR,
            "--json",
        ],
        false,
    );
    // The first answers the second's bootstrap only after sending it the
    // ping that makes the second a table entry (spec §5.3); the second
    // answers that ping before it reads the answer that bootstraps it. By
    // its `bootstrapped` line the first knows it (a loopback-fast link
    // carries the pong ahead of anything the doctor sends).
    common::wait_for(
        &second,
        "bootstrapped",
        Duration::from_secs(10),
        &mut Vec::new(),
    );
    for (mode, mapping, filtering, exit) in [
        (
            NatMode::Symmetric,
            "endpoint-dependent-random",
            "address- or port-dependent",
            1,
        ),
        (
            NatMode::PortRestricted,
            "endpoint-independent",
            "address- or port-dependent",
            0,
        ),
        (
            NatMode::FullCone,
            "endpoint-independent",
            "endpoint-independent: 198.18.0.2:3478",
            0,
        ),
        (
            NatMode::AddressRestricted,
            "endpoint-independent",
            "address- or port-dependent",
            0,
        ),
    ] {
        lab.nat_mode("nat2", mode);
        let mut doctor = lab.spawn(
            "b",
            &[
                "doctor",
                "--bootstrap",
                SERVE_ADDR,
                "--mainline-bootstrap",
                "198.18.0.23:6881",
                "--bind",
                "10.2.0.2:0",
                "--json",
            ],
            false,
        );
        let report = doctor.next_line(Duration::from_secs(15));
        let status = doctor.wait(Duration::from_secs(5));
        println!("doctor ({mapping}): {report}");
        assert_eq!(field(&report, "mapping"), Some(mapping), "{report}");
        assert!(
            field(&report, "filtering").is_some_and(|f| f.starts_with(filtering)),
            "{report}"
        );
        assert_eq!(field(&report, "hairpinning"), Some("no"), "{report}");
        assert!(
            field(&report, "relays").is_some_and(|r| r.contains("198.18.0.1:3478 (relays")),
            "{report}"
        );
        assert!(
            field(&report, "public_address").is_some_and(|a| a.starts_with("198.18.0.12:")),
            "{report}"
        );
        assert_eq!(status.code(), Some(exit), "{report}");
        // The doctor's own clock: it reports by its 10 s limit, never later.
        let took: u64 = field(&report, "took_ms")
            .expect("took_ms")
            .parse()
            .expect("ms");
        assert!(took <= 10_100, "doctor took {took} ms");
    }
}

/// How a pair connected: the `connected` lines of both members, once
/// both have one (panics with what they printed after `limit`).
fn both_connected(a: &Running, b: &Running, limit: Duration) -> (String, String) {
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let at_a = wait_for(a, "connected", limit, &mut seen_a);
    let at_b = wait_for(b, "connected", limit, &mut seen_b);
    (at_a, at_b)
}

/// The router-recipe matrix (`shared/NAT-RELAY.md` §7): each pair of NAT
/// behaviours connects directly where hole punching can work, through a
/// relay where it cannot, and the relay is a member when one is connected
/// to both; a piped 10 MiB crosses a relay complete, paced at its quota.
#[test]
fn every_pair_of_nat_behaviours_connects_directly_or_through_a_relay() {
    let Some(lab) = lab_or_skip(Lab::build("mx"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let serve = |relay: bool| {
        let mut args = vec!["serve", "--bind", SERVE_ADDR, "--json"];
        if relay {
            args.extend(["--relay", "--no-mainline"]);
        }
        let serve = lab.spawn("pub", &args, false);
        serve.next_line(Duration::from_secs(10));
        serve
    };
    // Pairs that hole punching connects: a port-restricted or symmetric
    // member with a full-cone or address-restricted one (a symmetric
    // member's checks arrive from a port the other never saw, which ICE
    // learns as a peer-reflexive candidate). No relay is offered by the
    // serve node, so a direct path is the only way.
    let direct_cases = [
        (NatMode::PortRestricted, NatMode::FullCone),
        (NatMode::PortRestricted, NatMode::AddressRestricted),
        (NatMode::Symmetric, NatMode::AddressRestricted),
        (NatMode::Symmetric, NatMode::FullCone),
    ];
    for (i, (mode_a, mode_b)) in direct_cases.into_iter().enumerate() {
        let _serve = serve(false);
        lab.nat_mode("nat1", mode_a);
        lab.nat_mode("nat2", mode_b);
        let code = format!("matrix direct {i}");
        let a = join(&lab, "a", "10.1.0.2", &code);
        let b = join(&lab, "b", "10.2.0.2", &code);
        let started = Instant::now();
        let (at_a, at_b) = both_connected(&a, &b, Duration::from_secs(20));
        println!("{mode_a:?} ↔ {mode_b:?}: {:?}", started.elapsed());
        for line in [&at_a, &at_b] {
            assert_eq!(
                field(line, "path"),
                Some("direct"),
                "{mode_a:?} ↔ {mode_b:?}: {line}"
            );
        }
    }

    // Symmetric on both sides: only a relay helps.
    {
        let _serve = serve(true);
        lab.nat_mode("nat1", NatMode::Symmetric);
        lab.nat_mode("nat2", NatMode::Symmetric);
        let a = join(&lab, "a", "10.1.0.2", "matrix symmetric pair");
        let b = join(&lab, "b", "10.2.0.2", "matrix symmetric pair");
        let (at_a, at_b) = both_connected(&a, &b, Duration::from_secs(20));
        for line in [&at_a, &at_b] {
            assert_eq!(field(line, "path"), Some("relay"), "{line}");
            assert_eq!(field(line, "relay"), Some(SERVE_ADDR), "{line}");
        }
    }

    // Port-restricted ↔ symmetric with a public member c in the meeting
    // and a serve node that does not relay: c relays (tier a).
    {
        let _serve = serve(false);
        lab.nat_mode("nat1", NatMode::PortRestricted);
        lab.nat_mode("nat2", NatMode::Symmetric);
        let code = "matrix member relay";
        let c = lab.spawn(
            "pub",
            &[
                "join",
                code,
                "--bootstrap",
                SERVE_ADDR,
                "--bind",
                "198.18.0.1:0",
                "--json",
                "--no-mainline",
                "--no-lan",
            ],
            true,
        );
        let mut seen_c = Vec::new();
        let started = wait_for(&c, "started", Duration::from_secs(10), &mut seen_c);
        let c_addr = field(&started, "local_addr")
            .expect("c's address")
            .to_owned();
        let a = join(&lab, "a", "10.1.0.2", code);
        let b = join(&lab, "b", "10.2.0.2", code);
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut relayed_by = None;
        let mut seen = Vec::new();
        while relayed_by.is_none() && Instant::now() < deadline {
            for member in [&a, &b] {
                while let Ok(line) = member.stdout.try_recv() {
                    if field(&line, "event") == Some("connected")
                        && field(&line, "path") == Some("relay")
                    {
                        relayed_by = field(&line, "relay").map(str::to_owned);
                    }
                    seen.push(line);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            relayed_by.as_deref(),
            Some(c_addr.as_str()),
            "a and b meet through member c: {seen:#?}"
        );
    }

    // 10 MiB through the serve relay: complete, in order, and paced at
    // the pair's quota (256 KiB/s, burst 512 KiB).
    {
        let _serve = serve(true);
        lab.nat_mode("nat1", NatMode::PortRestricted);
        lab.nat_mode("nat2", NatMode::Symmetric);
        let mut a = join(&lab, "a", "10.1.0.2", "matrix bulk");
        let b = join(&lab, "b", "10.2.0.2", "matrix bulk");
        let (at_a, _) = both_connected(&a, &b, Duration::from_secs(20));
        assert_eq!(field(&at_a, "path"), Some("relay"), "{at_a}");
        const LINES: usize = 10 * 1024;
        let mut input = a.child.stdin.take().expect("stdin");
        let started = Instant::now();
        std::thread::spawn(move || {
            for i in 0..LINES {
                writeln!(input, "{i:06} {}", "x".repeat(1016)).expect("write");
            }
        });
        let mut next = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while next < LINES {
            let line = b
                .stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("only {next} of {LINES} lines arrived"));
            if field(&line, "event") == Some("message") {
                let text = field(&line, "text").expect("text");
                assert_eq!(
                    text.get(..6),
                    Some(format!("{next:06}").as_str()),
                    "in order"
                );
                next += 1;
            }
        }
        let took = started.elapsed();
        let rate = (LINES * 1024) as f64 / took.as_secs_f64() / 1024.0;
        println!("10 MiB through the relay in {took:?}: {rate:.0} KiB/s");
        // Paced: the burst (512 KiB) plus 256 KiB/s is at most about
        // 290 KiB/s over 10 MiB; allow for timing slack, never for a
        // relay that ignores its quota.
        assert!(rate < 400.0, "not paced: {rate:.0} KiB/s");
    }
}

/// A session that starts relayed because the direct path is blocked (a
/// firewall rule on b's router drops a's datagrams) moves to the direct
/// path once the block is lifted: `path_changed`, the relay binding
/// released, and no line lost or reordered across the move.
#[test]
fn a_relayed_session_moves_to_a_direct_path_when_one_opens() {
    let Some(lab) = lab_or_skip(Lab::build("up"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let mut serve = serve_relay(&lab, &["-v"]);
    lab.nat_mode("nat1", NatMode::PortRestricted);
    lab.nat_mode("nat2", NatMode::PortRestricted);
    let block = "FORWARD -i wan -s 198.18.0.11 -j DROP";
    let rule = |op: &str| {
        let mut args = vec!["iptables", op];
        args.extend(block.split_whitespace());
        lab.exec("nat2", &args);
    };
    rule("-I");
    let mut a = join(&lab, "a", "10.1.0.2", "path upgrade");
    let b = join(&lab, "b", "10.2.0.2", "path upgrade");
    let (at_a, _) = both_connected(&a, &b, Duration::from_secs(20));
    assert_eq!(field(&at_a, "path"), Some("relay"), "{at_a}");

    // Lines flow while the block is lifted.
    let mut input = a.child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        for i in 0..200 {
            writeln!(input, "line {i:03}").expect("write");
            std::thread::sleep(Duration::from_millis(25));
        }
        input
    });
    // The first line arrives over the relay before the block is lifted.
    let first = wait_for(&b, "message", Duration::from_secs(10), &mut Vec::new());
    assert_eq!(field(&first, "text"), Some("line 000"), "{first}");
    rule("-D");
    let mut seen_a = Vec::new();
    let changed = wait_for(&a, "path_changed", Duration::from_secs(20), &mut seen_a);
    assert_eq!(field(&changed, "path"), Some("direct"), "{changed}");
    assert!(
        field(&changed, "addr").is_some_and(|addr| addr.starts_with("198.18.0.12:")),
        "{changed}"
    );
    let _input = writer.join().expect("writer");
    let mut next = 1;
    let deadline = Instant::now() + Duration::from_secs(20);
    while next < 200 {
        let line = b
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("only {next} of 200 lines arrived"));
        if field(&line, "event") == Some("message") {
            assert_eq!(
                field(&line, "text"),
                Some(format!("line {next:03}").as_str())
            );
            next += 1;
        }
    }
    // The direct path took over, so the relay binding was released: the
    // relay's counters (logged when it stops) say so.
    serve.signal(libc::SIGTERM);
    assert_eq!(serve.wait(Duration::from_secs(10)).code(), Some(0));
    let stats = serve.wait_stderr("node stats:", Duration::from_secs(5));
    assert!(counter(&stats, "relay_released") >= 1, "{stats}");
}

/// `tinynode pipe` between two members behind NATs: lines from a's stdin
/// come out of b's stdout, complete and in order, and both exit 0. The
/// first line goes before the path is known; the rest once a reports the
/// path `want` (`pipe_connected`, or a `path_changed` after it: a relay
/// can win the first ICE check while the NATs' pinholes open). Returns
/// the address of that path and every path a reported.
fn pipe_through(lab: &Lab, code: &str, lines: usize, want: &str) -> (String, Vec<String>) {
    let pipe = |ns: &str, ip: &str| {
        let bind = format!("{ip}:0");
        let args = [
            "pipe",
            code,
            "--bootstrap",
            SERVE_ADDR,
            "--bind",
            &bind,
            "--json",
            "--no-mainline",
            "--no-lan",
        ];
        lab.spawn(ns, &args, true)
    };
    let mut a = pipe("a", "10.1.0.2");
    let mut b = pipe("b", "10.2.0.2");
    drop(b.child.stdin.take());
    let mut stdin = a.child.stdin.take().expect("stdin");
    writeln!(stdin, "line 0 through the NATs").expect("write");
    assert_eq!(
        b.next_line(Duration::from_secs(60)),
        "line 0 through the NATs"
    );
    let mut paths = Vec::new();
    let on_path = path_reported(&a, want, &mut paths, Duration::from_secs(30));
    let writer = std::thread::spawn(move || {
        for i in 1..lines {
            writeln!(stdin, "line {i} through the NATs").expect("write");
        }
    });
    for i in 1..lines {
        let line = b.next_line(Duration::from_secs(60));
        assert_eq!(line, format!("line {i} through the NATs"));
    }
    writer.join().expect("writer");
    let b_done = b.wait_stderr("pipe_done", Duration::from_secs(60));
    let status = a.wait(Duration::from_secs(60));
    let a_log: Vec<String> = a.stderr.try_iter().collect();
    assert_eq!(status.code(), Some(0), "a exits 0: {a_log:#?}");
    assert_eq!(b.wait(Duration::from_secs(30)).code(), Some(0), "{b_done}");
    paths.extend(a_log.iter().filter_map(|line| path_of(line)));
    (
        field(&on_path, "addr").unwrap_or_default().to_owned(),
        paths,
    )
}

/// The path a JSON status line reports (`pipe_connected`, `path_changed`).
fn path_of(line: &str) -> Option<String> {
    matches!(
        field(line, "event"),
        Some("pipe_connected" | "path_changed")
    )
    .then(|| field(line, "path").unwrap_or("none").to_owned())
}

/// Waits for `member` to report the path `want`, recording each path it
/// reports in `paths`; returns the line that reported `want`.
fn path_reported(member: &Running, want: &str, paths: &mut Vec<String>, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = member
            .stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {want} path within {limit:?}; saw {paths:?}"));
        if let Some(path) = path_of(&line) {
            paths.push(path.clone());
            if path == want {
                return line;
            }
        }
    }
}

#[test]
fn pipe_crosses_two_nats_directly_and_symmetric_ones_through_a_relay() {
    let Some(lab) = lab_or_skip(Lab::build("pp"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let _serve = serve_relay(&lab, &[]);
    let (addr, paths) = pipe_through(&lab, "pipe behind nats", 20_000, "direct");
    assert!(addr.starts_with("198.18.0.1"), "{addr}");
    assert_eq!(
        paths.last().map(String::as_str),
        Some("direct"),
        "{paths:?}"
    );

    lab.nat("nat1", true);
    lab.nat("nat2", true);
    let (addr, paths) = pipe_through(&lab, "pipe behind symmetric nats", 20_000, "relay");
    assert_eq!(paths, ["relay"], "symmetric on both sides needs the relay");
    assert_eq!(addr, SERVE_ADDR);
}
