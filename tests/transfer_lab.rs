//! `tinynode send` / `receive` across networks the test builds (issue
//! 30): across the NAT lab (`tests/common/natlab.rs`) directly between
//! port-restricted NATs and through the lab's `serve --relay` between
//! symmetric ones, and on a bridge with no route anywhere else and no
//! bootstrap node, found by LAN beacons alone. Every file arrives
//! byte-exact.
//!
//! Needs root, `ip` and `iptables`; a machine where namespaces cannot be
//! made fails the test unless `TINYNODE_SKIP_NAT_LAB=1` (the NAT lab) or
//! `TINYNODE_SKIP_LAN_LAB=1` (the bridge) says to skip it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::natlab::{Lab, SERVE_ADDR};
use common::netns::{bridge_lab, lab_or_skip};
use common::{Running, field};

const LIMIT: Duration = Duration::from_secs(120);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinynode-xlab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file of `len` deterministic bytes at `path`.
fn write_file(path: &Path, seed: u32, len: u32) -> Vec<u8> {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i.wrapping_mul(seed) >> 3) as u8)
        .collect();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// The next stderr JSON line of `running` whose event is `event`.
fn wait_event(running: &Running, event: &str) -> String {
    running.wait_stderr(&format!("\"event\":\"{event}\""), LIMIT)
}

#[test]
fn a_file_crosses_two_nats_directly_and_symmetric_ones_through_a_relay() {
    let Some(lab) = lab_or_skip(Lab::build("xfn"), "TINYNODE_SKIP_NAT_LAB") else {
        return;
    };
    let dir = scratch("nat");
    let _serve = lab.serve_relay(&[], &[]);
    for (round, symmetric) in [(0, false), (1, true)] {
        lab.nat("nat1", symmetric);
        lab.nat("nat2", symmetric);
        let file = dir.join(format!("file{round}.bin"));
        let bytes = write_file(&file, 7 + round, 3_000_000);
        let out = dir.join(format!("out{round}"));
        std::fs::create_dir_all(&out).unwrap();
        let code = format!("transfer lab nat {round}");
        let common = [
            "--bootstrap",
            SERVE_ADDR,
            "--json",
            "--no-mainline",
            "--no-lan",
        ];
        let file_arg = file.to_str().unwrap();
        let mut send_args = vec!["send", file_arg, "--code", &code, "--bind", "10.1.0.2:0"];
        send_args.extend(common);
        let mut sender = lab.spawn("a", &send_args, false);
        let out_arg = out.to_str().unwrap();
        let mut receive_args = vec![
            "receive",
            &code,
            "--out",
            out_arg,
            "--yes",
            "--bind",
            "10.2.0.2:0",
        ];
        receive_args.extend(common);
        let mut receiver = lab.spawn("b", &receive_args, false);
        let from = wait_event(&receiver, "sender");
        let path = field(&from, "path").unwrap_or_default().to_owned();
        assert!(
            path.starts_with(if symmetric { "relayed" } else { "direct" }),
            "{from}"
        );
        wait_event(&receiver, "done");
        assert!(receiver.wait(LIMIT).success());
        assert!(sender.wait(LIMIT).success());
        let name = file.file_name().unwrap();
        assert!(std::fs::read(out.join(name)).unwrap() == bytes, "{path}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_crosses_a_lan_with_no_route_out_and_no_bootstrap() {
    let Some(lab) = lab_or_skip(bridge_lab("xfl", &["h1", "h2"]), "TINYNODE_SKIP_LAN_LAB") else {
        return;
    };
    let dir = scratch("lan");
    let file = dir.join("lan.bin");
    let bytes = write_file(&file, 13, 2_000_000);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let code = "transfer lab lan only";
    let file_arg = file.to_str().unwrap();
    let mut sender = lab.spawn(
        "h1",
        &[
            "send",
            file_arg,
            "--code",
            code,
            "--bind",
            "10.9.0.11:0",
            "--no-mainline",
            "--json",
        ],
        false,
    );
    let out_arg = out.to_str().unwrap();
    let mut receiver = lab.spawn(
        "h2",
        &[
            "receive",
            code,
            "--out",
            out_arg,
            "--yes",
            "--bind",
            "10.9.0.12:0",
            "--no-mainline",
            "--json",
        ],
        false,
    );
    wait_event(&receiver, "done");
    assert!(receiver.wait(LIMIT).success());
    assert!(sender.wait(LIMIT).success());
    assert!(std::fs::read(out.join("lan.bin")).unwrap() == bytes);
    let _ = std::fs::remove_dir_all(&dir);
}
