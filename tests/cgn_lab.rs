//! Carrier-grade NAT, in network namespaces this test builds itself:
//!
//! ```text
//!   pub 198.18.0.1 (serve node, no relay) and c (a public member)   bridge br0
//!    |
//!   cgn 198.18.0.30 | 100.64.0.1   MASQUERADE of 100.64.0.0/10, no hairpinning
//!    |  (bridge br1)
//!    +-- home1 100.64.0.11 | 10.1.0.1 -- a 10.1.0.2    MASQUERADE home routers
//!    +-- home2 100.64.0.12 | 10.2.0.1 -- b 10.2.0.2
//! ```
//!
//! Two subscribers of one CGN see each other at the CGN's one public IP,
//! and a Linux CGN does not hairpin, so they cannot connect directly
//! (`shared/NAT-RELAY.md` §5.2). A public member connected to both relays
//! for them; each reaches the public member directly through two NATs.
//! Needs root, `ip` and `iptables`; `TINYNODE_SKIP_NAT_LAB=1` skips it
//! with a printed reason where namespaces cannot be made.

mod common;

use std::time::{Duration, Instant};

use common::natlab::{NatMode, router_mode};
use common::netns::{Netns, lab_or_skip};
use common::{Running, field};

const SERVE_ADDR: &str = "198.18.0.1:3478";

