//! The `transfer` rows (issue 30), in one run, medians of three:
//! - 1 GiB from `tinynode send` to `tinynode receive` on loopback through
//!   a serve node, against `tinynode pipe` of 1 GiB and against
//!   `wormhole-william` and `magic-wormhole` (Debian packages) with their
//!   own mailbox server and transit relay (`pip install
//!   magic-wormhole-mailbox-server magic-wormhole-transit-relay`). The
//!   wormholes run in a network namespace of their own with only loopback
//!   and a veth pair inside it (wormhole-william offers no loopback
//!   address as a direct hint), whose `/etc/hosts` (`ip netns exec`'s
//!   `/etc/netns/NAME/hosts`) points the public transit and mailbox names
//!   at 127.0.0.1: wormhole-william has no option for its transit relay
//!   and stops when the name does not resolve. Nothing leaves the
//!   machine. Each run uses a nameplate of its own (a mailbox holds a
//!   nameplate until both sides are done with it).
//! - resume: a 1 GiB receive killed at half and run again; what the
//!   sender sends the second time.
//!
//! Wall-clock times are from the receiving command's start to its exit
//! (rendezvous included, as a user sees it); `tinynode`'s own transfer
//! time (its `done` event: from taking the offer to the last file in
//! place) is what is compared with `pipe` (first byte to last).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pipe_rows::pipe_rate;
use super::{Row, median, native_exe, start_serve};

const GIB: u64 = 1 << 30;
const ROUNDS: usize = 3;
const LIMIT: Duration = Duration::from_secs(600);

/// A scratch directory removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 1 GiB of bytes that do not compress, at `path`.
fn make_file(path: &Path) -> bool {
    let Ok(mut file) = std::fs::File::create(path) else {
        return false;
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..GIB >> 20 {
        for byte in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            byte.copy_from_slice(&state.to_le_bytes()[..byte.len()]);
        }
        if file.write_all(&block).is_err() {
            return false;
        }
    }
    true
}

/// A tinynode command of a meeting through the serve node at `serve`.
fn member(serve: &str, args: &[&str]) -> Command {
    let mut command = Command::new(native_exe());
    command
        .args(args)
        .args(["--bootstrap", serve, "--bind", "127.0.0.1:0"])
        .args(["--no-mainline", "--no-lan", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Reads `child`'s stderr on a thread: its lines.
fn stderr_lines(child: &mut Child) -> Option<std::sync::mpsc::Receiver<String>> {
    let stderr = child.stderr.take()?;
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    Some(received)
}

/// The first line with `"event":"EVENT"`.
fn wait_event(lines: &std::sync::mpsc::Receiver<String>, event: &str) -> Option<String> {
    let needle = format!("\"event\":\"{event}\"");
    let deadline = Instant::now() + LIMIT;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()?;
        if line.contains(&needle) {
            return Some(line);
        }
    }
}

fn number(line: &str, key: &str) -> Option<u64> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// One tinynode transfer of `file` into `out`: (wall-clock seconds,
/// transfer seconds from the receiver's `done`).
fn tinynode_run(file: &Path, out: &Path, round: usize) -> Option<(f64, f64)> {
    let (mut serve, addr) = start_serve()?;
    let code = format!(
        "bench-transfer-{}-{round}-able-acid-acorn",
        std::process::id()
    );
    let file_arg = file.to_str()?;
    let mut sender = member(&addr, &["send", file_arg, "--code", &code])
        .spawn()
        .ok()?;
    let start = Instant::now();
    let out_arg = out.to_str()?;
    let mut receiver = member(&addr, &["receive", &code, "--out", out_arg, "--yes"])
        .spawn()
        .ok()?;
    let lines = stderr_lines(&mut receiver)?;
    let done = wait_event(&lines, "done");
    let ok = wait_limited(&mut receiver);
    let wall = start.elapsed().as_secs_f64();
    wait_limited(&mut sender);
    stop(&mut serve);
    let _ = std::fs::remove_file(out.join(file.file_name()?));
    let ms = number(&done?, "ms")?;
    ok.then_some((wall, ms as f64 / 1000.0))
}

/// A network namespace with only loopback, removed on drop.
struct Namespace(String);

impl Namespace {
    fn new() -> Option<Self> {
        let name = format!("tinynode-wormhole-{}", std::process::id());
        // A namespace left by an earlier run of this process id.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let made = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .ok()?;
        if !made.success() {
            return None;
        }
        let namespace = Self(name);
        let ip = |args: &str| {
            Command::new("ip")
                .arg("-n")
                .arg(&namespace.0)
                .args(args.split_whitespace())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ready = ip("link set lo up")
            && ip("link add v0 type veth peer name v1")
            && ip("addr add 10.99.0.1/24 dev v0")
            && ip("addr add 10.99.0.2/24 dev v1")
            && ip("link set v0 up")
            && ip("link set v1 up");
        let etc = namespace.etc();
        let hosts = std::fs::create_dir_all(&etc).is_ok()
            && std::fs::write(
                etc.join("hosts"),
                "127.0.0.1 localhost\n127.0.0.1 transit.magic-wormhole.io relay.magic-wormhole.io\n",
            )
            .is_ok();
        (ready && hosts).then_some(namespace)
    }

    /// Files `ip netns exec` mounts over `/etc` for this namespace.
    fn etc(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.0)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0, program]);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_dir_all(self.etc());
    }
}

