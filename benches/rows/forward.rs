//! The `forward` rows (issue 29), all on loopback through one
//! `tinynode connect` → `tinynode expose` pair and a serve node, medians
//! of three rounds:
//! - 100 TCP connections at once, each echoing 1 MiB, against one
//!   connection echoing 100 MiB through the same pair (many streams should
//!   cost little more than one);
//! - a new connection's first echoed byte (accept → byte back) against
//!   the same straight to the echo server (plain loopback TCP);
//! - 256 MiB one way through a forward against `tinynode pipe` in the
//!   same run;
//! - the resident memory of `expose` holding 100 idle forwarded
//!   connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::pipe_rows::pipe_rate;
use super::{Row, median, native_exe, proc_field, start_serve};

const ROUNDS: usize = 3;
const CONNECTIONS: usize = 100;
const EACH: usize = 1 << 20;
/// New connections timed to their first echoed byte, per round.
const FIRST_BYTES: usize = 50;
/// Bytes of the one-way run (forward and pipe).
const ONE_WAY: u64 = 256 << 20;
/// Most resident memory of an `expose` holding 100 idle connections.
const IDLE_RSS_TARGET_KB: u64 = 16 * 1024;

/// A server on loopback that reads each connection to its end, then
/// answers one byte: a one-way transfer's finish line.
fn sink_server() -> Option<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    thread::spawn(move || {
        for mut connection in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = connection.read(&mut buf) {
                    if n == 0 {
                        let _ = connection.write_all(b"!");
                        break;
                    }
                }
            });
        }
    });
    Some(addr)
}

/// MB/s of `bytes` sent through `addr` to a sink server, until its
/// answer came back.
fn one_way_rate(addr: SocketAddr, bytes: u64) -> Option<f64> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .ok()?;
    let start = Instant::now();
    let chunk = vec![0x17u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n]).ok()?;
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write).ok()?;
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).ok()?;
    Some(bytes as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// Microseconds from a new connection to `addr` to its first echoed
/// byte, median of `count`.
fn first_byte_us(addr: SocketAddr, count: usize) -> Option<f64> {
    let mut times = Vec::new();
    for _ in 0..count {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr).ok()?;
        stream.set_nodelay(true).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        stream.write_all(b"x").ok()?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).ok()?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Some(median(times))
}

/// Peak resident memory (KiB) of process `pid` once it holds `count`
/// connections through `listen`, each having echoed one byte.
fn idle_rss_kb(pid: u32, listen: SocketAddr, count: usize) -> Option<u64> {
    let mut held = Vec::new();
    for _ in 0..count {
        let mut stream = TcpStream::connect(listen).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        stream.write_all(b"x").ok()?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).ok()?;
        held.push(stream);
    }
    Some(proc_field(pid, "status", "VmHWM:"))
}

/// An echo server on loopback, a thread per connection.
fn echo_server() -> Option<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    thread::spawn(move || {
        for mut connection in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = connection.read(&mut buf) {
                    if n == 0 || connection.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = connection.shutdown(Shutdown::Write);
            });
        }
    });
    Some(addr)
}

