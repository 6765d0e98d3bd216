//! `tinynode pipe CODE`: stdin to another member running `pipe`, its
//! bytes to stdout, over one stream (`stream.rs`), both ways at once.
//!
//! Standard input and output are read and written by two helper threads
//! with blocking IO, so the event loop never blocks on a slow reader or
//! writer: the reader hands over chunks through a channel of one (it waits
//! while the stream has no room, so input waits in the pipe, not in
//! memory), and the writer reports each chunk written, which is when the
//! partner is granted as much more (end-to-end back-pressure).
//!
//! Partners: of two members running `pipe`, the one with the lower node
//! ID opens the stream when they connect; the other takes it. A member
//! running `join` refuses the stream (it takes no pipe streams), so the
//! opener tries the next one.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;
use std::time::Instant;

use mio::Waker;
use tinynode::driver::{Flow, Handler};
use tinynode::{Event, Identity, Node, NodeId, StreamHeader, StreamId, StreamKind, WriteError};

use super::args::PipeOptions;
use super::json::JsonLine;
use super::logger::errln;
use super::printer::Printer;
use super::{EXIT_FAILURE, Entered, enter, finish};

/// Bytes read from stdin at a time.
const CHUNK: usize = 64 * 1024;

/// `tinynode pipe`: exit 0 once both halves are finished and every byte
/// is written out; 1 with the reason otherwise.
pub fn pipe(options: PipeOptions, identity: Identity) -> i32 {
    // Errors as text on stderr: stdout carries only the partner's bytes.
    let printer = Printer::new(false);
    let Entered {
        mut driver,
        mut node,
        ..
    } = match enter(&options.meeting, identity, &printer, false, false) {
        Ok(entered) => entered,
        Err(code) => return code,
    };
    node.set_stream_kinds(&[StreamKind::PIPE]);
    let waker = driver.waker();
    let mut handler = Pipe {
        status: Status {
            json: options.meeting.json,
        },
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

/// Status lines on stderr, plain or JSON.
struct Status {
    json: bool,
}

impl Status {
    fn say(&self, event: &str, text: &str) {
        self.emit(JsonLine::event(event), text);
    }

    fn emit(&self, line: JsonLine, text: &str) {
        if self.json {
            errln!("{}", line.finish());
        } else {
            errln!("pipe: {text}");
        }
    }

    fn error(&self, what: &str) {
        self.emit(JsonLine::event("error").str("what", what), what);
    }
}

/// The pipe's state, driven by the node's events.
struct Pipe {
    status: Status,
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

impl Pipe {
    fn wanted(&self, peer: NodeId) -> bool {
        self.peer
            .as_ref()
            .is_none_or(|prefix| peer.to_string().starts_with(prefix.as_str()))
    }

    fn handle(&mut self, node: &mut Node, event: Event) {
        let now = Instant::now();
        match event {
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
        self.status.emit(
            JsonLine::event("pipe_connected").display("peer", stream.peer()),
            &format!("connected to {}", stream.peer().short()),
        );
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
                | Event::StreamIncoming { .. }
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
        self.give_up_at
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
        if self.closed && self.finished_theirs && self.output.is_done() {
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

/// Standard input, read in chunks on a helper thread.
struct Input {
    chunks: Receiver<io::Result<Vec<u8>>>,
    ended: bool,
}

impl Input {
    fn spawn(waker: Arc<Waker>) -> Self {
        let (sender, chunks) = mpsc::sync_channel(1);
        let spawned = thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_loop(&sender, &waker));
        let ended = spawned.is_err();
        Self { chunks, ended }
    }

    /// The next chunk; `Err` at the end of input (or a read error), `None`
    /// when nothing is ready.
    fn take(&mut self) -> Option<Result<Vec<u8>, ()>> {
        if self.ended {
            return Some(Err(()));
        }
        match self.chunks.try_recv() {
            Ok(Ok(chunk)) => Some(Ok(chunk)),
            Ok(Err(_)) | Err(TryRecvError::Disconnected) => {
                self.ended = true;
                Some(Err(()))
            }
            Err(TryRecvError::Empty) => None,
        }
    }
}

fn read_loop(sender: &SyncSender<io::Result<Vec<u8>>>, waker: &Waker) {
    let mut stdin = io::stdin().lock();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let read = match stdin.read(&mut chunk) {
            Ok(0) => return drop(waker.wake()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                let _ = sender.send(Err(error));
                return drop(waker.wake());
            }
        };
        chunk.truncate(read);
        if sender.send(Ok(chunk)).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

/// What the writer thread is told.
enum ToWrite {
    Bytes(Vec<u8>),
    End,
}

/// Standard output, written on a helper thread.
struct Output {
    sender: Option<mpsc::Sender<ToWrite>>,
    written: Receiver<Result<usize, String>>,
    error: Option<String>,
    done: bool,
}

impl Output {
    fn spawn(waker: Arc<Waker>) -> Self {
        let (sender, orders) = mpsc::channel();
        let (report, written) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_loop(&orders, &report, &waker));
        Self {
            sender: spawned.is_ok().then_some(sender),
            written,
            error: None,
            done: false,
        }
    }

    fn write(&mut self, bytes: Vec<u8>) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(ToWrite::Bytes(bytes));
        }
    }

    /// No more bytes: flush and close stdout.
    fn finish(&mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(ToWrite::End);
        }
    }

    /// Bytes written out since the last call.
    fn take_written(&mut self) -> usize {
        let mut total = 0;
        while let Ok(report) = self.written.try_recv() {
            match report {
                Ok(0) => self.done = true,
                Ok(n) => total += n,
                Err(error) => self.error = Some(error),
            }
        }
        total
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// True once every byte was written and stdout flushed (as reported
    /// to [`take_written`](Self::take_written)).
    fn is_done(&self) -> bool {
        self.done
    }
}

fn write_loop(
    orders: &Receiver<ToWrite>,
    report: &mpsc::Sender<Result<usize, String>>,
    waker: &Waker,
) {
    let mut stdout = io::stdout().lock();
    while let Ok(order) = orders.recv() {
        let result = match order {
            ToWrite::Bytes(bytes) => stdout.write_all(&bytes).map(|()| bytes.len()),
            ToWrite::End => stdout.flush().map(|()| 0),
        };
        let failed = result.is_err();
        let _ = report.send(result.map_err(|e| e.to_string()));
        let _ = waker.wake();
        if failed {
            return;
        }
    }
}
