//! IPv6 in network namespaces this test builds itself: the NAT lab
//! (`tests/common/natlab.rs`) with its IPv6 side enabled.
//!
//! ```text
//!        pub 198.18.0.1 + fd00:18::1  (serve; Mainline testnet at fd00:18::20..27)
//!          /                      \
//!   nat1: IPv4 NAT,               nat2: IPv4 NAT,
//!         IPv6 routed through a stateful firewall
//!          |                      |
//!   a 10.1.0.2 + fd00:1::2     b 10.2.0.2 + fd00:2::2
//! ```
//!
//! - IPv6-only members connect over IPv6 through a `serve` node, and
//!   through a Mainline DHT testnet over IPv6 of an independent
//!   implementation (libtorrent, `tests/peers/libtorrent_dht.py`);
//! - a dual-stack pair whose IPv4 NATs are symmetric (which no hole
//!   punching gets through: `tests/nat_lab.rs` shows that pair failing
//!   without a relay) connects *directly* over IPv6, with no relay
//!   anywhere;
//! - a dual-stack member and an IPv4-only member connect over IPv4;
//! - `doctor` reports each family.
//!
//! Needs root, `ip`, `iptables`, `ip6tables` and python3-libtorrent (as
//! `.ci/run` installs). A missing tool fails the test, and so does a
//! machine where namespaces cannot be made, unless
//! `TINYNODE_SKIP_NAT_LAB=1` says to skip it (printing why). All traffic
//! stays inside the namespaces (unique-local fd00::/8, 198.18.0.0/15,
//! 10/8).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::natlab::{Lab, NatMode};
use common::netns::lab_or_skip;
use common::{Running, field, require_tool, wait_for};

const SERVE_V4: &str = "198.18.0.1:3478";
const SERVE_V6: &str = "[fd00:18::1]:3478";
const SKIP_ENV: &str = "TINYNODE_SKIP_NAT_LAB";

/// The system Python that Debian's python3-libtorrent installs into.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

fn lab(tag: &str) -> Option<Lab> {
    let lab = lab_or_skip(Lab::build(tag), SKIP_ENV)?;
    lab.enable_ipv6();
    Some(lab)
}

/// A serve node on both families of the public side, no relay, no
/// Mainline.
fn serve(lab: &Lab) -> Running {
    let serve = lab.spawn(
        "pub",
        &[
            "serve",
            "--bind",
            SERVE_V4,
            "--bind",
            SERVE_V6,
            "--no-mainline",
            "--json",
        ],
        false,
    );
    serve.next_line(Duration::from_secs(10));
    serve
}

/// A member of `code` in `ns` with the given `--bind` and source options.
fn member(lab: &Lab, ns: &str, code: &str, binds: &[&str], sources: &[&str]) -> Running {
    let mut args = vec!["join", code, "--json", "--no-lan"];
    if std::env::var_os("TINYNODE_LAB_VERBOSE").is_some() {
        args.insert(0, "-v");
    }
    for bind in binds {
        args.extend(["--bind", bind]);
    }
    args.extend_from_slice(sources);
    lab.spawn(ns, &args, true)
}

/// Both members' `connected` events, each checked to be direct over
/// `family`.
fn connect_directly(a: &Running, b: &Running, family: &str, limit: Duration) -> [String; 2] {
    let mut seen = Vec::new();
    let connected = [a, b].map(|m| wait_for(m, "connected", limit, &mut seen));
    for line in &connected {
        assert_eq!(field(line, "family"), Some(family), "{line}; saw {seen:#?}");
        assert_eq!(field(line, "path"), Some("direct"), "{line}");
    }
    assert!(
        !seen
            .iter()
            .any(|l| field(l, "event") == Some("connect_failed")),
        "the first attempt connects: {seen:#?}"
    );
    connected
}

/// `a` sends a line and `b` prints it.
fn message_arrives(a: &mut Running, b: &Running, text: &str) {
    let stdin = a.child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "{text}").expect("write to stdin");
    let mut seen = Vec::new();
    let line = wait_for(b, "message", Duration::from_secs(10), &mut seen);
    assert_eq!(field(&line, "text"), Some(text));
}

#[test]
fn ipv6_only_members_connect_through_a_serve_node() {
    let Some(lab) = lab("s6") else { return };
    let _serve = serve(&lab);
    let sources = ["--bootstrap", SERVE_V6, "--no-mainline"];
    let mut a = member(&lab, "a", "six only", &["[fd00:1::2]:0"], &sources);
    let b = member(&lab, "b", "six only", &["[fd00:2::2]:0"], &sources);
    let [to_b, _] = connect_directly(&a, &b, "ipv6", Duration::from_secs(20));
    assert!(
        field(&to_b, "addr").is_some_and(|addr| addr.starts_with("[fd00:2::2]:")),
        "{to_b}"
    );
    message_arrives(&mut a, &b, "hello over IPv6");
}

