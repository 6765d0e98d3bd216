//! The `forward` row (issue 29): 100 TCP connections at once, each
//! echoing 1 MiB through `tinynode connect` → `tinynode expose` → an echo
//! server on loopback, against one connection echoing 100 MiB through the
//! same pair in the same run (many streams should cost little more than
//! one), medians of three.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Row, median, native_exe, start_serve};

const ROUNDS: usize = 3;
const CONNECTIONS: usize = 100;
const EACH: usize = 1 << 20;

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
/// processes and the address `connect` listens at.
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

/// The row.
pub fn forward() -> Vec<Row> {
    let figure = format!(
        "{CONNECTIONS} connections at once each echoing 1 MiB through expose/connect on loopback (medians of {ROUNDS})"
    );
    let target = "≤ 2 × one connection of the same bytes".to_owned();
    let (mut many, mut one) = (Vec::new(), Vec::new());
    if let Some(server) = echo_server() {
        for _ in 0..ROUNDS {
            let Some((mut children, listen)) = forward_pair(server) else {
                continue;
            };
            // The first connection waits until the members are connected.
            if echo(listen, 1) {
                one.extend(timed(listen, 1, CONNECTIONS * EACH));
                many.extend(timed(listen, CONNECTIONS, EACH));
            }
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let row = if many.len() == ROUNDS && one.len() == ROUNDS {
        let (many, one) = (median(many), median(one));
        Row {
            figure,
            value: format!(
                "{many:.1} s; one connection of 100 MiB: {one:.1} s ({:.2} ×)",
                many / one
            ),
            target,
            met: Some(many <= 2.0 * one),
        }
    } else {
        Row {
            figure,
            value: format!(
                "incomplete: {} of {ROUNDS} rounds of many, {} of one",
                many.len(),
                one.len()
            ),
            target,
            met: None,
        }
    };
    vec![row]
}
