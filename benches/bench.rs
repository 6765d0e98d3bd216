//! The benchmark table: `cargo bench --bench bench [ROW]...` runs the named
//! rows (all light rows when none is named) and prints one table. Figures
//! are medians of repeated runs where a row repeats; compare ratios, not
//! absolute numbers, on noisy machines.
//!
//! Rows: `size`, `stun`, `dht-1000`, `dht-10000` (heavy), `idle` (heavy, a
//! minute of wall time).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sim::Sim;
use tinynode::dht::id::NodeId;
use tinynode::dht::wire::K;
use tinynode::node::{Command as NodeCommand, Event};
use tinynode::stun::attribute::Attribute;
use tinynode::stun::message::{Class, Message, MessageEncoder, Method, TransactionId};

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

fn size() -> Vec<Row> {
    let bytes = std::fs::metadata(env!("CARGO_BIN_EXE_tinynode"))
        .map(|m| m.len())
        .unwrap_or(0);
    let mib = bytes as f64 / (1024.0 * 1024.0);
    vec![Row {
        figure: "stripped release binary".into(),
        value: format!("{mib:.2} MiB ({bytes} bytes)"),
        target: "≤ 4 MiB".into(),
        met: Some(mib <= 4.0),
    }]
}

fn stun() -> Vec<Row> {
    let id = TransactionId([7; 12]);
    let mapped = "203.0.113.9:40000".parse().expect("address");
    let rounds = 200_000;
    let mut samples = Vec::new();
    for _ in 0..9 {
        let start = Instant::now();
        let mut checksum = 0usize;
        for _ in 0..rounds {
            let mut request = MessageEncoder::new(Class::Request, Method::Binding, id);
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
            checksum += decoded
                .reflexive_address()
                .map_or(0, |a| usize::from(a.port()));
        }
        std::hint::black_box(checksum);
        samples.push(start.elapsed().as_nanos() as f64 / f64::from(rounds));
    }
    vec![Row {
        figure: "STUN request+response encode and decode".into(),
        value: format!("{:.0} ns per exchange (median of 9)", median(samples)),
        target: "≥ 1.0 × the fastest of stun_codec, stun-rs".into(),
        met: None,
    }]
}

fn dht(nodes: usize) -> Vec<Row> {
    let mut sim = Sim::new(0xbe9c_0000 + nodes as u64);
    let first = sim.add_host(None, &[]);
    let bootstrap = [sim.addr(first)];
    for _ in 1..nodes {
        sim.add_host(None, &bootstrap);
        sim.run_for(Duration::from_millis(5));
    }
    sim.run_for(Duration::from_secs(30));
    let lookups = 100;
    let (mut exact, mut rounds, mut requests) = (0, Vec::new(), Vec::new());
    for _ in 0..lookups {
        let from = sim.rng.below(nodes as u64) as usize;
        let target = NodeId(sim.rng.bytes32());
        let before = sim.hosts[from].events.len();
        sim.command(from, NodeCommand::FindNode(target));
        sim.run_for(Duration::from_secs(10));
        let Some((closest, r, q)) =
            sim.hosts[from].events[before..]
                .iter()
                .find_map(|(_, e)| match e {
                    Event::LookupDone {
                        target: t,
                        closest,
                        rounds,
                        requests,
                    } if *t == target => Some((closest.clone(), *rounds, *requests)),
                    _ => None,
                })
        else {
            continue;
        };
        let me = sim.id(from);
        let mut all: Vec<NodeId> = (0..nodes)
            .map(|i| sim.id(i))
            .filter(|id| *id != me)
            .collect();
        all.sort_by_key(|id| id.distance(&target));
        all.truncate(K);
        if closest == all {
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

fn idle() -> Vec<Row> {
    let exe = env!("CARGO_BIN_EXE_tinynode");
    let spawn = |args: &[&str]| {
        Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
    };
    let Ok(mut serve) = spawn(&["serve", "--bind", "127.0.0.1:0", "--json"]) else {
        return Vec::new();
    };
    let line = serve
        .stdout
        .take()
        .and_then(|out| BufReader::new(out).lines().next()?.ok())
        .unwrap_or_default();
    let addr = line
        .split("\"local_addr\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_owned();
    let code = format!("bench-idle-{}", std::process::id());
    let mut members: Vec<Child> = (0..3)
        .filter_map(|_| spawn(&["join", &code, "--bootstrap", &addr, "--json", "--no-stdin"]).ok())
        .collect();
    let watched = members.remove(0);
    let mut watched = watched;
    let connected = wait_line(&mut watched, "\"connected\"", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(5));
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
    let per_second = wakeups as f64 / window.as_secs_f64();
    vec![
        Row {
            figure: "idle wakeups of a member in a 3-member meeting".into(),
            value: format!(
                "{per_second:.2} per second ({wakeups} in 60 s{})",
                if connected { "" } else { ", NOT CONNECTED" }
            ),
            target: "≤ 2 per second".into(),
            met: Some(connected && per_second <= 2.0),
        },
        Row {
            figure: "CPU time of that member idle for a minute".into(),
            value: format!("{cpu_ms} ms"),
            target: "reported".into(),
            met: None,
        },
        Row {
            figure: "peak RSS of that member".into(),
            value: format!("{:.1} MB", rss_kb as f64 / 1024.0),
            target: "≤ 10 MB".into(),
            met: Some(rss_kb <= 10 * 1024),
        },
    ]
}

fn main() {
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let light = ["size", "stun", "dht-1000"];
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
    if wanted("dht-1000") {
        rows.extend(dht(1000));
    }
    if wanted("dht-10000") {
        rows.extend(dht(10_000));
    }
    if wanted("idle") {
        rows.extend(idle());
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
