//! `tinynode receive CODE`: opens a transfer stream (kind `files`,
//! `protocol-spec.md` §6.9) to the member running `tinynode send` with
//! the code, shows its offer, plans what it does to the directory
//! (`transfer::disk::plan`: unsafe paths refused, conflicts named,
//! complete files skipped, partial ones resumed), asks for the missing
//! chunks, checks each against its hash as it arrives (a bad one is
//! fetched once more), and renames each file into place once its SHA-256
//! checks out. Members that refuse the stream (not sending) are skipped.
//!
//! About 700 lines, kept as one file: one handler whose steps (offer,
//! plan, ask, verify, rename) share its transfer state; the disk side is
//! `transfer::disk`, `--stdout` is `stdout_sink.rs`, the status lines are
//! `status.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Instant;

use tinynode::driver::{Flow, Handler};
use tinynode::transfer::disk::{self, PartFile, PlanError, Step};
use tinynode::transfer::wire::{
    AbortCode, EntryKind, Frame, FrameReader, Hash, Offer, Range, chunk_count,
};
use tinynode::{Event, Identity, Node, NodeId, StreamHeader, StreamId, StreamKind};

use super::json::JsonLine;
use super::options::ReceiveOptions;
use super::printer::Printer;
use super::status::{Status, megabytes, path_words};
use super::stdout_sink::StdoutSink;
use super::{EXIT_FAILURE, Entered, enter, finish};

/// Entries of an offer listed by name before the user is asked.
const LISTED: usize = 10;

/// `tinynode receive`: exit 0 once every offered file is in place and
/// verified; 1 with the reason otherwise.
pub fn receive(options: ReceiveOptions, identity: Identity) -> i32 {
    let status = Status::new("receive", options.meeting.json);
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
    if let Some(code) = &options.meeting.code {
        super::warn_if_weak(&printer, code);
    }
    node.set_stream_peers(allowed.as_deref());
    // One stream channel ready on each connection: the offer is asked for
    // the moment a sender is connected.
    node.set_stream_spares(true);
    // SAFETY: isatty only inspects the descriptor.
    let ask = !options.yes && unsafe { libc::isatty(0) } == 1;
    let mut handler = Receiver {
        options,
        ask,
        waker: driver.waker(),
        answer: None,
        status,
        paths: Vec::new(),
        candidates: Vec::new(),
        sender: None,
        reader: FrameReader::default(),
        offer: None,
        files: BTreeMap::new(),
        refetched: BTreeSet::new(),
        total: 0,
        fetched: 0,
        to_fetch: 0,
        started: Instant::now(),
        next_progress: None,
        done_sent: false,
        outcome: None,
        inbox: Vec::new(),
        stdout: None,
    };
    handler.status.say(
        "waiting",
        "waiting for the member running `tinynode send` with this code",
    );
    let result = driver.run(&mut node, &mut handler);
    handler.status.clear_progress();
    match handler.outcome.take() {
        Some(Err(why)) => {
            handler.status.error(&why);
            EXIT_FAILURE
        }
        _ => finish(&printer, result),
    }
}

/// A file being fetched.
struct Fetching {
    part: PartFile,
    path: String,
    size: u64,
    sha256: Hash,
    chunks: Vec<Hash>,
    executable: bool,
    /// Chunks not received yet.
    missing: u32,
}

/// The receiver's state, driven by the node's events.
struct Receiver {
    options: ReceiveOptions,
    /// Ask the user before taking an offer.
    ask: bool,
    waker: std::sync::Arc<mio::Waker>,
    /// The user's answer, from the thread that reads it.
    answer: Option<mpsc::Receiver<bool>>,
    status: Status,
    /// How each member is reached: (member, address, through a relay).
    paths: Vec<(NodeId, SocketAddr, bool)>,
    /// Streams opened to members that did not answer yet.
    candidates: Vec<StreamId>,
    /// The sender's stream, once one took ours.
    sender: Option<StreamId>,
    reader: FrameReader,
    offer: Option<Offer>,
    /// Files under way, by entry index.
    files: BTreeMap<u32, Fetching>,
    /// Chunks asked for a second time.
    refetched: BTreeSet<(u32, u32)>,
    total: u64,
    fetched: u64,
    to_fetch: u64,
    started: Instant,
    next_progress: Option<Instant>,
    done_sent: bool,
    /// How it ended: `Ok` once every file is in place.
    outcome: Option<Result<(), String>>,
    inbox: Vec<Event>,
    stdout: Option<StdoutSink>,
}

