//! IPv6 on loopback (`::1`), as real processes: STUN over IPv6 (an
//! XOR-MAPPED-ADDRESS of 16 bytes, from a `serve` node), and two
//! dual-stack members that connect over IPv6, the family ICE prefers
//! when both work. The namespace labs (`tests/ipv6_lab.rs`) cover NATs
//! and firewalls.

mod common;

use std::time::Duration;

use common::{Running, field, tinynode, watch_connections};

/// A serve node on both loopbacks; its two addresses, IPv4 first.
fn dual_stack_serve() -> (Running, String, String) {
    let mut command = tinynode();
    command.args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--bind",
        "[::1]:0",
        "--no-mainline",
        "--json",
    ]);
    let serve = Running::spawn(command);
    let started = serve.next_line(Duration::from_secs(10));
    let addrs: Vec<String> = field(&started, "local_addrs")
        .unwrap_or_else(|| panic!("local_addrs in {started}"))
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert_eq!(addrs.len(), 2, "{started}");
    assert!(addrs[1].starts_with("[::1]:"), "IPv4 first: {started}");
    (serve, addrs[0].clone(), addrs[1].clone())
}

#[test]
fn stun_over_ipv6_reports_the_ipv6_address() {
    let (_serve, _, v6) = dual_stack_serve();
    let output = tinynode()
        .args(["stun", &v6, "--bind", "[::1]:0", "--json"])
        .output()
        .expect("run tinynode stun");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(field(&stdout, "via"), Some("stun"), "{stdout}");
    assert!(
        field(&stdout, "addr").is_some_and(|a| a.starts_with("[::1]:")),
        "{stdout}"
    );
}

#[test]
fn dual_stack_members_connect_over_ipv6() {
    let (_serve, v4, v6) = dual_stack_serve();
    let join = || {
        let mut command = tinynode();
        command.args([
            "join",
            "two families",
            "--bootstrap",
            &v4,
            "--bootstrap",
            &v6,
            "--bind",
            "127.0.0.1:0",
            "--bind",
            "[::1]:0",
            "--json",
            "--no-mainline",
            "--no-lan",
            "--no-stdin",
        ]);
        let member = Running::spawn(command);
        let started = member.next_line(Duration::from_secs(10));
        let id = field(&started, "node_id").expect("node_id").to_owned();
        (member, id)
    };
    let (a, b) = (join(), join());
    let (connected, lines) =
        watch_connections(&[&a, &b], Duration::from_secs(20), &["dht", "offer"], |c| {
            c.len() == 2
        });
    assert_eq!(connected.len(), 2, "{lines:?}");
    for line in lines.values().flatten() {
        if field(line, "event") == Some("connected") {
            assert_eq!(field(line, "family"), Some("ipv6"), "{line}");
            assert!(
                field(line, "addr").is_some_and(|a| a.starts_with("[::1]:")),
                "{line}"
            );
        }
    }
}
