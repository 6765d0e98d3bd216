//! The benchmark table: `cargo bench --bench bench -- [ROW]...` runs the named
//! rows (all light rows when none is named) and prints one table. Figures
//! are medians of repeated runs where a row repeats; compare ratios, not
//! absolute numbers, on noisy machines.
//!
//! Rows: `size`, `stun`, `connect`, `throughput`, `dht-1000`, `dht-10000` (heavy), `idle`
//! (heavy, a minute of wall time), `mainline` (heavy, two minutes: a loopback
//! testnet of the `mainline` crate), `lan` (network namespaces: needs root),
//! `relay` (the NAT lab: needs root), `loss` (the loss lab at 0, 1, 5 and
//! 15 %: needs root, minutes), `static` (the static builds of
//! `scripts/build-static.sh`, which it runs when they are missing: sizes,
//! musl against glibc side by side, the ARM builds under qemu-user), `paths`
//! (the path lab: 16 MiB through a delay line at 0–200 ms, with loss, and
//! through a 20 Mbit/s bottleneck beside a TCP flow: needs root, minutes),
//! `pipe` (1 GiB through `tinynode pipe` on loopback against hyperswarm and
//! TCP, and `pipe`'s memory with a slow reader: Node.js and npm, minutes),
//! `forward` (through `expose`/`connect`: 100 connections at once against
//! one connection of the same bytes, a new connection's first echoed byte
//! against plain TCP, 256 MiB one way against `pipe`, and `expose`'s memory
//! with 100 idle connections; minutes), `relay-pipe` (64 MiB
//! through `pipe` in the NAT lab, relayed by an unlimited `serve --relay`
//! against direct: needs root, minutes), `reconnect` (an `expose` killed
//! and restarted, until `connect` is connected to it again: through a
//! serve node on loopback, and LAN beacons only in namespaces: root),
//! `transfer` (1 GiB through `send`/`receive` against `pipe`,
//! wormhole-william and magic-wormhole, and a resumed receive: root,
//! minutes).
//! References (the str0m program) are built when missing.

#[path = "../tests/sim/mod.rs"]
mod sim;

#[path = "../tests/common/testnet.rs"]
mod testnet;

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "rows/pipe.rs"]
mod pipe_rows;

#[path = "rows/forward.rs"]
mod forward_rows;

#[path = "rows/relay_pipe.rs"]
mod relay_pipe_rows;

#[path = "rows/reconnect.rs"]
mod reconnect_rows;

#[path = "rows/transfer.rs"]
mod transfer_rows;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sim::Sim;
use tinynode::NodeId;
use tinynode::wire::dht::K;
use tinynode::wire::stun::Attribute;
use tinynode::wire::stun::{Class, Message, MessageEncoder, Method, TransactionId};

/// One line of the table.
struct Row {
    figure: String,
    value: String,
    target: String,
    met: Option<bool>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The reference program (`benches/str0m_reference.rs`), built next to this
/// benchmark by `cargo bench --no-run`; built here when it is missing.
fn reference_exe() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            find_reference().or_else(|| {
                eprintln!("building the str0m reference program");
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                let built = Command::new(cargo)
                    .args(["bench", "--no-run", "--bench", "str0m_reference"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                    .is_ok_and(|s| s.success());
                built.then(find_reference).flatten()
            })
        })
        .clone()
}

/// The reference program next to this benchmark, if built.
fn find_reference() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("str0m_reference-") && path.extension().is_none()
        })
        .max_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
}

/// The release build the benchmark runs (glibc, for this host).
fn native_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tinynode"))
}

fn size() -> Vec<Row> {
    let bytes = std::fs::metadata(native_exe())
        .map(|m| m.len())
        .unwrap_or(0);
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let reference = reference_exe()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    let (value, met) = match reference {
        Some(reference) => {
            let ratio = bytes as f64 / reference as f64;
            let reference_mib = reference as f64 / (1024.0 * 1024.0);
            (
                format!(
                    "{mib:.2} MiB vs minimal str0m program {reference_mib:.2} MiB: {ratio:.2}×"
                ),
                mib <= 4.0 && ratio <= 1.2,
            )
        }
        None => (
            format!("{mib:.2} MiB (the reference program did not build)"),
            false,
        ),
    };
    vec![Row {
        figure: "stripped release binary".into(),
        value,
        target: "≤ 1.2 × the str0m program, ≤ 4 MiB".into(),
        met: Some(met),
    }]
}

/// Peak RSS of the reference program while connected and idle.
fn reference_rss_kb() -> Option<u64> {
    let mut child = Command::new(reference_exe()?)
        .args(["idle", "5"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_secs(4));
    let rss = proc_field(child.id(), "status", "VmHWM:");
    let _ = child.wait();
    Some(rss)
}

/// Nanoseconds per call of `exchange`, median of 9 runs of `rounds` calls.
fn time_per_call(rounds: u32, mut exchange: impl FnMut() -> usize) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..9 {
        let start = Instant::now();
        let mut checksum = 0usize;
        for _ in 0..rounds {
            checksum = checksum.wrapping_add(exchange());
        }
        std::hint::black_box(checksum);
        samples.push(start.elapsed().as_nanos() as f64 / f64::from(rounds));
    }
    median(samples)
}

/// One Binding exchange with tinynode's codec: encode a request with
/// FINGERPRINT, decode it, encode a response with XOR-MAPPED-ADDRESS and
/// FINGERPRINT, decode it and read the address.
fn exchange_tinynode(mapped: std::net::SocketAddr) -> usize {
    let mut request = MessageEncoder::new(Class::Request, Method::Binding, TransactionId([7; 12]));
    request.push_fingerprint();
    let request = request.finish();
    let decoded = Message::decode(&request).expect("request decodes");
    let mut response = MessageEncoder::new(
        Class::SuccessResponse,
        Method::Binding,
        decoded.transaction_id(),
    );
    response
        .push(&Attribute::XorMappedAddress(mapped))
        .push_fingerprint();
    let response = response.finish();
    let decoded = Message::decode(&response).expect("response decodes");
    decoded
        .reflexive_address()
        .map_or(0, |a| usize::from(a.port()))
}

