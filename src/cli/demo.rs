//! `tinynode demo`: a whole small network on this machine, as child
//! processes of this binary on loopback, with no outside servers.
//!
//! One `serve` node and N `join` members with a random meeting code. The
//! demo prints discovery and connections as they happen, has every member
//! send one line once the mesh is complete, checks that every other member
//! received it, prints a summary and exits 0, or non-zero with the reason.
//! The children are stopped when the demo ends, however it ends.

use super::logger::{errln, outln};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::json_field;

/// How long the demo waits for the mesh and the messages.
pub const DEMO_TIMEOUT: Duration = Duration::from_secs(60);

/// Child processes that are killed when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SAFETY: plain kill(2) on our own child; SIGTERM lets it leave cleanly.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// Output line of child `index` (0 is the serve node).
type Line = (usize, String);

fn spawn(
    children: &mut Children,
    index: usize,
    args: &[&str],
    lines: &Sender<Line>,
) -> Result<ChildStdin, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start a node: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from a node")?;
    let stdin = child.stdin.take().ok_or("no stdin for a node")?;
    children.0.push(child);
    let lines = lines.clone();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send((index, line)).is_err() {
                break;
            }
        }
    });
    Ok(stdin)
}

fn next_line(lines: &Receiver<Line>, deadline: Instant, waiting_for: &str) -> Result<Line, String> {
    lines
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .map_err(|_| {
            format!(
                "timed out after {} s waiting for {waiting_for}",
                DEMO_TIMEOUT.as_secs()
            )
        })
}

/// Runs the demo with `nodes` members and meeting `code`; returns the exit code.
pub fn run(nodes: usize, code: &str) -> i32 {
    match demo(nodes, code) {
        Ok(()) => 0,
        Err(reason) => {
            errln!("demo failed: {reason}");
            1
        }
    }
}

fn demo(nodes: usize, code: &str) -> Result<(), String> {
    let start = Instant::now();
    let deadline = start + DEMO_TIMEOUT;
    let (sender, lines) = mpsc::channel();
    let mut children = Children(Vec::new());
    outln!("starting a serve node and {nodes} members of meeting {code:?} on 127.0.0.1");
    spawn(
        &mut children,
        0,
        &["serve", "--bind", "127.0.0.1:0", "--json"],
        &sender,
    )?;
    let (_, started) = next_line(&lines, deadline, "the serve node")?;
    let bootstrap = json_field(&started, "local_addr")
        .ok_or("the serve node did not start")?
        .to_owned();
    outln!("serve node listening on {bootstrap}");

    let mut stdins = Vec::new();
    for member in 1..=nodes {
        let args = [
            "join",
            code,
            "--bootstrap",
            &bootstrap,
            "--bind",
            "127.0.0.1:0",
            "--json",
            "--no-mainline",
            "--no-lan",
        ];
        stdins.push(spawn(&mut children, member, &args, &sender)?);
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut connected: HashMap<usize, HashSet<String>> = HashMap::new();
    let mut first_connection = None;
    let pairs = nodes * (nodes - 1);
    while connected.values().map(HashSet::len).sum::<usize>() < pairs {
        let (member, line) = next_line(&lines, deadline, "every member to connect to every other")?;
        let event = json_field(&line, "event").unwrap_or_default();
        let peer = json_field(&line, "peer").unwrap_or_default().to_owned();
        let name = |names: &HashMap<String, usize>, id: &str| match names.get(id) {
            Some(index) => format!("member {index}"),
            None => format!("peer {}", id.get(..8).unwrap_or(id)),
        };
        match event {
            "started" => {
                let id = json_field(&line, "node_id").unwrap_or_default().to_owned();
                outln!("member {member} is node {}", id.get(..8).unwrap_or(&id));
                names.insert(id, member);
            }
            "peer_discovered" => outln!("member {member} discovered {}", name(&names, &peer)),
            "connected" => {
                let at = start.elapsed();
                first_connection.get_or_insert(at);
                outln!(
                    "member {member} connected to {} at {} ({:.2} s)",
                    name(&names, &peer),
                    json_field(&line, "addr").unwrap_or("?"),
                    at.as_secs_f64()
                );
                connected.entry(member).or_default().insert(peer);
            }
            "connect_failed" | "error" => outln!("member {member}: {line}"),
            _ => {}
        }
    }
    let all_connected = start.elapsed();
    outln!("full mesh: {pairs} channels open");

    for (index, stdin) in stdins.iter_mut().enumerate() {
        writeln!(stdin, "hello from member {}", index + 1)
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot write to member {}: {e}", index + 1))?;
    }
    // Counted by (receiver, sender) pair, each checked against what that
    // sender wrote: a duplicate or a stranger's line cannot stand in for a
    // lost one.
    let mut received: HashSet<(usize, usize)> = HashSet::new();
    while received.len() < pairs {
        let (member, line) = next_line(&lines, deadline, "every message to arrive")?;
        if json_field(&line, "event") != Some("message") {
            continue;
        }
        let text = json_field(&line, "text").unwrap_or_default();
        let sender = json_field(&line, "peer").and_then(|peer| names.get(peer).copied());
        match sender {
            Some(sender) if text == format!("hello from member {sender}") => {
                if !received.insert((member, sender)) {
                    outln!("member {member} received {text:?} again");
                    continue;
                }
                outln!("member {member} received {text:?}");
            }
            _ => outln!("member {member} received {text:?} from an unexpected sender"),
        }
    }
    let delivered = received.len();
    outln!();
    outln!("summary");
    outln!("  members                 {nodes}");
    outln!(
        "  first connection after  {:.2} s",
        first_connection.unwrap_or_default().as_secs_f64()
    );
    outln!(
        "  all connections after   {:.2} s",
        all_connected.as_secs_f64()
    );
    outln!("  messages delivered      {delivered}/{pairs}");
    Ok(())
}
