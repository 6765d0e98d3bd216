//! One byte stream between two connected members: its frames on the wire
//! and its state machine (spec §6.7).
//!
//! A stream is one ordered, reliable data channel. Every message on it is
//! a [`Frame`]: the opener's first is `Open` (what the stream is for),
//! then `Data`, `Credit` (receive-side flow control), `Fin` (this half is
//! done) and `Reset` (both halves abort). The state machine here is pure:
//! the application writes and consumes, frames come in, frames to send and
//! [`StreamEvent`]s come out; the connection (`rtc/streams.rs`) moves frames
//! between it and str0m.
//!
//! Back-pressure is end to end: a side may send only as many data bytes
//! as the other has granted ([`STREAM_WINDOW`] at first, then what each
//! `Credit` says), and grants more only as its application consumes. So a
//! slow reader stops the writer, however fast the path, and a receiver
//! holds at most one window of a stream's data.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// Version byte of the `Open` frame.
pub const STREAM_VERSION: u8 = 1;
/// Data bytes each side may send before the other's first `Credit`, and
/// how far ahead of its application each side grants.
pub const STREAM_WINDOW: u64 = 1024 * 1024;
/// Most payload bytes in one `Data` frame.
pub const MAX_DATA: usize = 16 * 1024;
/// Most bytes of a stream's name in its `Open` frame.
pub const MAX_NAME: usize = 255;
/// Most bytes of a reset's reason.
pub const MAX_REASON: usize = 255;
/// Data bytes a stream takes from its application before they have gone
/// into str0m: past this, a stream's `write` says [`WriteError::Blocked`].
pub const SEND_QUEUE: usize = 256 * 1024;
/// How long a stream that finished with the peer's `Fin` last waits for
/// the peer to close the channel before closing it itself
/// (`Stream::peer_closes`): enough for one lost acknowledgement to be
/// retransmitted (SCTP's smallest retransmission timeout is 1 s).
pub const STREAM_LINGER: Duration = Duration::from_secs(3);

const OPEN: u8 = 1;
const DATA: u8 = 2;
const CREDIT: u8 = 3;
const FIN: u8 = 4;
const RESET: u8 = 5;

/// What a stream is for, as its `Open` frame says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamKind(pub u8);

impl StreamKind {
    /// `tinynode pipe`: bytes both ways between two `pipe` commands.
    pub const PIPE: Self = Self(1);
    /// A forwarded TCP connection (`expose`/`connect`), to the service
    /// the stream's name gives.
    pub const TCP: Self = Self(2);
    /// A forwarded UDP flow (`expose --udp`): datagrams, unordered and
    /// unreliable, on a channel of their own (`protocol-spec.md` §6.8):
    /// each write is one datagram, delivered at most once, in any order;
    /// no credit and no finish (finishing or resetting ends the flow).
    pub const UDP: Self = Self(3);
    /// A file transfer (`tinynode send`/`receive`, `protocol-spec.md`
    /// §6.9): the receiver opens it to the sender, which offers its files
    /// and sends the chunks the receiver asks for.
    pub const FILES: Self = Self(4);

    /// Its name in logs and JSON.
    pub fn name(self) -> String {
        match self {
            Self::PIPE => "pipe".into(),
            Self::TCP => "tcp".into(),
            Self::UDP => "udp".into(),
            Self::FILES => "files".into(),
            Self(other) => format!("kind {other}"),
        }
    }
}

/// The opener's description of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// What it is for.
    pub kind: StreamKind,
    /// A name within the kind (a service, a file), at most [`MAX_NAME`]
    /// bytes of UTF-8; empty for a pipe.
    pub name: String,
}

/// Why a stream was reset (the code in a `Reset` frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetCode {
    /// The receiver does not take streams of this kind or name.
    Refused,
    /// The application gave up on it.
    Aborted,
    /// A frame broke the protocol (more data than granted, data after
    /// `Fin`, an unknown frame).
    Protocol,
    /// The `Open` frame's version is not one the receiver speaks.
    Unsupported,
    /// The connection under it ended (never on the wire).
    ConnectionLost,
    /// A code this version does not know.
    Other(u8),
}

