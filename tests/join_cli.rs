//! `tinynode join` as real processes on loopback: members of one meeting
//! find exactly each other through a `tinynode serve` node, and members of
//! another meeting stay invisible.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Running, field, start_serve, tinynode};

fn join(code: &str, bootstrap: &str) -> (Running, String) {
    let mut command = tinynode();
    command.args([
        "join",
        code,
        "--bootstrap",
        bootstrap,
        "--bind",
        "127.0.0.1:0",
        "--json",
        "--no-mainline",
        "--no-lan",
    ]);
    let member = Running::spawn(command);
    let started = member.next_line(Duration::from_secs(10));
    assert_eq!(field(&started, "event"), Some("started"), "{started}");
    let id = field(&started, "node_id").expect("node_id").to_owned();
    assert_eq!(id.len(), 64);
    (member, id)
}

#[test]
fn members_of_a_meeting_find_exactly_each_other() {
    let (_serve, addr) = start_serve();
    let bootstrap = addr.to_string();
    let alpha: Vec<(Running, String)> = (0..5).map(|_| join("alpha meeting", &bootstrap)).collect();
    let beta: Vec<(Running, String)> = (0..3).map(|_| join("beta meeting", &bootstrap)).collect();
    let alpha_ids: HashSet<String> = alpha.iter().map(|(_, id)| id.clone()).collect();
    let beta_ids: HashSet<String> = beta.iter().map(|(_, id)| id.clone()).collect();

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    let complete = |seen: &HashMap<String, HashSet<String>>| {
        alpha
            .iter()
            .all(|(_, id)| seen.get(id).is_some_and(|s| s.len() == 4))
            && beta
                .iter()
                .all(|(_, id)| seen.get(id).is_some_and(|s| s.len() == 2))
    };
    while !complete(&seen) && Instant::now() < deadline {
        for (member, id) in alpha.iter().chain(beta.iter()) {
            while let Ok(line) = member.stdout.try_recv() {
                if field(&line, "event") == Some("peer_discovered") {
                    let peer = field(&line, "peer").expect("peer").to_owned();
                    assert!(
                        field(&line, "addr").is_some_and(|a| a.starts_with("127.0.0.1:")),
                        "{line}"
                    );
                    seen.entry(id.clone()).or_default().insert(peer);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (_, id) in &alpha {
        let mut expected = alpha_ids.clone();
        expected.remove(id);
        assert_eq!(
            seen.get(id).cloned().unwrap_or_default(),
            expected,
            "alpha member {id}"
        );
    }
    for (_, id) in &beta {
        let mut expected = beta_ids.clone();
        expected.remove(id);
        assert_eq!(
            seen.get(id).cloned().unwrap_or_default(),
            expected,
            "beta member {id}"
        );
    }
}

#[test]
fn join_reports_its_public_address_and_bootstrap_failures() {
    let (_serve, addr) = start_serve();
    let (member, _) = join(
        "address-check-able-acid-acorn-actor-adapt",
        &addr.to_string(),
    );
    let line = member.next_line(Duration::from_secs(10));
    assert_eq!(field(&line, "event"), Some("public_address"), "{line}");
    assert_eq!(field(&line, "via"), Some("dht"));
    assert!(field(&line, "addr").is_some_and(|a| a.starts_with("127.0.0.1:")));

    // A bootstrap address where nothing listens: an error event, then retries.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (lonely, _) = join(
        "address-check-able-acid-acorn-actor-adapt",
        &dead.local_addr().unwrap().to_string(),
    );
    let line = lonely.next_line(Duration::from_secs(10));
    assert_eq!(field(&line, "event"), Some("error"), "{line}");
    assert!(
        field(&line, "what").is_some_and(|w| w.contains("no bootstrap node answered")),
        "{line}"
    );
}

#[test]
fn meeting_code_comes_from_the_environment() {
    let (_serve, addr) = start_serve();
    let mut command = tinynode();
    command
        .args([
            "join",
            "--bootstrap",
            &addr.to_string(),
            "--json",
            "--bind",
            "127.0.0.1:0",
            "--no-mainline",
            "--no-lan",
        ])
        .env("MEETING_CODE", "from env");
    let member = Running::spawn(command);
    let started = member.next_line(Duration::from_secs(10));
    let (_second, id) = join("From   ENV", &addr.to_string());
    assert_eq!(field(&started, "event"), Some("started"));
    // Normalization makes both codes one meeting: they find each other.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let line = member.next_line(deadline.saturating_duration_since(Instant::now()));
        if field(&line, "event") == Some("peer_discovered") {
            assert_eq!(field(&line, "peer"), Some(id.as_str()));
            break;
        }
    }
}

/// The O_NONBLOCK flag of an open file description.
fn nonblocking(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: fcntl(F_GETFL) on a descriptor this test owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "fcntl failed");
    flags & libc::O_NONBLOCK != 0
}

/// Bytes waiting in the pipe whose read end is `fd`.
fn unread(fd: std::os::fd::RawFd) -> libc::c_int {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD on a pipe this test owns, into a c_int.
    let result = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut count) };
    assert!(result >= 0, "ioctl(FIONREAD) failed");
    count
}

