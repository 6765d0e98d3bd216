//! Joins a meeting on the mio driver, opens a stream to each member that
//! connects, and sends back every byte the member writes on it.
//!
//! ```text
//! cargo run --example echo_members -- CODE [BIND [BOOTSTRAP...]]
//! ```
//!
//! `BIND` defaults to `127.0.0.1:0`; the first line printed is the bound
//! address, so another node can bootstrap from it (`own_loop` does).
//! Mainline and LAN beacons stay off: members meet through tinynode's own
//! DHT, here the echo node itself and any `BOOTSTRAP` nodes.
//!
//! Back-pressure runs end to end: a member's bytes are marked consumed
//! only once they are written back, so a member that sends faster than it
//! reads its echo is held back by its own stream window.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use tinynode::driver::{Driver, Flow, Handler, generate_identity};
use tinynode::{
    Command, Event, Input, Meeting, Node, NodeConfig, NodeId, StreamHeader, StreamId, StreamKind,
};

/// What the events asked for, done in [`Handler::on_wake`] (which has the
/// node; [`Handler::on_event`] only sees the event).
#[derive(Default)]
struct Echo {
    /// Members that connected and have no echo stream yet.
    to_open: Vec<NodeId>,
    /// Bytes received and not yet written back, per stream.
    unsent: BTreeMap<StreamId, Vec<u8>>,
    /// Streams whose member finished: finish ours once all is echoed.
    finished: Vec<StreamId>,
}

impl Handler for Echo {
    fn on_event(&mut self, event: &Event) -> Flow {
        match event {
            Event::Connected { peer, via, .. } => {
                println!("connected to {} (found via {via})", peer.short());
                self.to_open.push(*peer);
            }
            Event::StreamAccepted { stream } => println!("{stream}: open"),
            Event::StreamData { stream, bytes } => {
                self.unsent.entry(*stream).or_default().extend(bytes);
            }
            Event::StreamFinished { stream } => self.finished.push(*stream),
            Event::StreamReset { stream, reason, .. } => {
                println!("{stream}: reset ({reason})");
                self.unsent.remove(stream);
            }
            _ => {}
        }
        Flow::Continue
    }

    fn on_wake(&mut self, node: &mut Node) -> Flow {
        let now = Instant::now();
        for peer in self.to_open.drain(..) {
            let header = StreamHeader {
                kind: StreamKind::PIPE,
                name: "echo".into(),
            };
            if let Err(error) = node.open_stream(now, peer, header) {
                println!("no stream to {}: {error}", peer.short());
            }
        }
        for (stream, bytes) in &mut self.unsent {
            // Fewer bytes than offered (or none) when the member has not
            // granted more: the rest waits for the next wake-up.
            if let Ok(written) = node.stream_write(now, *stream, bytes) {
                bytes.drain(..written);
                let _ = node.stream_consumed(now, *stream, written);
            }
        }
        self.unsent.retain(|_, bytes| !bytes.is_empty());
        let unsent = &self.unsent;
        self.finished.retain(|stream| {
            if unsent.contains_key(stream) {
                return true;
            }
            println!("{stream}: finished, all echoed");
            let _ = node.stream_finish(now, *stream);
            false
        });
        Flow::Continue
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(code) = args.next() else {
        eprintln!("usage: echo_members CODE [BIND [BOOTSTRAP...]]");
        return ExitCode::from(2);
    };
    let parse = |text: String| {
        text.parse::<SocketAddr>()
            .map_err(|e| format!("{text}: {e}"))
    };
    let bind = args
        .next()
        .map_or(Ok(SocketAddr::from(([127, 0, 0, 1], 0))), parse);
    let bootstrap: Result<Vec<_>, _> = args.map(parse).collect();
    let (Ok(bind), Ok(bootstrap)) = (bind, bootstrap) else {
        eprintln!("echo_members: BIND and BOOTSTRAP are IP:PORT");
        return ExitCode::from(2);
    };
    let meeting = match Meeting::derive(&code) {
        Ok(meeting) => meeting,
        Err(error) => {
            eprintln!("echo_members: {error}");
            return ExitCode::from(2);
        }
    };
    let identity = match generate_identity() {
        Ok(identity) => identity,
        Err(error) => {
            eprintln!("echo_members: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Driver::start(&[bind], false, |addrs, clock| {
        let mut config = NodeConfig::new(addrs[0], identity, clock);
        config.bootstrap = bootstrap;
        config
    });
    let (mut driver, mut node) = match started {
        Ok(started) => started,
        Err(error) => {
            eprintln!("echo_members: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", node.local_addr());
    driver.submit(&mut node, Input::Command(Command::Join(meeting)));
    match driver.run(&mut node, Echo::default()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo_members: {error}");
            ExitCode::FAILURE
        }
    }
}