impl Receiver {
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
            Event::Connected { peer, .. } if self.sender.is_none() => {
                let header = StreamHeader {
                    kind: StreamKind::FILES,
                    name: String::new(),
                };
                if let Ok(stream) = node.open_stream(now, peer, header) {
                    self.candidates.push(stream);
                }
            }
            Event::StreamAccepted { stream } if self.candidates.contains(&stream) => {
                self.candidates.retain(|c| *c != stream);
                if self.sender.is_none() {
                    self.sender = Some(stream);
                    let peer = stream.peer();
                    let path = self.path_words();
                    self.status.emit(
                        JsonLine::event("sender")
                            .display("peer", peer)
                            .str("short", &peer.short())
                            .str("path", &path),
                        &format!("receiving from {} ({path})", peer.short()),
                    );
                    for other in std::mem::take(&mut self.candidates) {
                        let _ = node.stream_reset(now, other, "receiving from another member");
                    }
                } else {
                    let _ = node.stream_reset(now, stream, "receiving from another member");
                }
            }
            Event::StreamData { stream, bytes } if Some(stream) == self.sender => {
                self.reader.push(&bytes);
                self.read_frames(node, stream);
                match self.stdout.as_mut() {
                    Some(sink) => sink.hold(bytes.len()),
                    None => {
                        let _ = node.stream_consumed(Instant::now(), stream, bytes.len());
                    }
                }
            }
            Event::StreamReset { stream, reason, .. } => {
                self.candidates.retain(|c| *c != stream);
                if Some(stream) == self.sender && self.outcome.is_none() {
                    self.outcome = Some(if self.done_sent {
                        Ok(())
                    } else {
                        Err(format!(
                            "the sender left before the end ({reason}); run the same command again to fetch the rest"
                        ))
                    });
                }
            }
            Event::StreamFinished { stream } | Event::StreamClosed { stream }
                if Some(stream) == self.sender && self.done_sent =>
            {
                self.outcome.get_or_insert(Ok(()));
            }
            _ => {}
        }
    }

    /// Takes every whole frame the sender sent.
    fn read_frames(&mut self, node: &mut Node, stream: StreamId) {
        while self.outcome.is_none() {
            let frame = match self.reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => {
                    return self.fail(node, AbortCode::Protocol, &format!("the sender: {error}"));
                }
            };
            match frame {
                Frame::Offer(offer) if self.offer.is_none() => self.on_offer(node, offer),
                Frame::Chunk { file, index, data } if self.stdout.is_some() => {
                    self.write_out(node, file, index, data);
                }
                Frame::Chunk { file, index, data } => {
                    self.on_chunk(node, stream, file, index, &data)
                }
                Frame::Abort(code, reason) => {
                    self.outcome = Some(Err(format!("the sender gave up ({code:?}): {reason}")));
                }
                other => {
                    let why = format!("a sender does not send {} here", other.name());
                    return self.fail(node, AbortCode::Protocol, &why);
                }
            }
        }
    }

    /// The offer came: list it, then ask or go on.
    fn on_offer(&mut self, node: &mut Node, offer: Offer) {
        let (files, bytes) = offer.totals();
        let mut names: Vec<&str> = offer.entries.iter().map(|e| e.path.as_str()).collect();
        let more = names.len().saturating_sub(LISTED);
        names.truncate(LISTED);
        let listed = if more > 0 {
            format!("{} and {more} more", names.join(", "))
        } else {
            names.join(", ")
        };
        let from = self.sender.map(|s| s.peer().short()).unwrap_or_default();
        self.status.emit(
            JsonLine::event("offer")
                .str("from", &from)
                .number("files", files as u64)
                .number("entries", offer.entries.len() as u64)
                .number("bytes", bytes),
            &format!(
                "{from} offers {files} file(s), {}: {listed}",
                megabytes(bytes)
            ),
        );
        self.total = bytes;
        self.offer = Some(offer);
        if self.ask {
            let (answer, read) = mpsc::channel();
            let waker = std::sync::Arc::clone(&self.waker);
            super::logger::to_stderr("receive: accept? [y/N] ");
            std::thread::spawn(move || {
                let mut line = String::new();
                let yes = std::io::stdin().lock().read_line(&mut line).is_ok()
                    && matches!(line.trim(), "y" | "Y" | "yes" | "Yes");
                let _ = answer.send(yes);
                let _ = waker.wake();
            });
            self.answer = Some(read);
        } else {
            self.accept(node);
        }
    }

    /// Plans the offer against the directory and asks for what is missing.
    fn accept(&mut self, node: &mut Node) {
        let Some(offer) = self.offer.clone() else {
            return;
        };
        if self.options.stdout {
            return self.accept_to_stdout(node, &offer);
        }
        let steps = match disk::plan(&self.options.out, &offer, self.options.overwrite) {
            Ok(steps) => steps,
            Err(error) => {
                let code = match error {
                    PlanError::Unsafe { .. } => AbortCode::BadOffer,
                    PlanError::Conflicts(_) => AbortCode::Declined,
                    PlanError::Disk(_) => AbortCode::Disk,
                    // A reason this build does not know: the offer's fault.
                    _ => AbortCode::BadOffer,
                };
                return self.fail(node, code, &error.to_string());
            }
        };
        let mut wants = Vec::new();
        for step in steps {
            match step {
                Step::Directory(path) => {
                    if let Err(error) = std::fs::create_dir_all(&path) {
                        let why = format!("{}: {error}", path.display());
                        return self.fail(node, AbortCode::Disk, &why);
                    }
                }
                Step::Complete { entry } => {
                    let path = offer.entries[entry].path.clone();
                    self.status.emit(
                        JsonLine::event("file_done")
                            .str("path", &path)
                            .str("state", "already there"),
                        &format!("{path}: already there"),
                    );
                }
                Step::Fetch {
                    entry,
                    target,
                    part,
                    from,
                } => {
                    let item = &offer.entries[entry];
                    let EntryKind::File {
                        size,
                        sha256,
                        chunks,
                    } = &item.kind
                    else {
                        continue;
                    };
                    let part = match PartFile::open(&target, &part, offer.chunk_size, from) {
                        Ok(part) => part,
                        Err(error) => return self.fail(node, AbortCode::Disk, &error.to_string()),
                    };
                    let count = chunk_count(*size, offer.chunk_size) as u32;
                    let done = (u64::from(from) * u64::from(offer.chunk_size)).min(*size);
                    self.fetched += done;
                    self.to_fetch += size - done;
                    let index = entry as u32;
                    self.files.insert(
                        index,
                        Fetching {
                            part,
                            path: item.path.clone(),
                            size: *size,
                            sha256: *sha256,
                            chunks: chunks.clone(),
                            executable: item.executable,
                            missing: count - from,
                        },
                    );
                    if from < count {
                        wants.push(Range {
                            file: index,
                            first: from,
                            end: count,
                        });
                    }
                }
            }
        }
        let resumed = self.fetched;
        // Files whose every chunk was already here only need checking.
        let complete: Vec<u32> = self
            .files
            .iter()
            .filter(|(_, f)| f.missing == 0)
            .map(|(i, _)| *i)
            .collect();
        for index in complete {
            self.land(node, index);
        }
        if self.outcome.is_some() {
            return;
        }
        self.started = Instant::now();
        self.next_progress = Some(self.started + self.status.progress_every());
        if resumed > 0 {
            self.status.emit(
                JsonLine::event("resume").number("bytes", resumed),
                &format!("resuming: {} already here and verified", megabytes(resumed)),
            );
        }
        self.send_frame(node, &Frame::Want(wants));
        self.check_all_done(node);
    }

    /// `--stdout`: the offer must be one file; all of it is asked for.
    fn accept_to_stdout(&mut self, node: &mut Node, offer: &Offer) {
        let [entry] = offer.entries.as_slice() else {
            let why = format!(
                "--stdout takes one file; this offer has {} entries",
                offer.entries.len()
            );
            return self.fail(node, AbortCode::Declined, &why);
        };
        let EntryKind::File {
            size,
            sha256,
            chunks,
        } = &entry.kind
        else {
            return self.fail(
                node,
                AbortCode::Declined,
                "--stdout takes a file, not a directory",
            );
        };
        let count = chunk_count(*size, offer.chunk_size) as u32;
        self.to_fetch = *size;
        self.stdout = Some(StdoutSink::new(
            std::sync::Arc::clone(&self.waker),
            entry.path.clone(),
            chunks.clone(),
            *sha256,
        ));
        self.started = Instant::now();
        self.next_progress = Some(self.started + self.status.progress_every());
        self.send_frame(
            node,
            &Frame::Want(vec![Range {
                file: 0,
                first: 0,
                end: count,
            }]),
        );
        self.stdout_progress(node);
    }

    /// `--stdout`: a chunk, checked and written out in order.
    fn write_out(&mut self, node: &mut Node, file: u32, index: u32, data: Vec<u8>) {
        let Some(sink) = self.stdout.as_mut() else {
            return;
        };
        let len = data.len() as u64;
        let taken = if file == 0 {
            sink.take(index, data)
        } else {
            Err((
                AbortCode::Protocol,
                "a chunk of a file not asked for".into(),
            ))
        };
        match taken {
            Ok(()) => {
                self.fetched += len;
                self.stdout_progress(node);
            }
            Err((code, why)) => self.fail(node, code, &why),
        }
    }

    /// `--stdout`: hands back what stdout took; `Done` once every byte
    /// is checked, written and flushed.
    fn stdout_progress(&mut self, node: &mut Node) {
        let Some(sink) = self.stdout.as_mut() else {
            return;
        };
        match sink.progress() {
            Ok(consumed) => {
                if consumed > 0
                    && let Some(stream) = self.sender
                {
                    let _ = node.stream_consumed(Instant::now(), stream, consumed);
                }
                if sink.is_done() {
                    self.check_all_done(node);
                }
            }
            Err((code, why)) => self.fail(node, code, &why),
        }
    }

    /// A chunk arrived: checked, written, and its file landed when whole.
    fn on_chunk(&mut self, node: &mut Node, stream: StreamId, file: u32, index: u32, data: &[u8]) {
        let Some(fetching) = self.files.get_mut(&file) else {
            return self.fail(node, AbortCode::Protocol, "a chunk of a file not asked for");
        };
        let Some(expected) = fetching.chunks.get(index as usize) else {
            return self.fail(node, AbortCode::Protocol, "a chunk past the file's end");
        };
        if disk::digest(data) != *expected {
            if self.refetched.insert((file, index)) {
                let path = fetching.path.clone();
                self.status.emit(
                    JsonLine::event("refetch")
                        .str("path", &path)
                        .number("chunk", u64::from(index)),
                    &format!("{path}: chunk {index} failed its hash; fetching it again"),
                );
                let again = Frame::Want(vec![Range {
                    file,
                    first: index,
                    end: index + 1,
                }]);
                let _ = stream;
                return self.send_frame(node, &again);
            }
            let why = format!("{}: chunk {index} failed its hash twice", fetching.path);
            return self.fail(node, AbortCode::Corrupt, &why);
        }
        if let Err(error) = fetching.part.write_chunk(index, data) {
            return self.fail(node, AbortCode::Disk, &error.to_string());
        }
        fetching.missing = fetching.missing.saturating_sub(1);
        self.fetched += data.len() as u64;
        if fetching.missing == 0 {
            self.land(node, file);
        }
        self.check_all_done(node);
    }

    /// Checks file `index` whole and renames it into place.
    fn land(&mut self, node: &mut Node, index: u32) {
        let Some(fetching) = self.files.remove(&index) else {
            return;
        };
        let Fetching {
            part,
            path,
            size,
            sha256,
            executable,
            ..
        } = fetching;
        match part.finish(&sha256, executable) {
            Ok(true) => self.status.emit(
                JsonLine::event("file_done")
                    .str("path", &path)
                    .number("bytes", size),
                &format!("{path}: {} verified", megabytes(size)),
            ),
            Ok(false) => {
                let why = format!("{path}: the whole file does not match its SHA-256");
                self.fail(node, AbortCode::Corrupt, &why);
            }
            Err(error) => self.fail(node, AbortCode::Disk, &error.to_string()),
        }
    }

    /// Once every file landed: `Done` to the sender, and a summary.
    fn check_all_done(&mut self, node: &mut Node) {
        if self.done_sent || self.outcome.is_some() || !self.files.is_empty() {
            return;
        }
        if self.stdout.as_ref().is_some_and(|s| !s.is_done()) {
            return;
        }
        let Some(offer) = &self.offer else {
            return;
        };
        let (files, bytes) = offer.totals();
        self.send_frame(node, &Frame::Done);
        if let Some(stream) = self.sender {
            let _ = node.stream_finish(Instant::now(), stream);
        }
        self.done_sent = true;
        self.status.clear_progress();
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.to_fetch as f64 / seconds / 1e6;
        self.status.emit(
            JsonLine::event("done")
                .number("files", files as u64)
                .number("bytes", bytes)
                .number("fetched", self.to_fetch)
                .number("ms", (seconds * 1000.0) as u64),
            &format!(
                "done: {files} file(s), {} ({} fetched) in {seconds:.1} s, {rate:.1} MB/s",
                megabytes(bytes),
                megabytes(self.to_fetch)
            ),
        );
    }

    fn send_frame(&mut self, node: &mut Node, frame: &Frame) {
        let Some(stream) = self.sender else {
            return;
        };
        let bytes = frame.encode();
        // Small frames: the stream's first window always takes them.
        if node.stream_write(Instant::now(), stream, &bytes) != Ok(bytes.len()) {
            self.outcome = Some(Err("the sender's stream took no more".into()));
        }
    }

    /// Gives up: tells the sender why and ends with `why`.
    fn fail(&mut self, node: &mut Node, code: AbortCode, why: &str) {
        self.send_frame(node, &Frame::Abort(code, why.to_owned()));
        if let Some(stream) = self.sender {
            let _ = node.stream_finish(Instant::now(), stream);
        }
        self.outcome = Some(Err(why.to_owned()));
    }

    /// Bytes, percent, rate, time left and the path.
    fn progress(&mut self) {
        let fetched_now = self.to_fetch.saturating_sub(self.remaining());
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = fetched_now as f64 / seconds;
        let percent = if self.total == 0 {
            100.0
        } else {
            self.fetched as f64 * 100.0 / self.total as f64
        };
        let left = if rate > 0.0 {
            format!("{:.0} s left", self.remaining() as f64 / rate)
        } else {
            "waiting".into()
        };
        let path = self.path_words();
        self.status.progress(
            JsonLine::event("progress")
                .number("bytes", self.fetched)
                .number("total", self.total)
                .number("rate", rate as u64)
                .str("path", &path),
            &format!(
                "{} of {} ({percent:.0} %), {:.1} MB/s, {left}, {path}",
                megabytes(self.fetched),
                megabytes(self.total),
                rate / 1e6
            ),
        );
    }

    fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.fetched)
    }

    /// "direct, IPv4" or "relayed, IPv6": how the sender is reached.
    fn path_words(&self) -> String {
        let Some(peer) = self.sender.map(|s| s.peer()) else {
            return String::new();
        };
        match self.paths.iter().find(|(p, _, _)| *p == peer) {
            Some((_, addr, relay)) => path_words(*addr, *relay),
            None => String::new(),
        }
    }
}

impl Handler for &mut Receiver {
    fn on_event(&mut self, event: &Event) -> Flow {
        if matches!(
            event,
            Event::Connected { .. }
                | Event::PathChanged { .. }
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
        self.next_progress.filter(|_| !self.done_sent)
    }

    fn on_wake(&mut self, node: &mut Node) -> Flow {
        for event in std::mem::take(&mut self.inbox) {
            self.handle(node, event);
        }
        if self.outcome.is_none() {
            self.stdout_progress(node);
        }
        if let Some(answer) = &self.answer
            && let Ok(yes) = answer.try_recv()
        {
            self.answer = None;
            if yes {
                self.accept(node);
            } else {
                self.fail(node, AbortCode::Declined, "declined");
            }
        }
        let now = Instant::now();
        if let Some(at) = self.next_progress
            && now >= at
            && !self.done_sent
        {
            self.progress();
            self.next_progress = Some(now + self.status.progress_every());
        }
        match &self.outcome {
            Some(Ok(())) => Flow::Leave(0),
            Some(Err(_)) => Flow::Leave(EXIT_FAILURE),
            None => Flow::Continue,
        }
    }
}
