//! Helpers for tests that run the real `tinynode` binary and real third-party
//! tools on loopback. Every address used here is 127.0.0.1.

#![allow(dead_code)] // Each test file uses a different subset.

pub mod delayline;
pub mod losslab;
pub mod natlab;
pub mod netns;
pub mod pathlab;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use tinynode::wire::stun::{Class, Message, MessageEncoder, Method, TransactionId};

/// `tinynode join CODE` on loopback with nothing to find and nothing
/// read from stdin (`--bind 127.0.0.1:0 --json --no-mainline --no-lan
/// --no-stdin`): for tests of the process itself.
pub fn lonely_join(code: &str) -> Command {
    let mut command = tinynode();
    command.args([
        "join",
        code,
        "--bind",
        "127.0.0.1:0",
        "--json",
        "--no-mainline",
        "--no-lan",
        "--no-stdin",
    ]);
    command
}

/// A `tinynode` command with the test build of the binary.
pub fn tinynode() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tinynode"))
}

/// The path of a required external tool. Panics with the way to install it:
/// a missing dependency must fail the suite, not skip it.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed; run .ci/run or `apt-get install -y {package}`")
        })
}

/// A loopback UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Sends a STUN Binding request to `server` from a fresh loopback socket and
/// returns the mapped address and the socket's own address, if answered.
pub fn stun_probe(server: SocketAddr, wait: Duration) -> Option<(SocketAddr, SocketAddr)> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(wait)).ok()?;
    let id = TransactionId(*b"probe-txid-1");
    let request = MessageEncoder::new(Class::Request, Method::Binding, id).finish();
    socket.send_to(&request, server).ok()?;
    let mut buf = [0u8; 1500];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    let response = Message::decode(&buf[..len]).ok()?;
    (response.transaction_id() == id).then_some(())?;
    Some((response.reflexive_address()?, socket.local_addr().ok()?))
}

/// Waits until a STUN server answers at `server`, for at most `limit`.
pub fn wait_for_stun(server: SocketAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if stun_probe(server, Duration::from_millis(200)).is_some() {
            return;
        }
    }
    panic!("no STUN server answered at {server} within {limit:?}");
}

/// A child process whose output lines arrive on channels; killed on drop.
pub struct Running {
    pub child: Child,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
}

impl Running {
    /// Starts `command` with piped stdout and stderr and no stdin.
    pub fn spawn(mut command: Command) -> Self {
        command.stdin(Stdio::null());
        Self::spawn_with_stdin(command)
    }

    /// Starts `command` with piped stdout and stderr, keeping the stdin it was given.
    pub fn spawn_with_stdin(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn process");
        let stdout = lines(child.stdout.take().expect("stdout"));
        let stderr = lines(child.stderr.take().expect("stderr"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The next stdout line, waiting at most `limit`.
    pub fn next_line(&self, limit: Duration) -> String {
        self.stdout
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("no stdout line within {limit:?}"))
    }

    /// Waits for a stderr line containing `needle`, for at most `limit`.
    pub fn wait_stderr(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no stderr line containing {needle:?} within {limit:?}"),
            }
        }
    }

    /// Sends `signal` (for example `libc::SIGTERM`).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain kill(2) on our own child's pid.
        let result = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(result, 0, "kill failed");
    }

    /// Waits for the process to exit, for at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process still running after {limit:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Starts `tinynode serve` on an ephemeral loopback port with debug logs and
/// returns it with the address it printed.
pub fn start_serve() -> (Running, SocketAddr) {
    start_serve_with(&[])
}

