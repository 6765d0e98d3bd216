//! One TCP connection joined to one stream, both ways, for `expose` and
//! `connect`.
//!
//! Bytes read from the TCP connection are written to the stream while it
//! takes them; when it is blocked, the connection is not read (the
//! client's own TCP window then slows it). Bytes from the stream are
//! written to the connection and only then handed back to the node as
//! consumed, so a slow TCP reader slows the member that sends. Each side's
//! end of input is passed on as a half-close (`shutdown(Write)` one way,
//! the stream's finish the other); an error or a reset on either side ends
//! both, the TCP side with a reset (RST) so the client sees a failure and
//! not a clean end.
//!
//! An accepted connection is read before the member took its stream, so
//! the client's first bytes leave with the stream's opening; up to
//! [`EARLY_LIMIT`] of them are kept until the member answers, so that a
//! member that refuses the stream costs nothing: the connection goes back
//! to wait for another, those bytes first ([`Waiting`]).
//!
//! mio reports readiness once per change (edge-triggered), so the bridge
//! remembers that a side is readable or writable until an operation says
//! it would block.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;
use tinynode::{Node, StreamId, WriteError};

/// Most bytes read from a TCP connection at once.
const READ_CHUNK: usize = 64 * 1024;

/// Most bytes read from a client before the member took its stream.
pub const EARLY_LIMIT: usize = 64 * 1024;

/// A client connection waiting for a stream, with what was read from it
/// already (for a member that refused it).
pub struct Waiting {
    /// The connection.
    pub tcp: TcpStream,
    /// Since when it waits (it gives up after a while).
    pub since: Instant,
    /// Bytes read from it that no member took yet.
    pub early: Vec<u8>,
    /// Its input ended after `early`.
    pub eof: bool,
}

impl Waiting {
    /// A connection just accepted.
    pub fn new(tcp: TcpStream, since: Instant) -> Self {
        Self {
            tcp,
            since,
            early: Vec::new(),
            eof: false,
        }
    }
}

/// Where a bridge stands after a pump.
#[derive(Debug, PartialEq, Eq)]
pub enum Pumped {
    /// Bytes may still flow.
    Open,
    /// Both directions ended cleanly and every byte was delivered.
    Done,
    /// It failed; the other side was reset. Why, in words.
    Failed(String),
}

/// One forwarded TCP connection and its stream.
pub struct Bridge {
    /// The TCP connection.
    pub tcp: TcpStream,
    /// The stream it is joined to.
    pub stream: StreamId,
    /// The connection is established (an outgoing one starts connecting).
    connected: bool,
    /// Until the member takes the stream: the bytes given to it, kept for
    /// another member should this one refuse (at most [`EARLY_LIMIT`]).
    early: Option<Vec<u8>>,
    readable: bool,
    writable: bool,
    /// Read from TCP, not yet taken by the stream (from `inbound_at`).
    inbound: Vec<u8>,
    inbound_at: usize,
    /// From the stream, not yet written to TCP (from `outbound_at`).
    outbound: Vec<u8>,
    outbound_at: usize,
    tcp_eof: bool,
    finished_stream: bool,
    peer_finished: bool,
    shut_write: bool,
    stream_closed: bool,
    /// Bytes each way, for the log.
    pub to_stream: u64,
    /// Bytes from the stream written to TCP.
    pub to_tcp: u64,
}

impl Bridge {
    /// A bridge for a connection to a service, still connecting, and the
    /// stream a member opened for it.
    pub fn to_service(tcp: TcpStream, stream: StreamId) -> Self {
        Self::new(tcp, stream, false, None)
    }

    /// A bridge for a client's connection and the stream just opened for
    /// it, which the member has not taken yet.
    pub fn from_client(waiting: Waiting, stream: StreamId) -> Self {
        let mut bridge = Self::new(waiting.tcp, stream, true, Some(Vec::new()));
        bridge.inbound = waiting.early;
        bridge.tcp_eof = waiting.eof;
        bridge
    }

    fn new(tcp: TcpStream, stream: StreamId, connected: bool, early: Option<Vec<u8>>) -> Self {
        Self {
            tcp,
            stream,
            connected,
            early,
            readable: true,
            writable: true,
            inbound: Vec::new(),
            inbound_at: 0,
            outbound: Vec::new(),
            outbound_at: 0,
            tcp_eof: false,
            finished_stream: false,
            peer_finished: false,
            shut_write: false,
            stream_closed: false,
            to_stream: 0,
            to_tcp: 0,
        }
    }

    /// The member took the stream: the early bytes are its, and TCP is
    /// read without a limit.
    pub fn accepted(&mut self) {
        self.early = None;
    }

    /// The member refused the stream before taking it: the connection
    /// waits again, with every byte read from it and none lost.
    pub fn into_waiting(self, since: Instant) -> Waiting {
        let mut early = self.early.unwrap_or_default();
        early.extend_from_slice(&self.inbound[self.inbound_at..]);
        Waiting {
            tcp: self.tcp,
            since,
            early,
            eof: self.tcp_eof,
        }
    }

