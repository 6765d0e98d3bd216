//! `tinynode join` end to end as real processes on loopback: data channels
//! between members, chat over stdin, meetings kept apart, departures seen.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Running, field, start_serve, tinynode};

const WAIT: Duration = Duration::from_secs(60);

struct Member {
    process: Running,
    id: String,
    lines: Vec<String>,
}

impl Member {
    fn join(code: &str, bootstrap: &str) -> Self {
        let mut command = tinynode();
        command
            .args([
                "join",
                code,
                "--bootstrap",
                bootstrap,
                "--json",
                "--bind",
                "127.0.0.1:0",
                "--no-mainline",
                "--no-lan",
            ])
            .stdin(Stdio::piped());
        let process = Running::spawn_with_stdin(command);
        let started = process.next_line(Duration::from_secs(10));
        let id = field(&started, "node_id")
            .expect("started event")
            .to_owned();
        Self {
            process,
            id,
            lines: vec![started],
        }
    }

    /// Reads output until `done` holds for what was read so far, or panics after `WAIT`.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.process.stdout.recv_timeout(left) {
                Ok(line) => self.lines.push(line),
                Err(_) => panic!("{} never saw {what}; output: {:#?}", self.id, self.lines),
            }
        }
    }

    fn peers_with(&self, event: &str) -> HashSet<String> {
        self.lines
            .iter()
            .filter(|l| field(l, "event") == Some(event))
            .filter_map(|l| field(l, "peer").map(str::to_owned))
            .collect()
    }

    fn say(&mut self, text: &str) {
        let stdin = self.process.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{text}")
            .and_then(|()| stdin.flush())
            .expect("write to stdin");
    }
}

#[test]
fn three_members_connect_chat_and_notice_a_departure() {
    let (_serve, addr) = start_serve();
    let bootstrap = addr.to_string();
    let mut members: Vec<Member> = (0..3)
        .map(|_| Member::join("tea party", &bootstrap))
        .collect();
    let mut outsider = Member::join("another party", &bootstrap);
    let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();

    for member in &mut members {
        let others: HashSet<String> = ids.iter().filter(|id| **id != member.id).cloned().collect();
        member.wait_until("both others connected", |lines| {
            let connected: HashSet<String> = lines
                .iter()
                .filter(|l| field(l, "event") == Some("connected"))
                .filter_map(|l| field(l, "peer").map(str::to_owned))
                .collect();
            connected == others
        });
        assert!(
            member
                .lines
                .iter()
                .filter(|l| field(l, "event") == Some("connected"))
                .all(|l| field(l, "addr").is_some_and(|a| a.starts_with("127.0.0.1:")))
        );
    }

    members[0].say("hello from the first member");
    for member in &mut members[1..] {
        member.wait_until("the message", |lines| {
            lines.iter().any(|l| {
                field(l, "event") == Some("message")
                    && field(l, "text") == Some("hello from the first member")
            })
        });
        let sender = members_message_sender(&member.lines);
        assert_eq!(sender.as_deref(), Some(ids[0].as_str()));
    }

    // The outsider, in another meeting, was in the same DHT all along (it
    // reached the serve node the members meet through), yet connected to
    // nobody and heard nothing.
    outsider.wait_until("the DHT bootstrapped", |lines| {
        lines
            .iter()
            .any(|l| field(l, "event") == Some("bootstrapped"))
    });
    while let Ok(line) = outsider.process.stdout.try_recv() {
        outsider.lines.push(line);
    }
    assert!(
        outsider.peers_with("connected").is_empty(),
        "{:#?}",
        outsider.lines
    );
    assert!(outsider.peers_with("message").is_empty());

    // A member killed without warning is reported disconnected by the others.
    let mut gone = members.pop().expect("three members");
    gone.process.child.kill().expect("kill");
    for member in &mut members {
        member.wait_until("the departure", |lines| {
            lines.iter().any(|l| {
                field(l, "event") == Some("disconnected")
                    && field(l, "peer") == Some(gone.id.as_str())
            })
        });
    }
    let _ = gone.process.child.wait();
}

fn members_message_sender(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .find(|l| field(l, "event") == Some("message"))
        .and_then(|l| field(l, "peer").map(str::to_owned))
}

#[test]
fn piped_input_faster_than_the_channel_arrives_complete_and_in_order() {
    // 8 MB in one write: far more than the pipe, the node's outbox and
    // str0m's send buffer hold, so only backpressure (reading stdin no
    // faster than the channel drains) gets every line through.
    const LINES: usize = 8_000;
    let (_serve, addr) = start_serve();
    let bootstrap = addr.to_string();
    let mut sender = Member::join("bulk", &bootstrap);
    let mut receiver = Member::join("bulk", &bootstrap);
    let sender_id = sender.id.clone();
    for member in [&mut sender, &mut receiver] {
        member.wait_until("a connection", |lines| {
            lines.iter().any(|l| field(l, "event") == Some("connected"))
        });
    }
    let line = |i: usize| format!("{i:05} {}", "x".repeat(1000));
    let mut input = String::new();
    for i in 0..LINES {
        input.push_str(&line(i));
        input.push('\n');
    }
    let mut stdin = sender.process.child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let messages = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| field(l, "event") == Some("message"))
            .count()
    };
    receiver.wait_until("every line", |lines| messages(lines) >= LINES);
    writer.join().expect("writer").expect("write to stdin");
    let texts: Vec<&String> = receiver
        .lines
        .iter()
        .filter(|l| field(l, "event") == Some("message"))
        .inspect(|l| assert_eq!(field(l, "peer"), Some(sender_id.as_str())))
        .collect();
    for (i, text) in texts.iter().enumerate() {
        assert!(
            text.contains(&format!("\"text\":\"{}\"", line(i))),
            "message {i} is not line {i}: {text:.60}"
        );
    }
}

