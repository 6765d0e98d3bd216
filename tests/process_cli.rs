//! The process survives its surroundings (`protocol-spec.md` §7.4): a
//! closed stdout or stderr makes `join` leave cleanly (its peers get a
//! `Close`, not a timeout) instead of aborting; SIGHUP stops it like
//! SIGTERM; a member started in the background with the terminal as its
//! input is not stopped by SIGTTIN; lines typed before anyone connects
//! reach the first member.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Running, field, start_serve, tinynode, wait_for};

fn member_args(code: &str, serve: &str) -> Vec<String> {
    [
        "join",
        code,
        "--bootstrap",
        serve,
        "--bind",
        "127.0.0.1:0",
        "--json",
        "--no-mainline",
        "--no-lan",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn a_member_whose_output_is_closed_leaves_with_a_close() {
    let (_serve, serve) = start_serve();
    let serve = serve.to_string();
    let code = format!("closed-output-{}-able-acid-acorn-actor", std::process::id());
    let mut a = tinynode();
    a.args(member_args(&code, &serve)).stdin(Stdio::piped());
    let a = Running::spawn_with_stdin(a);
    let started = a.next_line(Duration::from_secs(30));
    assert_eq!(field(&started, "event"), Some("started"), "{started}");

    // B's stdout and stderr go to one pipe whose reader stops after B's
    // first `connected` line, as `join … 2>&1 | grep -m1 connected` does;
    // then the reader's shell closes the pipe too and says so, so that
    // nothing B writes afterwards can land in a pipe still open.
    let binary = env!("CARGO_BIN_EXE_tinynode");
    let b_args = member_args(&code, &serve).join(" ");
    let mut b = Command::new("bash");
    b.args([
        "-o",
        "pipefail",
        "-c",
        &format!(
            "{binary} {b_args} --no-stdin 2>&1 | \
             {{ grep -m1 '\"connected\"'; exec 0<&-; echo reader-gone; }}"
        ),
    ]);
    let mut b = Running::spawn(b);
    let mut seen = Vec::new();
    wait_for(&a, "connected", Duration::from_secs(30), &mut seen);
    let b_line = b.next_line(Duration::from_secs(30));
    assert_eq!(field(&b_line, "event"), Some("connected"), "{b_line}");
    assert_eq!(b.next_line(Duration::from_secs(30)), "reader-gone");

    // A's next message makes B print into the closed pipe: B leaves.
    let stdin = a.child.stdin.as_ref().expect("stdin");
    std::io::Write::write_all(&mut &*stdin, b"are you there?\n").expect("write");
    let gone = wait_for(&a, "disconnected", Duration::from_secs(20), &mut seen);
    assert_eq!(field(&gone, "reason"), Some("peer left"), "{gone}");
    let status = b.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "B and its reader exited cleanly");
}

#[test]
fn sighup_stops_join_cleanly() {
    let mut command = common::lonely_join("hangup-able-acid-acorn-actor-adapt");
    command.arg("-v");
    let mut member = Running::spawn(command);
    let started = member.next_line(Duration::from_secs(30));
    assert_eq!(field(&started, "event"), Some("started"), "{started}");
    member.signal(libc::SIGHUP);
    assert_eq!(member.wait(Duration::from_secs(10)).code(), Some(0));
    member.wait_stderr("signal received", Duration::from_secs(5));
}

#[test]
fn a_line_typed_before_anyone_connects_reaches_the_first_member() {
    let (_serve, serve) = start_serve();
    let serve = serve.to_string();
    let code = format!("early-line-{}-able-acid-acorn-actor", std::process::id());
    let mut a = tinynode();
    a.args(member_args(&code, &serve)).stdin(Stdio::piped());
    let a = Running::spawn_with_stdin(a);
    let started = a.next_line(Duration::from_secs(30));
    assert_eq!(field(&started, "event"), Some("started"), "{started}");
    let stdin = a.child.stdin.as_ref().expect("stdin");
    std::io::Write::write_all(&mut &*stdin, b"said before you came\n").expect("write");

    let mut b = tinynode();
    b.args(member_args(&code, &serve)).arg("--no-stdin");
    let b = Running::spawn(b);
    let mut seen = Vec::new();
    let message = wait_for(&b, "message", Duration::from_secs(30), &mut seen);
    assert_eq!(
        field(&message, "text"),
        Some("said before you came"),
        "{message}"
    );
}

#[test]
fn a_background_join_with_the_terminal_as_input_is_not_stopped() {
    // `script` gives a shell a terminal; with job control on (`set -m`) the
    // member runs in a background process group with that terminal as its
    // standard input, as `tinynode join CODE &` typed in a terminal does.
    common::require_tool("script", "bsdutils");
    let log = std::env::temp_dir().join(format!("tinynode-bg-{}.log", std::process::id()));
    let shell = format!(
        "set -m; DEBUG=true {} join background-able-acid-acorn-actor --bind 127.0.0.1:0 --json \
         --no-mainline --no-lan >/dev/null 2>{} & echo pid=$!; wait $!; echo rc=$?",
        env!("CARGO_BIN_EXE_tinynode"),
        log.display()
    );
    let mut command = Command::new("script");
    command.args(["-qec", &format!("sh -c '{shell}'"), "/dev/null"]);
    let mut script = Running::spawn(command);
    let pid: libc::pid_t = loop {
        let line = script.next_line(Duration::from_secs(10));
        if let Some(pid) = line.trim().strip_prefix("pid=") {
            break pid.parse().expect("a pid");
        }
    };
    // It reached its first read of the terminal, and was not stopped there.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("waiting for it")) {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let stopped = state.split_whitespace().nth(2) == Some("T");
        // SAFETY: kill(2) on the member's pid.
        if stopped || std::time::Instant::now() > deadline {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            panic!("the background member was stopped before reading the terminal: {state}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("still running");
    assert_ne!(
        state.split_whitespace().nth(2),
        Some("T"),
        "stopped: {state}"
    );
    // SAFETY: kill(2) on the member's pid.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let rc = loop {
        let line = script.next_line(Duration::from_secs(10));
        if let Some(rc) = line.trim().strip_prefix("rc=") {
            break rc.to_owned();
        }
    };
    assert_eq!(rc, "0", "it left cleanly");
    script.wait(Duration::from_secs(10));
    let _ = std::fs::remove_file(&log);
}
