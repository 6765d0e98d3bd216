//! The `pipe` rows (issue 28): 1 GiB through `tinynode pipe` on loopback
//! against hyperswarm 4.17's stream over hyperdht (a loopback testnet,
//! `benches/hyperswarm/peer.js`) and against TCP over loopback (the
//! ceiling), medians of three, all in one run; and the peak RSS of each
//! `pipe` process while 256 MiB go to a reader paced at 10 MB/s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Row, hyperswarm_modules, median, native_exe, proc_field, start_serve};

const GIB: u64 = 1 << 30;
const ROUNDS: usize = 3;
/// Bytes and pace of the slow-reader run.
const SLOW_BYTES: u64 = 256 << 20;
const SLOW_RATE: f64 = 10e6;
/// Most resident memory of a `pipe` process (issue 28).
const RSS_TARGET_KB: u64 = 16 * 1024;

/// What one `pipe` transfer gave: payload rate (MB/s, first byte at the
/// reader to its end) and each process's peak resident set (KiB).
struct PipeRun {
    rate: f64,
    sender_kb: u64,
    receiver_kb: u64,
}

/// Moves `bytes` from one `tinynode pipe` to another on loopback, the
/// reader paced at `pace` bytes/s if given.
fn pipe_run(bytes: u64, pace: Option<f64>) -> Option<PipeRun> {
    let (mut serve, addr) = start_serve()?;
    let code = format!("bench-pipe-{}-able-acid-acorn-actor", std::process::id());
    let spawn = |stdin: Stdio, stdout: Stdio| {
        Command::new(native_exe())
            .args(["pipe", &code, "--bootstrap", &addr, "--bind", "127.0.0.1:0"])
            .args(["--no-mainline", "--no-lan", "--json"])
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .ok()
    };
    let mut receiver = spawn(Stdio::null(), Stdio::piped())?;
    let mut sender = spawn(Stdio::piped(), Stdio::null())?;
    let mut input = sender.stdin.take()?;
    thread::spawn(move || {
        let chunk = vec![0x42u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if input.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n as u64;
        }
    });
    let done = Arc::new(AtomicBool::new(false));
    let peaks: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let sampler = {
        let (done, peaks) = (Arc::clone(&done), peaks.clone());
        let pids = [sender.id(), receiver.id()];
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for (pid, peak) in pids.iter().zip(&peaks) {
                    peak.fetch_max(proc_field(*pid, "status", "VmHWM:"), Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut output = receiver.stdout.take()?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut first) = (0u64, None);
    while got < bytes {
        let Ok(n) = output.read(&mut buf) else { break };
        if n == 0 {
            break;
        }
        let start = *first.get_or_insert_with(Instant::now);
        got += n as u64;
        if let Some(pace) = pace {
            let due = start + Duration::from_secs_f64(got as f64 / pace);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    let took = first?.elapsed();
    let exited = wait_exit(&mut receiver, Duration::from_secs(60))
        && wait_exit(&mut sender, Duration::from_secs(60));
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let _ = serve.kill();
    let _ = serve.wait();
    (got == bytes && exited).then(|| PipeRun {
        rate: bytes as f64 / took.as_secs_f64() / 1e6,
        sender_kb: peaks[0].load(Ordering::Relaxed),
        receiver_kb: peaks[1].load(Ordering::Relaxed),
    })
}

/// MB/s of `bytes` through `tinynode pipe` on loopback (for other rows'
/// references).
pub fn pipe_rate(bytes: u64) -> Option<f64> {
    pipe_run(bytes, None).map(|run| run.rate)
}

/// Waits for `child` to exit with 0 within `limit` (killed otherwise).
fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// 1 GiB over a TCP connection on loopback: MB/s.
fn tcp_run() -> Option<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    let writer = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).ok()?;
        let chunk = vec![0x42u8; 64 * 1024];
        for _ in 0..GIB / chunk.len() as u64 {
            stream.write_all(&chunk).ok()?;
        }
        Some(())
    });
    let (mut stream, _) = listener.accept().ok()?;
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    while got < GIB {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    writer.join().ok()??;
    (got == GIB).then(|| GIB as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// 1 GiB over hyperswarm's stream on a loopback hyperdht testnet: MB/s
/// from the sender's `start` to the receiver's `done`.
fn hyperswarm_run(modules: &Path, round: usize) -> Option<f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/hyperswarm/peer.js");
    let port = 49_800 + round as u16;
    let bootstrap = format!("127.0.0.1:{port}");
    let topic = format!("pipe-bench-{}-{round}", std::process::id());
    let node = |args: &[&str]| {
        Command::new("node")
            .arg(&script)
            .args(args)
            .env("NODE_PATH", modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    };
    let mut children = Vec::new();
    let mut testnet = node(&["bootstrap", "127.0.0.1", &port.to_string()])?;
    let testnet_lines = lines(&mut testnet)?;
    children.push(testnet);
    let result = (|| {
        wait_event(&testnet_lines, "ready")?;
        let mut receive = node(&["receive", &bootstrap, &topic, &GIB.to_string()])?;
        let receive_lines = lines(&mut receive)?;
        children.push(receive);
        wait_event(&receive_lines, "ready")?;
        let line_count = (GIB / 65_536).to_string();
        let mut send = node(&["send", &bootstrap, &topic, &line_count, "65536"])?;
        let send_lines = lines(&mut send)?;
        children.push(send);
        wait_event(&send_lines, "start")?;
        let start = Instant::now();
        wait_event(&receive_lines, "done")?;
        Some(GIB as f64 / start.elapsed().as_secs_f64() / 1e6)
    })();
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

fn lines(child: &mut Child) -> Option<std::sync::mpsc::Receiver<String>> {
    let stdout = child.stdout.take()?;
    let (sender, receiver) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Some(receiver)
}

fn wait_event(lines: &std::sync::mpsc::Receiver<String>, event: &str) -> Option<()> {
    let needle = format!("\"event\":\"{event}\"");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()?;
        if line.contains(&needle) {
            return Some(());
        }
    }
}

/// The rows: rates against both references, and the slow reader's RSS.
pub fn pipe() -> Vec<Row> {
    let modules = hyperswarm_modules();
    let (mut ours, mut theirs, mut tcp) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        ours.extend(pipe_run(GIB, None).map(|r| r.rate));
        if let Ok(modules) = &modules {
            theirs.extend(hyperswarm_run(modules, round));
        }
        tcp.extend(tcp_run());
    }
    let mut rows = Vec::new();
    let rate = |values: &[f64]| (values.len() == ROUNDS).then(|| median(values.to_vec()));
    match (rate(&ours), rate(&theirs), rate(&tcp)) {
        (Some(ours), Some(theirs), Some(tcp)) => rows.push(Row {
            figure: format!("1 GiB through `pipe` on loopback (medians of {ROUNDS})"),
            value: format!(
                "{ours:.1} MB/s; hyperswarm {theirs:.1} MB/s (tinynode {:.2} ×); TCP {tcp:.0} MB/s (tinynode {:.3} ×)",
                ours / theirs,
                ours / tcp
            ),
            target: "≥ hyperswarm".to_owned(),
            met: Some(ours >= theirs),
        }),
        (ours, theirs, tcp) => rows.push(Row {
            figure: "1 GiB through `pipe` on loopback".to_owned(),
            value: format!(
                "incomplete: {} of {ROUNDS} tinynode, {} hyperswarm ({}), {} TCP runs; medians {ours:?} / {theirs:?} / {tcp:?}",
                ours.map_or(0, |_| ROUNDS),
                theirs.map_or(0, |_| ROUNDS),
                modules.as_ref().err().map_or("installed", String::as_str),
                tcp.map_or(0, |_| ROUNDS),
            ),
            target: "≥ hyperswarm".to_owned(),
            met: None,
        }),
    }
    rows.push(match pipe_run(SLOW_BYTES, Some(SLOW_RATE)) {
        Some(run) => Row {
            figure: "peak RSS of each `pipe` process, 256 MiB to a reader at 10 MB/s".to_owned(),
            value: format!(
                "sender {} KiB, receiver {} KiB",
                run.sender_kb, run.receiver_kb
            ),
            target: format!("≤ {RSS_TARGET_KB} KiB"),
            met: Some(run.sender_kb.max(run.receiver_kb) <= RSS_TARGET_KB),
        },
        None => Row {
            figure: "peak RSS of `pipe` to a slow reader".to_owned(),
            value: "the transfer did not complete".to_owned(),
            target: format!("≤ {RSS_TARGET_KB} KiB"),
            met: None,
        },
    });
    rows
}
