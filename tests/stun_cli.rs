//! End-to-end tests of `tinynode stun` and `tinynode serve` as real
//! processes on loopback, against independent STUN implementations (coturn's
//! `turnserver` and `turnutils_stunclient`).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::{require_tool, start_coturn, start_serve, stun_probe, tinynode};

const WAIT: Duration = Duration::from_secs(20);

fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("run tinynode");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A UDP socket that receives and never answers: a dead STUN server.
fn silent_server() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    (socket, addr)
}

#[test]
fn stun_against_coturn_reports_the_bound_address() {
    let (_coturn, server) = start_coturn();
    let local = SocketAddr::from(([127, 0, 0, 1], common::free_udp_port()));
    let (code, stdout, stderr) = run(tinynode().args([
        "stun",
        &server.to_string(),
        "--bind",
        &local.to_string(),
        "--json",
    ]));
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            r#"{{"event":"public_address","addr":"{local}","via":"stun","server":"{server}"}}"#
        )
    );

    let (code, stdout, _) = run(tinynode().args(["stun", &server.to_string()]));
    assert_eq!(code, 0);
    assert!(stdout.starts_with("public address 127.0.0.1:"), "{stdout}");
}

#[test]
fn stun_fails_over_from_a_dead_server() {
    let (_coturn, server) = start_coturn();
    let (_dead_socket, dead) = silent_server();
    let (code, stdout, stderr) = run(tinynode()
        .args([
            "stun",
            &dead.to_string(),
            &server.to_string(),
            "--timeout",
            "1.2",
            "--json",
        ])
        .env("DEBUG", "true"));
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stdout.contains(&format!(r#""server":"{server}""#)),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("{dead} failed: no response")),
        "{stderr}"
    );
    assert!(
        stderr.contains("retransmit 2 of 7"),
        "debug logs show retransmits: {stderr}"
    );
}

#[test]
fn stun_names_every_failed_server_and_exits_non_zero() {
    let (_a, dead_a) = silent_server();
    let (_b, dead_b) = silent_server();
    let (code, stdout, stderr) = run(tinynode().args([
        "stun",
        &dead_a.to_string(),
        &dead_b.to_string(),
        "--timeout",
        "0.3",
    ]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no STUN server answered"), "{stderr}");
    assert!(
        stderr.contains(&format!("{dead_a}: no response")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{dead_b}: no response")),
        "{stderr}"
    );

    let (code, stdout, _) =
        run(tinynode().args(["stun", &dead_a.to_string(), "--timeout", "0.3", "--json"]));
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with(r#"{"event":"error","what":"no STUN server answered: "#),
        "{stdout}"
    );
}

#[test]
fn independent_client_gets_the_right_answer_from_serve() {
    let stunclient = require_tool("turnutils_stunclient", "coturn");
    let (_serve, addr) = start_serve();
    // From 127.0.0.2, so that the address the answer names is not simply
    // the server's own (`tinynode_stun_against_tinynode_serve` checks the
    // port, from a socket whose port it knows).
    let output = Command::new(stunclient)
        .args([
            "-L",
            "127.0.0.2",
            "-p",
            &addr.port().to_string(),
            "127.0.0.1",
        ])
        .output()
        .expect("run turnutils_stunclient");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let reflexive = stdout
        .lines()
        .find_map(|line| line.split("UDP reflexive addr: ").nth(1))
        .unwrap_or_else(|| panic!("no reflexive address in {stdout:?}"))
        .trim()
        .to_owned();
    let (ip, port) = reflexive.rsplit_once(':').expect("IP:PORT");
    assert_eq!(ip, "127.0.0.2", "the address the client sent from");
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{reflexive}");
}

#[test]
fn tinynode_stun_against_tinynode_serve() {
    let (_serve, server) = start_serve();
    let local = SocketAddr::from(([127, 0, 0, 1], common::free_udp_port()));
    let (code, stdout, stderr) =
        run(tinynode().args(["stun", &server.to_string(), "--bind", &local.to_string()]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("public address {local} (from STUN server {server})")
    );
}

#[test]
fn serve_exits_zero_on_sigint_and_sigterm() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (mut serve, addr) = start_serve();
        assert!(stun_probe(addr, Duration::from_secs(5)).is_some());
        serve.signal(signal);
        let status = serve.wait(WAIT);
        assert_eq!(status.code(), Some(0), "signal {signal}");
    }
}

#[test]
fn idle_serve_does_not_wake_up() {
    let (serve, addr) = start_serve();
    assert!(stun_probe(addr, Duration::from_secs(5)).is_some());
    let switches = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", serve.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("voluntary_ctxt_switches")
    };
    let before = switches();
    std::thread::sleep(Duration::from_secs(2));
    let woke = switches() - before;
    // A polling loop would wake hundreds of times; an idle node has no deadline.
    assert!(woke <= 3, "idle serve woke {woke} times in 2 s");
}

#[test]
fn help_version_and_usage_errors() {
    let (code, stdout, _) = run(tinynode().arg("--version"));
    assert_eq!(code, 0);
    // `tinynode VERSION (TARGET TRIPLE)`: the test build is native.
    let triple = stdout
        .trim()
        .strip_prefix(concat!("tinynode ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        triple.starts_with(std::env::consts::ARCH) && triple.contains(std::env::consts::OS),
        "{triple}"
    );
    for args in [
        &["--help"][..],
        &["stun", "--help"],
        &["serve", "--help"],
        &["bootstrap", "--help"],
    ] {
        let (code, stdout, _) = run(tinynode().args(args));
        assert_eq!(code, 0);
        assert!(
            stdout.starts_with("tinynode") || stdout.starts_with("Usage:"),
            "{stdout}"
        );
    }
    let (code, _, stderr) = run(tinynode().args(["stun"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("stun needs at least one SERVER"),
        "{stderr}"
    );
}

#[test]
fn serve_answers_many_clients_and_counts_garbage() {
    let (mut serve, addr) = start_serve();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for garbage in [
        &b"\x16\xfe\xfd hello"[..],
        b"\x00\x01\x00",
        b"",
        b"\xff\xff",
    ] {
        socket.send_to(garbage, addr).expect("send");
    }
    for _ in 0..5 {
        assert!(stun_probe(addr, Duration::from_secs(5)).is_some());
    }
    serve.signal(libc::SIGTERM);
    assert_eq!(serve.wait(WAIT).code(), Some(0));
    let stats = serve.wait_stderr("node stats:", WAIT);
    assert!(stats.contains("stun_answers=5"), "{stats}");
    assert!(stats.contains("dropped=4"), "{stats}");
}
