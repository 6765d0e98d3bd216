//! A connection's byte streams: one in-band (DCEP) data channel each,
//! labelled [`STREAM_LABEL`], moving [`Stream`] frames between the
//! streams and str0m (spec §6.7).
//!
//! str0m lets the opener write only once the peer's DCEP acknowledgement
//! is back, so frames written before wait here (bounded by the stream's
//! send queue); an out-of-band channel would skip that round trip but a
//! peer's data reaching str0m before the local channel exists makes it
//! panic (`ChannelHandler::new_channel` asserts), so streams use DCEP.
//! A table asked to [keep a spare](Streams::set_keep_spare) opens the
//! next stream's channel ahead of need instead: a stream opened on it
//! writes its first frames at once, and its first answer is back one
//! round trip later.

use std::collections::VecDeque;
use std::time::Instant;

use log::debug;
use str0m::Rtc;

use crate::api::{Event, StreamId};
use crate::id::NodeId;
use str0m::channel::{ChannelConfig, ChannelId};

use crate::stream::{
    Frame, ResetCode, STREAM_LINGER, Stream, StreamEvent, StreamHeader, StreamKind, WriteError,
};

/// Label of every stream's data channel.
pub const STREAM_LABEL: &str = "tinynode-stream";

/// Most streams one connection holds at once (either side's).
pub const MAX_STREAMS: usize = 1024;

/// What the table reports to the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableEvent {
    /// The peer opened stream `number` for `header`, and we took it.
    Incoming {
        /// Its number on this connection.
        number: u32,
        /// What it is for.
        header: StreamHeader,
    },
    /// The peer opened a stream for `header` and we refused it.
    Refused {
        /// What it was for.
        header: StreamHeader,
        /// Why (also sent to the peer).
        reason: String,
    },
    /// Something happened on stream `number`.
    Stream {
        /// Its number on this connection.
        number: u32,
        /// What.
        event: StreamEvent,
    },
}

/// One stream and its channel.
#[derive(Debug)]
struct Entry {
    number: u32,
    channel: ChannelId,
    /// str0m's channel is open: frames may be written.
    open: bool,
    /// `None` for a peer's stream until its `Open` frame arrives, and for
    /// our spare until a stream takes it.
    stream: Option<Stream>,
    /// Our channel opened ahead of need, not yet given to a stream.
    spare: bool,
    /// We closed the channel (the stream ended).
    closed: bool,
    /// str0m reported the channel closed.
    close_seen: bool,
    /// A clean end, reported once the channel is closed: then the peer
    /// has seen the close too, and leaving cannot cut it short.
    held: Option<StreamEvent>,
    /// str0m may still hold bytes we gave it for this channel: looked up
    /// (str0m finds a channel by a linear search) only while true.
    in_str0m: bool,
    /// The stream ended with the peer's `Fin` last, and waits until then
    /// for the peer to close the channel ([`Stream::peer_closes`]).
    linger_until: Option<Instant>,
}

impl Entry {
    /// An entry for `channel`, not open yet and no spare.
    fn new(number: u32, channel: ChannelId, stream: Option<Stream>) -> Self {
        Self {
            number,
            channel,
            open: false,
            spare: false,
            stream,
            closed: false,
            close_seen: false,
            held: None,
            in_str0m: false,
            linger_until: None,
        }
    }
}

/// A connection's streams.
#[derive(Debug, Default)]
pub struct Streams {
    entries: Vec<Entry>,
    next_number: u32,
    /// Where the next [`flush`](Self::flush) starts, so the streams take
    /// turns at the window.
    turn: usize,
    accepted_kinds: Vec<StreamKind>,
    /// The peer is not on the node's allow-list: its streams are refused.
    refused_peer: bool,
    /// Keep one channel of ours open ahead of need (a spare).
    keep_spare: bool,
    events: VecDeque<TableEvent>,
}

