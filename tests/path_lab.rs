//! Members on a path with a real round-trip time (`tests/common/pathlab.rs`):
//! two members whose links pass through a userspace delay line, 100 ms
//! from one to the other. 16 MiB piped into one member as 16,384 lines
//! of 1 KiB arrive at the other complete and in order, and the sender's
//! link carries at most 1.15 times the payload in IP bytes, both
//! directions together
//! (spec §6.6: a clean path sends one copy of each datagram). Throughput
//! is printed, not asserted (`cargo bench --bench bench -- paths` has the
//! figures against hyperswarm); the limit only stops a hung run.
//!
//! Needs root, `ip`, `iptables` and `tc`; a machine where namespaces
//! cannot be made fails the test unless `TINYNODE_SKIP_PATH_LAB=1` says
//! to skip it.

mod common;

use std::time::Duration;

use common::netns::lab_or_skip;
use common::pathlab::{LINE_LEN, Path, PathLab};

/// Lines in the delivery: 16 MiB.
const LINES: usize = 16 * 1024;
/// Most bytes on the wire per byte of payload on a clean path.
const MAX_WIRE_RATIO: f64 = 1.15;

#[test]
fn at_100_ms_16_mib_arrive_in_order_with_one_copy_on_the_wire() {
    let path = Path {
        rtt: Duration::from_millis(100),
        loss: 0.0,
        bottleneck_kbit: 0,
    };
    let lab = PathLab::start("pa", path, &[("DEBUG", "true")]);
    let Some(mut lab) = lab_or_skip(lab, "TINYNODE_SKIP_PATH_LAB") else {
        return;
    };
    let connected = lab
        .wait_connected(Duration::from_secs(60))
        .expect("the members connect through the delay line");
    println!("connected after {connected:?}");
    let (frames_before, bytes_before) = lab.wire();
    let took = lab
        .deliver(LINES, Duration::from_secs(300))
        .unwrap_or_else(|problem| panic!("{problem}"));
    let (frames_after, bytes_after) = lab.wire();
    let payload = (LINES * LINE_LEN) as f64;
    let wire = (bytes_after - bytes_before) as f64;
    let ratio = wire / payload;
    println!(
        "16 MiB in {took:?} ({:.2} MB/s); {} frames, {:.0} bytes on the wire: {ratio:.3} × payload",
        payload / took.as_secs_f64() / 1e6,
        frames_after - frames_before,
        wire
    );
    assert!(
        ratio <= MAX_WIRE_RATIO,
        "a clean path carried {ratio:.3} × the payload (at most {MAX_WIRE_RATIO})"
    );
}

#[test]
#[ignore]
fn debug_dump() {
    let ms = std::env::var("PATHLAB_RTT").map_or(100, |v| v.parse().unwrap());
    let loss = std::env::var("PATHLAB_LOSS").map_or(0.0, |v| v.parse().unwrap());
    let kbit = std::env::var("PATHLAB_KBIT").map_or(0, |v| v.parse().unwrap());
    let path = Path {
        rtt: Duration::from_millis(ms),
        loss,
        bottleneck_kbit: kbit,
    };
    let mut lab = PathLab::start("pd", path, &[("DEBUG", "true")]).unwrap();
    lab.wait_connected(Duration::from_secs(60)).unwrap();
    let took = lab.deliver(LINES, Duration::from_secs(300)).unwrap();
    println!(
        "took {took:?} wire {:?} out {:?} in {:?}",
        lab.wire(),
        lab.lines[0].counters[0].read(),
        lab.lines[0].counters[1].read()
    );
    while let Ok(line) = lab.members[0].0.stderr.try_recv() {
        if line.contains("peer lost") {
            println!("m1: {line}");
        }
    }
    while let Ok(line) = lab.members[1].0.stderr.try_recv() {
        if line.contains("peer lost") {
            println!("m2: {line}");
        }
    }
}
