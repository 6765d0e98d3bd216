//! `tinynode expose` and `tinynode connect` end to end on loopback
//! (issue 29): an HTTP server reached with curl, 100 forwarded connections
//! at once each echoing 1 MiB byte-exact (each client half-closes, then
//! reads the whole reply), a refused service reset back to the client,
//! the allow-list (a member not on it reaches nothing, one on it does),
//! connections accepted before the exposing member starts waiting for
//! it, and a client whose stream a member refused reaching the exposing
//! one with every byte it sent early; UDP datagrams through `--udp` and `--udp-listen` to an echo server,
//! each client's flow apart. `tinynode id` prints the key the allow-list
//! takes.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Running, field, new_identity, require_tool, start_serve, test_bytes, tinynode, wait_for,
};

const LIMIT: Duration = Duration::from_secs(60);
/// Longest a forwarded client waits for bytes: generous, for a debug
/// build on a busy machine with 100 streams sharing one window.
const READ_LIMIT: Duration = Duration::from_secs(300);

fn meeting(command: &str, code: &str, serve: SocketAddr) -> Command {
    let mut cmd = tinynode();
    cmd.args([command, code, "--bootstrap", &serve.to_string()])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--no-mainline",
            "--no-lan",
            "--json",
        ]);
    cmd
}

fn expose(code: &str, serve: SocketAddr, extra: &[&str]) -> Running {
    let mut cmd = meeting("expose", code, serve);
    cmd.args(extra);
    Running::spawn(cmd)
}

/// Starts `connect` and returns it with the address it listens at.
fn connect(code: &str, serve: SocketAddr, extra: &[&str]) -> (Running, SocketAddr) {
    let mut cmd = meeting("connect", code, serve);
    cmd.args(["--listen", "127.0.0.1:0"]).args(extra);
    let running = Running::spawn(cmd);
    let line = wait_for(&running, "listening", LIMIT, &mut Vec::new());
    let addr = field(&line, "addr")
        .expect("addr")
        .parse()
        .expect("an address");
    (running, addr)
}

/// An echo server on loopback that counts the connections it accepted.
fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    thread::spawn(move || {
        for mut connection in listener.incoming().map_while(Result::ok) {
            count.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match connection.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if connection.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = connection.shutdown(Shutdown::Write);
            });
        }
    });
    (addr, accepted)
}

/// Sends `data` through `addr`, half-closes, and reads the whole reply.
fn echo_through(addr: SocketAddr, data: &[u8]) -> std::io::Result<Vec<u8>> {
    echo_on(TcpStream::connect(addr)?, data)
}

/// Sends `data` on `stream`, half-closes, and reads the whole reply.
fn echo_on(mut stream: TcpStream, data: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(READ_LIMIT))?;
    let mut writer = stream.try_clone()?;
    let data = data.to_vec();
    let sender = thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(&data)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    sender.join().expect("sender thread")?;
    Ok(reply)
}

fn code(name: &str) -> String {
    format!(
        "forward-{name}-{}-able-acid-acorn-actor",
        std::process::id()
    )
}