/// The same exchange with the `stun_codec` crate.
fn exchange_stun_codec(mapped: std::net::SocketAddr) -> usize {
    use bytecodec::{DecodeExt, EncodeExt};
    use stun_codec::rfc5389::attributes::{Fingerprint, XorMappedAddress};
    use stun_codec::rfc5389::{Attribute as A, methods::BINDING};
    use stun_codec::{
        Message as M, MessageClass, MessageDecoder, MessageEncoder as E, TransactionId as T,
    };
    let mut request = M::<A>::new(MessageClass::Request, BINDING, T::new([7; 12]));
    let fingerprint = Fingerprint::new(&request).expect("fingerprint");
    request.add_attribute(fingerprint);
    let bytes = E::new().encode_into_bytes(request).expect("encode");
    let decoded = MessageDecoder::<A>::new()
        .decode_from_bytes(&bytes)
        .expect("decode")
        .expect("valid");
    let mut response = M::<A>::new(
        MessageClass::SuccessResponse,
        BINDING,
        decoded.transaction_id(),
    );
    response.add_attribute(XorMappedAddress::new(mapped));
    let fingerprint = Fingerprint::new(&response).expect("fingerprint");
    response.add_attribute(fingerprint);
    let bytes = E::new().encode_into_bytes(response).expect("encode");
    let decoded = MessageDecoder::<A>::new()
        .decode_from_bytes(&bytes)
        .expect("decode")
        .expect("valid");
    decoded
        .get_attribute::<XorMappedAddress>()
        .map_or(0, |a| usize::from(a.address().port()))
}

/// The same exchange with the `stun-rs` crate.
fn exchange_stun_rs(mapped: std::net::SocketAddr) -> usize {
    use stun_rs::attributes::stun::{Fingerprint, XorMappedAddress};
    use stun_rs::methods::BINDING;
    use stun_rs::{MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunMessageBuilder};
    let encoder = MessageEncoderBuilder::default().build();
    let decoder = MessageDecoderBuilder::default().build();
    let mut buffer = [0u8; 128];
    let request = StunMessageBuilder::new(BINDING, MessageClass::Request)
        .with_attribute(Fingerprint::default())
        .build();
    let size = encoder.encode(&mut buffer, &request).expect("encode");
    let (decoded, _) = decoder.decode(&buffer[..size]).expect("decode");
    let response = StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
        .with_transaction_id(*decoded.transaction_id())
        .with_attribute(XorMappedAddress::from(mapped))
        .with_attribute(Fingerprint::default())
        .build();
    let size = encoder.encode(&mut buffer, &response).expect("encode");
    let (decoded, _) = decoder.decode(&buffer[..size]).expect("decode");
    decoded
        .get::<XorMappedAddress>()
        .and_then(|a| a.as_xor_mapped_address().ok())
        .map_or(0, |a| usize::from(a.socket_address().port()))
}

fn stun() -> Vec<Row> {
    let mapped: std::net::SocketAddr = "203.0.113.9:40000".parse().expect("address");
    for exchange in [exchange_tinynode, exchange_stun_codec, exchange_stun_rs] {
        assert_eq!(
            exchange(mapped),
            40000,
            "every codec reads back the mapped address"
        );
    }
    let rounds = 100_000;
    let ours = time_per_call(rounds, || exchange_tinynode(mapped));
    let codec = time_per_call(rounds, || exchange_stun_codec(mapped));
    let rs = time_per_call(rounds, || exchange_stun_rs(mapped));
    let fastest = codec.min(rs);
    vec![Row {
        figure: "STUN Binding request+response, encode and decode".into(),
        value: format!(
            "tinynode {ours:.0} ns, stun_codec {codec:.0} ns, stun-rs {rs:.0} ns; speed vs fastest {:.2}×",
            fastest / ours
        ),
        target: "≥ 1.0 × the fastest; no allocation on decode (tests/decode_allocations.rs)".into(),
        met: Some(ours <= fastest),
    }]
}

fn dht(nodes: usize) -> Vec<Row> {
    let mut sim = Sim::new(0xbe9c_0000 + nodes as u64);
    sim.grow(nodes, Duration::from_millis(5), Duration::from_secs(30));
    let lookups = 100;
    let (mut exact, mut rounds, mut requests) = (0, Vec::new(), Vec::new());
    for _ in 0..lookups {
        let from = sim.rng.below(nodes as u64) as usize;
        let target = NodeId(sim.rng.bytes32());
        let Some((closest, r, q)) = sim.find_node(from, target, Duration::from_secs(10)) else {
            continue;
        };
        if closest == sim.true_closest(&target, K, &sim.id(from)) {
            exact += 1;
        }
        rounds.push(f64::from(r));
        requests.push(f64::from(q));
    }
    let bound = (nodes as f64).log2().ceil();
    let median_rounds = median(rounds);
    vec![Row {
        figure: format!("DHT lookup, {nodes} nodes (simulator)"),
        value: format!(
            "{exact}/{lookups} exact; median {median_rounds} rounds, {} requests",
            median(requests)
        ),
        target: format!("100 % success; Kademlia bound ⌈log₂ n / b⌉ = {bound} rounds (b = 1)"),
        met: Some(exact == lookups && median_rounds <= bound),
    }]
}

/// Reads a child's JSON lines until one contains `needle`.
fn wait_line(child: &mut Child, needle: &str, limit: Duration) -> bool {
    let Some(stdout) = child.stdout.take() else {
        return false;
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    while let Ok(line) = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains(needle) {
            return true;
        }
    }
    false
}

fn proc_field(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    ticks(11) + ticks(12)
}

/// The idle-wakeups row: `wakeups` in `window` of a member that did (or
/// did not) connect first; target at most 2 per second.
fn wakeups_row(figure: &str, wakeups: u64, window: Duration, connected: bool) -> Row {
    let per_second = wakeups as f64 / window.as_secs_f64();
    Row {
        figure: figure.into(),
        value: format!(
            "{per_second:.2} per second ({wakeups} in {} s{})",
            window.as_secs(),
            if connected { "" } else { ", NOT CONNECTED" }
        ),
        target: "≤ 2 per second".into(),
        met: Some(connected && per_second <= 2.0),
    }
}

/// A serve node and three members of one meeting on loopback, all of the
/// build `exe`: the serve node, the other two members, the first member,
/// and whether it reported `connected`.
fn three_member_meeting(exe: &Path, name: &str) -> Option<(Child, Vec<Child>, Child, bool)> {
    let (serve, addr) = start_serve()?;
    let code = format!("bench-{name}-{}", std::process::id());
    let mut members: Vec<Child> = (0..3)
        .filter_map(|_| {
            spawn_exe(
                exe,
                &[
                    "join",
                    &code,
                    "--bootstrap",
                    &addr,
                    "--json",
                    "--bind",
                    "127.0.0.1:0",
                    "--no-stdin",
                    "--no-mainline",
                    "--no-lan",
                ],
            )
        })
        .collect();
    let mut watched = members.remove(0);
    let connected = wait_line(&mut watched, "\"connected\"", Duration::from_secs(30));
    Some((serve, members, watched, connected))
}

