//! The path lab, shared by `tests/path_lab.rs` and the bench: two members
//! whose links pass through a delay line (`delayline.rs`), and a serve
//! node, on one bridge of network namespaces. Each member's link holds
//! frames a quarter of the round trip each way, so member to member the
//! round trip is the one asked for. Optional: random loss on each member
//! (iptables `statistic`, each way) and a bottleneck (`tc tbf`) on the
//! line into m2, which a TCP flow from m1 to m2 can share.
//!
//! ```text
//!   s 10.9.0.11 ── p0 ─┐
//!   m1 10.9.0.12 eth0 ── i1 [delay ns "d"] o1 ── p1 ─┤ br0 in "lan"
//!   m2 10.9.0.13 eth0 ── i2 [delay ns "d"] o2 ── p2 ─┘
//! ```

#![allow(dead_code)] // The bench and the test use different parts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::delayline::{DelayLine, enter_netns};
use super::netns::Netns;
use super::{Running, field};

/// Bytes of each line piped in the delivery (newline left out).
pub const LINE_LEN: usize = 1024;

/// A path between the two members.
#[derive(Clone, Copy, Debug)]
pub struct Path {
    /// Round-trip time from member to member.
    pub rtt: Duration,
    /// Fraction of UDP datagrams each member drops, each way.
    pub loss: f64,
    /// A rate limit on the line into m2, in kbit/s (0: none).
    pub bottleneck_kbit: u32,
}

/// The lab: namespaces, the delay lines, and (once started) the serve
/// node and two members.
pub struct PathLab {
    /// m1 (the sender) and m2, with their node IDs.
    pub members: Vec<(Running, String)>,
    /// The delay lines of m1's link and m2's link.
    pub lines: Vec<DelayLine>,
    serve: Option<Running>,
    netns: Netns,
}

/// Line `i` of a delivery: its number, then filler to [`LINE_LEN`].
pub fn line(i: usize) -> String {
    let head = format!("line {i:06} ");
    format!("{head}{}", "y".repeat(LINE_LEN - head.len()))
}

impl PathLab {
    /// Builds the lab (namespaces tagged `tag`) for `path` and starts the
    /// serve node and both members; `Err` says why namespaces could not
    /// be made.
    pub fn start(tag: &str, path: Path, env: &[(&str, &str)]) -> Result<PathLab, String> {
        let mut lab = Self::network(tag, path)?;
        lab.start_members(tag, env);
        Ok(lab)
    }