impl ResetCode {
    fn to_byte(self) -> u8 {
        match self {
            Self::Refused => 1,
            Self::Aborted => 2,
            Self::Protocol => 3,
            Self::Unsupported => 4,
            Self::ConnectionLost => 5,
            Self::Other(code) => code,
        }
    }

    fn from_byte(code: u8) -> Self {
        match code {
            1 => Self::Refused,
            2 => Self::Aborted,
            3 => Self::Protocol,
            4 => Self::Unsupported,
            5 => Self::ConnectionLost,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for ResetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("refused"),
            Self::Aborted => f.write_str("aborted"),
            Self::Protocol => f.write_str("protocol error"),
            Self::Unsupported => f.write_str("unsupported version"),
            Self::ConnectionLost => f.write_str("connection lost"),
            Self::Other(code) => write!(f, "code {code}"),
        }
    }
}

/// One message on a stream's data channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The opener's first frame.
    Open(StreamHeader),
    /// Payload bytes (1 to [`MAX_DATA`]).
    Data(&'a [u8]),
    /// The total data bytes the sender of this frame accepts, from the
    /// stream's start.
    Credit(u64),
    /// The sender of this frame sends no more data.
    Fin,
    /// Both halves end now.
    Reset(ResetCode, String),
}

/// Why a frame could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Empty, cut short, or longer than its type allows.
    Malformed,
    /// A type byte this version does not know.
    UnknownType(u8),
    /// An `Open` frame of another version.
    Version(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed stream frame"),
            Self::UnknownType(t) => write!(f, "unknown stream frame type {t}"),
            Self::Version(v) => write!(f, "stream version {v}"),
        }
    }
}

impl<'a> Frame<'a> {
    /// Reads one frame; never panics, whatever the bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FrameError> {
        let (&kind, body) = bytes.split_first().ok_or(FrameError::Malformed)?;
        match kind {
            OPEN => {
                let [version, kind, len, name @ ..] = body else {
                    return Err(FrameError::Malformed);
                };
                if *version != STREAM_VERSION {
                    return Err(FrameError::Version(*version));
                }
                if name.len() != usize::from(*len) {
                    return Err(FrameError::Malformed);
                }
                let name = std::str::from_utf8(name).map_err(|_| FrameError::Malformed)?;
                Ok(Self::Open(StreamHeader {
                    kind: StreamKind(*kind),
                    name: name.to_owned(),
                }))
            }
            DATA if !body.is_empty() && body.len() <= MAX_DATA => Ok(Self::Data(body)),
            CREDIT => {
                let total: [u8; 8] = body.try_into().map_err(|_| FrameError::Malformed)?;
                Ok(Self::Credit(u64::from_be_bytes(total)))
            }
            FIN if body.is_empty() => Ok(Self::Fin),
            RESET => {
                let [code, len, reason @ ..] = body else {
                    return Err(FrameError::Malformed);
                };
                if reason.len() != usize::from(*len) {
                    return Err(FrameError::Malformed);
                }
                // Invalid UTF-8 becomes U+FFFD, which is longer: cut again
                // so what was read stays within bounds.
                let reason = cut(&String::from_utf8_lossy(reason), MAX_REASON).to_owned();
                Ok(Self::Reset(ResetCode::from_byte(*code), reason))
            }
            DATA | FIN => Err(FrameError::Malformed),
            other => Err(FrameError::UnknownType(other)),
        }
    }

    /// Its bytes on the wire. A name or reason longer than 255 bytes is
    /// cut at a character boundary.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Open(header) => {
                let name = cut(&header.name, MAX_NAME);
                let mut out = vec![OPEN, STREAM_VERSION, header.kind.0, name.len() as u8];
                out.extend_from_slice(name.as_bytes());
                out
            }
            Self::Data(bytes) => {
                let mut out = Vec::with_capacity(1 + bytes.len());
                out.push(DATA);
                out.extend_from_slice(bytes);
                out
            }
            Self::Credit(total) => {
                let mut out = vec![CREDIT];
                out.extend_from_slice(&total.to_be_bytes());
                out
            }
            Self::Fin => vec![FIN],
            Self::Reset(code, reason) => {
                let reason = cut(reason, MAX_REASON);
                let mut out = vec![RESET, code.to_byte(), reason.len() as u8];
                out.extend_from_slice(reason.as_bytes());
                out
            }
        }
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Why a write, finish or reset was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// No room now: the peer has not granted more, or what was taken has
    /// not gone out yet. An [`Event::StreamWritable`](crate::Event::StreamWritable) follows when there is.
    Blocked,
    /// No such stream, or its connection is gone.
    NotConnected,
    /// This half was finished, or the stream was reset.
    Closed,
    /// More bytes than one message may carry ([`Command::SendTo`](crate::Command::SendTo)
    /// and [`Node::send_to`](crate::Node::send_to) only).
    TooLong,
    /// The member is not on the allow-list
    /// ([`Node::set_stream_peers`](crate::Node::set_stream_peers)).
    NotAllowed,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blocked => "blocked: no room until the peer reads",
            Self::NotConnected => "not connected",
            Self::Closed => "stream closed",
            Self::TooLong => "message too long",
            Self::NotAllowed => "member not on the allow-list",
        })
    }
}