fn idle() -> Vec<Row> {
    let Some((mut serve, mut members, mut watched, connected)) =
        three_member_meeting(native_exe(), "idle")
    else {
        return Vec::new();
    };
    // Idle means after the joining phase: the back-off topic lookups (after
    // 1, 2, 4, 8 and 16 s) are over 31 s after joining.
    std::thread::sleep(Duration::from_secs(35));
    let pid = watched.id();
    let (switches, ticks) = (
        proc_field(pid, "status", "voluntary_ctxt_switches:"),
        cpu_ticks(pid),
    );
    let window = Duration::from_secs(60);
    std::thread::sleep(window);
    let wakeups = proc_field(pid, "status", "voluntary_ctxt_switches:") - switches;
    let cpu_ms = (cpu_ticks(pid) - ticks) * 10;
    let rss_kb = proc_field(pid, "status", "VmHWM:");
    for child in members.iter_mut().chain([&mut watched, &mut serve]) {
        let _ = child.kill();
        let _ = child.wait();
    }
    vec![
        wakeups_row(
            "idle wakeups of a member in a 3-member meeting",
            wakeups,
            window,
            connected,
        ),
        Row {
            figure: "CPU time of that member idle for a minute".into(),
            value: format!("{cpu_ms} ms"),
            target: "reported".into(),
            met: None,
        },
        Row {
            figure: "peak RSS of that member".into(),
            value: match reference_rss_kb() {
                Some(reference) => format!(
                    "{:.1} MB vs str0m pair program {:.1} MB",
                    rss_kb as f64 / 1024.0,
                    reference as f64 / 1024.0
                ),
                None => format!(
                    "{:.1} MB (the reference program did not build)",
                    rss_kb as f64 / 1024.0
                ),
            },
            target: "≤ 10 MB".into(),
            met: Some(rss_kb <= 10 * 1024),
        },
    ]
}

