//! `tinynode pipe CODE`: stdin to another member running `pipe`, its
//! bytes to stdout, over one stream (`stream.rs`), both ways at once.
//!
//! Standard input and output are read and written on helper threads
//! (`stdio.rs`); each chunk written out is when the partner is granted as
//! much more (end-to-end back-pressure). Status goes to stderr: one line
//! rewritten in place on a terminal, plain lines otherwise, JSON lines
//! with `--json`.
//!
//! Partners: of two members running `pipe`, the one with the lower node
//! ID opens the stream when they connect; the other takes it. A member
//! running `join` refuses the stream (it takes no pipe streams), so the
//! opener tries the next one.

use std::sync::Arc;
use std::time::Instant;
use tinynode::driver::{Flow, Handler};
use tinynode::{Event, Identity, Node, NodeId, StreamHeader, StreamId, StreamKind, WriteError};

use super::json::JsonLine;
use super::options::PipeOptions;
use super::printer::{Printer, with_path};
use super::status::{Status, megabytes};
use super::stdio::{Input, Output};
use super::{EXIT_FAILURE, Entered, enter, finish};

/// `tinynode pipe`: exit 0 once both halves are finished and every byte
/// is written out; 1 with the reason otherwise.
pub fn pipe(options: PipeOptions, identity: Identity) -> i32 {
    // Errors as text on stderr: stdout carries only the partner's bytes.
    let printer = Printer::new(false);
    let allowed = match super::allow::load(&options.allow) {
        Ok(allowed) => allowed,
        Err(error) => {
            printer.error(&error);
            return EXIT_FAILURE;
        }
    };
    let Entered {
        mut driver,
        mut node,
        ..
    } = match enter(&options.meeting, identity, &printer, false, false) {
        Ok(entered) => entered,
        Err(code) => return code,
    };
    node.set_stream_kinds(&[StreamKind::PIPE]);
    node.set_stream_peers(allowed.as_deref());
    let waker = driver.waker();
    let mut handler = Pipe {
        status: Status::new("pipe", options.meeting.json),
        paths: Vec::new(),
        next_progress: None,
        peer: options.peer,
        give_up_at: options.timeout.map(|t| Instant::now() + t),
        inbox: Vec::new(),
        candidates: Vec::new(),
        partner: None,
        started: Instant::now(),
        input: Input::spawn(Arc::clone(&waker)),
        output: Output::spawn(waker),
        pending: Vec::new(),
        offset: 0,
        input_done: false,
        finished_ours: false,
        finished_theirs: false,
        closed: false,
        sent: 0,
        received: 0,
        failure: None,
        write_failed: None,
    };
    handler.status.say(
        "pipe_waiting",
        "waiting for another member running `tinynode pipe` with this code",
    );
    let result = driver.run(&mut node, &mut handler);
    if let Some(reason) = &handler.failure {
        handler.status.error(reason);
        return EXIT_FAILURE;
    }
    finish(&printer, result)
}

/// The pipe's state, driven by the node's events.
struct Pipe {
    status: Status,
    /// How each connected member is reached, from `Connected` and
    /// `PathChanged`: (member, address, through a relay).
    paths: Vec<(NodeId, std::net::SocketAddr, bool)>,
    /// When the next progress report is due, once piping.
    next_progress: Option<Instant>,
    /// Only a partner whose ID starts with these hex digits.
    peer: Option<String>,
    give_up_at: Option<Instant>,
    /// Events since the last wakeup.
    inbox: Vec<Event>,
    /// Streams we opened that the member has not taken yet.
    candidates: Vec<StreamId>,
    partner: Option<StreamId>,
    started: Instant,
    input: Input,
    output: Output,
    /// The stdin chunk being written, and how much of it went.
    pending: Vec<u8>,
    offset: usize,
    input_done: bool,
    finished_ours: bool,
    finished_theirs: bool,
    closed: bool,
    sent: u64,
    received: u64,
    failure: Option<String>,
    /// A write to the partner failed: its reset, with the reason, follows.
    write_failed: Option<WriteError>,
}

