//! The `reconnect` rows (issue 29): an `expose` killed (`kill -9`, as a
//! crash or a power cut) and started again with the same key; the time
//! from its start to the waiting `connect`'s `connected` to it, medians of
//! five: on loopback through a serve node and through a loopback testnet
//! of the Mainline DHT (the `mainline` crate; the rendezvous cases), and
//! on one bridge of namespaces with LAN beacons only (root).

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use super::common::{Running, field};
use super::{Row, median, native_exe, start_serve};

const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(30);

/// Reads `member`'s lines until one that `wanted` says is it.
fn next_line_where(member: &Running, wanted: impl Fn(&str) -> bool) -> Option<String> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let line = member
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()?;
        if wanted(&line) {
            return Some(line);
        }
    }
}

/// Reads `member`'s lines until a `connected` to `peer`; when it came.
fn connected_to(member: &Running, peer: &str) -> Option<Instant> {
    next_line_where(member, |line| {
        field(line, "event") == Some("connected") && field(line, "peer") == Some(peer)
    })
    .map(|_| Instant::now())
}

/// The key in a member's `started` line.
fn started_key(member: &Running) -> Option<String> {
    let line = next_line_where(member, |line| field(line, "event") == Some("started"))?;
    field(&line, "node_id").map(str::to_owned)
}

/// Restarts `expose` (spawned by `spawn_expose`) `ROUNDS` times and
/// times each reconnection seen by `connect`.
fn restarts(spawn_expose: impl Fn() -> Running, connect: &Running) -> Vec<f64> {
    let mut expose = spawn_expose();
    let Some(key) = started_key(&expose) else {
        return Vec::new();
    };
    if connected_to(connect, &key).is_none() {
        return Vec::new();
    }
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        expose.signal(libc::SIGKILL);
        let _ = expose.wait(LIMIT);
        let start = Instant::now();
        expose = spawn_expose();
        if let Some(at) = connected_to(connect, &key) {
            times.push(at.duration_since(start).as_secs_f64() * 1000.0);
        }
    }
    times
}

fn row(figure: &str, times: Vec<f64>, target_ms: f64) -> Row {
    let runs = times.len();
    if runs < ROUNDS {
        return Row {
            figure: figure.into(),
            value: format!("reconnected in {runs} of {ROUNDS} restarts"),
            target: format!("≤ {:.0} s", target_ms / 1000.0),
            met: Some(false),
        };
    }
    let ms = median(times);
    Row {
        figure: figure.into(),
        value: format!("{ms:.0} ms (median of {ROUNDS}, process start included)"),
        target: format!("≤ {:.0} s", target_ms / 1000.0),
        met: Some(ms <= target_ms),
    }
}

/// The rows.
pub fn reconnect() -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("tinynode-reconnect-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let service = TcpListener::bind("127.0.0.1:0").ok();
    let target = service
        .as_ref()
        .and_then(|s| s.local_addr().ok())
        .map_or_else(|| "127.0.0.1:9".to_owned(), |a| a.to_string());
    let mut rows = Vec::new();
    rows.push(match start_serve() {
        Some((mut serve, addr)) => {
            let code = format!("bench-reconnect-{}-able-acid-acorn-actor", std::process::id());
            let identity = dir.join("loopback.key");
            let member = |args: &[&str]| {
                let mut command = std::process::Command::new(native_exe());
                command
                    .args(args)
                    .args(["--bootstrap", &addr, "--bind", "127.0.0.1:0"])
                    .args(["--no-mainline", "--no-lan", "--json"]);
                Running::spawn(command)
            };
            let connect = member(&["connect", &code, "--listen", "127.0.0.1:0"]);
            let identity = identity.to_str().unwrap_or_default().to_owned();
            let times = restarts(
                || member(&["expose", &code, "--tcp", &target, "--identity", &identity]),
                &connect,
            );
            let _ = serve.kill();
            let _ = serve.wait();
            row(
                "`expose` killed and restarted → the waiting `connect` connected to it again, loopback, through a serve node",
                times,
                5000.0,
            )
        }
        None => row("reconnect through a serve node", Vec::new(), 5000.0),
    });
    let testnet = super::testnet::Testnet::start(8);
    let mainline = testnet.addr(0).to_string();
    let code = format!("bench-reconnect-mainline-{}", std::process::id());
    let identity = dir.join("mainline.key");
    let identity = identity.to_str().unwrap_or_default().to_owned();
    let member = |args: &[&str]| {
        let mut command = std::process::Command::new(native_exe());
        command
            .args(args)
            .args(["--mainline-bootstrap", &mainline, "--bind", "127.0.0.1:0"])
            .args(["--no-lan", "--json"]);
        Running::spawn(command)
    };
    let connect = member(&["connect", &code, "--listen", "127.0.0.1:0"]);
    let times = restarts(
        || member(&["expose", &code, "--tcp", &target, "--identity", &identity]),
        &connect,
    );
    drop(connect);
    rows.push(row(
        "the same through a loopback Mainline testnet (8 nodes of the `mainline` crate), no serve node",
        times,
        5000.0,
    ));
    let figure = "`expose` killed and restarted → `connect` connected again, one bridge of namespaces, LAN beacons only";
    rows.push(
        match super::common::netns::bridge_lab("rcon", &["h1", "h2"]) {
            Ok(lab) => {
                let code = format!("bench-reconnect-lan-{}", std::process::id());
                let identity = dir.join("lan.key");
                let identity = identity.to_str().unwrap_or_default().to_owned();
                let connect = lab.spawn(
                    "h2",
                    &[
                        "connect",
                        &code,
                        "--listen",
                        "127.0.0.1:0",
                        "--bind",
                        "10.9.0.12:0",
                        "--no-mainline",
                        "--json",
                    ],
                    false,
                );
                let times = restarts(
                    || {
                        lab.spawn(
                            "h1",
                            &[
                                "expose",
                                &code,
                                "--tcp",
                                "127.0.0.1:9",
                                "--identity",
                                &identity,
                                "--bind",
                                "10.9.0.11:0",
                                "--no-mainline",
                                "--json",
                            ],
                            false,
                        )
                    },
                    &connect,
                );
                row(figure, times, 2000.0)
            }
            Err(reason) => Row {
                figure: figure.into(),
                value: format!("not run: {reason}"),
                target: "≤ 2 s".into(),
                met: Some(false),
            },
        },
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
    rows
}