/// The reference: the str0m pair program (in-memory signaling, loopback
/// sockets), from building the two `Rtc`s to both channels open.
fn str0m_pair_connect() -> Option<Duration> {
    let output = Command::new(reference_exe()?)
        .args(["idle", "0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let ms: f64 = text
        .strip_prefix("channel open after ")?
        .trim()
        .strip_suffix("ms")?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(ms / 1000.0))
}

/// Starts the benchmark's `tinynode` with piped stdout and no stdin.
fn spawn_tinynode(args: &[&str]) -> Option<Child> {
    spawn_exe(native_exe(), args)
}

/// Starts the build `exe` with piped stdout and no stdin.
fn spawn_exe(exe: &Path, args: &[&str]) -> Option<Child> {
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Starts a serve node on loopback; returns it and the address it printed.
fn start_serve() -> Option<(Child, String)> {
    let mut serve = spawn_tinynode(&["serve", "--bind", "127.0.0.1:0", "--json"])?;
    let line = serve
        .stdout
        .take()
        .and_then(|out| BufReader::new(out).lines().next()?.ok())?;
    let addr = line
        .split("\"local_addr\":\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_owned();
    Some((serve, addr))
}

/// tinynode: a second member's `join` until it reports `connected`, on
/// loopback with a serve node and a first member already running.
fn join_to_connected() -> Option<Duration> {
    let (mut serve, addr) = start_serve()?;
    let code = format!(
        "bench-connect-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let mut first = spawn_tinynode(&[
        "join",
        &code,
        "--bootstrap",
        &addr,
        "--json",
        "--bind",
        "127.0.0.1:0",
        "--no-stdin",
        "--no-mainline",
        "--no-lan",
    ])?;
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let mut second = spawn_tinynode(&[
        "join",
        &code,
        "--bootstrap",
        &addr,
        "--json",
        "--bind",
        "127.0.0.1:0",
        "--no-stdin",
        "--no-mainline",
        "--no-lan",
    ])?;
    let connected = wait_line(&mut second, "\"connected\"", Duration::from_secs(30));
    let took = start.elapsed();
    for child in [&mut first, &mut second, &mut serve] {
        let _ = child.kill();
        let _ = child.wait();
    }
    connected.then_some(took)
}

fn connect() -> Vec<Row> {
    let reference: Vec<f64> = (0..5)
        .filter_map(|_| str0m_pair_connect())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    if reference.is_empty() {
        return vec![Row {
            figure: "second member join → connected".into(),
            value: "the reference program did not build".into(),
            target: "≤ 3 × the bare str0m pair".into(),
            met: None,
        }];
    }
    let reference = median(reference);
    let ours: Vec<f64> = (0..5)
        .filter_map(|_| join_to_connected())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    if ours.is_empty() {
        return vec![Row {
            figure: "second member join → connected".into(),
            value: "did not connect".into(),
            target: "≤ 3 × the bare str0m pair".into(),
            met: Some(false),
        }];
    }
    let ours = median(ours);
    vec![Row {
        figure: "second member join → connected (loopback, serve running)".into(),
        value: format!(
            "{ours:.0} ms vs bare str0m pair {reference:.0} ms: {:.1}×",
            ours / reference
        ),
        target: "≤ 3 × the bare str0m pair".into(),
        met: Some(ours <= 3.0 * reference),
    }]
}

/// Messages and their length (bytes, without the newline) for the
/// throughput row: 16 MiB in 1 KiB text messages.
const BULK_COUNT: usize = 16_384;
const BULK_LEN: usize = 1024;

/// The reference: the str0m pair program sending the same messages between
/// its two threads over loopback sockets; MB/s.
fn str0m_pair_throughput() -> Option<f64> {
    let output = Command::new(reference_exe()?)
        .args(["throughput", &BULK_COUNT.to_string(), &BULK_LEN.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("throughput "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// tinynode: two members of a meeting on loopback; the first's standard
/// input gets the messages as lines (written in one go, as `cat file |`
/// would), the second writes them as `message` events to a file, so no
/// reader process competes for the CPU. MB/s from the first line written to
/// the end marker (sent after the messages, on the same ordered channel)
/// reaching the file.
fn members_throughput(exe: &Path) -> Option<f64> {
    let (mut serve, addr) = start_serve()?;
    let code = format!("bench-throughput-{}", std::process::id());
    let output = std::env::temp_dir().join(format!("tinynode-bench-{}.jsonl", std::process::id()));
    let mut receiver = Command::new(exe)
        .args([
            "join",
            &code,
            "--bootstrap",
            &addr,
            "--json",
            "--bind",
            "127.0.0.1:0",
            "--no-stdin",
            "--no-mainline",
            "--no-lan",
        ])
        .stdout(std::fs::File::create(&output).ok()?)
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut sender = Command::new(exe)
        .args([
            "join",
            &code,
            "--bootstrap",
            &addr,
            "--json",
            "--bind",
            "127.0.0.1:0",
            "--no-mainline",
            "--no-lan",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let file_has = |needle: &str, limit: Duration, poll: Duration| {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if tail(&output, 4096).contains(needle) {
                return true;
            }
            std::thread::sleep(poll);
        }
        false
    };
    let connected = wait_line(&mut sender, "\"connected\"", Duration::from_secs(30))
        && file_has(
            "\"connected\"",
            Duration::from_secs(30),
            Duration::from_millis(10),
        );
    let mut rate = None;
    if let (true, Some(mut input)) = (connected, sender.stdin.take()) {
        let mut bulk = Vec::with_capacity(BULK_COUNT * (BULK_LEN + 1) + 4);
        for _ in 0..BULK_COUNT {
            bulk.extend(std::iter::repeat_n(b'x', BULK_LEN));
            bulk.push(b'\n');
        }
        bulk.extend_from_slice(b"END\n");
        let start = Instant::now();
        std::thread::spawn(move || input.write_all(&bulk));
        if file_has(
            "\"text\":\"END\"",
            Duration::from_secs(60),
            Duration::from_millis(1),
        ) {
            let took = start.elapsed().as_secs_f64();
            let lines = std::fs::read_to_string(&output).unwrap_or_default();
            let messages = lines.matches("\"event\":\"message\"").count();
            rate =
                (messages == BULK_COUNT + 1).then(|| (BULK_COUNT * BULK_LEN) as f64 / took / 1e6);
        }
    }
    for child in [&mut sender, &mut receiver, &mut serve] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_file(&output);
    rate
}

/// The last `len` bytes of a file (empty if it cannot be read).
fn tail(path: &std::path::Path, len: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let size = file.metadata().map_or(0, |m| m.len());
    let mut text = String::new();
    let _ = file
        .seek(SeekFrom::Start(size.saturating_sub(len)))
        .and_then(|_| file.read_to_string(&mut text));
    text
}

fn throughput() -> Vec<Row> {
    let figure = format!(
        "data-channel throughput between two members, loopback ({BULK_COUNT} messages of {BULK_LEN} bytes)"
    );
    let target = "≥ 0.9 × the bare str0m pair".to_string();
    // Interleaved, so a noisy stretch of the machine hits both sides.
    let (mut reference, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        reference.extend(str0m_pair_throughput());
        ours.extend(members_throughput(native_exe()));
    }
    let (value, met) = match (reference.is_empty(), ours.is_empty()) {
        (true, _) => ("the reference program did not build".to_string(), None),
        (false, true) => ("not every message arrived".to_string(), Some(false)),
        (false, false) => {
            let (ours, reference) = (median(ours), median(reference));
            (
                format!(
                    "{ours:.1} MB/s vs bare str0m pair {reference:.1} MB/s: {:.2}×",
                    ours / reference
                ),
                Some(ours >= 0.9 * reference),
            )
        }
    };
    vec![Row {
        figure,
        value,
        target,
        met,
    }]
}

/// A Mainline member of `code` bootstrapping from `mainline` only.
fn join_mainline(code: &str, mainline: &str) -> Option<Child> {
    spawn_tinynode(&[
        "join",
        code,
        "--mainline-bootstrap",
        mainline,
        "--bind",
        "127.0.0.1:0",
        "--json",
        "--no-lan",
        "--no-stdin",
    ])
}

/// Two members started together, Mainline testnet only: spawn → both
/// report `connected`.
fn mainline_pair_connect(mainline: &str, run: usize) -> Option<Duration> {
    let code = format!("bench-mainline-{}-{run}", std::process::id());
    let start = Instant::now();
    let mut a = join_mainline(&code, mainline)?;
    let mut b = join_mainline(&code, mainline)?;
    let (sender, receiver) = std::sync::mpsc::channel();
    let mut waiters = Vec::new();
    for child in [&mut a, &mut b] {
        let Some(stdout) = child.stdout.take() else {
            continue;
        };
        let sender = sender.clone();
        waiters.push(std::thread::spawn(move || {
            let connected = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.contains("\"connected\""));
            let _ = sender.send(connected.then(Instant::now));
        }));
    }
    drop(sender);
    let mut last = None;
    for _ in 0..2 {
        match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(at)) => last = Some(at),
            _ => {
                last = None;
                break;
            }
        }
    }
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
    for waiter in waiters {
        let _ = waiter.join();
    }
    last.map(|at| at - start)
}

/// The Mainline rows: join → connected through a loopback testnet of an
/// independent implementation, and an idle member's wakeups and RSS with
/// Mainline on.
fn mainline() -> Vec<Row> {
    // A fresh testnet per run: the crate's first node lists earlier runs'
    // (departed, read-only) members to later lookups.
    let times: Vec<f64> = (0..5)
        .filter_map(|run| {
            let testnet = testnet::Testnet::start(8);
            mainline_pair_connect(&testnet.addr(0).to_string(), run)
        })
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let testnet = testnet::Testnet::start(8);
    let bootstrap = testnet.addr(0).to_string();
    let connected_runs = times.len();
    let connect_ms = median(times);
    let code = format!("bench-mainline-idle-{}", std::process::id());
    let mut other = join_mainline(&code, &bootstrap);
    let mut watched = join_mainline(&code, &bootstrap);
    let connected = watched
        .as_mut()
        .is_some_and(|w| wait_line(w, "\"connected\"", Duration::from_secs(30)));
    // Lookups back off to one a minute about 63 s after joining.
    std::thread::sleep(Duration::from_secs(70));
    let pid = watched.as_ref().map_or(0, Child::id);
    let switches = proc_field(pid, "status", "voluntary_ctxt_switches:");
    let window = Duration::from_secs(60);
    std::thread::sleep(window);
    let wakeups = proc_field(pid, "status", "voluntary_ctxt_switches:") - switches;
    let rss_kb = proc_field(pid, "status", "VmHWM:");
    for child in [&mut other, &mut watched].into_iter().flatten() {
        let _ = child.kill();
        let _ = child.wait();
    }
    vec![
        Row {
            figure: "two members started together → both `connected`, Mainline testnet only (8 nodes of the mainline crate, loopback)".into(),
            value: format!("{connect_ms:.0} ms (median of {connected_runs} of 5, process start included)"),
            target: "≤ 1 s".into(),
            met: Some(connected_runs == 5 && connect_ms <= 1000.0),
        },
        wakeups_row(
            "idle wakeups of a member with Mainline on (2-member meeting, from 70 s after joining)",
            wakeups,
            window,
            connected,
        ),
        Row {
            figure: "peak RSS of that member".into(),
            value: format!("{:.1} MB", rss_kb as f64 / 1024.0),
            target: "≤ 6 MB".into(),
            met: Some(rss_kb > 0 && rss_kb <= 6 * 1024),
        },
    ]
}

/// Two members on one bridge of namespaces, LAN beacons only, started
/// together: spawn → both report `connected`, median of 5 (needs root).
fn lan() -> Vec<Row> {
    let figure = "two members on one bridge, LAN beacons only, started together → both `connected`";
    let lab = match common::netns::bridge_lab("bench", &["h1", "h2"]) {
        Ok(lab) => lab,
        Err(reason) => {
            return vec![Row {
                figure: figure.into(),
                value: format!("not run: {reason}"),
                target: "≤ 0.5 s".into(),
                met: Some(false),
            }];
        }
    };
    let mut times = Vec::new();
    for run in 0..5 {
        let code = format!("bench-lan-{}-{run}", std::process::id());
        let start = Instant::now();
        let members: Vec<common::Running> = ["h1", "h2"]
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let bind = format!("10.9.0.{}:0", 11 + i);
                lab.spawn(
                    host,
                    &[
                        "join",
                        &code,
                        "--bind",
                        &bind,
                        "--no-mainline",
                        "--json",
                        "--no-stdin",
                    ],
                    false,
                )
            })
            .collect();
        let deadline = start + Duration::from_secs(10);
        let mut connected = [false, false];
        while connected.contains(&false) && Instant::now() < deadline {
            for (i, member) in members.iter().enumerate() {
                while let Ok(line) = member.stdout.try_recv() {
                    connected[i] |= line.contains("\"connected\"");
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if !connected.contains(&false) {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let runs = times.len();
    let ms = median(times);
    vec![Row {
        figure: figure.into(),
        value: format!("{ms:.0} ms (median of {runs} of 5, process start included)"),
        target: "≤ 0.5 s".into(),
        met: Some(runs == 5 && ms <= 500.0),
    }]
}

/// The NAT lab's serve node.
const LAB_SERVE: &str = "198.18.0.1:3478";

/// Reads `member`'s lines until one contains every needle; the line.
fn lab_wait(member: &common::Running, needles: &[&str], limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    while let Ok(line) = member
        .stdout
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        if needles.iter().all(|n| line.contains(n)) {
            return Some(line);
        }
    }
    None
}

/// Messages of the lab's throughput figure: 1 MiB in 1 KiB lines, four
/// seconds at a relay pair's quota.
const LAB_BULK_COUNT: usize = 1024;

/// One run in the NAT lab: `b` joins 2 s after `a`; the time from `b`'s
/// start to its `connected` (with `path`), then MB/s of 1 MiB piped from
/// `a` to `b`.
fn lab_run(lab: &common::natlab::Lab, run: usize, path: &str) -> Option<(f64, f64)> {
    let code = format!("bench-relay-{}-{run}-{path}", std::process::id());
    let mut a = lab.join("a", "10.1.0.2", &code, LAB_SERVE);
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let b = lab.join("b", "10.2.0.2", &code, LAB_SERVE);
    let wanted = format!("\"path\":\"{path}\"");
    let Some(_) = lab_wait(&b, &["\"connected\"", &wanted], Duration::from_secs(20)) else {
        eprintln!("relay bench: run {run} ({path}): no connected event with that path");
        return None;
    };
    let connect_ms = start.elapsed().as_secs_f64() * 1000.0;
    lab_wait(&a, &["\"connected\""], Duration::from_secs(10))?;
    let mut bulk = Vec::with_capacity(LAB_BULK_COUNT * (BULK_LEN + 1) + 4);
    for _ in 0..LAB_BULK_COUNT {
        bulk.extend(std::iter::repeat_n(b'x', BULK_LEN));
        bulk.push(b'\n');
    }
    bulk.extend_from_slice(b"END\n");
    let mut input = a.child.stdin.take()?;
    let start = Instant::now();
    std::thread::spawn(move || input.write_all(&bulk));
    let Some(_) = lab_wait(&b, &["\"text\":\"END\""], Duration::from_secs(60)) else {
        eprintln!("relay bench: run {run} ({path}): the piped lines did not all arrive");
        return None;
    };
    let rate = (LAB_BULK_COUNT * BULK_LEN) as f64 / start.elapsed().as_secs_f64() / 1e6;
    Some((connect_ms, rate))
}

/// Relayed against direct, in one run of the NAT lab: members behind a
/// port-restricted NAT and a symmetric one (`--random-fully`) through a
/// `serve --relay` node, and the same members with both NATs
/// port-restricted (direct).
fn relay() -> Vec<Row> {
    let figures = [
        "NAT lab: second member join → connected, relayed through `serve --relay` vs direct",
        "NAT lab: 1 MiB piped a → b, relayed vs direct",
    ];
    let lab = match common::natlab::Lab::build("bench") {
        Ok(lab) => lab,
        Err(reason) => {
            return figures
                .iter()
                .map(|f| Row {
                    figure: (*f).into(),
                    value: format!("not run: {reason}"),
                    target: "measured".into(),
                    met: Some(false),
                })
                .collect();
        }
    };
    let mut results = std::collections::BTreeMap::<&str, (Vec<f64>, Vec<f64>)>::new();
    // Interleaved, so a noisy stretch of the machine hits both paths. A
    // fresh serve node each run: earlier runs' members, dead now, would
    // sit in its routing table and slow every lookup by their timeouts.
    for run in 0..5 {
        for (path, random) in [("direct", false), ("relay", true)] {
            lab.nat("nat2", random);
            let serve = lab.spawn(
                "pub",
                &[
                    "serve",
                    "--bind",
                    LAB_SERVE,
                    "--relay",
                    "--no-mainline",
                    "--json",
                ],
                false,
            );
            let _ = serve.stdout.recv_timeout(Duration::from_secs(10));
            let result = lab_run(&lab, run, path);
            drop(serve);
            if let Some((ms, rate)) = result {
                let entry = results.entry(path).or_default();
                entry.0.push(ms);
                entry.1.push(rate);
            }
        }
    }
    let (direct, relayed) = (
        results.remove("direct").unwrap_or_default(),
        results.remove("relay").unwrap_or_default(),
    );
    let runs = (direct.0.len(), relayed.0.len());
    if runs.0 == 0 || runs.1 == 0 {
        return figures
            .iter()
            .map(|f| Row {
                figure: (*f).into(),
                value: format!(
                    "connected in {} direct and {} relayed runs of 5",
                    runs.0, runs.1
                ),
                target: "every run".into(),
                met: Some(false),
            })
            .collect();
    }
    let (d_ms, r_ms) = (median(direct.0), median(relayed.0));
    let (d_rate, r_rate) = (median(direct.1), median(relayed.1));
    let quota = tinynode::RelayLimits::OPEN.pair_rate as f64 / 1e6;
    vec![
        Row {
            figure: figures[0].into(),
            value: format!(
                "{r_ms:.0} ms vs {d_ms:.0} ms direct: {:.1}× (median of {}/{} runs, process start included)",
                r_ms / d_ms,
                runs.1,
                runs.0
            ),
            target: "relayed ≤ 2 s".into(),
            met: Some(runs.1 == 5 && r_ms <= 2000.0),
        },
        Row {
            figure: figures[1].into(),
            value: format!(
                "{:.0} KiB/s relayed vs {d_rate:.1} MB/s direct (the relay's pair quota: {:.0} KiB/s)",
                r_rate * 1e6 / 1024.0,
                quota * 1e6 / 1024.0
            ),
            target: "relayed ≥ 0.5 × the pair quota".into(),
            met: Some(r_rate >= 0.5 * quota),
        },
    ]
}

/// The static builds `scripts/build-static.sh` makes, native first.
const STATIC_TARGETS: [&str; 3] = [
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "armv7-unknown-linux-musleabihf",
];

/// The static build of `target`, running the build script when any is
/// missing.
fn static_exe(target: &str) -> Option<PathBuf> {
    let path = |t: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(t)
            .join("release/tinynode")
    };
    if !STATIC_TARGETS.iter().all(|t| path(t).is_file()) {
        eprintln!("building the static binaries (scripts/build-static.sh)");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-static.sh");
        let built = Command::new(script).status().is_ok_and(|s| s.success());
        if !built {
            return None;
        }
    }
    Some(path(target)).filter(|p| p.is_file())
}

/// Peak RSS (kB) of a member of a 3-member meeting of the build `exe`,
/// 10 s after it connected.
fn member_rss_kb(exe: &Path) -> Option<u64> {
    let (mut serve, mut members, mut watched, connected) = three_member_meeting(exe, "rss")?;
    std::thread::sleep(Duration::from_secs(10));
    let rss = proc_field(watched.id(), "status", "VmHWM:");
    for child in members.iter_mut().chain([&mut watched, &mut serve]) {
        let _ = child.kill();
        let _ = child.wait();
    }
    connected.then_some(rss)
}

/// Time to full mesh printed by `exe demo` (run under qemu-user, through
/// binfmt_misc, for a foreign architecture).
fn demo_mesh_seconds(exe: &Path) -> Option<f64> {
    let output = Command::new(exe).arg("demo").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.contains("all connections after"))?;
    let seconds = line.split_whitespace().rev().nth(1)?;
    (output.status.success() && text.contains("messages delivered      6/6"))
        .then(|| seconds.parse().ok())
        .flatten()
}

/// The static builds: size of each, and the native musl build against the
/// glibc build side by side (idle RSS, throughput, interleaved runs); the
/// ARM builds' demo under emulation (that it runs, and how long the mesh
/// took there: emulation says nothing about memory or speed on a real
/// board).
fn static_builds() -> Vec<Row> {
    let mut rows = Vec::new();
    for target in STATIC_TARGETS {
        let Some(exe) = static_exe(target) else {
            rows.push(Row {
                figure: format!("static binary, {target}"),
                value: "did not build (scripts/build-static.sh)".into(),
                target: "≤ 4 MiB".into(),
                met: Some(false),
            });
            continue;
        };
        let bytes = std::fs::metadata(&exe).map_or(0, |m| m.len());
        let mib = bytes as f64 / (1024.0 * 1024.0);
        rows.push(Row {
            figure: format!("static binary, {target}"),
            value: format!("{mib:.2} MiB ({bytes} bytes, stripped)"),
            target: "≤ 4 MiB".into(),
            met: Some(mib <= 4.0),
        });
    }
    if let Some(musl) = static_exe(STATIC_TARGETS[0]) {
        let (mut glibc_rss, mut musl_rss) = (Vec::new(), Vec::new());
        let (mut glibc_rate, mut musl_rate) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            glibc_rss.extend(member_rss_kb(native_exe()).map(|kb| kb as f64));
            musl_rss.extend(member_rss_kb(&musl).map(|kb| kb as f64));
            glibc_rate.extend(members_throughput(native_exe()));
            musl_rate.extend(members_throughput(&musl));
        }
        let all = [&glibc_rss, &musl_rss, &glibc_rate, &musl_rate];
        if all.iter().all(|v| !v.is_empty()) {
            let (glibc_rss, musl_rss) = (median(glibc_rss), median(musl_rss));
            let (glibc_rate, musl_rate) = (median(glibc_rate), median(musl_rate));
            rows.push(Row {
                figure: "peak RSS of a member of a 3-member meeting, static musl x86-64".into(),
                value: format!(
                    "{:.1} MB vs glibc build {:.1} MB: {:.2}×",
                    musl_rss / 1024.0,
                    glibc_rss / 1024.0,
                    musl_rss / glibc_rss
                ),
                target: "≤ 6 MB".into(),
                met: Some(musl_rss <= 6.0 * 1024.0),
            });
            rows.push(Row {
                figure: format!(
                    "data-channel throughput, static musl x86-64 ({BULK_COUNT} × {BULK_LEN} B)"
                ),
                value: format!(
                    "{musl_rate:.1} MB/s vs glibc build {glibc_rate:.1} MB/s: {:.2}×",
                    musl_rate / glibc_rate
                ),
                target: "reported (musl's allocator)".into(),
                met: None,
            });
        }
    }
    for target in &STATIC_TARGETS[1..] {
        let value = match static_exe(target).and_then(|exe| demo_mesh_seconds(&exe)) {
            Some(seconds) => format!("demo passes; full mesh of 3 after {seconds:.2} s"),
            None => "demo failed (is qemu-user registered with binfmt_misc?)".into(),
        };
        rows.push(Row {
            figure: format!("{target} under qemu-user"),
            value: value.clone(),
            target: "runs".into(),
            met: Some(value.starts_with("demo passes")),
        });
    }
    rows
}

/// Rounds per loss rate in the `loss` rows, unless `TINYNODE_LOSS_ROUNDS`
/// says otherwise: random loss makes single runs vary by seconds.
const LOSS_ROUNDS: usize = 5;

/// The loss lab (`tests/common/losslab.rs`, needs root) at 0, 1, 5 and
/// 15 % loss each way on every member: time to the full mesh of three, and
/// to deliver 10,000 lines (about 900 KiB) from one member to the other
/// two; [`LOSS_ROUNDS`] fresh labs per rate, median and range, one run.
fn loss() -> Vec<Row> {
    let rounds = std::env::var("TINYNODE_LOSS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(LOSS_ROUNDS);
    let mut rows = Vec::new();
    for percent in [0u32, 1, 5, 15] {
        let mut meshes = Vec::new();
        let mut deliveries = Vec::new();
        for round in 0..rounds {
            let tag = format!("b{percent}r{round}");
            let lab = common::losslab::LossLab::start(&tag, f64::from(percent) / 100.0);
            let mut lab = match lab {
                Ok(lab) => lab,
                Err(reason) => {
                    rows.push(Row {
                        figure: "loss lab".into(),
                        value: format!("cannot run: {reason}"),
                        target: "—".into(),
                        met: None,
                    });
                    return rows;
                }
            };
            let mesh = lab.wait_for_mesh(Duration::from_secs(180));
            meshes.push(mesh);
            deliveries.push(mesh.and_then(|_| lab.deliver(Duration::from_secs(600)).ok()));
        }
        let (mesh_target, deliver_target) = match percent {
            5 => (Some(2.0), Some(2.0)),
            15 => (Some(6.0), Some(10.0)),
            _ => (None, None),
        };
        let summary = |runs: &[Option<Duration>]| -> (String, Option<f64>) {
            let done: Vec<f64> = runs.iter().flatten().map(Duration::as_secs_f64).collect();
            if done.is_empty() {
                return ("did not happen".into(), None);
            }
            let low = done.iter().copied().fold(f64::INFINITY, f64::min);
            let high = done.iter().copied().fold(0.0, f64::max);
            let mid = median(done.clone());
            let missing = runs.len() - done.len();
            let text = format!(
                "{mid:.2} s (median of {}; {low:.2}–{high:.2} s{})",
                runs.len(),
                if missing > 0 {
                    format!("; {missing} did not happen")
                } else {
                    String::new()
                }
            );
            (text, (missing == 0).then_some(mid))
        };
        let met = |median: Option<f64>, target: Option<f64>| {
            target.map(|t| median.is_some_and(|m| m <= t))
        };
        let (mesh_text, mesh_median) = summary(&meshes);
        rows.push(Row {
            figure: format!("loss lab, {percent} % each way: full mesh of 3"),
            value: mesh_text,
            target: mesh_target.map_or("reported".into(), |t| format!("≤ {t} s")),
            met: met(mesh_median, mesh_target),
        });
        let (deliver_text, deliver_median) = summary(&deliveries);
        rows.push(Row {
            figure: format!(
                "loss lab, {percent} % each way: {} lines (~900 KiB) to both others",
                common::losslab::LINES
            ),
            value: deliver_text,
            target: deliver_target.map_or("reported".into(), |t| format!("≤ {t} s")),
            met: met(deliver_median, deliver_target),
        });
    }
    rows
}

/// Runs of each path in the `paths` rows.
const PATH_ROUNDS: usize = 3;
/// The hyperswarm release the `paths` rows compare with (issue 27).
const HYPERSWARM: &str = "hyperswarm@4.17.2";

/// `node_modules` with hyperswarm for `benches/hyperswarm/peer.js`,
/// installed with npm into `target/hyperswarm-bench` when missing.
fn hyperswarm_modules() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hyperswarm-bench");
    let modules = dir.join("node_modules");
    if modules.join("hyperswarm").is_dir() && modules.join("hyperdht").is_dir() {
        return Ok(modules);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    eprintln!("installing {HYPERSWARM} with npm into {}", dir.display());
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(HYPERSWARM)
        .status()
        .map_err(|e| format!("npm: {e} (install Node.js and npm)"))?;
    if !status.success() {
        return Err(format!("npm install {HYPERSWARM} failed"));
    }
    Ok(modules)
}

/// One transfer's figures: payload rate (MB/s), wire bytes per payload
/// byte, and with a TCP flow the payload's and TCP's shares of the link.
struct PathRun {
    rate: f64,
    wire: f64,
    shares: Option<(f64, f64)>,
}

/// One transfer of `lines` × [`common::pathlab::LINE_LEN`] bytes through
/// a fresh lab: tinynode's (`hyperswarm` `None`) or hyperswarm's.
fn path_run(
    tag: &str,
    path: common::pathlab::Path,
    with_tcp: bool,
    hyperswarm: Option<&Path>,
) -> Result<Option<PathRun>, String> {
    use common::pathlab::{LINE_LEN, PathLab};
    use std::sync::atomic::Ordering;
    const LINES: usize = 16 * 1024;
    let mut lab = match hyperswarm {
        None => PathLab::start(tag, path, &[])?,
        Some(_) => PathLab::network(tag, path)?,
    };
    if hyperswarm.is_none() && lab.wait_connected(Duration::from_secs(60)).is_none() {
        return Ok(None);
    }
    let tcp = with_tcp.then(|| lab.tcp_flow().expect("tcp flow"));
    if let Some(tcp) = &tcp {
        // TCP first fills the bottleneck.
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until && tcp.received.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let tcp_before = tcp.as_ref().map(|t| t.received.load(Ordering::Relaxed));
    let (_, before) = lab.wire();
    let limit = Duration::from_secs(300);
    let took = match hyperswarm {
        None => lab.deliver(LINES, limit),
        Some(modules) => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/hyperswarm/peer.js");
            lab.hyperswarm_transfer(
                &script.to_string_lossy(),
                &modules.to_string_lossy(),
                LINES,
                LINE_LEN,
                limit,
            )
        }
    };
    let Ok(took) = took else {
        return Ok(None);
    };
    let (_, after) = lab.wire();
    let payload = (LINES * LINE_LEN) as f64;
    let shares = match (&tcp, tcp_before) {
        (Some(tcp), Some(before)) => {
            let moved = tcp.received.load(Ordering::Relaxed) - before;
            let link = f64::from(path.bottleneck_kbit) * 1000.0 / 8.0 * took.as_secs_f64();
            Some((payload / link, moved as f64 / link))
        }
        _ => None,
    };
    Ok(Some(PathRun {
        rate: payload / took.as_secs_f64() / 1e6,
        wire: (after - before) as f64 / payload,
        shares,
    }))
}

/// The medians of some runs, as text: rate, and wire ratio or link shares.
fn path_summary(runs: &[PathRun]) -> (f64, f64, String) {
    let rate = median(runs.iter().map(|r| r.rate).collect());
    let wire = median(runs.iter().map(|r| r.wire).collect());
    let shares: Vec<(f64, f64)> = runs.iter().filter_map(|r| r.shares).collect();
    let text = if shares.is_empty() {
        format!("{rate:.2} MB/s at {wire:.3} × payload on the wire")
    } else {
        let ours = median(shares.iter().map(|s| s.0).collect());
        let tcp = median(shares.iter().map(|s| s.1).collect());
        format!(
            "{rate:.2} MB/s: {:.0} % of the link in payload, TCP {:.0} %",
            ours * 100.0,
            tcp * 100.0
        )
    };
    (rate, wire, text)
}

/// The path lab (`tests/common/pathlab.rs`, needs root): 16 MiB as 16,384
/// lines of 1 KiB from one member to the other through a userspace delay
/// line, at each path of issue 27, against hyperswarm's stream over
/// hyperdht through the same lab (`benches/hyperswarm/peer.js`); fresh
/// labs, the two interleaved, medians of [`PATH_ROUNDS`]: payload rate,
/// and IP bytes on the sender's link per payload byte. The bottleneck
/// rows run alone and beside a TCP flow through the same 20 Mbit/s limit.
fn paths() -> Vec<Row> {
    use common::pathlab::Path as LabPath;
    let ms = Duration::from_millis;
    let paths = [
        ("no delay", ms(0), 0.0, 0, false),
        ("20 ms RTT", ms(20), 0.0, 0, false),
        ("50 ms RTT", ms(50), 0.0, 0, false),
        ("100 ms RTT", ms(100), 0.0, 0, false),
        ("200 ms RTT", ms(200), 0.0, 0, false),
        ("50 ms, 1 % loss each way", ms(50), 0.01, 0, false),
        ("50 ms, 20 Mbit/s bottleneck", ms(50), 0.0, 20_000, false),
        (
            "50 ms, 20 Mbit/s bottleneck + TCP",
            ms(50),
            0.0,
            20_000,
            true,
        ),
    ];
    let unavailable = |reason: String| Row {
        figure: "path lab".into(),
        value: format!("cannot run: {reason}"),
        target: "—".into(),
        met: None,
    };
    let modules = match hyperswarm_modules() {
        Ok(modules) => modules,
        Err(reason) => return vec![unavailable(reason)],
    };
    let mut rows = Vec::new();
    for (i, (name, rtt, loss, kbit, with_tcp)) in paths.into_iter().enumerate() {
        let path = LabPath {
            rtt,
            loss,
            bottleneck_kbit: kbit,
        };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..PATH_ROUNDS {
            for (runs, reference) in [(&mut ours, None), (&mut theirs, Some(modules.as_path()))] {
                let tag = format!("p{i}{}{round}", if reference.is_some() { 'h' } else { 't' });
                match path_run(&tag, path, with_tcp, reference) {
                    Ok(Some(run)) => runs.push(run),
                    Ok(None) => {}
                    Err(reason) => return vec![unavailable(reason)],
                }
            }
        }
        if ours.is_empty() || theirs.is_empty() {
            rows.push(Row {
                figure: format!("path lab, {name}: 16 MiB"),
                value: format!(
                    "{} of {PATH_ROUNDS} tinynode and {} hyperswarm transfers completed",
                    ours.len(),
                    theirs.len()
                ),
                target: "—".into(),
                met: Some(false),
            });
            continue;
        }
        let (rate, wire, text) = path_summary(&ours);
        let (reference, _, reference_text) = path_summary(&theirs);
        let clean = loss == 0.0 && kbit == 0;
        let link = f64::from(kbit) * 1000.0 / 8.0 / 1e6;
        let tcp_share = ours
            .iter()
            .filter_map(|r| r.shares)
            .map(|s| s.1)
            .collect::<Vec<_>>();
        let (target, met) = if with_tcp {
            let tcp = median(tcp_share);
            ("TCP keeps ≥ 45 % of the link".to_owned(), tcp >= 0.45)
        } else if kbit > 0 {
            (
                "≥ 85 % of the link in payload".to_owned(),
                rate >= 0.85 * link,
            )
        } else if clean && rtt.is_zero() {
            ("≤ 1.15 × payload on the wire".to_owned(), wire <= 1.15)
        } else if clean {
            (
                "≥ hyperswarm; ≤ 1.15 × payload on the wire".to_owned(),
                rate >= reference && wire <= 1.15,
            )
        } else {
            ("≥ hyperswarm".to_owned(), rate >= reference)
        };
        rows.push(Row {
            figure: format!("path lab, {name}: 16 MiB (medians of {PATH_ROUNDS})"),
            value: format!(
                "{text}; hyperswarm {reference_text} (tinynode {:.2} ×)",
                rate / reference
            ),
            target,
            met: Some(met),
        });
    }
    rows
}

/// Meeting derivation (`protocol-spec.md` §4.2): `Meeting::derive` at
/// the v2 work factor, beside the v1 work factor (30,000 rounds of the same
/// PBKDF2) measured in the same run; medians of five.
fn derive() -> Vec<Row> {
    let time = |run: &dyn Fn()| {
        median(
            (0..5)
                .map(|_| {
                    let start = Instant::now();
                    run();
                    start.elapsed().as_secs_f64() * 1000.0
                })
                .collect(),
        )
    };
    let v2 = time(&|| {
        tinynode::Meeting::derive("bench derive").expect("meeting");
    });
    let v1 = time(&|| {
        let mut out = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(30_000).expect("non-zero"),
            b"tinynode/meeting/pbkdf2/v1",
            b"bench derive",
            &mut out,
        );
    });
    let rounds = tinynode::wire::PBKDF2_ITERATIONS;
    vec![Row {
        figure: format!("meeting derivation, {rounds} PBKDF2 rounds (v1's 30,000 in the same run)"),
        value: format!(
            "{v2:.0} ms ({v1:.1} ms; {:.1} M rounds/s)",
            f64::from(rounds) / v2 / 1000.0
        ),
        target: "≤ 500 ms on x86-64".into(),
        met: Some(v2 <= 500.0),
    }]
}

fn main() {
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let light = [
        "size",
        "stun",
        "connect",
        "throughput",
        "dht-1000",
        "derive",
    ];
    let wanted = |name: &str| {
        if asked.is_empty() {
            light.contains(&name)
        } else {
            asked.iter().any(|a| a == name)
        }
    };
    let mut rows = Vec::new();
    if wanted("size") {
        rows.extend(size());
    }
    if wanted("stun") {
        rows.extend(stun());
    }
    if wanted("connect") {
        rows.extend(connect());
    }
    if wanted("throughput") {
        rows.extend(throughput());
    }
    if wanted("dht-1000") {
        rows.extend(dht(1000));
    }
    if wanted("dht-10000") {
        rows.extend(dht(10_000));
    }
    if wanted("idle") {
        rows.extend(idle());
    }
    if wanted("mainline") {
        rows.extend(mainline());
    }
    if wanted("lan") {
        rows.extend(lan());
    }
    if wanted("relay") {
        rows.extend(relay());
    }
    if wanted("static") {
        rows.extend(static_builds());
    }
    if wanted("loss") {
        rows.extend(loss());
    }
    if wanted("derive") {
        rows.extend(derive());
    }
    if wanted("paths") {
        rows.extend(paths());
    }
    if wanted("forward") {
        rows.extend(forward_rows::forward());
    }
    if wanted("relay-pipe") {
        rows.extend(relay_pipe_rows::relay_pipe());
    }
    if wanted("reconnect") {
        rows.extend(reconnect_rows::reconnect());
    }
    if wanted("pipe") {
        rows.extend(pipe_rows::pipe());
    }
    if wanted("transfer") {
        rows.extend(transfer_rows::transfer());
    }
    println!("| figure | measured | target | met |");
    println!("|---|---|---|---|");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "—",
        };
        println!(
            "| {} | {} | {} | {met} |",
            row.figure, row.value, row.target
        );
    }
}
