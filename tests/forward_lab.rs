//! Port forwarding across the NAT lab (`tests/common/natlab.rs`, issue
//! 29): a service in namespace `a` (behind `nat1`) exposed with
//! `tinynode expose`, reached from namespace `b` (behind `nat2`) through
//! `tinynode connect`: curl against Python's `http.server`, byte-exact,
//! with the members direct and again with both NATs symmetric (through
//! the lab's `serve --relay`); 100 connections at once each echoing 1 MiB
//! with a half-close, UDP datagrams through `--udp`, and a refused service
//! seen as a reset, direct and through an operator's unlimited relay
//! (`tests/peers/forward_echo.py` in the namespaces); an OpenSSH
//! session (`sshd` in `a`, `ssh -p` in `b`) through a forward; and an
//! allow-listed `expose` on a wildcard socket: a member with the code but
//! not on the list gets nothing (its key in the refusal); when the host's
//! address changes under it, it reports the new address, ends its
//! connections at once (the `connect` side hears its `Close` or its new
//! offer, not an ICE timeout) and is reached again; killed and restarted with its key, it
//! is reached again.
//!
//! Needs root, `ip`, `iptables`, `python3`, `curl` and OpenSSH (client and
//! server; `.ci/run` installs them); a machine where namespaces cannot be
//! made fails the test unless `TINYNODE_SKIP_NAT_LAB=1` says to skip it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::natlab::{Lab, SERVE_ADDR};
use common::netns::lab_or_skip;
use common::{Running, field, new_identity, require_tool, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

fn member(lab: &Lab, ns: &str, ip: &str, args: &[&str]) -> Running {
    let bind = format!("{ip}:0");
    let mut all = args.to_vec();
    all.extend([
        "--bootstrap",
        SERVE_ADDR,
        "--bind",
        &bind,
        "--json",
        "--no-mainline",
        "--no-lan",
    ]);
    lab.spawn(ns, &all, false)
}

/// `expose` in `a` of `target` (a service in `a`) and `connect` in `b`
/// at `listen`; returns both once `connect` is connected, with its path.
fn forward(lab: &Lab, code: &str, target: &str, listen: &str) -> (Running, Running, String) {
    let expose = member(lab, "a", "10.1.0.2", &["expose", code, "--tcp", target]);
    let connect = member(lab, "b", "10.2.0.2", &["connect", code, "--listen", listen]);
    wait_for(&connect, "listening", LIMIT, &mut Vec::new());
    let connected = wait_for(&connect, "connected", LIMIT, &mut Vec::new());
    let path = field(&connected, "path").unwrap_or_default().to_owned();
    (expose, connect, path)
}

/// Python's `http.server` in namespace `a` on 127.0.0.1:8000, serving
/// `dir`, once it listens.
fn http_server(lab: &Lab, python: &Path, dir: &Path) -> Running {
    let http = lab.spawn_program(
        "a",
        &[],
        python.to_str().unwrap(),
        &[
            "-u",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            dir.to_str().unwrap(),
            "8000",
        ],
    );
    let ready = http.next_line(LIMIT);
    assert!(ready.contains("Serving HTTP"), "{ready}");
    http
}

/// Runs `program args` inside the lab's namespace `ns`; its output.
fn run_in(lab: &Lab, ns: &str, program: &Path, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", &lab.ns(ns)])
        .arg(program)
        .args(args)
        .output()
        .expect("run in the namespace")
}

#[test]
fn curl_reaches_an_http_server_behind_two_nats_directly_and_through_a_relay() {
    let curl = require_tool("curl", "curl");
    let python = require_tool("python3", "python3");
    let Some(lab) = lab_or_skip(Lab::build("fwh"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tinynode-fwlab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(dir.join("file.bin"), &body).unwrap();
    let _http = http_server(&lab, &python, &dir);
    let _serve = lab.serve_relay(&[], &[]);
    for (round, symmetric) in [(0, false), (1, true)] {
        lab.nat("nat1", symmetric);
        lab.nat("nat2", symmetric);
        let code = format!("forward lab http {round}");
        let listen = format!("127.0.0.1:{}", 8080 + round);
        let (_expose, _connect, path) = forward(&lab, &code, "web=127.0.0.1:8000", &listen);
        assert_eq!(path, if symmetric { "relay" } else { "direct" });
        let output = run_in(
            &lab,
            "b",
            &curl,
            &[
                "-sS",
                "--fail",
                "--max-time",
                "60",
                &format!("http://{listen}/file.bin"),
            ],
        );
        assert!(
            output.status.success(),
            "curl ({path}): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.stdout == body,
            "{path}: {} bytes",
            output.stdout.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_ssh_session_goes_through_a_forward_between_two_nats() {
    let sshd = require_tool("sshd", "openssh-server");
    let ssh = require_tool("ssh", "openssh-client");
    let keygen = require_tool("ssh-keygen", "openssh-client");
    let Some(lab) = lab_or_skip(Lab::build("fws"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tinynode-fwssh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    for key in ["host", "client"] {
        let status = Command::new(&keygen)
            .args(["-q", "-t", "ed25519", "-N", "", "-f", &path(key)])
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::fs::copy(path("client.pub"), path("authorized_keys")).unwrap();
    let config = format!(
        "ListenAddress 127.0.0.1:2222\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\n\
         UsePAM no\n",
        path("host"),
        path("authorized_keys"),
        path("sshd.pid")
    );
    std::fs::write(path("sshd_config"), config).unwrap();
    // sshd wants its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let sshd = lab.spawn_program(
        "a",
        &[],
        sshd.to_str().unwrap(),
        &["-D", "-e", "-f", &path("sshd_config")],
    );
    sshd.wait_stderr("Server listening", LIMIT);
    let _serve = lab.serve_relay(&[], &[]);
    let target = "ssh=127.0.0.1:2222";
    let (_expose, _connect, _) = forward(&lab, "forward lab ssh", target, "127.0.0.1:2022");
    let key = path("client");
    let user = format!("{}@127.0.0.1", whoami());
    let output = run_in(
        &lab,
        "b",
        &ssh,
        &[
            "-p",
            "2022",
            "-i",
            &key,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=30",
            &user,
            "echo",
            "through-tinynode",
        ],
    );
    assert!(
        output.status.success(),
        "ssh: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "through-tinynode"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The user this test runs as (root, for the lab).
fn whoami() -> String {
    let output = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn echoes_datagrams_and_a_refusal_cross_two_nats_directly_and_through_a_relay() {
    let python = require_tool("python3", "python3");
    let Some(lab) = lab_or_skip(Lab::build("fwe"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/forward_echo.py");
    let python = python.to_str().unwrap();
    let echo = lab.spawn_program("a", &[], python, &["-u", script, "serve", "7000", "7001"]);
    assert_eq!(echo.next_line(LIMIT), "ready");
    // An operator's own relay: no quota, so a hundred megabytes pass.
    let unlimited = ["--relay-rate", "unlimited", "--relay-total", "unlimited"];
    let _serve = lab.serve_relay(&[], &unlimited);
    for (round, symmetric) in [(0, false), (1, true)] {
        lab.nat("nat1", symmetric);
        lab.nat("nat2", symmetric);
        let code = format!("forward lab echo {round}");
        let expose = member(
            &lab,
            "a",
            "10.1.0.2",
            &[
                "expose",
                &code,
                "--tcp",
                "echo=127.0.0.1:7000",
                "--tcp",
                "gone=127.0.0.1:7999",
                "--udp",
                "echo=127.0.0.1:7001",
            ],
        );
        let started = wait_for(&expose, "started", LIMIT, &mut Vec::new());
        let exposer = field(&started, "node_id").expect("node_id").to_owned();
        let connect = |args: &[&str]| {
            let mut all = vec!["connect", code.as_str()];
            all.extend(args);
            let running = member(&lab, "b", "10.2.0.2", &all);
            wait_for(&running, "listening", LIMIT, &mut Vec::new());
            // The path to the exposing member (the other `connect`s sit
            // behind the same NAT and reach each other directly). Between
            // port-restricted NATs it may be the relay first and direct
            // later (the curl test checks direct); behind symmetric ones it
            // can only be the relay.
            let path = loop {
                let line = running.next_line(LIMIT);
                if field(&line, "event") == Some("connected")
                    && field(&line, "peer") == Some(exposer.as_str())
                {
                    break field(&line, "path").unwrap_or_default().to_owned();
                }
            };
            if symmetric {
                assert_eq!(path, "relay");
            }
            running
        };
        let _tcp = connect(&["--listen", "127.0.0.1:8000", "--service", "echo"]);
        let _gone = connect(&["--listen", "127.0.0.1:8001", "--service", "gone"]);
        let _udp = connect(&["--udp-listen", "127.0.0.1:8002", "--service", "echo"]);
        let client = |args: &[&str]| {
            let mut all = vec!["-u", script];
            all.extend(args);
            let output = run_in(&lab, "b", Path::new(python), &all);
            let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if said.is_empty() {
                // A crash says nothing on stdout: keep its reason.
                format!(
                    "nothing on stdout ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            } else {
                said
            }
        };
        let path = if symmetric { "relay" } else { "direct" };
        assert_eq!(
            client(&["tcp", "8000", "100", "1048576"]),
            "tcp ok 100",
            "{path}"
        );
        assert_eq!(client(&["udp", "8002", "50"]), "udp ok 50", "{path}");
        assert_eq!(client(&["refused", "8001"]), "refused ok", "{path}");
        drop(expose);
    }
}

/// The next `event` line of `running` about member `peer`.
fn wait_about(running: &Running, event: &str, peer: &str) -> String {
    loop {
        let line = running.next_line(LIMIT);
        if field(&line, "event") == Some(event) && field(&line, "peer") == Some(peer) {
            return line;
        }
    }
}

#[test]
fn an_allow_listed_expose_that_moves_and_restarts_is_reached_again_and_by_nobody_else() {
    let curl = require_tool("curl", "curl");
    let python = require_tool("python3", "python3");
    let Some(lab) = lab_or_skip(Lab::build("fwm"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tinynode-fwmove-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 13 + i / 97) as u8).collect();
    std::fs::write(dir.join("file.bin"), &body).unwrap();
    let path = |(path, key): (std::path::PathBuf, String)| (path.to_str().unwrap().to_owned(), key);
    let (expose_identity, pi) = path(new_identity(&dir, "pi.key"));
    let (laptop_identity, laptop_key) = path(new_identity(&dir, "laptop.key"));
    let (stranger_identity, stranger_key) = path(new_identity(&dir, "stranger.key"));
    let _http = http_server(&lab, &python, &dir);
    let _serve = lab.serve_relay(&[], &[]);
    let code = "forward lab moving expose";
    // Bound to the wildcard, as a service on a laptop or a Pi is.
    let start_expose = || {
        member(
            &lab,
            "a",
            "0.0.0.0",
            &[
                "expose",
                code,
                "--tcp",
                "127.0.0.1:8000",
                "--identity",
                &expose_identity,
                "--allow",
                &laptop_key,
            ],
        )
    };
    let expose = start_expose();
    let listen = "127.0.0.1:8090";
    let connect = member(
        &lab,
        "b",
        "10.2.0.2",
        &[
            "connect",
            code,
            "--listen",
            listen,
            "--identity",
            &laptop_identity,
        ],
    );
    wait_about(&connect, "connected", &pi);
    let fetch = |ns: &str, max_time: &str| {
        run_in(
            &lab,
            ns,
            &curl,
            &[
                "-sS",
                "--fail",
                "--max-time",
                max_time,
                &format!("http://{listen}/file.bin"),
            ],
        )
    };
    let fetched = || {
        let output = fetch("b", "60");
        assert!(
            output.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout == body, "{} bytes", output.stdout.len());
    };
    fetched();

    // A member with the code but not on the list (on the public side,
    // no NAT at all) gets nothing, and the refusal names its key.
    let stranger = member(
        &lab,
        "pub",
        "198.18.0.1",
        &[
            "connect",
            code,
            "--listen",
            listen,
            "--identity",
            &stranger_identity,
        ],
    );
    wait_for(&stranger, "connected", LIMIT, &mut Vec::new());
    let output = fetch("pub", "5");
    assert!(!output.status.success() && output.stdout.is_empty());
    let refused = wait_for(&expose, "stream_refused", LIMIT, &mut Vec::new());
    assert_eq!(
        field(&refused, "peer"),
        Some(stranger_key.as_str()),
        "{refused}"
    );
    drop(stranger);

    // The host moves: its old address goes, a new one comes (a new DHCP
    // lease behind the same router).
    lab.ip("a", "addr flush dev eth0");
    lab.ip("a", "addr add 10.1.0.3/24 dev eth0");
    lab.ip("a", "route add default via 10.1.0.1");
    let moved = wait_for(&expose, "local_addresses", LIMIT, &mut Vec::new());
    assert!(
        field(&moved, "local_addrs").is_some_and(|a| a.starts_with("10.1.0.3:")),
        "{moved}"
    );
    // The member that moved ended the connection at once and said so:
    // its `Close`, or its new offer if that arrives first (without either,
    // `connect` would notice only when ICE consent ran out).
    let ended = wait_about(&connect, "disconnected", &pi);
    assert!(
        matches!(
            field(&ended, "reason"),
            Some("peer left" | "the peer started a new connection")
        ),
        "{ended}"
    );
    wait_about(&connect, "connected", &pi);
    fetched();

    // Killed and started again with its key: the waiting `connect` finds
    // it again.
    drop(expose);
    let _expose = start_expose();
    wait_about(&connect, "connected", &pi);
    fetched();
    let _ = std::fs::remove_dir_all(&dir);
}