impl Streams {
    /// Streams of these kinds from the peer are taken; others are reset
    /// as refused.
    pub fn set_accepted_kinds(&mut self, kinds: &[StreamKind]) {
        self.accepted_kinds = kinds.to_vec();
    }

    /// Whether the peer may open streams and have them opened to it.
    pub fn set_peer_allowed(&mut self, allowed: bool) {
        self.refused_peer = !allowed;
    }

    /// Keeps one channel of ours open ahead of need from now on, so that
    /// the next stream opened writes at once; for nodes that open streams
    /// on demand (`connect`). Takes effect at the next
    /// [`ensure_spare`](Self::ensure_spare).
    pub fn set_keep_spare(&mut self, keep: bool) {
        self.keep_spare = keep;
    }

    /// Opens a spare channel if one is to be kept and none is: when the
    /// connection opens and after a stream took the spare. A spare the
    /// peer closed is not replaced until the next stream is opened, so a
    /// peer cannot make us open channels in a loop.
    pub fn ensure_spare(&mut self, rtc: &mut Rtc) {
        if !self.keep_spare
            || self.refused_peer
            || self.entries.len() >= MAX_STREAMS
            || self.entries.iter().any(|e| e.spare)
        {
            return;
        }
        let channel = Self::create_channel(rtc);
        let number = self.allocate();
        let mut spare = Entry::new(number, channel, None);
        spare.spare = true;
        self.entries.push(spare);
    }

    /// Opens a stream for `header`: its number. It takes the spare
    /// channel if there is one (its frames can leave at once), or opens a
    /// channel of its own.
    pub fn open(&mut self, rtc: &mut Rtc, header: StreamHeader) -> Result<u32, WriteError> {
        if self.refused_peer {
            return Err(WriteError::NotAllowed);
        }
        let number = match self.entries.iter_mut().find(|e| e.spare && !e.close_seen) {
            Some(spare) => {
                spare.spare = false;
                spare.stream = Some(Stream::opened(header));
                spare.number
            }
            None => {
                if self.entries.len() >= MAX_STREAMS {
                    return Err(WriteError::Blocked);
                }
                let channel = Self::create_channel(rtc);
                let number = self.allocate();
                let stream = Stream::opened(header);
                self.entries.push(Entry::new(number, channel, Some(stream)));
                number
            }
        };
        self.ensure_spare(rtc);
        Ok(number)
    }

    /// Asks str0m for a stream channel of ours (in band: DCEP).
    fn create_channel(rtc: &mut Rtc) -> ChannelId {
        rtc.direct_api().create_data_channel(ChannelConfig {
            label: STREAM_LABEL.into(),
            ..Default::default()
        })
    }

    fn allocate(&mut self) -> u32 {
        let number = self.next_number;
        self.next_number += 1;
        number
    }

    /// True if `channel` is one of ours (or a peer's stream channel).
    pub fn owns(&self, channel: ChannelId) -> bool {
        self.entries.iter().any(|e| e.channel == channel)
    }

