//! The node's stream API: open, write, finish, reset and consume byte
//! streams to connected members (`stream.rs`, spec §6.7).

use std::time::Instant;

use super::Node;
use crate::api::{StreamHeader, StreamId, StreamKind, WriteError};
use crate::id::NodeId;
use crate::rtc::Connections;

/// What the application asked of streams: kept on the node and applied
/// to the connections of each meeting it joins.
#[derive(Debug, Default)]
pub(super) struct StreamPolicy {
    /// Stream kinds taken from members ([`Node::set_stream_kinds`]).
    kinds: Vec<StreamKind>,
    /// The members whose streams are taken and to whom streams are opened
    /// ([`Node::set_stream_peers`]); `None` for all.
    peers: Option<Vec<NodeId>>,
    /// Connections keep a stream channel ready ([`Node::set_stream_spares`]).
    spares: bool,
}

impl StreamPolicy {
    /// Gives `connections` (a new meeting's) the policy.
    pub(super) fn apply(&self, connections: &mut Connections) {
        connections.set_accepted_kinds(&self.kinds);
        connections.set_stream_peers(self.peers.as_deref());
        connections.set_stream_spares(self.spares);
    }
}

impl Node {
    /// Takes streams of `kinds` from members from now on; a stream of any
    /// other kind is reset as refused. Nothing is taken by default.
    pub fn set_stream_kinds(&mut self, kinds: &[StreamKind]) {
        self.stream_policy.kinds = kinds.to_vec();
        if let Some(joined) = self.joined.as_mut() {
            joined.connections.set_accepted_kinds(kinds);
        }
    }

    /// Takes streams only from, and opens them only to, the members
    /// `peers` lists (`None`: every member). A stream from anyone else is
    /// reset as refused before any of its bytes are taken
    /// ([`Event::StreamRefused`](crate::Event::StreamRefused) says so), and
    /// [`open_stream`](Self::open_stream) to them is
    /// [`WriteError::NotAllowed`]. Chat messages are not affected.
    pub fn set_stream_peers(&mut self, peers: Option<&[NodeId]>) {
        self.stream_policy.peers = peers.map(<[NodeId]>::to_vec);
        if let Some(joined) = self.joined.as_mut() {
            joined.connections.set_stream_peers(peers);
        }
    }

    /// Keeps one stream channel open ahead of need on every connection,
    /// so that [`open_stream`](Self::open_stream)'s first bytes leave at
    /// once instead of after the channel's own round trip (DCEP): the
    /// member's first answer is back one round trip after the open. For
    /// nodes that open streams on demand (`connect`); off by default,
    /// since each connection then holds one more channel.
    pub fn set_stream_spares(&mut self, keep: bool) {
        self.stream_policy.spares = keep;
        if let Some(joined) = self.joined.as_mut() {
            joined.connections.set_stream_spares(keep);
        }
    }

    /// Queues one message of at most
    /// [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN) bytes for connected
    /// member `peer` alone (it gets [`Event::Data`](crate::Event::Data)),
    /// or says why not: [`WriteError::TooLong`], never a truncation;
    /// [`WriteError::Blocked`] while 256 KiB wait for it.
    pub fn send_to(&mut self, now: Instant, peer: NodeId, bytes: &[u8]) -> Result<(), WriteError> {
        self.with_connections(now, |c| c.send_to(now, peer, bytes))
    }

    /// Opens a stream to connected member `peer`. Bytes may be written at
    /// once; [`Event::StreamAccepted`](crate::Event::StreamAccepted) says
    /// the member took it, a reset that it did not.
    pub fn open_stream(
        &mut self,
        now: Instant,
        peer: NodeId,
        header: StreamHeader,
    ) -> Result<StreamId, WriteError> {
        self.with_connections(now, |c| c.open_stream(now, peer, header))
    }

    /// Writes to `stream`: how many bytes it took (fewer than given when
    /// the member has not granted more), or why none.
    pub fn stream_write(
        &mut self,
        now: Instant,
        stream: StreamId,
        bytes: &[u8],
    ) -> Result<usize, WriteError> {
        self.on_stream(now, stream, |conn, n| conn.stream_write(n, bytes))
    }

    /// Finishes our half of `stream` after what was written.
    pub fn stream_finish(&mut self, now: Instant, stream: StreamId) -> Result<(), WriteError> {
        self.on_stream(now, stream, |conn, n| conn.stream_finish(n))
    }

    /// Resets `stream`, telling the member `reason`.
    pub fn stream_reset(
        &mut self,
        now: Instant,
        stream: StreamId,
        reason: &str,
    ) -> Result<(), WriteError> {
        self.on_stream(now, stream, |conn, n| conn.stream_reset(n, reason))
    }

    /// The application has used `count` more bytes of `stream`'s
    /// [`Event::StreamData`](crate::Event::StreamData): the member may
    /// send as much more.
    pub fn stream_consumed(
        &mut self,
        now: Instant,
        stream: StreamId,
        count: usize,
    ) -> Result<(), WriteError> {
        self.on_stream(now, stream, |conn, n| conn.stream_consumed(n, count))
    }

    fn on_stream<T>(
        &mut self,
        now: Instant,
        stream: StreamId,
        action: impl FnOnce(&mut crate::rtc::conn::Conn, u32) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        self.with_connections(now, |c| c.with_stream(now, stream, action))
    }

    /// Runs `action` on the meeting's connections between taking in what
    /// they received and reporting what they did.
    fn with_connections<T>(
        &mut self,
        now: Instant,
        action: impl FnOnce(&mut Connections) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        self.settle_connections();
        let joined = self.joined.as_mut().ok_or(WriteError::NotConnected)?;
        let result = action(&mut joined.connections);
        self.process_events(now);
        result
    }
}