/// Echoes `len` bytes through `addr`; true when all came back.
fn echo(addr: SocketAddr, len: usize) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    let Ok(mut writer) = stream.try_clone() else {
        return false;
    };
    let sender = thread::spawn(move || {
        let chunk = vec![0x5au8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if writer.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        got += n;
    }
    let _ = sender.join();
    got == len
}

/// `expose` and `connect` in one meeting through a serve node; the
/// processes (serve, expose, connect) and the address `connect` listens
/// at.
fn forward_pair(echo: SocketAddr) -> Option<(Vec<Child>, SocketAddr)> {
    let (serve, addr) = start_serve()?;
    let code = format!("bench-forward-{}-able-acid-acorn-actor", std::process::id());
    let spawn = |args: &[&str]| {
        Command::new(native_exe())
            .args(args)
            .args(["--bootstrap", &addr, "--bind", "127.0.0.1:0"])
            .args(["--no-mainline", "--no-lan", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    };
    let expose = spawn(&["expose", &code, "--tcp", &echo.to_string()])?;
    let mut connect = spawn(&["connect", &code, "--listen", "127.0.0.1:0"])?;
    let stdout = connect.stdout.take()?;
    let mut children = vec![serve, expose, connect];
    // Read on a thread for the whole run: `connect` keeps printing.
    let (lines, received) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let listen = received
        .iter()
        .find(|line| line.contains("\"event\":\"listening\""))
        .and_then(|line| {
            let start = line.find("\"addr\":\"")? + 8;
            line[start..].split('"').next()?.parse().ok()
        });
    match listen {
        Some(listen) => Some((children, listen)),
        None => {
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            None
        }
    }
}

/// Seconds for `connections` clients at once to echo `each` bytes.
fn timed(listen: SocketAddr, connections: usize, each: usize) -> Option<f64> {
    let start = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|_| thread::spawn(move || echo(listen, each)))
        .collect();
    let all = clients
        .into_iter()
        .all(|client| client.join().unwrap_or(false));
    all.then(|| start.elapsed().as_secs_f64())
}

/// What one round measured.
#[derive(Default)]
struct Round {
    many: Vec<f64>,
    one: Vec<f64>,
    first_forward: Vec<f64>,
    first_plain: Vec<f64>,
    forward_rate: Vec<f64>,
    pipe_rate: Vec<f64>,
    idle_rss_kb: Vec<f64>,
}

/// The rows.
pub fn forward() -> Vec<Row> {
    let mut r = Round::default();
    if let (Some(echo_at), Some(sink_at)) = (echo_server(), sink_server()) {
        for _ in 0..ROUNDS {
            if let Some((mut children, listen)) = forward_pair(echo_at) {
                // The first connection waits until the members are connected.
                if echo(listen, 1) {
                    r.one.extend(timed(listen, 1, CONNECTIONS * EACH));
                    r.many.extend(timed(listen, CONNECTIONS, EACH));
                    r.first_forward.extend(first_byte_us(listen, FIRST_BYTES));
                    r.first_plain.extend(first_byte_us(echo_at, FIRST_BYTES));
                    let expose = children[1].id();
                    r.idle_rss_kb
                        .extend(idle_rss_kb(expose, listen, CONNECTIONS).map(|kb| kb as f64));
                }
                stop(&mut children);
            }
            if let Some((mut children, listen)) = forward_pair(sink_at) {
                // The sink answers one byte to any input: connected.
                if echo(listen, 1) {
                    r.forward_rate.extend(one_way_rate(listen, ONE_WAY));
                }
                stop(&mut children);
            }
            r.pipe_rate.extend(pipe_rate(ONE_WAY));
        }
    }
    let complete = |values: &[f64]| (values.len() == ROUNDS).then(|| median(values.to_vec()));
    let incomplete = |figure: String, target: &str, counts: &[usize]| Row {
        figure,
        value: format!("incomplete: {counts:?} of {ROUNDS} rounds"),
        target: target.to_owned(),
        met: None,
    };
    let mut rows = Vec::new();
    let figure = format!(
        "{CONNECTIONS} connections at once each echoing 1 MiB through expose/connect on loopback (medians of {ROUNDS})"
    );
    let target = "≤ 2 × one connection of the same bytes";
    rows.push(match (complete(&r.many), complete(&r.one)) {
        (Some(many), Some(one)) => Row {
            figure,
            value: format!(
                "{many:.1} s; one connection of 100 MiB: {one:.1} s ({:.2} ×)",
                many / one
            ),
            target: target.to_owned(),
            met: Some(many <= 2.0 * one),
        },
        _ => incomplete(figure, target, &[r.many.len(), r.one.len()]),
    });
    let figure = format!(
        "a new connection through the forward: connect → first echoed byte (median of {FIRST_BYTES} × {ROUNDS})"
    );
    let target = "≤ 1 ms on loopback (one round trip of the path: streams_sim)";
    rows.push(
        match (complete(&r.first_forward), complete(&r.first_plain)) {
            (Some(forward), Some(plain)) => Row {
                figure,
                value: format!(
                    "{forward:.0} µs; straight to the echo server: {plain:.0} µs ({:.1} ×)",
                    forward / plain
                ),
                target: target.to_owned(),
                met: Some(forward <= 1000.0),
            },
            _ => incomplete(
                figure,
                target,
                &[r.first_forward.len(), r.first_plain.len()],
            ),
        },
    );
    let figure = format!(
        "{} MiB one way through a forward (medians of {ROUNDS})",
        ONE_WAY >> 20
    );
    let target = "≥ 0.8 × pipe";
    rows.push(match (complete(&r.forward_rate), complete(&r.pipe_rate)) {
        (Some(forward), Some(pipe)) => Row {
            figure,
            value: format!(
                "{forward:.1} MB/s; `pipe` in the same run: {pipe:.1} MB/s ({:.2} ×)",
                forward / pipe
            ),
            target: target.to_owned(),
            met: Some(forward >= 0.8 * pipe),
        },
        _ => incomplete(figure, target, &[r.forward_rate.len(), r.pipe_rate.len()]),
    });
    let figure = format!("peak RSS of `expose` holding {CONNECTIONS} idle forwarded connections");
    let target = format!("≤ {} MB", IDLE_RSS_TARGET_KB / 1024);
    rows.push(match complete(&r.idle_rss_kb) {
        Some(kb) => Row {
            figure,
            value: format!("{:.1} MB", kb / 1024.0),
            target,
            met: Some(kb <= IDLE_RSS_TARGET_KB as f64),
        },
        None => incomplete(figure, &target, &[r.idle_rss_kb.len()]),
    });
    rows
}

/// Kills and reaps `children`.
fn stop(children: &mut [Child]) {
    for child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}