/// Waits for `child` for at most `LIMIT` (killed after): whether it
/// exited with 0.
fn wait_limited(child: &mut Child) -> bool {
    let deadline = Instant::now() + LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                stop(child);
                return false;
            }
        }
    }
}

/// The wormhole servers in `ns`: the mailbox at ws://127.0.0.1:4000/v1 and
/// the transit relay at tcp:127.0.0.1:4001; why not, if they cannot run.
fn wormhole_servers(ns: &Namespace, dir: &Path) -> Result<Vec<Child>, String> {
    let twist = which("twist").ok_or("no `twist` (pip install magic-wormhole-mailbox-server)")?;
    let mut children = Vec::new();
    for (plugin, port) in [
        ("wormhole-mailbox", "tcp:4000"),
        ("transitrelay", "tcp:4001"),
    ] {
        let child = ns
            .command(&twist)
            .args([plugin, "--port", port])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{plugin}: {e}"))?;
        children.push(child);
    }
    // Until both accept connections.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = ns
            .command("python3")
            .args([
                "-c",
                "import socket\nfor p in (4000, 4001): socket.create_connection(('127.0.0.1', p), 1).close()",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(children);
        }
        if Instant::now() > deadline {
            for child in &mut children {
                stop(child);
            }
            return Err("the wormhole mailbox or transit relay did not start".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn which(program: &str) -> Option<String> {
    let output = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then_some(path)
}

/// One wormhole transfer of `file` into `out` with the `send` and
/// `receive` command lines: wall-clock seconds, receiver start to exit.
fn wormhole_run(
    ns: &Namespace,
    program: &str,
    send: &[&str],
    receive: &[&str],
    file: &Path,
    out: &Path,
) -> Option<f64> {
    let mut sender = ns
        .command(program)
        .args(send)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // The sender claims its code first.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let mut receiver = ns
        .command(program)
        .args(receive)
        .current_dir(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // wormhole-william asks; magic-wormhole was told --accept-file.
    if let Some(mut stdin) = receiver.stdin.take() {
        let _ = stdin.write_all(b"y\n");
    }
    let ok = wait_limited(&mut receiver);
    let wall = start.elapsed().as_secs_f64();
    wait_limited(&mut sender);
    let name = file.file_name()?;
    let got = std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(out.join(name));
    (ok && got == GIB).then_some(wall)
}

/// The receiver killed at half of 1 GiB and run again: bytes the sender
/// sent the second time.
fn resume_run(file: &Path, out: &Path) -> Option<u64> {
    let (mut serve, addr) = start_serve()?;
    let code = format!("bench-resume-{}-able-acid-acorn-actor", std::process::id());
    let file_arg = file.to_str()?;
    let mut sender = member(&addr, &["send", file_arg, "--code", &code])
        .spawn()
        .ok()?;
    let sender_lines = stderr_lines(&mut sender)?;
    let out_arg = out.to_str()?;
    let receive = || member(&addr, &["receive", &code, "--out", out_arg, "--yes"]).spawn();
    let mut first = receive().ok()?;
    let part = out.join(format!(".{}.tinynode-part", file.file_name()?.to_str()?));
    let deadline = Instant::now() + LIMIT;
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < GIB / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop(&mut first);
    let mut second = receive().ok()?;
    let confirmed = wait_event(&sender_lines, "receiver_done");
    let ok = wait_limited(&mut second);
    let _ = sender.wait();
    stop(&mut serve);
    let _ = std::fs::remove_file(out.join(file.file_name()?));
    let _ = std::fs::remove_file(&part);
    ok.then(|| number(&confirmed?, "sent")).flatten()
}

/// The rows.
pub fn transfer() -> Vec<Row> {
    let dir = Scratch(
        std::env::temp_dir().join(format!("tinynode-bench-transfer-{}", std::process::id())),
    );
    let file = dir.0.join("gib.bin");
    let out = dir.0.join("out");
    let made = std::fs::create_dir_all(&out).is_ok() && make_file(&file);
    let figure = "1 GiB from `send` to `receive` on loopback (medians of 3)".to_owned();
    let target = "faster than wormhole-william and magic-wormhole; ≥ 0.9 × `pipe`".to_owned();
    if !made {
        return vec![Row {
            figure,
            value: "could not write the 1 GiB file".into(),
            target,
            met: None,
        }];
    }
    let (mut wall, mut transfer, mut pipe) = (Vec::new(), Vec::new(), Vec::new());
    let (mut william, mut magic) = (Vec::new(), Vec::new());
    let namespace = Namespace::new();
    let servers = match &namespace {
        Some(ns) => wormhole_servers(ns, &dir.0),
        None => Err("no network namespace (needs root)".into()),
    };
    let relay = ["--relay-url", "ws://127.0.0.1:4000/v1"];
    let helper = ["--transit-helper", "tcp:127.0.0.1:4001"];
    for round in 0..ROUNDS {
        if let Some((w, t)) = tinynode_run(&file, &out, round) {
            wall.push(w);
            transfer.push(t);
        }
        pipe.extend(pipe_rate(GIB));
        if let (Some(ns), Ok(_)) = (&namespace, &servers) {
            let code = format!("{}-bench-{round}", 11 + round);
            let mut send: Vec<&str> = vec!["send"];
            send.extend(relay);
            send.extend(["--code", &code]);
            let mut receive: Vec<&str> = vec!["receive"];
            receive.extend(relay);
            receive.push(&code);
            william.extend(wormhole_run(
                ns,
                "wormhole-william",
                &send,
                &receive,
                &file,
                &out,
            ));
            let code = format!("{}-bench-{round}", 21 + round);
            let mut send: Vec<&str> = relay.to_vec();
            send.extend(helper);
            send.extend(["send", "--code", &code]);
            let mut receive: Vec<&str> = relay.to_vec();
            receive.extend(helper);
            receive.extend(["receive", "--accept-file", &code]);
            magic.extend(wormhole_run(ns, "wormhole", &send, &receive, &file, &out));
        }
    }
    if let Ok(children) = servers {
        for mut child in children {
            stop(&mut child);
        }
    }
    let mb = |seconds: f64| GIB as f64 / seconds / 1e6;
    let mid = |values: &[f64]| (values.len() == ROUNDS).then(|| median(values.to_vec()));
    let mut rows = Vec::new();
    rows.push(match (mid(&wall), mid(&transfer), mid(&pipe)) {
        (Some(wall), Some(transfer), Some(pipe)) => {
            let w = mid(&william).map(mb);
            let m = mid(&magic).map(mb);
            let ours = mb(wall);
            let shown = |name: &str, rate: Option<f64>| match rate {
                Some(rate) => format!("{name} {rate:.1} MB/s"),
                None => format!("{name} did not run ({})", servers_note(&namespace)),
            };
            Row {
                figure,
                value: format!(
                    "{ours:.1} MB/s wall clock ({:.1} MB/s transfer); {}; {}; `pipe` {pipe:.1} MB/s (transfer {:.2} ×)",
                    mb(transfer),
                    shown("wormhole-william", w),
                    shown("magic-wormhole", m),
                    mb(transfer) / pipe
                ),
                target,
                met: match (w, m) {
                    (Some(w), Some(m)) => Some(ours > w && ours > m && mb(transfer) >= 0.9 * pipe),
                    _ => None,
                },
            }
        }
        _ => Row {
            figure,
            value: format!(
                "incomplete: {} tinynode, {} pipe runs of {ROUNDS}",
                wall.len(),
                pipe.len()
            ),
            target,
            met: None,
        },
    });
    let figure = "resume: 1 GiB receive killed at half, run again: sent the second time".to_owned();
    let target = "≤ half + 1 chunk (1 MiB)".to_owned();
    rows.push(match resume_run(&file, &out) {
        Some(sent) => Row {
            figure,
            value: format!(
                "{:.1} MiB of 1024 ({:.1} %)",
                sent as f64 / (1 << 20) as f64,
                sent as f64 * 100.0 / GIB as f64
            ),
            target,
            met: Some(sent <= GIB / 2 + (1 << 20)),
        },
        None => Row {
            figure,
            value: "the resumed run did not complete".into(),
            target,
            met: None,
        },
    });
    rows
}

/// Why the wormholes may not have run.
fn servers_note(namespace: &Option<Namespace>) -> &'static str {
    if namespace.is_none() {
        "no network namespace"
    } else {
        "see the bench's module doc for what it needs"
    }
}
