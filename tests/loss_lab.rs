//! Members on a lossy network (`tests/common/losslab.rs`): a serve node
//! and three members on one bridge of namespaces, each member dropping 5 %
//! of the UDP datagrams it receives and 5 % of those it sends. The full
//! mesh forms, and 10,000 lines (about 900 KiB) piped into one member
//! arrive at the two others complete and in order, and the sender's peers
//! report its loss so that it sends copies (spec §6.6). Times are printed,
//! not asserted (`BENCHMARKS.md` has them, from `cargo bench --bench bench
//! -- loss`); the limits only stop a hung run.
//!
//! Needs root, `ip` and `iptables`; a machine where namespaces cannot be
//! made fails the test unless `TINYNODE_SKIP_LOSS_LAB=1` says to skip it.

mod common;

use std::time::Duration;

use common::counter;
use common::losslab::{LINES, LossLab};
use common::netns::lab_or_skip;

#[test]
fn at_five_percent_loss_each_way_the_mesh_forms_and_every_line_arrives_in_order() {
    let lab = LossLab::start_with("lo", 0.05, &[("DEBUG", "true")]);
    let Some(mut lab) = lab_or_skip(lab, "TINYNODE_SKIP_LOSS_LAB") else {
        return;
    };
    let mesh = lab
        .wait_for_mesh(Duration::from_secs(120))
        .expect("the full mesh forms at 5 % loss");
    println!("full mesh after {mesh:?}");
    let delivered = lab
        .deliver(Duration::from_secs(300))
        .unwrap_or_else(|problem| panic!("{problem}"));
    println!("{LINES} lines delivered to both after {delivered:?}");
    // The sender's peers measure its loss (about 9.75 % per direction:
    // 5 % out of one member, 5 % into the other) and report it once a
    // second while traffic flows; it repeats what it sends (spec §6.6).
    // Its counters say so: the stats it logs when it leaves on SIGTERM.
    let sender = &lab.members[0].0;
    sender.signal(libc::SIGTERM);
    let stats = sender.wait_stderr("node stats:", Duration::from_secs(10));
    println!("the sender's link counters: {stats}");
    assert!(
        counter(&stats, "loss_reports") > 0,
        "its peers reported loss: {stats}"
    );
    assert!(
        counter(&stats, "extra_copies") > 0,
        "it sent copies: {stats}"
    );
}
