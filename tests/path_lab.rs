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