    /// Builds the namespaces and delay lines only (for another program's
    /// peers on the same path).
    pub fn network(tag: &str, path: Path) -> Result<PathLab, String> {
        let netns = Netns::create(tag, &["lan", "d", "s", "m1", "m2"])?;
        netns.ip("lan", "link add br0 type bridge mcast_snooping 0");
        netns.ip("lan", "link set br0 up");
        netns.ip(
            "s",
            &format!(
                "link add eth0 type veth peer name p0 netns {}",
                netns.ns("lan")
            ),
        );
        netns.ip("lan", "link set p0 master br0 up");
        netns.ip("s", "addr add 10.9.0.11/24 dev eth0");
        netns.ip("s", "link set eth0 up");
        for (i, host) in [(1, "m1"), (2, "m2")] {
            let delay_ns = netns.ns("d");
            netns.ip(
                host,
                &format!("link add eth0 type veth peer name i{i} netns {delay_ns}"),
            );
            netns.ip(
                "d",
                &format!(
                    "link add o{i} type veth peer name p{i} netns {}",
                    netns.ns("lan")
                ),
            );
            netns.ip("lan", &format!("link set p{i} master br0 up"));
            netns.ip("d", &format!("link set i{i} up"));
            netns.ip("d", &format!("link set o{i} up"));
            netns.ip(host, &format!("addr add 10.9.0.{}/24 dev eth0", 11 + i));
            netns.ip(host, "link set eth0 up");
            if path.loss > 0.0 {
                netns.drop_udp(host, path.loss);
            }
        }
        if path.bottleneck_kbit > 0 {
            // The line into m2: a 20 Mbit/s link holds about 50 ms of queue.
            let rate = path.bottleneck_kbit;
            let limit = rate as usize * 1000 / 8 / 20;
            netns.exec(
                "d",
                &[
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    "i2",
                    "root",
                    "tbf",
                    "rate",
                    &format!("{rate}kbit"),
                    "burst",
                    "16kb",
                    "limit",
                    &limit.to_string(),
                ],
            );
        }
        let quarter = path.rtt / 4;
        let lines = [1, 2]
            .iter()
            .map(|i| {
                DelayLine::start(
                    &netns.ns("d"),
                    &format!("i{i}"),
                    &format!("o{i}"),
                    quarter,
                    quarter,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PathLab {
            members: Vec::new(),
            lines,
            serve: None,
            netns,
        })
    }

    /// Starts tinynode's serve node and the two members.
    fn start_members(&mut self, tag: &str, env: &[(&str, &str)]) {
        let (serve, members) =
            self.netns
                .serve_and_join("s", &["m1", "m2"], &format!("path lab {tag}"), env);
        self.members = members;
        self.serve = Some(serve);
    }

    /// Moves `count` lines of `len` bytes from m1 to m2 with hyperswarm's
    /// stream over hyperdht (`benches/hyperswarm/peer.js`, its modules in
    /// `node_modules`): a testnet on s, m2 listening on a key pair, m1
    /// connecting to it. The time from m1's first write to m2 counting
    /// every byte, or what went wrong.
    pub fn hyperswarm_transfer(
        &self,
        script: &str,
        node_modules: &str,
        count: usize,
        len: usize,
        limit: Duration,
    ) -> Result<Duration, String> {
        const BOOTSTRAP: &str = "10.9.0.11:49737";
        let wait = |peer: &Running, event: &str| -> Result<Instant, String> {
            let until = Instant::now() + limit;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match peer.stdout.recv_timeout(left) {
                    Ok(line) if field(&line, "event") == Some(event) => return Ok(Instant::now()),
                    Ok(_) => {}
                    Err(_) => {
                        let errors: Vec<String> = peer.stderr.try_iter().take(20).collect();
                        return Err(format!("no {event} from hyperswarm: {errors:?}"));
                    }
                }
            }
        };
        let env = [("NODE_PATH", node_modules)];
        let bootstrap = self.netns.spawn_program(
            "s",
            &env,
            "node",
            &[script, "bootstrap", "10.9.0.11", "49737"],
        );
        wait(&bootstrap, "ready")?;
        let topic = format!("path lab {}", std::process::id());
        let bytes = (count * len).to_string();
        let receiver = self.netns.spawn_program(
            "m2",
            &env,
            "node",
            &[script, "receive", BOOTSTRAP, &topic, &bytes],
        );
        wait(&receiver, "ready")?;
        let sender = self.netns.spawn_program(
            "m1",
            &env,
            "node",
            &[
                script,
                "send",
                BOOTSTRAP,
                &topic,
                &count.to_string(),
                &len.to_string(),
            ],
        );
        let start = wait(&sender, "start")?;
        let done = wait(&receiver, "done")?;
        Ok(done - start)
    }

    /// Waits until m1 and m2 report each other connected; the time it
    /// took, or `None` after `limit`.
    pub fn wait_connected(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut connected = [false; 2];
        while start.elapsed() < limit {
            for (i, (member, _)) in self.members.iter().enumerate() {
                while let Ok(line) = member.stdout.try_recv() {
                    match field(&line, "event") {
                        Some("connected") => connected[i] = true,
                        Some("disconnected") => connected[i] = false,
                        _ => {}
                    }
                }
            }
            if connected == [true, true] {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Frames and IP bytes (both directions; each frame's 14-byte
    /// Ethernet header left out, as any link's framing would be) on m1's
    /// link: everything the sender sent and received.
    pub fn wire(&self) -> (u64, u64) {
        let (frames, bytes) = self.lines[0].total();
        (frames, bytes - 14 * frames)
    }

    /// Pipes `count` lines of [`LINE_LEN`] bytes into m1 and waits until
    /// m2 printed them all, in order. The time from the first write, or
    /// what went wrong (a line missing, out of order or altered, or the
    /// count that arrived by `limit`).
    pub fn deliver(&mut self, count: usize, limit: Duration) -> Result<Duration, String> {
        let mut bulk = String::with_capacity(count * (LINE_LEN + 1));
        for i in 0..count {
            bulk.push_str(&line(i));
            bulk.push('\n');
        }
        let mut stdin = self.members[0].0.child.stdin.take().ok_or("no stdin")?;
        let start = Instant::now();
        std::thread::spawn(move || stdin.write_all(bulk.as_bytes()));
        let receiver = &self.members[1].0;
        let mut next = 0;
        while next < count {
            let left = limit.saturating_sub(start.elapsed());
            let Ok(event) = receiver.stdout.recv_timeout(left) else {
                return Err(format!("after {limit:?} m2 had {next} of {count} lines"));
            };
            if field(&event, "event") != Some("message") {
                continue;
            }
            let text = field(&event, "text").unwrap_or("");
            if text != line(next) {
                return Err(format!(
                    "m2 got {:?}… where line {next} was due",
                    &text[..text.len().min(16)]
                ));
            }
            next += 1;
        }
        Ok(start.elapsed())
    }

    /// Starts a TCP flow from m1 to m2 (port 5001) that sends as fast as
    /// it can until the returned flow is dropped; it counts the bytes m2
    /// received.
    pub fn tcp_flow(&self) -> Result<TcpFlow, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let m2 = self.netns.ns("m2");
        let (stop_rx, counted) = (Arc::clone(&stop), Arc::clone(&received));
        std::thread::spawn(move || {
            let listener = enter_netns(&m2)
                .and_then(|()| TcpListener::bind("10.9.0.13:5001").map_err(|e| e.to_string()));
            let listener = match listener {
                Ok(listener) => {
                    let _ = ready_tx.send(Ok(()));
                    listener
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            let mut buf = vec![0u8; 64 * 1024];
            while !stop_rx.load(Ordering::Relaxed) {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        counted.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(_) => {}
                }
            }
        });
        ready_rx.recv().map_err(|_| "no listener".to_owned())??;
        let m1 = self.netns.ns("m1");
        let stop_tx = Arc::clone(&stop);
        std::thread::spawn(move || {
            let Ok(()) = enter_netns(&m1) else { return };
            let Ok(mut stream) = TcpStream::connect("10.9.0.13:5001") else {
                return;
            };
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let chunk = vec![0x5Au8; 64 * 1024];
            while !stop_tx.load(Ordering::Relaxed) {
                let _ = stream.write(&chunk);
            }
        });
        Ok(TcpFlow { stop, received })
    }
}

/// A running TCP flow; stops when dropped.
pub struct TcpFlow {
    stop: Arc<AtomicBool>,
    /// Bytes the receiver has read so far.
    pub received: Arc<AtomicU64>,
}

impl Drop for TcpFlow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
