//! `tinynode send PATH...`: offers files and directory trees to every
//! member that opens a transfer stream (kind `files`, `protocol-spec.md`
//! §6.9) with `tinynode receive`, and sends each the chunks it asks for.
//!
//! The paths are walked and hashed before the code is shown (the offer
//! carries every file's SHA-256 and chunk hashes). Each receiver has a
//! session of its own: its wanted ranges, the chunk being written to its
//! stream, its file handle; chunks are read from disk only as fast as the
//! receiver's stream takes them. Status goes to stderr (`status.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Instant;

use ring::rand::{SecureRandom, SystemRandom};
use tinynode::driver::{Flow, Handler};
use tinynode::transfer::disk::{self, read_full};
use tinynode::transfer::wire::{
    AbortCode, DEFAULT_CHUNK, EntryKind, Frame, FrameReader, Offer, Range, chunk_count,
};
use tinynode::{Event, Identity, Node, NodeId, StreamId, StreamKind, WriteError};

use super::json::JsonLine;
use super::options::SendOptions;
use super::printer::Printer;
use super::status::{Status, megabytes, path_words};
use super::{EXIT_FAILURE, Entered, enter, finish};

/// `tinynode send`: exit 0 once every receiver that started has
/// confirmed (once N have with `--receivers N`, the first with
/// `--once`); 1 with the reason when the paths cannot be read or the node
/// cannot start.
pub fn send(options: SendOptions, identity: Identity) -> i32 {
    let mut status = Status::new("send", options.meeting.json);
    let printer = Printer::new(false);
    let allowed = match super::allow::load(&options.allow) {
        Ok(allowed) => allowed,
        Err(error) => {
            status.error(&error);
            return EXIT_FAILURE;
        }
    };
    status.say("preparing", "reading and hashing what to send");
    let spool = match options.paths.as_slice() {
        [only] if only.as_os_str() == "-" => match Spool::from_stdin() {
            Ok(spool) => Some(spool),
            Err(error) => {
                status.error(&format!("reading stdin: {error}"));
                return EXIT_FAILURE;
            }
        },
        _ => None,
    };
    let paths = spool
        .as_ref()
        .map_or_else(|| options.paths.clone(), |s| vec![s.file.clone()]);
    let (offer, sources, skipped) = match disk::offer_paths(&paths, DEFAULT_CHUNK) {
        Ok(offered) => offered,
        Err(error) => {
            status.error(&error.to_string());
            return EXIT_FAILURE;
        }
    };
    for path in &skipped {
        status.emit(
            JsonLine::event("skipped").str("path", &path.display().to_string()),
            &format!(
                "leaving out {} (a symbolic link, not a plain file, or a name that is not UTF-8)",
                path.display()
            ),
        );
    }
    let mut meeting = options.meeting.clone();
    if meeting.code.is_none() {
        meeting.code = std::env::var("MEETING_CODE").ok();
    }
    let code = match meeting.code.clone() {
        Some(code) => {
            super::warn_if_weak(&printer, &code);
            code
        }
        None => match fresh_code() {
            Some(code) => code,
            None => {
                status.error("no randomness for a code");
                return EXIT_FAILURE;
            }
        },
    };
    meeting.code = Some(code.clone());
    let (files, bytes) = offer.totals();
    status.emit(
        JsonLine::event("code")
            .str("code", &code)
            .str("command", &format!("tinynode receive {code}"))
            .number("files", files as u64)
            .number("bytes", bytes),
        &format!(
            "{files} file(s), {}; on the other machine run:\n\n    tinynode receive {code}\n",
            megabytes(bytes)
        ),
    );
    let Entered {
        mut driver,
        mut node,
        ..
    } = match enter(&meeting, identity, &printer, false, false) {
        Ok(entered) => entered,
        Err(code) => return code,
    };
    node.set_stream_kinds(&[StreamKind::FILES]);
    node.set_stream_peers(allowed.as_deref());
    let sources = sources.into_iter().map(|s| (s.entry, s.path)).collect();
    let mut handler = Sender {
        offer_frame: Frame::Offer(offer.clone()).encode(),
        offer,
        sources,
        sessions: BTreeMap::new(),
        confirmed: 0,
        receivers: options.receivers,
        next_progress: None,
        status,
        inbox: Vec::new(),
        paths: BTreeMap::new(),
    };
    let result = driver.run(&mut node, &mut handler);
    handler.status.clear_progress();
    finish(&printer, result)
}