impl std::error::Error for WriteError {}

/// What a stream reports to its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer took the stream: it sent something other than a reset.
    Accepted,
    /// Bytes from the peer, in order. Hand back their count with
    /// [`Stream::consumed`] once the application has them.
    Data(Vec<u8>),
    /// The peer finished its half: no more data will come.
    Finished,
    /// A blocked stream has room again.
    Writable,
    /// Both halves are finished and the peer acknowledged everything we
    /// sent: the stream is done.
    Closed,
    /// The stream ended before both halves finished.
    Reset {
        /// Why.
        code: ResetCode,
        /// The peer's words, or ours.
        reason: String,
    },
}

/// One stream's state.
#[derive(Debug)]
pub struct Stream {
    /// Frames to send before any data (credits, the reset).
    control: VecDeque<Vec<u8>>,
    /// Open, data and fin frames, in order.
    frames: VecDeque<Vec<u8>>,
    /// Data bytes in `frames`.
    queued: usize,
    /// Data bytes taken from the application in all.
    taken: u64,
    /// Data bytes the peer accepts in all.
    peer_credit: u64,
    /// Data bytes received in all.
    received: u64,
    /// Data bytes the application has consumed in all.
    consumed: u64,
    /// What we granted the peer in all.
    granted: u64,
    fin_queued: bool,
    fin_received: bool,
    accepted: bool,
    blocked: bool,
    ended: bool,
    /// Everything we sent, `Fin` included, was acknowledged before the
    /// peer's `Fin` arrived.
    acked_before_their_fin: bool,
    /// The stream closed cleanly with the peer's `Fin` last: the peer may
    /// not yet know we have all it sent, so it closes the channel first.
    peer_closes: bool,
    events: VecDeque<StreamEvent>,
}

impl Stream {
    /// A stream we open: its `Open` frame goes first.
    pub fn opened(header: StreamHeader) -> Self {
        let mut stream = Self::new();
        stream.frames.push_back(Frame::Open(header).encode());
        stream
    }

    /// A stream the peer opened; we take it.
    pub fn accepted() -> Self {
        let mut stream = Self::new();
        stream.accepted = true;
        // An immediate grant tells the opener we took it.
        stream.granted = STREAM_WINDOW;
        stream
            .control
            .push_back(Frame::Credit(STREAM_WINDOW).encode());
        stream
    }

    fn new() -> Self {
        Self {
            control: VecDeque::new(),
            frames: VecDeque::new(),
            queued: 0,
            taken: 0,
            peer_credit: STREAM_WINDOW,
            received: 0,
            consumed: 0,
            granted: STREAM_WINDOW,
            fin_queued: false,
            fin_received: false,
            accepted: false,
            blocked: false,
            ended: false,
            acked_before_their_fin: false,
            peer_closes: false,
            events: VecDeque::new(),
        }
    }

    /// True once reset or closed: nothing more happens.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Takes as much of `bytes` as the peer's grant and the send queue
    /// allow; how much, or why none.
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, WriteError> {
        if self.ended || self.fin_queued {
            return Err(WriteError::Closed);
        }
        let credit = self.peer_credit.saturating_sub(self.taken);
        let room = SEND_QUEUE.saturating_sub(self.queued);
        let take = bytes
            .len()
            .min(room)
            .min(usize::try_from(credit).unwrap_or(usize::MAX));
        if take == 0 && !bytes.is_empty() {
            self.blocked = true;
            return Err(WriteError::Blocked);
        }
        for chunk in bytes[..take].chunks(MAX_DATA) {
            self.frames.push_back(Frame::Data(chunk).encode());
        }
        self.queued += take;
        self.taken += take as u64;
        if take < bytes.len() {
            self.blocked = true;
        }
        Ok(take)
    }

