//! Drives a [`Node`] from an event loop of your own: a blocking
//! `std::net::UdpSocket` whose read timeout is the node's next deadline.
//! No mio, no driver: everything the node needs is `(now, input)`, and
//! everything it wants done comes back from [`Node::drain`].
//!
//! ```text
//! cargo run --example own_loop -- CODE BOOTSTRAP [BIND]
//! ```
//!
//! Joins meeting `CODE` through the DHT node at `BOOTSTRAP` (for example
//! the address `echo_members` prints), takes the pipe streams members open,
//! writes a greeting on each and checks the member sends it back byte for
//! byte. Exits 0 once one member has echoed it, 1 after a minute without.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use tinynode::{
    Command, Event, Identity, Input, Meeting, Node, NodeConfig, Output, StreamKind, WallClock,
};

/// What we write on each stream and expect back.
const GREETING: &[u8] = b"hello from a loop of my own\n";
/// Giving up after this long.
const LIMIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(code), Some(bootstrap)) = (args.first(), args.get(1)) else {
        eprintln!("usage: own_loop CODE BOOTSTRAP [BIND]");
        return ExitCode::from(2);
    };
    let bind = args.get(2).map_or("127.0.0.1:0", String::as_str);
    match run(code, bootstrap, bind) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("own_loop: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(code: &str, bootstrap: &str, bind: &str) -> Result<(), String> {
    let bootstrap: SocketAddr = bootstrap.parse().map_err(|e| format!("{bootstrap}: {e}"))?;
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    // The node must know its concrete address (not a wildcard).
    let local = socket.local_addr().map_err(|e| e.to_string())?;

    // Randomness and the clock come from the loop, never from the node.
    let mut seeds = [0u8; 64];
    SystemRandom::new()
        .fill(&mut seeds)
        .map_err(|_| "no randomness")?;
    let (key_seed, node_seed) = seeds.split_at(32);
    let start = Instant::now();
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as u64;
    let clock = WallClock { at: start, unix_ms };
    let identity = Identity::from_seed(key_seed.try_into().expect("32 bytes"));
    let mut config = NodeConfig::new(local, identity, clock);
    config.bootstrap = vec![bootstrap];
    let mut node = Node::new(start, config, node_seed.try_into().expect("32 bytes"));
    node.set_stream_kinds(&[StreamKind::PIPE]);
    let meeting = Meeting::derive(code).map_err(|e| e.to_string())?;
    node.handle_input(start, Input::Command(Command::Join(meeting)));

    let mut echoed: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 65_536];
    loop {
        // 1. Do what the node asks: send its datagrams, act on its events
        // (acting may give it more to say, so drain until it waits).
        let now = Instant::now();
        let mut drain = node.drain();
        let outputs: Vec<Output> = drain.by_ref().collect();
        let deadline = drain.deadline();
        if !outputs.is_empty() {
            handle(&mut node, &socket, outputs, &mut echoed, now)?;
            if echoed.len() >= GREETING.len() {
                return Ok(());
            }
            continue;
        }
        if now >= start + LIMIT {
            return Err("no echo within a minute".into());
        }

        // 2. Sleep until a datagram arrives or the node's deadline passes.
        let deadline = deadline.unwrap_or(now + Duration::from_secs(1));
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match socket.recv_from(&mut buffer) {
            Ok((length, source)) => node.handle_input(
                Instant::now(),
                Input::Receive {
                    source,
                    destination: local,
                    data: &buffer[..length],
                },
            ),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                node.handle_input(Instant::now(), Input::Timeout);
            }
            Err(error) => eprintln!("own_loop: receive: {error}"),
        }
    }
}

/// Sends the node's datagrams and acts on its events; `echoed` collects
/// what members sent back. An echo that differs from [`GREETING`] is an
/// error.
fn handle(
    node: &mut Node,
    socket: &UdpSocket,
    outputs: Vec<Output>,
    echoed: &mut Vec<u8>,
    now: Instant,
) -> Result<(), String> {
    for output in outputs {
        match output {
            Output::Transmit(transmit) => {
                // One socket, so `transmit.source` is always `local`.
                let _ = socket.send_to(&transmit.payload, transmit.destination);
            }
            Output::Event(Event::Connected { peer, .. }) => {
                println!("connected to {}", peer.short());
            }
            Output::Event(Event::StreamIncoming { stream, header }) => {
                println!("{stream}: {:?} stream opened to us", header.name);
                node.stream_write(now, stream, GREETING)
                    .map_err(|e| format!("write: {e}"))?;
            }
            Output::Event(Event::StreamData { stream, bytes }) => {
                echoed.extend_from_slice(&bytes);
                let _ = node.stream_consumed(now, stream, bytes.len());
                if echoed.len() >= GREETING.len() {
                    if echoed[..GREETING.len()] != *GREETING {
                        return Err(format!("echo differs: {echoed:?}"));
                    }
                    println!("{stream}: echoed byte for byte");
                }
            }
            _ => {}
        }
    }
    Ok(())
}