/// MASQUERADE out of `wan`, forwarding out freely and back in only for
/// established flows, on `router`: the lab's port-restricted router.
fn masquerade(lab: &Netns, router: &str) {
    router_mode(lab, router, "", NatMode::PortRestricted);
    lab.exec(router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
}

fn build() -> Result<Netns, String> {
    let lab = Netns::create("cgn", &["pub", "cgn", "home1", "home2", "a", "b"])?;
    lab.ip("pub", "link add br0 type bridge");
    lab.ip("pub", "addr add 198.18.0.1/24 dev br0");
    lab.ip("pub", "link set br0 up");
    // The CGN: wan on the public bridge, lan a bridge of its subscribers.
    lab.ip(
        "cgn",
        &format!(
            "link add wan type veth peer name cgn netns {}",
            lab.ns("pub")
        ),
    );
    lab.ip("pub", "link set cgn master br0 up");
    lab.ip("cgn", "addr add 198.18.0.30/24 dev wan");
    lab.ip("cgn", "link set wan up");
    lab.ip("cgn", "link add lan type bridge");
    lab.ip("cgn", "addr add 100.64.0.1/24 dev lan");
    lab.ip("cgn", "link set lan up");
    masquerade(&lab, "cgn");
    for i in 1..=2 {
        let (home, host) = (format!("home{i}"), if i == 1 { "a" } else { "b" });
        lab.ip(
            &home,
            &format!(
                "link add wan type veth peer name sub{i} netns {}",
                lab.ns("cgn")
            ),
        );
        lab.ip("cgn", &format!("link set sub{i} master lan up"));
        lab.ip(&home, &format!("addr add 100.64.0.1{i}/24 dev wan"));
        lab.ip(&home, "link set wan up");
        lab.ip(&home, "route add default via 100.64.0.1");
        lab.ip(
            &home,
            &format!(
                "link add lan type veth peer name eth0 netns {}",
                lab.ns(host)
            ),
        );
        lab.ip(&home, &format!("addr add 10.{i}.0.1/24 dev lan"));
        lab.ip(&home, "link set lan up");
        lab.ip(host, &format!("addr add 10.{i}.0.2/24 dev eth0"));
        lab.ip(host, "link set eth0 up");
        lab.ip(host, &format!("route add default via 10.{i}.0.1"));
        masquerade(&lab, &home);
    }
    Ok(lab)
}

fn member(lab: &Netns, ns: &str, bind: &str, code: &str) -> Running {
    lab.spawn(
        ns,
        &[
            "join",
            code,
            "--bootstrap",
            SERVE_ADDR,
            "--bind",
            bind,
            "--json",
            "--no-mainline",
            "--no-lan",
        ],
        true,
    )
}

/// `member`'s `connected` line for the peer whose ID is `peer`.
fn connected_to(member: &Running, peer: &str, limit: Duration, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let line = member
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no connection to {peer} within {limit:?}: {seen:#?}"));
        seen.push(line.clone());
        if field(&line, "event") == Some("connected") && field(&line, "peer") == Some(peer) {
            return line;
        }
    }
}

fn node_id(member: &Running) -> String {
    let started = member.next_line(Duration::from_secs(10));
    field(&started, "node_id").expect("node_id").to_owned()
}

#[test]
fn two_subscribers_of_one_cgn_talk_through_a_public_member() {
    let Some(lab) = lab_or_skip(build(), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let serve = lab.spawn("pub", &["serve", "--bind", SERVE_ADDR, "--json"], false);
    serve.next_line(Duration::from_secs(10));
    let code = "behind one cgn";
    let c = member(&lab, "pub", "198.18.0.1:0", code);
    let c_id = node_id(&c);
    let mut a = member(&lab, "a", "10.1.0.2:0", code);
    let a_id = node_id(&a);
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    // Through two NATs, each subscriber reaches the public member directly.
    let a_to_c = connected_to(&a, &c_id, Duration::from_secs(20), &mut seen_a);
    assert_eq!(field(&a_to_c, "path"), Some("direct"), "{a_to_c}");
    assert!(
        field(&a_to_c, "addr").is_some_and(|addr| addr.starts_with("198.18.0.1:")),
        "{a_to_c}"
    );
    let b = member(&lab, "b", "10.2.0.2:0", code);
    let b_id = node_id(&b);
    connected_to(&b, &c_id, Duration::from_secs(20), &mut seen_b);
    // a and b share the CGN's address and it does not hairpin: c relays.
    let a_to_b = connected_to(&a, &b_id, Duration::from_secs(40), &mut seen_a);
    assert_eq!(field(&a_to_b, "path"), Some("relay"), "{a_to_b}");
    let c_addr = field(&a_to_c, "addr").expect("c's address");
    assert_eq!(field(&a_to_b, "relay"), Some(c_addr), "through c: {a_to_b}");
    let b_to_a = connected_to(&b, &a_id, Duration::from_secs(10), &mut seen_b);
    assert_eq!(field(&b_to_a, "path"), Some("relay"), "{b_to_a}");
    let stdin = a.child.stdin.as_mut().expect("stdin");
    use std::io::Write;
    writeln!(stdin, "same carrier")
        .and_then(|()| stdin.flush())
        .expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut heard = false;
    while !heard && Instant::now() < deadline {
        if let Ok(line) = b.stdout.recv_timeout(Duration::from_millis(200)) {
            heard = field(&line, "event") == Some("message")
                && field(&line, "text") == Some("same carrier");
        }
    }
    assert!(heard, "b heard a through c");

    // doctor behind the CGN, with two more DHT nodes on the public side as
    // observers: one mapping through both NATs (endpoint-independent), no
    // hairpinning, no unsolicited datagram gets in.
    let mut observers = Vec::new();
    for i in 2..=3 {
        lab.ip("pub", &format!("addr add 198.18.0.{i}/24 dev br0"));
        let observer = lab.spawn(
            "pub",
            &[
                "serve",
                "--bind",
                &format!("198.18.0.{i}:3478"),
                "--bootstrap",
                SERVE_ADDR,
                "--json",
            ],
            false,
        );
        // Known to the first serve node by its `bootstrapped` line (see
        // nat_lab's doctor test).
        common::wait_for(
            &observer,
            "bootstrapped",
            Duration::from_secs(10),
            &mut Vec::new(),
        );
        observers.push(observer);
    }
    let mut doctor = lab.spawn(
        "a",
        &[
            "doctor",
            "--bootstrap",
            SERVE_ADDR,
            "--no-mainline",
            "--bind",
            "10.1.0.2:0",
            "--json",
        ],
        false,
    );
    let report = doctor.next_line(Duration::from_secs(15));
    let status = doctor.wait(Duration::from_secs(5));
    println!("doctor behind the CGN: {report}");
    assert_eq!(field(&report, "hairpinning"), Some("no"), "{report}");
    assert_eq!(
        field(&report, "mapping"),
        Some("endpoint-independent"),
        "{report}"
    );
    assert!(
        field(&report, "filtering").is_some_and(|f| f.starts_with("address- or port-dependent")),
        "{report}"
    );
    assert_eq!(status.code(), Some(0), "{report}");
    assert!(
        field(&report, "public_address").is_some_and(|p| p.starts_with("198.18.0.30:")),
        "{report}"
    );
}