/// The bytes of `range`, if it names chunks on offer.
fn range_bytes(offer: &Offer, range: Range) -> Option<u64> {
    let entry = offer.entries.get(range.file as usize)?;
    let EntryKind::File { size, .. } = entry.kind else {
        return None;
    };
    let chunk = u64::from(offer.chunk_size);
    let count = chunk_count(size, offer.chunk_size);
    if range.first > range.end || u64::from(range.end) > count {
        return None;
    }
    let start = u64::from(range.first) * chunk;
    let end = (u64::from(range.end) * chunk).min(size);
    Some(end.saturating_sub(start))
}

/// Standard input read to its end into a temporary file named `stdin`
/// (so it can be hashed before it is offered), removed on drop.
struct Spool {
    dir: PathBuf,
    file: PathBuf,
}

impl Spool {
    fn from_stdin() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("tinynode-send-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let spool = Self {
            file: dir.join("stdin"),
            dir,
        };
        let mut file = File::create(&spool.file)?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file)?;
        Ok(spool)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh meeting code of 70 bits from the OS's randomness, as
/// `tinynode code` prints and `send` makes up.
pub fn fresh_code() -> Option<String> {
    let mut random = [0u8; tinynode::code::RANDOM_BYTES];
    SystemRandom::new().fill(&mut random).ok()?;
    Some(tinynode::code::generate(&random))
}

/// One receiver's transfer.
struct Session {
    reader: FrameReader,
    /// The frame being written to the stream, and how much of it went.
    out: Vec<u8>,
    out_at: usize,
    /// Ranges still to send, the first one under way.
    wants: VecDeque<Range>,
    /// The file the last chunk came from.
    file: Option<(u32, File)>,
    sent: u64,
    /// Bytes asked for in all.
    asked: u64,
    started: Instant,
    /// The receiver confirmed: everything is in place there.
    done: bool,
}

/// The sender's state, driven by the node's events.
struct Sender {
    offer: Offer,
    offer_frame: Vec<u8>,
    /// Where each offered file is, by entry index.
    sources: BTreeMap<usize, PathBuf>,
    sessions: BTreeMap<StreamId, Session>,
    confirmed: usize,
    /// Leave once this many confirmed; `None`: once every receiver
    /// that started has.
    receivers: Option<u32>,
    next_progress: Option<Instant>,
    status: Status,
    inbox: Vec<Event>,
    /// How each member is reached: "direct, IPv4", "relayed, IPv6".
    paths: BTreeMap<NodeId, String>,
}