/// How the pipe reaches its partner, in words.
fn path_words(addr: std::net::SocketAddr, relay: bool) -> String {
    if relay {
        format!("through the relay at {addr}")
    } else {
        format!("direct at {addr}")
    }
}

impl Pipe {
    fn wanted(&self, peer: NodeId) -> bool {
        self.peer
            .as_ref()
            .is_none_or(|prefix| peer.to_string().starts_with(prefix.as_str()))
    }

    fn handle(&mut self, node: &mut Node, event: Event) {
        let now = Instant::now();
        if let Event::Connected {
            peer, addr, relay, ..
        }
        | Event::PathChanged { peer, addr, relay } = &event
        {
            self.paths.retain(|(p, _, _)| p != peer);
            self.paths.push((*peer, *addr, *relay));
        }
        match event {
            Event::PeerDiscovered { peer, via, .. } if self.partner.is_none() => {
                self.status.emit(
                    JsonLine::event("pipe_found")
                        .display("peer", peer)
                        .str("via", via.name()),
                    &format!("found member {} via {via}; connecting", peer.short()),
                );
            }
            Event::Connected { peer, .. }
                if self.partner.is_none() && self.wanted(peer) && node.node_id() < peer =>
            {
                let header = StreamHeader {
                    kind: StreamKind::PIPE,
                    name: String::new(),
                };
                if let Ok(stream) = node.open_stream(now, peer, header) {
                    self.candidates.push(stream);
                }
            }
            Event::StreamIncoming { stream, .. } => {
                if self.partner.is_none() && self.wanted(stream.peer()) {
                    self.pair(stream);
                } else {
                    let _ = node.stream_reset(now, stream, "already piping");
                }
            }
            Event::StreamRefused { peer, reason, .. } => self.status.emit(
                JsonLine::event("stream_refused")
                    .display("peer", peer)
                    .str("reason", &reason),
                &format!("refused a stream from {peer}: {reason}"),
            ),
            Event::StreamAccepted { stream } if self.candidates.contains(&stream) => {
                self.candidates.retain(|c| *c != stream);
                if self.partner.is_none() {
                    self.pair(stream);
                } else {
                    let _ = node.stream_reset(now, stream, "already piping");
                }
            }
            Event::StreamData { stream, bytes } if Some(stream) == self.partner => {
                self.received += bytes.len() as u64;
                self.output.write(bytes);
            }
            Event::StreamFinished { stream } if Some(stream) == self.partner => {
                self.finished_theirs = true;
                self.output.finish();
            }
            Event::StreamClosed { stream } if Some(stream) == self.partner => self.closed = true,
            Event::PathChanged { peer, addr, relay }
                if self.partner.is_some_and(|partner| partner.peer() == peer) =>
            {
                self.status.emit(
                    with_path(
                        JsonLine::event("path_changed")
                            .display("peer", peer)
                            .display("addr", addr),
                        addr,
                        relay,
                    ),
                    &format!("the pipe now flows {}", path_words(addr, relay)),
                );
            }
            Event::StreamReset {
                stream,
                code,
                reason,
            } => {
                self.candidates.retain(|c| *c != stream);
                if Some(stream) == self.partner && !self.closed {
                    let why = if reason.is_empty() {
                        code.to_string()
                    } else {
                        format!("{code}: {reason}")
                    };
                    self.failure = Some(format!("the partner's stream ended early ({why})"));
                }
            }
            _ => {}
        }
    }

    fn pair(&mut self, stream: StreamId) {
        self.partner = Some(stream);
        self.give_up_at = None;
        self.started = Instant::now();
        self.next_progress = Some(self.started + self.status.progress_every());
        let peer = stream.peer();
        let path = self.paths.iter().find(|(p, _, _)| *p == peer);
        let (line, how) = match path {
            Some((_, addr, relay)) => (
                with_path(
                    JsonLine::event("pipe_connected")
                        .display("peer", peer)
                        .display("addr", addr),
                    *addr,
                    *relay,
                ),
                format!(" {}", path_words(*addr, *relay)),
            ),
            None => (
                JsonLine::event("pipe_connected").display("peer", peer),
                String::new(),
            ),
        };
        self.status
            .emit(line, &format!("piping with {}{how}", peer.short()));
    }