/// Standard input's open file description is shared with the shell that
/// started the member (here: the test holds the pipe's read end too). A
/// member must never make it non-blocking, or a crash or `kill -9` would
/// leave the shell's input broken; it reads on a blocking thread instead.
#[test]
fn standard_input_is_never_made_non_blocking_even_by_a_killed_member() {
    use std::io::Write;
    use std::os::fd::{AsRawFd, OwnedFd};

    let (reader, writer) = std::io::pipe().expect("pipe");
    let reader = OwnedFd::from(reader);
    let ours = reader.try_clone().expect("dup");
    let mut command = tinynode();
    command
        .args([
            "join",
            "stdin check",
            "--bind",
            "127.0.0.1:0",
            "--json",
            "--no-mainline",
            "--no-lan",
        ])
        .stdin(std::process::Stdio::from(reader));
    let mut member = Running::spawn_with_stdin(command);
    let started = member.next_line(Duration::from_secs(10));
    assert_eq!(field(&started, "event"), Some("started"), "{started}");
    let mut writer = writer;
    writeln!(writer, "a line nobody hears").expect("write");
    // The member is reading: its reader thread took the line out of the
    // pipe (the node itself takes it only once a member connects).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while unread(ours.as_raw_fd()) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the member never read its standard input"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !nonblocking(ours.as_raw_fd()),
        "made non-blocking while running"
    );
    member.signal(libc::SIGKILL);
    member.wait(Duration::from_secs(10));
    assert!(
        !nonblocking(ours.as_raw_fd()),
        "left non-blocking after kill -9"
    );
}

#[test]
fn plain_output_says_what_it_waits_for_and_a_down_source_once() {
    // Mainline through a loopback port where nothing answers: the text
    // output says it once, however many attempts follow (each is in the
    // debug log, and in JSON as before).
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut command = common::tinynode();
    command
        .args([
            "join",
            "plain-output-able-acid-acorn-actor-adapt",
            "--bind",
            "127.0.0.1:0",
            "--no-lan",
            "--no-stdin",
            "--mainline-bootstrap",
            &dead.local_addr().unwrap().to_string(),
        ])
        .env("DEBUG", "true");
    let member = common::Running::spawn(command);
    let first = member.next_line(Duration::from_secs(10));
    assert!(first.starts_with("joined the meeting as "), "{first}");
    let second = member.next_line(Duration::from_secs(10));
    assert_eq!(
        second,
        "waiting for the others who use this code: looking through the Mainline DHT"
    );
    let mut down = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let line = member
            .stderr
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("a second Mainline attempt within a minute");
        down += usize::from(line.contains("no Mainline DHT node answered"));
        if line.contains("no Mainline bootstrap node answered (attempt 2)") {
            break;
        }
    }
    assert_eq!(down, 1, "reported once");
}