#[test]
fn an_endless_producer_on_stdin_does_not_starve_the_network() {
    // `yes` writes faster than a node can read; the node must still take
    // its turns at the socket: bootstrap, discover, connect, deliver.
    let (_serve, addr) = start_serve();
    let bootstrap = addr.to_string();
    let mut producer = std::process::Command::new("yes")
        .arg("endless")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn yes");
    let mut command = tinynode();
    command
        .args([
            "join",
            "firehose",
            "--bootstrap",
            &bootstrap,
            "--json",
            "--bind",
            "127.0.0.1:0",
            "--no-mainline",
            "--no-lan",
        ])
        .stdin(Stdio::from(producer.stdout.take().expect("yes stdout")));
    let flooded = Running::spawn_with_stdin(command);
    let mut listener = Member::join("firehose", &bootstrap);
    listener.wait_until("a message from the flooded member", |lines| {
        lines
            .iter()
            .any(|l| field(l, "event") == Some("message") && field(l, "text") == Some("endless"))
    });
    drop(flooded);
    let _ = producer.kill();
    let _ = producer.wait();
}

#[test]
fn ctrl_c_closes_channels_and_exits_zero() {
    let (_serve, addr) = start_serve();
    let bootstrap = addr.to_string();
    let mut a = Member::join("goodbyes", &bootstrap);
    let mut b = Member::join("goodbyes", &bootstrap);
    let b_id = b.id.clone();
    a.wait_until("a connection", |lines| {
        lines.iter().any(|l| field(l, "event") == Some("connected"))
    });
    b.wait_until("a connection", |lines| {
        lines.iter().any(|l| field(l, "event") == Some("connected"))
    });
    b.process.signal(libc::SIGINT);
    assert_eq!(b.process.wait(WAIT).code(), Some(0));
    a.wait_until("the goodbye", |lines| {
        lines.iter().any(|l| {
            field(l, "event") == Some("disconnected") && field(l, "peer") == Some(b_id.as_str())
        })
    });
}

#[test]
fn demo_builds_a_full_mesh_of_eight_and_delivers_every_message() {
    let output = tinynode()
        .args(["demo", "--nodes", "8"])
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("full mesh: 56 channels open"), "{stdout}");
    assert!(stdout.contains("messages delivered      56/56"), "{stdout}");
}

#[test]
fn a_member_that_comes_back_is_reconnected() {
    let (_serve, addr) = start_serve();
    let bootstrap = addr.to_string();
    let key = std::env::temp_dir().join(format!("tinynode-comeback-{}.key", std::process::id()));
    let _ = std::fs::remove_file(&key);
    let rejoin = || {
        let mut command = tinynode();
        command
            .args([
                "join",
                "comebacks",
                "--bootstrap",
                &bootstrap,
                "--json",
                "--bind",
                "127.0.0.1:0",
                "--no-mainline",
                "--no-lan",
                "--no-stdin",
                "--identity",
            ])
            .arg(&key);
        let process = Running::spawn(command);
        let started = process.next_line(Duration::from_secs(10));
        let id = field(&started, "node_id").expect("started").to_owned();
        Member {
            process,
            id,
            lines: vec![started],
        }
    };
    let mut stayer = Member::join("comebacks", &bootstrap);
    let mut leaver = rejoin();
    let leaver_id = leaver.id.clone();
    let connections_to = |lines: &[String], event: &str| {
        lines
            .iter()
            .filter(|l| {
                field(l, "event") == Some(event) && field(l, "peer") == Some(leaver_id.as_str())
            })
            .count()
    };
    stayer.wait_until("the first connection", |lines| {
        connections_to(lines, "connected") == 1
    });
    leaver.process.child.kill().expect("kill");
    let _ = leaver.process.child.wait();
    stayer.wait_until("the departure", |lines| {
        connections_to(lines, "disconnected") == 1
    });

    let back = rejoin();
    assert_eq!(back.id, leaver_id, "same identity after the restart");
    stayer.wait_until("the reconnection", |lines| {
        connections_to(lines, "connected") == 2
    });
    let _ = std::fs::remove_file(&key);
}

#[test]
fn members_carry_on_after_the_bootstrap_node_is_gone() {
    let (mut serve, addr) = start_serve();
    let bootstrap = addr.to_string();
    let mut a = Member::join("no server needed", &bootstrap);
    let mut b = Member::join("no server needed", &bootstrap);
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    let connected_to = |id: String| {
        move |lines: &[String]| {
            lines.iter().any(|l| {
                field(l, "event") == Some("connected") && field(l, "peer") == Some(id.as_str())
            })
        }
    };
    a.wait_until("b", connected_to(b_id.clone()));
    serve.child.kill().expect("kill the serve node");
    let _ = serve.child.wait();

    // A newcomer bootstraps from member a instead: members are DHT nodes too.
    let a_addr = field(&a.lines[0], "local_addr")
        .expect("local_addr")
        .to_owned();
    let mut c = Member::join("no server needed", &a_addr);
    c.wait_until("a", connected_to(a_id.clone()));
    c.wait_until("b", connected_to(b_id.clone()));
    c.say("hello without a server");
    for member in [&mut a, &mut b] {
        member.wait_until("the newcomer's message", |lines| {
            lines
                .iter()
                .any(|l| field(l, "text") == Some("hello without a server"))
        });
    }
    assert!(
        a.process.child.try_wait().expect("try_wait").is_none(),
        "a kept running"
    );
}