    /// mio says the connection is readable and/or writable.
    pub fn on_ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Bytes the member sent on the stream.
    pub fn on_data(&mut self, bytes: &[u8]) {
        if self.outbound_at == self.outbound.len() {
            self.outbound.clear();
            self.outbound_at = 0;
        }
        self.outbound.extend_from_slice(bytes);
    }

    /// The member finished its half.
    pub fn on_finished(&mut self) {
        self.peer_finished = true;
    }

    /// Both halves of the stream are finished and delivered.
    pub fn on_closed(&mut self) {
        self.stream_closed = true;
    }

    /// Moves what can move, both ways.
    pub fn pump(&mut self, node: &mut Node) -> Pumped {
        let now = Instant::now();
        if !self.connected {
            match self.check_connected() {
                Ok(true) => self.connected = true,
                Ok(false) => return Pumped::Open,
                Err(error) => return self.fail(node, format!("the service: {error}")),
            }
        }
        if let Err(why) = self.write_tcp(node, now) {
            return self.fail(node, why);
        }
        if let Err(why) = self.read_tcp(node, now) {
            return self.fail(node, why);
        }
        if self.finished_stream && self.shut_write && self.stream_closed {
            Pumped::Done
        } else {
            Pumped::Open
        }
    }

    /// Whether an outgoing connection is established yet.
    fn check_connected(&mut self) -> io::Result<bool> {
        if let Some(error) = self.tcp.take_error()? {
            return Err(error);
        }
        match self.tcp.peer_addr() {
            Ok(_) => Ok(true),
            Err(error)
                if error.kind() == io::ErrorKind::NotConnected
                    || error.raw_os_error() == Some(libc::EINPROGRESS) =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Stream → TCP, then the half-close once the member finished.
    fn write_tcp(&mut self, node: &mut Node, now: Instant) -> Result<(), String> {
        let mut written = 0;
        while self.writable && self.outbound_at < self.outbound.len() {
            match self.tcp.write(&self.outbound[self.outbound_at..]) {
                Ok(0) => return Err("the connection took no bytes".into()),
                Ok(n) => {
                    self.outbound_at += n;
                    written += n;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("writing to the connection: {error}")),
            }
        }
        if written > 0 {
            self.to_tcp += written as u64;
            let _ = node.stream_consumed(now, self.stream, written);
        }
        if self.peer_finished && self.outbound_at == self.outbound.len() && !self.shut_write {
            match self.tcp.shutdown(Shutdown::Write) {
                Ok(()) => self.shut_write = true,
                // The client closed its side altogether; nothing more to say.
                Err(error) if error.kind() == io::ErrorKind::NotConnected => self.shut_write = true,
                Err(error) => return Err(format!("closing the connection's input: {error}")),
            }
        }
        Ok(())
    }

    /// TCP → stream while the stream takes bytes, then the finish once
    /// the connection's input ended.
    fn read_tcp(&mut self, node: &mut Node, now: Instant) -> Result<(), String> {
        loop {
            if self.inbound_at < self.inbound.len() {
                match node.stream_write(now, self.stream, &self.inbound[self.inbound_at..]) {
                    Ok(0) | Err(WriteError::Blocked) => break,
                    Ok(n) => {
                        if let Some(early) = self.early.as_mut() {
                            early.extend_from_slice(&self.inbound[self.inbound_at..][..n]);
                        }
                        self.inbound_at += n;
                        self.to_stream += n as u64;
                    }
                    Err(error) => return Err(format!("the stream: {error}")),
                }
                continue;
            }
            let room = self
                .early
                .as_ref()
                .map_or(READ_CHUNK, |early| EARLY_LIMIT.saturating_sub(early.len()));
            if !self.readable || self.tcp_eof || room == 0 {
                break;
            }
            self.inbound.resize(room.min(READ_CHUNK), 0);
            match self.tcp.read(&mut self.inbound) {
                Ok(0) => {
                    self.tcp_eof = true;
                    self.inbound.clear();
                }
                Ok(n) => self.inbound.truncate(n),
                Err(error) => {
                    self.inbound.clear();
                    match error.kind() {
                        io::ErrorKind::WouldBlock => self.readable = false,
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(format!("reading the connection: {error}")),
                    }
                }
            }
            self.inbound_at = 0;
        }
        if self.tcp_eof && self.inbound_at == self.inbound.len() && !self.finished_stream {
            self.finished_stream = true;
            let _ = node.stream_finish(now, self.stream);
        }
        Ok(())
    }

    /// Resets the stream with `why` and the TCP connection; the failure.
    fn fail(&mut self, node: &mut Node, why: String) -> Pumped {
        let _ = node.stream_reset(Instant::now(), self.stream, &why);
        self.reset_tcp();
        Pumped::Failed(why)
    }

    /// Makes the connection's close a reset (RST), so the client sees the
    /// failure; the caller drops the bridge.
    pub fn reset_tcp(&self) {
        let _ = tinynode::driver::reset_on_close(&self.tcp);
    }
}