    /// str0m opened `channel` with `label`: ours is ready for writing, or
    /// the peer opened a stream. False if it is not a stream channel.
    pub fn on_channel_open(&mut self, channel: ChannelId, label: &str) -> bool {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.channel == channel) {
            entry.open = true;
            return true;
        }
        if label != STREAM_LABEL {
            return false;
        }
        if self.entries.len() >= MAX_STREAMS {
            debug!("stream: {MAX_STREAMS} streams already; refusing another");
        }
        let number = self.allocate();
        let mut entry = Entry::new(number, channel, None);
        entry.open = true;
        self.entries.push(entry);
        true
    }

    /// A message on stream channel `channel`.
    pub fn on_channel_data(&mut self, channel: ChannelId, bytes: &[u8]) {
        let full = self.entries.len() > MAX_STREAMS;
        let accepted = &self.accepted_kinds;
        let refused_peer = self.refused_peer;
        let Some(entry) = self.entries.iter_mut().find(|e| e.channel == channel) else {
            return;
        };
        if let Some(stream) = entry.stream.as_mut() {
            stream.on_message(bytes);
            return;
        }
        if entry.spare {
            // Nothing of the peer's belongs on our spare before our Open.
            debug!("stream: a message on our spare channel; dropped");
            return;
        }
        let refuse = |code: ResetCode, why: &str| {
            let mut stream = Stream::accepted();
            stream.reset(code, why);
            stream
        };
        let header = match Frame::parse(bytes) {
            Ok(Frame::Open(header)) => header,
            Err(crate::stream::FrameError::Version(v)) => {
                entry.stream = Some(refuse(
                    ResetCode::Unsupported,
                    &format!("stream version {v}"),
                ));
                return;
            }
            _ => {
                entry.stream = Some(refuse(ResetCode::Protocol, "no open frame"));
                return;
            }
        };
        let refusal = if refused_peer {
            // Checked first: a member not allowed learns nothing more.
            Some("not on the allow-list".to_owned())
        } else if full {
            Some("too many streams".to_owned())
        } else if !accepted.contains(&header.kind) {
            Some(format!("no {} here", header.kind.name()))
        } else {
            None
        };
        entry.stream = Some(match refusal {
            Some(reason) => {
                let stream = refuse(ResetCode::Refused, &reason);
                self.events
                    .push_back(TableEvent::Refused { header, reason });
                stream
            }
            None => {
                self.events.push_back(TableEvent::Incoming {
                    number: entry.number,
                    header,
                });
                Stream::accepted()
            }
        });
    }

    /// str0m closed `channel`: a stream that had not ended is reset.
    pub fn on_channel_close(&mut self, channel: ChannelId) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.channel == channel) {
            entry.closed = true;
            entry.close_seen = true;
            if let Some(stream) = entry.stream.as_mut() {
                stream.on_channel_closed();
            }
        }
        self.collect();
        self.forget_finished();
    }

    /// The connection ended: every stream is reset.
    pub fn on_connection_lost(&mut self) {
        for entry in &mut self.entries {
            // A clean end waiting for its channel's close stays clean.
            entry.close_seen = true;
            if let Some(stream) = entry.stream.as_mut() {
                stream.on_connection_lost();
            }
        }
        self.collect();
        self.entries.clear();
    }

    /// Runs `action` on stream `number`.
    pub fn with<T>(
        &mut self,
        number: u32,
        action: impl FnOnce(&mut Stream) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let stream = self
            .entries
            .iter_mut()
            .find(|e| e.number == number)
            .and_then(|e| e.stream.as_mut())
            .ok_or(WriteError::NotConnected)?;
        action(stream)
    }

    /// True if some open stream has a frame waiting, or an ended one a
    /// channel to close (not one waiting for the peer to close it).
    pub fn has_frames(&self) -> bool {
        self.entries.iter().any(|e| {
            e.open
                && !e.closed
                && e.stream.as_ref().is_some_and(|s| {
                    s.peek_frame().is_some() || (s.is_ended() && e.linger_until.is_none())
                })
        })
    }

    /// When the first stream waiting for the peer to close its channel
    /// stops waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| !e.closed)
            .filter_map(|e| e.linger_until)
            .min()
    }

    /// Closes the channels whose peer did not close them within
    /// [`STREAM_LINGER`] of their stream's end.
    pub fn handle_timeout(&mut self, now: Instant, rtc: &mut Rtc) {
        for entry in &mut self.entries {
            if !entry.closed && entry.linger_until.is_some_and(|at| now >= at) {
                debug!("stream: the peer left the channel open; closing it");
                entry.closed = true;
                rtc.direct_api().close_data_channel(entry.channel);
            }
        }
    }

    /// Hands frames to str0m while the stream channels together hold less
    /// than `limit` (the connection's send window, less what its other
    /// channel holds: one window for the whole connection, not one per
    /// stream, or a hundred streams would put a hundred windows in flight
    /// and make every SCTP poll walk them all); each flush starts at the
    /// next stream, so they take turns. Closes the channels of ended
    /// streams once str0m has sent everything, except those that leave
    /// that to the peer ([`Stream::peer_closes`]): they wait from `now`.
    pub fn flush(&mut self, rtc: &mut Rtc, limit: usize, now: Instant) {
        let mut held: usize = 0;
        for entry in self.entries.iter_mut().filter(|e| e.in_str0m) {
            let buffered = rtc
                .channel(entry.channel)
                .map_or(0, |mut channel| channel.buffered_amount());
            entry.in_str0m = buffered > 0;
            held += buffered;
        }
        let count = self.entries.len();
        let first = if count == 0 { 0 } else { self.turn % count };
        self.turn = first + 1;
        for index in (first..count).chain(0..first) {
            let entry = &mut self.entries[index];
            let Some(stream) = entry.stream.as_mut() else {
                continue;
            };
            if !entry.open || entry.closed {
                continue;
            }
            if held < limit
                && stream.peek_frame().is_some()
                && let Some(mut channel) = rtc.channel(entry.channel)
            {
                while let Some(frame) = stream.peek_frame() {
                    if held >= limit {
                        break;
                    }
                    let len = frame.len();
                    match channel.write(true, frame) {
                        Ok(true) => {
                            stream.pop_frame();
                            held += len;
                            entry.in_str0m = true;
                        }
                        Ok(false) => break,
                        Err(error) => {
                            debug!("stream: write failed: {error}");
                            break;
                        }
                    }
                }
            }
            let drained = stream.peek_frame().is_none() && !entry.in_str0m;
            if drained {
                stream.on_drained();
            }
            if drained && stream.is_ended() {
                if stream.peer_closes() {
                    entry.linger_until.get_or_insert(now + STREAM_LINGER);
                } else {
                    entry.closed = true;
                    rtc.direct_api().close_data_channel(entry.channel);
                }
            }
        }
        self.collect();
        self.forget_finished();
    }

    /// Drops the entries whose channel closed and whose end was reported.
    fn forget_finished(&mut self) {
        self.entries.retain(|e| {
            !(e.close_seen && e.held.is_none() && e.stream.as_ref().is_none_or(Stream::is_ended))
        });
    }

    fn collect(&mut self) {
        for entry in &mut self.entries {
            if let Some(stream) = entry.stream.as_mut() {
                while let Some(event) = stream.poll_event() {
                    if event == StreamEvent::Closed && !entry.close_seen {
                        entry.held = Some(event);
                        continue;
                    }
                    self.events.push_back(TableEvent::Stream {
                        number: entry.number,
                        event,
                    });
                }
            }
            if entry.close_seen
                && let Some(event) = entry.held.take()
            {
                self.events.push_back(TableEvent::Stream {
                    number: entry.number,
                    event,
                });
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TableEvent> {
        if self.events.is_empty() {
            self.collect();
        }
        self.events.pop_front()
    }
}

impl TableEvent {
    /// The node's event for this report of stream `number` on the
    /// connection `session` to `peer`.
    pub fn into_event(self, peer: NodeId, session: u64) -> Event {
        let id = |number| StreamId::new(peer, session, number);
        match self {
            Self::Incoming { number, header } => Event::StreamIncoming {
                stream: id(number),
                header,
            },
            Self::Refused { header, reason } => Event::StreamRefused {
                peer,
                header,
                reason,
            },
            Self::Stream { number, event } => {
                let stream = id(number);
                match event {
                    StreamEvent::Accepted => Event::StreamAccepted { stream },
                    StreamEvent::Data(bytes) => Event::StreamData { stream, bytes },
                    StreamEvent::Finished => Event::StreamFinished { stream },
                    StreamEvent::Writable => Event::StreamWritable { stream },
                    StreamEvent::Closed => Event::StreamClosed { stream },
                    StreamEvent::Reset { code, reason } => Event::StreamReset {
                        stream,
                        code,
                        reason,
                    },
                }
            }
        }
    }
}