    /// Ends our half after what was written.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        if self.ended || self.fin_queued {
            return Err(WriteError::Closed);
        }
        self.fin_queued = true;
        self.frames.push_back(Frame::Fin.encode());
        Ok(())
    }

    /// Ends both halves now: unsent data is dropped and the peer told why.
    pub fn reset(&mut self, code: ResetCode, reason: &str) {
        if self.ended {
            return;
        }
        self.frames.clear();
        self.control.clear();
        self.queued = 0;
        self.control
            .push_back(Frame::Reset(code, reason.to_owned()).encode());
        self.ended = true;
    }

    /// The application has `count` more of the received bytes: grant the
    /// peer as much again once half a window is free.
    pub fn consumed(&mut self, count: usize) {
        self.consumed = (self.consumed + count as u64).min(self.received);
        if self.ended || self.fin_received {
            return;
        }
        let want = self.consumed + STREAM_WINDOW;
        if want - self.granted.min(want) >= STREAM_WINDOW / 2 {
            self.granted = want;
            self.control.push_back(Frame::Credit(want).encode());
        }
    }

    /// A message from the peer on this stream's channel.
    pub fn on_message(&mut self, bytes: &[u8]) {
        if self.ended {
            return;
        }
        let frame = match Frame::parse(bytes) {
            Ok(frame) => frame,
            Err(error) => return self.violate(&error.to_string()),
        };
        if !self.accepted && !matches!(frame, Frame::Reset(..)) {
            self.accepted = true;
            self.events.push_back(StreamEvent::Accepted);
        }
        match frame {
            Frame::Open(_) => self.violate("a second open"),
            Frame::Data(data) => {
                if self.fin_received {
                    return self.violate("data after fin");
                }
                if self.received + data.len() as u64 > self.granted {
                    return self.violate("more data than granted");
                }
                self.received += data.len() as u64;
                self.events.push_back(StreamEvent::Data(data.to_vec()));
            }
            Frame::Credit(total) => {
                if total > self.peer_credit {
                    self.peer_credit = total;
                    self.note_room();
                }
            }
            Frame::Fin => {
                if self.fin_received {
                    return self.violate("a second fin");
                }
                self.fin_received = true;
                self.events.push_back(StreamEvent::Finished);
            }
            Frame::Reset(code, reason) => {
                self.frames.clear();
                self.control.clear();
                self.ended = true;
                self.events.push_back(StreamEvent::Reset { code, reason });
            }
        }
    }

    /// The connection under the stream ended.
    pub fn on_connection_lost(&mut self) {
        if !self.ended {
            self.ended = true;
            self.frames.clear();
            self.control.clear();
            self.events.push_back(StreamEvent::Reset {
                code: ResetCode::ConnectionLost,
                reason: String::new(),
            });
        }
    }

    /// The peer closed the channel. It does so only after our `Fin`
    /// reached it (which follows all our data), so with both halves
    /// finished and nothing left here that is a clean end; otherwise the
    /// stream is reset.
    pub fn on_channel_closed(&mut self) {
        if self.fin_queued && self.fin_received && self.frames.is_empty() {
            self.control.clear();
            self.on_drained();
        } else {
            self.on_connection_lost();
        }
    }

    /// str0m holds nothing more of the stream: every frame we handed it
    /// was acknowledged. With both halves finished the stream is done,
    /// reported once as [`StreamEvent::Closed`].
    pub fn on_drained(&mut self) {
        if self.ended || !self.fin_queued || !self.frames.is_empty() || !self.control.is_empty() {
            return;
        }
        if !self.fin_received {
            self.acked_before_their_fin = true;
            return;
        }
        self.ended = true;
        self.peer_closes = self.acked_before_their_fin;
        self.events.push_back(StreamEvent::Closed);
    }

    /// True if the stream closed cleanly with the peer's `Fin` as the
    /// last step: our acknowledgement of it may still be on its way, so
    /// the channel stays open (answering the peer's retransmissions)
    /// until the peer closes it, for at most [`STREAM_LINGER`] (spec
    /// §6.7). The side whose own bytes were acknowledged last closes at
    /// once, so normally one side does.
    pub fn peer_closes(&self) -> bool {
        self.peer_closes
    }

    fn violate(&mut self, what: &str) {
        log::debug!("stream: {what}; resetting");
        self.reset(ResetCode::Protocol, what);
        self.events.push_back(StreamEvent::Reset {
            code: ResetCode::Protocol,
            reason: what.to_owned(),
        });
    }

    /// The next frame to hand to str0m, if any: control first.
    pub fn peek_frame(&self) -> Option<&[u8]> {
        self.control
            .front()
            .or_else(|| self.frames.front())
            .map(Vec::as_slice)
    }

    /// str0m took the frame [`peek_frame`](Self::peek_frame) gave.
    pub fn pop_frame(&mut self) {
        if self.control.pop_front().is_some() {
            return;
        }
        if let Some(frame) = self.frames.pop_front()
            && frame.first() == Some(&DATA)
        {
            self.queued -= frame.len() - 1;
            self.note_room();
        }
    }

    fn note_room(&mut self) {
        if self.blocked
            && self.queued <= SEND_QUEUE / 2
            && self.peer_credit > self.taken
            && !self.ended
        {
            self.blocked = false;
            self.events.push_back(StreamEvent::Writable);
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> StreamHeader {
        StreamHeader {
            kind: StreamKind::PIPE,
            name: String::new(),
        }
    }

    /// An opened stream, its `Open` frame taken (as the table does), and
    /// the peer's accepted one.
    fn pair() -> (Stream, Stream) {
        let mut a = Stream::opened(pipe());
        assert_eq!(a.peek_frame(), Some(&[OPEN, STREAM_VERSION, 1, 0][..]));
        a.pop_frame();
        (a, Stream::accepted())
    }

    /// Moves every frame `from` has into `to`.
    fn carry(from: &mut Stream, to: &mut Stream) {
        while let Some(frame) = from.peek_frame().map(<[u8]>::to_vec) {
            from.pop_frame();
            to.on_message(&frame);
        }
    }

    fn events(stream: &mut Stream) -> Vec<StreamEvent> {
        std::iter::from_fn(|| stream.poll_event()).collect()
    }

    #[test]
    fn frames_round_trip_and_match_the_spec_vector() {
        let open = Frame::Open(StreamHeader {
            kind: StreamKind::TCP,
            name: "ssh".into(),
        });
        assert_eq!(open.encode(), [1, 1, 2, 3, b's', b's', b'h']);
        assert_eq!(
            Frame::Credit(0x0010_0000).encode(),
            [3, 0, 0, 0, 0, 0, 0x10, 0, 0]
        );
        assert_eq!(
            Frame::Reset(ResetCode::Refused, "no".into()).encode(),
            [5, 1, 2, b'n', b'o']
        );
        for frame in [
            open,
            Frame::Data(b"hello"),
            Frame::Credit(7),
            Frame::Fin,
            Frame::Reset(ResetCode::Aborted, "gone".into()),
        ] {
            assert_eq!(Frame::parse(&frame.encode()), Ok(frame));
        }
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(Frame::parse(&[]), Err(FrameError::Malformed));
        assert_eq!(Frame::parse(&[DATA]), Err(FrameError::Malformed));
        assert_eq!(Frame::parse(&[1, 2, 1, 0]), Err(FrameError::Version(2)));
        assert_eq!(
            Frame::parse(&[1, 1, 1, 5, b'a']),
            Err(FrameError::Malformed)
        );
        assert_eq!(Frame::parse(&[CREDIT, 1]), Err(FrameError::Malformed));
        assert_eq!(Frame::parse(&[FIN, 0]), Err(FrameError::Malformed));
        assert_eq!(Frame::parse(&[9]), Err(FrameError::UnknownType(9)));
        let mut big = vec![DATA];
        big.resize(MAX_DATA + 2, 0);
        assert_eq!(Frame::parse(&big), Err(FrameError::Malformed));
    }

    #[test]
    fn a_slow_reader_blocks_the_writer_until_it_consumes() {
        let (mut a, mut b) = pair();
        carry(&mut b, &mut a);
        assert_eq!(events(&mut a), [StreamEvent::Accepted]);
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0u64;
        let mut arrived = Vec::new();
        while let Ok(n) = a.write(&chunk) {
            sent += n as u64;
            carry(&mut a, &mut b);
            arrived.extend(events(&mut b));
        }
        assert_eq!(sent, STREAM_WINDOW, "exactly the initial grant");
        let received: usize = arrived
            .iter()
            .map(|e| match e {
                StreamEvent::Data(d) => d.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(received as u64, STREAM_WINDOW);
        assert!(events(&mut a).is_empty(), "no room yet: nothing consumed");
        b.consumed(received);
        carry(&mut b, &mut a);
        assert_eq!(events(&mut a), [StreamEvent::Writable]);
        assert_eq!(a.write(&chunk), Ok(chunk.len()));
    }

    #[test]
    fn a_peer_sending_past_its_grant_is_reset() {
        let mut b = Stream::accepted();
        let data = vec![1u8; MAX_DATA];
        for _ in 0..STREAM_WINDOW / MAX_DATA as u64 {
            b.on_message(&Frame::Data(&data).encode());
        }
        assert!(!b.is_ended());
        b.on_message(&Frame::Data(&data).encode());
        assert!(b.is_ended());
        assert!(events(&mut b).contains(&StreamEvent::Reset {
            code: ResetCode::Protocol,
            reason: "more data than granted".into()
        }));
        assert_eq!(b.peek_frame().map(|f| f[0]), Some(RESET));
    }

    #[test]
    fn both_fins_then_drained_close_the_stream_and_writes_after_fin_fail() {
        let (mut a, mut b) = pair();
        assert_eq!(a.write(b"abc"), Ok(3));
        a.finish().unwrap();
        assert_eq!(a.write(b"x"), Err(WriteError::Closed));
        carry(&mut a, &mut b);
        b.finish().unwrap();
        carry(&mut b, &mut a);
        a.on_drained();
        b.on_drained();
        assert_eq!(
            events(&mut b),
            [
                StreamEvent::Data(b"abc".to_vec()),
                StreamEvent::Finished,
                StreamEvent::Closed
            ]
        );
        assert_eq!(
            events(&mut a),
            [
                StreamEvent::Accepted,
                StreamEvent::Finished,
                StreamEvent::Closed
            ]
        );
    }

    #[test]
    fn the_side_whose_half_was_acknowledged_before_the_peers_fin_leaves_the_close_to_the_peer() {
        let (mut a, mut b) = pair();
        // b finishes first, and its half is acknowledged at once.
        b.finish().unwrap();
        carry(&mut b, &mut a);
        b.on_drained();
        assert!(!b.is_ended());
        a.write(b"abc").unwrap();
        a.finish().unwrap();
        carry(&mut a, &mut b);
        // a's Fin completes b: b's acknowledgement of it may be in flight.
        b.on_drained();
        assert!(b.is_ended() && b.peer_closes());
        // a completes when its bytes are acknowledged, and closes.
        a.on_drained();
        assert!(a.is_ended() && !a.peer_closes());
    }

    #[test]
    fn when_the_fins_cross_both_sides_close() {
        let (mut a, mut b) = pair();
        carry(&mut a, &mut b);
        a.finish().unwrap();
        b.finish().unwrap();
        carry(&mut a, &mut b);
        carry(&mut b, &mut a);
        a.on_drained();
        b.on_drained();
        assert!(a.is_ended() && b.is_ended());
        assert!(!a.peer_closes() && !b.peer_closes());
    }

    #[test]
    fn a_reset_reaches_the_peer_with_its_reason() {
        let (mut a, mut b) = pair();
        carry(&mut a, &mut b);
        b.reset(ResetCode::Refused, "not a pipe");
        carry(&mut b, &mut a);
        assert_eq!(
            events(&mut a),
            [StreamEvent::Reset {
                code: ResetCode::Refused,
                reason: "not a pipe".into()
            }]
        );
        assert_eq!(a.write(b"x"), Err(WriteError::Closed));
    }
}
