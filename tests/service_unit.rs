//! `contrib/tinynode-serve.service`, the hardened systemd unit for a
//! `serve` node: `systemd-analyze verify` finds nothing to say about it
//! (with `ExecStart` pointed at the test build), it keeps the hardening
//! the README promises, and the command line it runs works: a serve node
//! with its identity in a state directory, restarted with the same node
//! ID, stopped by SIGTERM with status 0 and its logs on stderr.
//!
//! `systemd-analyze` comes with systemd (`.ci/run` installs it); where it
//! is missing the verify test fails, unless `TINYNODE_SKIP_SYSTEMD=1` says
//! to skip it knowingly.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Running, field, tinynode};

const UNIT: &str = include_str!("../contrib/tinynode-serve.service");

#[test]
fn the_unit_verifies_with_systemd_analyze() {
    common::verify_unit(UNIT, "tinynode-serve.service");
}

#[test]
fn the_unit_keeps_its_hardening() {
    for line in [
        "DynamicUser=yes",
        "StateDirectory=tinynode",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "Restart=on-failure",
        "MemoryMax=64M",
        "EnvironmentFile=-/etc/tinynode/serve.env",
        "ExecStart=/usr/local/bin/tinynode serve --identity ${STATE_DIRECTORY}/identity --relay $TINYNODE_SERVE",
    ] {
        assert!(
            UNIT.lines().any(|l| l.trim() == line),
            "the unit lost `{line}`"
        );
    }
}

/// The unit's command in a fresh state directory: the node ID it prints.
fn serve_in(state: &Path) -> (Running, String) {
    let identity = state.join("identity");
    let mut command = tinynode();
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--no-mainline", "--relay"])
        .arg("--identity")
        .arg(&identity)
        .arg("--json")
        .env("STATE_DIRECTORY", state)
        .env("DEBUG", "true");
    let serve = Running::spawn(command);
    let started = serve.next_line(Duration::from_secs(10));
    let id = field(&started, "node_id").expect("node_id").to_owned();
    (serve, id)
}

#[test]
fn the_units_command_keeps_its_identity_logs_to_stderr_and_stops_cleanly_on_sigterm() {
    let state = std::env::temp_dir().join(format!("tinynode-state-{}", std::process::id()));
    std::fs::create_dir_all(&state).expect("state dir");
    let (mut first, id) = serve_in(&state);
    first.wait_stderr("bound UDP socket", Duration::from_secs(5));
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait(Duration::from_secs(5)).code(), Some(0));
    let (mut again, same) = serve_in(&state);
    assert_eq!(same, id, "the node ID survives a restart");
    again.signal(libc::SIGTERM);
    assert_eq!(again.wait(Duration::from_secs(5)).code(), Some(0));
    let _ = std::fs::remove_dir_all(&state);
}