    /// Moves stdin into the stream while it takes bytes.
    fn pump_input(&mut self, node: &mut Node, stream: StreamId) {
        let now = Instant::now();
        loop {
            if self.offset == self.pending.len() {
                match self.input.take() {
                    Some(Ok(chunk)) => {
                        self.pending = chunk;
                        self.offset = 0;
                    }
                    Some(Err(())) => self.input_done = true,
                    None => {}
                }
                if self.offset == self.pending.len() {
                    break;
                }
            }
            match node.stream_write(now, stream, &self.pending[self.offset..]) {
                Ok(taken) => {
                    self.offset += taken;
                    self.sent += taken as u64;
                    if taken == 0 {
                        break;
                    }
                }
                Err(WriteError::Blocked) => break,
                Err(error) => {
                    // The stream's reset event says why; it comes with the
                    // next wakeup (see `on_wake`).
                    self.write_failed = Some(error);
                    return;
                }
            }
        }
        if self.input_done && self.offset == self.pending.len() && !self.finished_ours {
            self.finished_ours = true;
            let _ = node.stream_finish(now, stream);
        }
    }
}

impl Handler for &mut Pipe {
    fn on_event(&mut self, event: &Event) -> Flow {
        if matches!(
            event,
            Event::Connected { .. }
                | Event::PathChanged { .. }
                | Event::PeerDiscovered { .. }
                | Event::StreamIncoming { .. }
                | Event::StreamRefused { .. }
                | Event::StreamAccepted { .. }
                | Event::StreamData { .. }
                | Event::StreamFinished { .. }
                | Event::StreamClosed { .. }
                | Event::StreamReset { .. }
        ) {
            self.inbox.push(event.clone());
        }
        Flow::Continue
    }

    fn wake_at(&self) -> Option<Instant> {
        self.give_up_at.or(self.next_progress)
    }

    fn on_wake(&mut self, node: &mut Node) -> Flow {
        let had_write_failed = self.write_failed;
        for event in std::mem::take(&mut self.inbox) {
            self.handle(node, event);
        }
        if self.failure.is_none()
            && let Some(error) = had_write_failed
        {
            self.failure = Some(format!("the partner's stream ended early ({error})"));
        }
        if self.failure.is_some() {
            return Flow::Leave(EXIT_FAILURE);
        }
        if let Some(at) = self.give_up_at
            && Instant::now() >= at
        {
            self.failure = Some("no partner running `tinynode pipe` found in time".into());
            return Flow::Leave(EXIT_FAILURE);
        }
        let written = self.output.take_written();
        let Some(stream) = self.partner else {
            return Flow::Continue;
        };
        if written > 0 {
            let _ = node.stream_consumed(Instant::now(), stream, written);
        }
        if let Some(error) = self.output.error() {
            self.failure = Some(format!("writing stdout: {error}"));
            let _ = node.stream_reset(Instant::now(), stream, "the reader's output closed");
            return Flow::Leave(EXIT_FAILURE);
        }
        if !self.finished_ours && self.write_failed.is_none() {
            self.pump_input(node, stream);
            if self.failure.is_some() {
                return Flow::Leave(EXIT_FAILURE);
            }
        }
        if let Some(at) = self.next_progress
            && Instant::now() >= at
        {
            let seconds = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = (self.sent + self.received) as f64 / seconds / 1e6;
            let text = format!(
                "sent {}, received {}, {rate:.1} MB/s",
                megabytes(self.sent),
                megabytes(self.received)
            );
            self.status.progress(
                JsonLine::event("pipe_progress")
                    .number("sent", self.sent)
                    .number("received", self.received),
                &text,
            );
            self.next_progress = Some(at + self.status.progress_every());
        }
        if self.closed && self.finished_theirs && self.output.is_done() {
            self.status.clear_progress();
            let seconds = self.started.elapsed().as_secs_f64();
            self.status.emit(
                JsonLine::event("pipe_done")
                    .number("sent", self.sent)
                    .number("received", self.received),
                &format!(
                    "done: sent {} bytes, received {} bytes in {seconds:.1} s",
                    self.sent, self.received
                ),
            );
            return Flow::Leave(0);
        }
        Flow::Continue
    }
}