/// [`start_serve`] with more options (`--relay --no-mainline`, say).
pub fn start_serve_with(options: &[&str]) -> (Running, SocketAddr) {
    let mut command = tinynode();
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(options)
        .env("DEBUG", "true");
    let serve = Running::spawn(command);
    let line = serve.next_line(Duration::from_secs(10));
    let addr = line
        .rsplit_once(" listening on ")
        .and_then(|(_, addr)| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (serve, addr)
}

/// Starts coturn's `turnserver` as a plain STUN server on loopback.
pub fn start_coturn() -> (Running, SocketAddr) {
    let turnserver = require_tool("turnserver", "coturn");
    let port = free_udp_port();
    let mut command = Command::new(turnserver);
    command.args([
        "-n",
        "--stun-only",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--listening-ip",
        "127.0.0.1",
        "--listening-port",
        &port.to_string(),
        "--log-file",
        "stdout",
    ]);
    let coturn = Running::spawn(command);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_stun(addr, Duration::from_secs(10));
    (coturn, addr)
}

/// Who connected to whom: per member ID, the peers it reported `connected`.
pub type Connections = std::collections::HashMap<String, std::collections::HashSet<String>>;

/// Reads the members' (process, node ID) lines until `done` says so or
/// `limit` passes, asserting every `connected` event's `via` is one of
/// `vias`; returns who connected to whom and every line per member.
pub fn watch_connections(
    members: &[&(Running, String)],
    limit: Duration,
    vias: &[&str],
    done: impl Fn(&Connections) -> bool,
) -> (Connections, std::collections::HashMap<String, Vec<String>>) {
    let deadline = Instant::now() + limit;
    let mut connected = Connections::new();
    let mut lines: std::collections::HashMap<String, Vec<String>> = Default::default();
    loop {
        for (member, id) in members {
            while let Ok(line) = member.stdout.try_recv() {
                if field(&line, "event") == Some("connected") {
                    let via = field(&line, "via").unwrap_or_default();
                    assert!(vias.contains(&via), "{line}");
                    let peer = field(&line, "peer").expect("peer").to_owned();
                    connected.entry(id.clone()).or_default().insert(peer);
                }
                lines.entry(id.clone()).or_default().push(line);
            }
        }
        if done(&connected) || Instant::now() >= deadline {
            return (connected, lines);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `member`'s events until one named `event` (each line read is
/// pushed to `seen`); panics after `limit` with what it saw and the
/// member's log.
pub fn wait_for(member: &Running, event: &str, limit: Duration, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match member.stdout.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if field(&line, "event") == Some(event) {
                    return line;
                }
            }
            Err(_) => {
                let log: Vec<String> = member.stderr.try_iter().collect();
                panic!(
                    "no {event} event within {limit:?}; saw {seen:#?}\nits log:\n{}",
                    log.join("\n")
                )
            }
        }
    }
}

/// The value of `"key":"..."` in a one-line JSON object printed by tinynode.
/// The value of `name=` in a `node stats:` line (spec §8), 0 when the
/// line leaves it out (a drop reason that never happened).
pub fn counter(stats: &str, name: &str) -> u64 {
    stats
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// `systemd-analyze verify` of the unit `text` (saved as `file_name`, its
/// `ExecStart` pointed at the test build) finds nothing to say. Where
/// `systemd-analyze` is missing this fails, unless
/// `TINYNODE_SKIP_SYSTEMD=1` says to skip it knowingly.
pub fn verify_unit(text: &str, file_name: &str) {
    let analyze = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("systemd-analyze"))
        .find(|path| path.is_file());
    let Some(analyze) = analyze else {
        assert!(
            std::env::var_os("TINYNODE_SKIP_SYSTEMD").is_some_and(|v| v == "1"),
            "systemd-analyze is missing (apt-get install systemd), or set \
             TINYNODE_SKIP_SYSTEMD=1 to skip this test knowingly"
        );
        println!("SKIPPED (TINYNODE_SKIP_SYSTEMD=1): no systemd-analyze");
        return;
    };
    let dir =
        std::env::temp_dir().join(format!("tinynode-unit-{}-{file_name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let unit = dir.join(file_name);
    let binary = env!("CARGO_BIN_EXE_tinynode");
    std::fs::write(&unit, text.replace("/usr/local/bin/tinynode", binary)).expect("write unit");
    let output = Command::new(analyze)
        .arg("verify")
        .arg(&unit)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "systemd-analyze verify: {said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify has remarks");
}

/// `len` deterministic bytes that do not compress, from `seed`.
pub fn test_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A fresh key file at `dir/name` and the key `tinynode id` prints for
/// it (checked: 64 hex digits, and the short form after them).
pub fn new_identity(dir: &std::path::Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let output = tinynode()
        .args(["id", "--identity"])
        .arg(&path)
        .output()
        .expect("run tinynode id");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let key = text.lines().next().expect("a key line").to_owned();
    assert_eq!(key.len(), 64, "{text}");
    assert!(
        text.contains(&format!("short form: {}", &key[..8])),
        "{text}"
    );
    (path, key)
}
