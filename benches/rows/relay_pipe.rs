//! The `relay-pipe` row (issue 29): `tinynode pipe` between two members of
//! the NAT lab, relayed through an operator's own `serve --relay` with no
//! quota (`--relay-rate unlimited --relay-total unlimited`, both NATs
//! symmetric) against the same members direct (both NATs
//! port-restricted), interleaved, medians of three. Target: relayed at
//! least half of direct. Needs root (network namespaces).

use std::io::Write;
use std::time::{Duration, Instant};

use super::Row;
use super::common::natlab::{Lab, SERVE_ADDR as SERVE};
use super::median;

const ROUNDS: usize = 3;
/// Lines of 1 KiB piped per run: 64 MiB.
const LINES: usize = 64 * 1024;
const LINE: usize = 1024;

/// One pipe from `a` to `b`; MB/s from the first line at `b` to the last,
/// and the path `a` reported.
fn pipe_once(lab: &Lab, code: &str) -> Option<(f64, String)> {
    let pipe = |ns: &str, ip: &str| {
        let bind = format!("{ip}:0");
        let args = [
            "pipe",
            code,
            "--bootstrap",
            SERVE,
            "--bind",
            &bind,
            "--json",
            "--no-mainline",
            "--no-lan",
        ];
        lab.spawn(ns, &args, true)
    };
    let mut a = pipe("a", "10.1.0.2");
    let mut b = pipe("b", "10.2.0.2");
    drop(b.child.stdin.take());
    let mut stdin = a.child.stdin.take()?;
    std::thread::spawn(move || {
        let mut line = vec![b'x'; LINE - 1];
        line.push(b'\n');
        for _ in 0..LINES {
            if stdin.write_all(&line).is_err() {
                return;
            }
        }
    });
    let first = b.stdout.recv_timeout(Duration::from_secs(60)).ok()?;
    let start = Instant::now();
    let mut got = usize::from(first.len() == LINE - 1);
    while got < LINES {
        let line = b.stdout.recv_timeout(Duration::from_secs(60)).ok()?;
        got += usize::from(line.len() == LINE - 1);
    }
    let rate = (LINES * LINE) as f64 / start.elapsed().as_secs_f64() / 1e6;
    let connected = a.wait_stderr("pipe_connected", Duration::from_secs(10));
    let path = super::common::field(&connected, "path")?.to_owned();
    let _ = a.wait(Duration::from_secs(60));
    let _ = b.wait(Duration::from_secs(60));
    Some((rate, path))
}

/// The row.
pub fn relay_pipe() -> Vec<Row> {
    let figure = "NAT lab: 64 MiB through `pipe`, relayed by `serve --relay --relay-rate unlimited --relay-total unlimited` vs direct (medians of 3)".to_owned();
    let target = "relayed ≥ 0.5 × direct".to_owned();
    let lab = match Lab::build("rpipe") {
        Ok(lab) => lab,
        Err(reason) => {
            return vec![Row {
                figure,
                value: format!("not run: {reason}"),
                target,
                met: Some(false),
            }];
        }
    };
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for relay in [false, true] {
            lab.nat("nat1", relay);
            lab.nat("nat2", relay);
            let unlimited = ["--relay-rate", "unlimited", "--relay-total", "unlimited"];
            let serve = lab.serve_relay(&[], &unlimited);
            let code = format!("bench-relay-pipe-{}-{round}-{relay}", std::process::id());
            match pipe_once(&lab, &code) {
                Some((rate, path)) if path == if relay { "relay" } else { "direct" } => {
                    if relay {
                        relayed.push(rate);
                    } else {
                        direct.push(rate);
                    }
                }
                other => eprintln!("relay-pipe bench: round {round} (relay {relay}): {other:?}"),
            }
            drop(serve);
        }
    }
    let row = if direct.len() == ROUNDS && relayed.len() == ROUNDS {
        let (direct, relayed) = (median(direct), median(relayed));
        Row {
            figure,
            value: format!(
                "{relayed:.1} MB/s relayed vs {direct:.1} MB/s direct ({:.2} ×)",
                relayed / direct
            ),
            target,
            met: Some(relayed >= 0.5 * direct),
        }
    } else {
        Row {
            figure,
            value: format!(
                "incomplete: {} direct and {} relayed runs of {ROUNDS}",
                direct.len(),
                relayed.len()
            ),
            target,
            met: None,
        }
    };
    vec![row]
}