#[test]
fn a_dual_stack_pair_behind_symmetric_ipv4_nats_connects_directly_over_ipv6() {
    let Some(lab) = lab("d6") else { return };
    lab.nat_mode("nat1", NatMode::Symmetric);
    lab.nat_mode("nat2", NatMode::Symmetric);
    let _serve = serve(&lab);
    let sources = [
        "--bootstrap",
        SERVE_V4,
        "--bootstrap",
        SERVE_V6,
        "--no-mainline",
    ];
    let mut a = member(
        &lab,
        "a",
        "six beats four",
        &["10.1.0.2:0", "[fd00:1::2]:0"],
        &sources,
    );
    let b = member(
        &lab,
        "b",
        "six beats four",
        &["10.2.0.2:0", "[fd00:2::2]:0"],
        &sources,
    );
    connect_directly(&a, &b, "ipv6", Duration::from_secs(20));
    message_arrives(&mut a, &b, "no relay needed");
}

#[test]
fn a_dual_stack_member_and_an_ipv4_only_member_connect_over_ipv4() {
    let Some(lab) = lab("m6") else { return };
    let _serve = serve(&lab);
    let both = [
        "--bootstrap",
        SERVE_V4,
        "--bootstrap",
        SERVE_V6,
        "--no-mainline",
    ];
    let mut a = member(&lab, "a", "mixed", &["10.1.0.2:0", "[fd00:1::2]:0"], &both);
    let b = member(
        &lab,
        "b",
        "mixed",
        &["10.2.0.2:0"],
        &["--bootstrap", SERVE_V4, "--no-mainline"],
    );
    connect_directly(&a, &b, "ipv4", Duration::from_secs(20));
    message_arrives(&mut a, &b, "four it is");
}

/// Starts the libtorrent testnet on the public side at fd00:18::20..27.
fn libtorrent_testnet(lab: &Lab) -> Running {
    require_tool("python3", "python3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/libtorrent_dht.py");
    let mut addrs = Vec::new();
    for i in 20..28 {
        lab.ip("pub", &format!("addr add fd00:18::{i}/64 dev br0 nodad"));
        addrs.push(format!("[fd00:18::{i}]:6881"));
    }
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &lab.ns("pub"), SYSTEM_PYTHON, script])
        .args(&addrs)
        .stdin(Stdio::piped());
    let testnet = Running::spawn_with_stdin(command);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match testnet.stdout.recv_timeout(left) {
            Ok(line) if line.contains("testnet ready") => return testnet,
            Ok(_) => {}
            Err(_) => {
                let errors: Vec<String> = testnet.stderr.try_iter().collect();
                panic!(
                    "the libtorrent testnet did not start (is python3-libtorrent installed? \
                     apt-get install python3-libtorrent): {errors:?}"
                )
            }
        }
    }
}

#[test]
fn ipv6_only_members_meet_through_a_mainline_testnet_over_ipv6() {
    let Some(lab) = lab("t6") else { return };
    let _testnet = libtorrent_testnet(&lab);
    let sources = ["--mainline-bootstrap", "[fd00:18::21]:6881"];
    let mut a = member(&lab, "a", "mainline six", &["[fd00:1::2]:0"], &sources);
    let b = member(&lab, "b", "mainline six", &["[fd00:2::2]:0"], &sources);
    let [to_b, to_a] = connect_directly(&a, &b, "ipv6", Duration::from_secs(30));
    assert_eq!(field(&to_b, "via"), Some("mainline"), "{to_b}");
    assert!(
        matches!(field(&to_a, "via"), Some("mainline" | "offer")),
        "{to_a}"
    );
    message_arrives(&mut a, &b, "found through libtorrent");
}

#[test]
fn doctor_reports_each_family() {
    let Some(lab) = lab("x6") else { return };
    lab.nat_mode("nat1", NatMode::Symmetric);
    let _serve = serve(&lab);
    let mut doctor = lab.spawn(
        "a",
        &[
            "doctor",
            "--bootstrap",
            SERVE_V4,
            "--bootstrap",
            SERVE_V6,
            "--bind",
            "10.1.0.2:0",
            "--bind",
            "[fd00:1::2]:0",
            "--no-mainline",
            "--json",
        ],
        false,
    );
    let report = doctor.next_line(Duration::from_secs(15));
    doctor.wait(Duration::from_secs(5));
    assert_eq!(field(&report, "event"), Some("doctor"), "{report}");
    assert!(
        field(&report, "ipv6_public_address").is_some_and(|a| a.starts_with("[fd00:1::2]:")),
        "no translation on IPv6: {report}"
    );
    assert_eq!(field(&report, "ipv6_mapping"), Some("open"), "{report}");
    assert!(
        field(&report, "ipv4_public_address").is_some_and(|a| a.starts_with("198.18.0.11")),
        "{report}"
    );
}