impl Sender {
    fn handle(&mut self, node: &mut Node, event: Event) {
        let now = Instant::now();
        if let Event::Connected {
            peer, addr, relay, ..
        }
        | Event::PathChanged { peer, addr, relay } = &event
        {
            self.paths.insert(*peer, path_words(*addr, *relay));
        }
        match event {
            Event::StreamIncoming { stream, header } if header.kind == StreamKind::FILES => {
                let peer = stream.peer();
                self.status.emit(
                    JsonLine::event("receiver")
                        .display("peer", peer)
                        .str("short", &peer.short()),
                    &format!("{} is receiving", peer.short()),
                );
                self.sessions.insert(
                    stream,
                    Session {
                        reader: FrameReader::default(),
                        out: self.offer_frame.clone(),
                        out_at: 0,
                        wants: VecDeque::new(),
                        file: None,
                        sent: 0,
                        asked: 0,
                        started: now,
                        done: false,
                    },
                );
                self.next_progress
                    .get_or_insert(now + self.status.progress_every());
                self.pump(node, stream);
            }
            Event::StreamData { stream, bytes } => {
                let Some(session) = self.sessions.get_mut(&stream) else {
                    return;
                };
                session.reader.push(&bytes);
                let _ = node.stream_consumed(now, stream, bytes.len());
                self.read_frames(node, stream);
                self.pump(node, stream);
            }
            Event::StreamWritable { stream } => self.pump(node, stream),
            Event::StreamReset { stream, reason, .. } => {
                if let Some(session) = self.sessions.remove(&stream)
                    && !session.done
                {
                    self.status.emit(
                        JsonLine::event("receiver_left")
                            .display("peer", stream.peer())
                            .str("reason", &reason),
                        &format!(
                            "{} left before finishing ({reason}); it may run receive again to resume",
                            stream.peer().short()
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    /// Takes every whole frame the receiver sent.
    fn read_frames(&mut self, node: &mut Node, stream: StreamId) {
        loop {
            let Some(session) = self.sessions.get_mut(&stream) else {
                return;
            };
            let frame = match session.reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => {
                    return self.abort(node, stream, AbortCode::Protocol, &error.to_string());
                }
            };
            match frame {
                Frame::Want(ranges) => {
                    let sizes: Option<Vec<u64>> = ranges
                        .iter()
                        .map(|r| range_bytes(&self.offer, *r))
                        .collect();
                    let Some(sizes) = sizes else {
                        return self.abort(
                            node,
                            stream,
                            AbortCode::Protocol,
                            "asked for chunks that are not on offer",
                        );
                    };
                    if let Some(session) = self.sessions.get_mut(&stream) {
                        session.asked += sizes.iter().sum::<u64>();
                        session.wants.extend(ranges);
                    }
                }
                Frame::Done => {
                    session.done = true;
                    self.confirmed += 1;
                    let seconds = session.started.elapsed().as_secs_f64();
                    let sent = session.sent;
                    let _ = node.stream_finish(Instant::now(), stream);
                    self.status.emit(
                        JsonLine::event("receiver_done")
                            .display("peer", stream.peer())
                            .number("sent", sent),
                        &format!(
                            "{} has everything: {} sent in {seconds:.1} s",
                            stream.peer().short(),
                            megabytes(sent)
                        ),
                    );
                }
                Frame::Abort(code, reason) => {
                    self.sessions.remove(&stream);
                    self.status.emit(
                        JsonLine::event("receiver_left")
                            .display("peer", stream.peer())
                            .str("reason", &reason),
                        &format!("{} gave up ({code:?}): {reason}", stream.peer().short()),
                    );
                    let _ = node.stream_finish(Instant::now(), stream);
                    return;
                }
                other => {
                    let why = format!("a receiver does not send {}", other.name());
                    return self.abort(node, stream, AbortCode::Protocol, &why);
                }
            }
        }
    }

    /// Ends `stream`'s transfer with `code` and `why`.
    fn abort(&mut self, node: &mut Node, stream: StreamId, code: AbortCode, why: &str) {
        self.sessions.remove(&stream);
        self.status
            .error(&format!("{}: {why}", stream.peer().short()));
        let now = Instant::now();
        let _ = node.stream_write(now, stream, &Frame::Abort(code, why.to_owned()).encode());
        let _ = node.stream_finish(now, stream);
    }

    /// Writes to `stream` while it takes bytes: the frame under way, then
    /// the next wanted chunk, read from disk.
    fn pump(&mut self, node: &mut Node, stream: StreamId) {
        let now = Instant::now();
        loop {
            let Some(session) = self.sessions.get_mut(&stream) else {
                return;
            };
            if session.out_at < session.out.len() {
                match node.stream_write(now, stream, &session.out[session.out_at..]) {
                    Ok(0) | Err(WriteError::Blocked) => return,
                    Ok(n) => session.out_at += n,
                    Err(_) => return,
                }
                continue;
            }
            let Some(range) = session.wants.front_mut() else {
                return;
            };
            if range.first >= range.end {
                session.wants.pop_front();
                continue;
            }
            let (file, index) = (range.file, range.first);
            range.first += 1;
            if let Err(why) = self.load_chunk(stream, file, index) {
                return self.abort(node, stream, AbortCode::Disk, &why);
            }
        }
    }

    /// Puts chunk `index` of entry `file` into `stream`'s session as a
    /// frame, read from disk.
    fn load_chunk(&mut self, stream: StreamId, file: u32, index: u32) -> Result<(), String> {
        let chunk = u64::from(self.offer.chunk_size);
        let Some(EntryKind::File { size, .. }) =
            self.offer.entries.get(file as usize).map(|e| &e.kind)
        else {
            return Err("not a file".into());
        };
        let offset = u64::from(index) * chunk;
        let len = chunk.min(size.saturating_sub(offset)) as usize;
        let path = self
            .sources
            .get(&(file as usize))
            .ok_or("no such file here")?;
        let Some(session) = self.sessions.get_mut(&stream) else {
            return Ok(());
        };
        if session.file.as_ref().is_none_or(|(open, _)| *open != file) {
            let handle = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            session.file = Some((file, handle));
        }
        let Some((_, handle)) = session.file.as_mut() else {
            return Ok(());
        };
        let header = Frame::chunk_header(file, index, len);
        session.out.clear();
        session.out.extend_from_slice(&header);
        session.out.resize(header.len() + len, 0);
        handle
            .seek(SeekFrom::Start(offset))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let read = read_full(handle, &mut session.out[header.len()..])
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if read != len {
            return Err(format!("{} changed since it was offered", path.display()));
        }
        session.out_at = 0;
        session.sent += len as u64;
        Ok(())
    }

    /// One progress line for every receiver under way.
    fn progress(&mut self) {
        let parts: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.done)
            .map(|(stream, s)| {
                let rate = s.sent as f64 / s.started.elapsed().as_secs_f64().max(0.001);
                let percent = if s.asked == 0 {
                    100.0
                } else {
                    s.sent as f64 * 100.0 / s.asked as f64
                };
                let left = if rate > 0.0 {
                    format!("{:.0} s left", s.asked.saturating_sub(s.sent) as f64 / rate)
                } else {
                    "waiting".into()
                };
                let path = self.paths.get(&stream.peer()).map_or("", String::as_str);
                format!(
                    "{} {} of {} ({percent:.0} %), {:.1} MB/s, {left}, {path}",
                    stream.peer().short(),
                    megabytes(s.sent),
                    megabytes(s.asked),
                    rate / 1e6
                )
            })
            .collect();
        if parts.is_empty() {
            return;
        }
        let sent: u64 = self.sessions.values().map(|s| s.sent).sum();
        self.status.progress(
            JsonLine::event("progress")
                .number("sent", sent)
                .number("receivers", parts.len() as u64),
            &parts.join("; "),
        );
    }
}

impl Handler for &mut Sender {
    fn on_event(&mut self, event: &Event) -> Flow {
        if matches!(
            event,
            Event::Connected { .. }
                | Event::PathChanged { .. }
                | Event::StreamIncoming { .. }
                | Event::StreamData { .. }
                | Event::StreamWritable { .. }
                | Event::StreamReset { .. }
        ) {
            self.inbox.push(event.clone());
        }
        Flow::Continue
    }

    fn wake_at(&self) -> Option<Instant> {
        self.next_progress
    }

    fn on_wake(&mut self, node: &mut Node) -> Flow {
        for event in std::mem::take(&mut self.inbox) {
            self.handle(node, event);
        }
        let now = Instant::now();
        if let Some(at) = self.next_progress
            && now >= at
        {
            self.progress();
            self.next_progress = Some(now + self.status.progress_every());
        }
        let under_way = self.sessions.values().any(|s| !s.done);
        let enough = match self.receivers {
            Some(wanted) => self.confirmed >= wanted as usize,
            None => self.confirmed > 0 && !under_way,
        };
        if enough {
            self.status.clear_progress();
            self.status.emit(
                JsonLine::event("done").number("receivers", self.confirmed as u64),
                &format!("done: {} receiver(s) have everything", self.confirmed),
            );
            return Flow::Leave(0);
        }
        Flow::Continue
    }
}
