//! The loss lab, shared by `tests/loss_lab.rs` and the bench: a serve node
//! and three members on one bridge of network namespaces, each member
//! dropping a fraction of the UDP datagrams it receives and the same
//! fraction of those it sends (iptables `statistic` random drops; no
//! netem needed). The members form a full mesh, then one pipes lines to
//! the other two.
//!
//! ```text
//!   s 10.9.0.11 (serve)   m1 .12   m2 .13   m3 .14     bridge br0 in "lan"
//! ```

#![allow(dead_code)] // The bench and the test use different parts.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use super::netns::{Netns, bridge_lab};
use super::{Running, field};

/// The lab's namespaces: the serve node's, then the members'.
pub const HOSTS: [&str; 4] = ["s", "m1", "m2", "m3"];

/// Lines piped in the delivery figure, and the bytes of each (newline
/// left out): about 900 KiB.
pub const LINES: usize = 10_000;
/// Characters per line.
pub const LINE_LEN: usize = 92;

/// The lab, its serve node and three joined members.
pub struct LossLab {
    /// The members (m1, m2, m3) and their node IDs.
    pub members: Vec<(Running, String)>,
    _serve: Running,
    netns: Netns,
}

/// Line `i` of the delivery: its number, then filler to `LINE_LEN`.
pub fn line(i: usize) -> String {
    let head = format!("line {i:05} ");
    format!("{head}{}", "x".repeat(LINE_LEN - head.len()))
}

impl LossLab {
    /// Builds the lab (namespaces tagged `tag`) with `loss` (0.0..1.0)
    /// dropped each way on every member, starts the serve node and the
    /// three members of one meeting; `Err` says why namespaces could not
    /// be made.
    pub fn start(tag: &str, loss: f64) -> Result<LossLab, String> {
        Self::start_with(tag, loss, &[])
    }

    /// [`start`](Self::start) with extra environment variables for the
    /// members (say `DEBUG=true`, to read their decisions from stderr).
    pub fn start_with(tag: &str, loss: f64, env: &[(&str, &str)]) -> Result<LossLab, String> {
        let netns = bridge_lab(tag, &HOSTS)?;
        if loss > 0.0 {
            for host in &HOSTS[1..] {
                netns.drop_udp(host, loss);
            }
        }
        let (serve, members) =
            netns.serve_and_join("s", &HOSTS[1..], &format!("loss lab {tag}"), env);
        Ok(LossLab {
            members,
            _serve: serve,
            netns,
        })
    }

    /// Waits until every member has a channel to both others; the time it
    /// took from now, or `None` after `limit`.
    pub fn wait_for_mesh(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut connected: Vec<HashSet<String>> = vec![HashSet::new(); self.members.len()];
        while start.elapsed() < limit {
            for (i, (member, _)) in self.members.iter().enumerate() {
                while let Ok(line) = member.stdout.try_recv() {
                    match field(&line, "event") {
                        Some("connected") => {
                            connected[i].insert(field(&line, "peer").unwrap_or("").to_owned());
                        }
                        Some("disconnected") => {
                            connected[i].remove(field(&line, "peer").unwrap_or(""));
                        }
                        _ => {}
                    }
                }
            }
            if connected.iter().all(|peers| peers.len() == 2) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Pipes [`LINES`] lines into m1; waits until m2 and m3 have printed
    /// them all. The time from the first write, or the first line that
    /// arrived wrong (missing, out of order, altered) or the count that
    /// arrived by `limit`.
    pub fn deliver(&mut self, limit: Duration) -> Result<Duration, String> {
        let mut bulk = String::with_capacity(LINES * (LINE_LEN + 1));
        for i in 0..LINES {
            bulk.push_str(&line(i));
            bulk.push('\n');
        }
        let mut stdin = self.members[0].0.child.stdin.take().ok_or("no stdin")?;
        let start = Instant::now();
        std::thread::spawn(move || stdin.write_all(bulk.as_bytes()));
        let mut next = [0usize; 2];
        while next.iter().any(|n| *n < LINES) {
            if start.elapsed() > limit {
                return Err(format!(
                    "after {limit:?} m2 had {} and m3 {} lines",
                    next[0], next[1]
                ));
            }
            for (k, (member, _)) in self.members[1..].iter().enumerate() {
                while let Ok(event) = member.stdout.try_recv() {
                    if field(&event, "event") != Some("message") {
                        continue;
                    }
                    let text = field(&event, "text").unwrap_or("");
                    if text != line(next[k]) {
                        return Err(format!(
                            "member {} got {text:?} where line {} was due",
                            k + 2,
                            next[k]
                        ));
                    }
                    next[k] += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(start.elapsed())
    }

    /// The namespaces (for diagnostics).
    pub fn netns(&self) -> &Netns {
        &self.netns
    }
}