#[test]
fn a_hundred_connections_each_echo_a_mebibyte_byte_exact() {
    let (_serve, serve) = start_serve();
    let (echo, _) = echo_server();
    let code = code("hundred");
    let target = format!("echo={echo}");
    let _expose = expose(&code, serve, &["--tcp", &target]);
    let (_connect, listen) = connect(&code, serve, &["--service", "echo"]);
    let clients: Vec<_> = (0..100u64)
        .map(|n| {
            thread::spawn(move || {
                let data = test_bytes(n, 1 << 20);
                let reply = echo_through(listen, &data).expect("the echo");
                assert!(reply == data, "connection {n}: {} bytes back", reply.len());
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
}

#[test]
fn an_http_server_is_reached_through_connect_with_curl() {
    let curl = require_tool("curl", "curl");
    let python = require_tool("python3", "python3");
    let dir = std::env::temp_dir().join(format!("tinynode-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = test_bytes(7, 3 << 20);
    std::fs::write(dir.join("file.bin"), &body).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut http = Command::new(python);
    http.args([
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        &port.to_string(),
    ])
    .current_dir(&dir);
    let _http = Running::spawn(http);
    let deadline = Instant::now() + LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "http.server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    let (_serve, serve) = start_serve();
    let code = code("http");
    let _expose = expose(&code, serve, &["--tcp", &format!("web=127.0.0.1:{port}")]);
    // One service: connect needs no --service.
    let (_connect, listen) = connect(&code, serve, &[]);
    let output = Command::new(curl)
        .args(["-sS", "--fail", "--max-time", "60"])
        .arg(format!("http://{listen}/file.bin"))
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout == body, "{} bytes", output.stdout.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_refused_service_resets_the_client_connection() {
    let (_serve, serve) = start_serve();
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let code = code("refused");
    let expose = expose(&code, serve, &["--tcp", &format!("gone={closed}")]);
    let (_connect, listen) = connect(&code, serve, &[]);
    let mut client = TcpStream::connect(listen).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    // The reset may arrive before our bytes leave (the member can refuse
    // as soon as the stream opens): then the write sees it.
    let mut buf = [0u8; 16];
    let result = client
        .write_all(b"hello")
        .and_then(|()| client.read(&mut buf));
    assert!(
        matches!(&result, Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)),
        "the client sees a reset, not a clean end: {result:?}"
    );
    let line = wait_for(&expose, "forward_reset", LIMIT, &mut Vec::new());
    assert!(
        field(&line, "reason").is_some_and(|r| r.contains("refused")),
        "{line}"
    );
}

#[test]
fn a_member_not_on_the_allow_list_reaches_nothing_and_one_on_it_does() {
    let dir = std::env::temp_dir().join(format!("tinynode-allow-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (allowed_path, allowed_key) = new_identity(&dir, "allowed.key");
    let (stranger_path, stranger_key) = new_identity(&dir, "stranger.key");
    let allow_file = dir.join("allow");
    std::fs::write(&allow_file, format!("# the laptop\n{allowed_key}\n")).unwrap();
    let (_serve, serve) = start_serve();
    let (echo, accepted) = echo_server();
    let code = code("allow");
    let expose = expose(
        &code,
        serve,
        &[
            "--tcp",
            &echo.to_string(),
            "--allow-file",
            allow_file.to_str().unwrap(),
        ],
    );
    let stranger_identity = stranger_path.to_str().unwrap();
    let (_stranger, stranger_listen) = connect(&code, serve, &["--identity", stranger_identity]);
    let mut client = TcpStream::connect(stranger_listen).unwrap();
    client.write_all(b"let me in").unwrap();
    let mut seen = Vec::new();
    let refused = wait_for(&expose, "stream_refused", LIMIT, &mut seen);
    assert_eq!(
        field(&refused, "peer"),
        Some(stranger_key.as_str()),
        "{refused}"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the service saw no connection"
    );
    // Nothing comes back to the stranger's client while it waits.
    client.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(client.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the stranger's client got nothing"
    );
    let allowed_identity = allowed_path.to_str().unwrap();
    let (_allowed, allowed_listen) = connect(&code, serve, &["--identity", allowed_identity]);
    let data = test_bytes(3, 100_000);
    assert!(echo_through(allowed_listen, &data).unwrap() == data);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn connections_accepted_before_the_exposing_member_starts_wait_for_it() {
    let (_serve, serve) = start_serve();
    let (echo, _) = echo_server();
    let code = code("early");
    let (_connect, listen) = connect(&code, serve, &[]);
    // Connected (the handshake done) before expose even starts.
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(listen).unwrap())
        .collect();
    let _expose = expose(&code, serve, &["--tcp", &echo.to_string()]);
    let early: Vec<_> = clients
        .into_iter()
        .zip(100u64..)
        .map(|(client, seed)| {
            thread::spawn(move || {
                let data = test_bytes(seed, 200_000);
                echo_on(client, &data).map(|reply| reply == data)
            })
        })
        .collect();
    for client in early {
        assert!(
            matches!(client.join().unwrap(), Ok(true)),
            "an early client failed"
        );
    }
}

#[test]
fn a_client_refused_by_one_member_reaches_the_exposing_one_with_every_early_byte() {
    let (_serve, serve) = start_serve();
    let (echo, accepted) = echo_server();
    let code = code("refusing");
    let (connect_a, listen) = connect(&code, serve, &[]);
    // A member that takes no TCP streams, connected before the exposing
    // one: the first client's stream goes to it first, is refused, and
    // must start over at the exposing member with the bytes already read
    // (more than the early limit, sent before any member answered).
    let (bystander, _) = connect(&code, serve, &[]);
    let mut seen = Vec::new();
    wait_for(&connect_a, "connected", LIMIT, &mut seen);
    let _expose = expose(&code, serve, &["--tcp", &echo.to_string()]);
    wait_for(&connect_a, "connected", LIMIT, &mut seen);
    // The client's first bytes are in the kernel before `connect` sees
    // the client, so they are read (and sent to the bystander) at once.
    let data = test_bytes(7, 300_000);
    let signal = |name: &str| {
        let pid = connect_a.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([name, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    let mut client = TcpStream::connect(listen).unwrap();
    client.write_all(&data[..100_000]).unwrap();
    signal("-CONT");
    let mut rest = client.try_clone().unwrap();
    let tail = data[100_000..].to_vec();
    let sender = thread::spawn(move || {
        rest.write_all(&tail).unwrap();
        rest.shutdown(Shutdown::Write).unwrap();
    });
    client.set_read_timeout(Some(READ_LIMIT)).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    sender.join().unwrap();
    assert!(
        reply == data,
        "{} of {} bytes came back",
        reply.len(),
        data.len()
    );
    let refused = wait_for(&bystander, "stream_refused", LIMIT, &mut Vec::new());
    assert_eq!(field(&refused, "kind"), Some("tcp"), "{refused}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A UDP echo server on loopback; its address, and the sources it saw.
fn udp_echo_server() -> (SocketAddr, std::sync::mpsc::Receiver<SocketAddr>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (sources, seen) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = sources.send(from);
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    (addr, seen)
}

#[test]
fn udp_datagrams_cross_to_an_echo_server_each_clients_flow_apart() {
    let (_serve, serve) = start_serve();
    let (echo, sources) = udp_echo_server();
    let code = code("udp");
    let _expose = expose(&code, serve, &["--udp", &format!("echo={echo}")]);
    let mut cmd = meeting("connect", &code, serve);
    cmd.args(["--udp-listen", "127.0.0.1:0"]);
    let connect = Running::spawn(cmd);
    let line = wait_for(&connect, "listening", LIMIT, &mut Vec::new());
    assert_eq!(field(&line, "proto"), Some("udp"), "{line}");
    let listen: SocketAddr = field(&line, "addr").unwrap().parse().unwrap();
    wait_for(&connect, "connected", LIMIT, &mut Vec::new());
    // Two clients, each in lockstep: a datagram, then its echo. The flow
    // is unreliable, so a datagram without an echo in a second is sent
    // again (on loopback that is rare).
    for client in ["first", "second"] {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        for i in 0..50 {
            let datagram = format!("{client} {i} {}", "x".repeat(i * 20));
            let mut echoed = None;
            for _ in 0..10 {
                socket.send_to(datagram.as_bytes(), listen).unwrap();
                let mut buf = [0u8; 4096];
                if let Ok(n) = socket.recv(&mut buf) {
                    echoed = Some(buf[..n].to_vec());
                    break;
                }
            }
            assert_eq!(
                echoed.as_deref(),
                Some(datagram.as_bytes()),
                "{client}'s datagram {i} came back, and only its own"
            );
        }
    }
    let seen: std::collections::BTreeSet<SocketAddr> = sources.try_iter().collect();
    assert_eq!(
        seen.len(),
        2,
        "one socket, so one flow, per client: {seen:?}"
    );
}
