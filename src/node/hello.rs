//! Hellos on the node: a sealed record sent straight to an address
//! (`hello.rs`), by the Mainline source to the addresses storing nodes list
//! and by the LAN source to the senders of new members' beacons.
//!
//! A hello that opens to a valid record of our meeting makes its sender a
//! member whose signal path is [`SignalPath::Direct`] to the hello's
//! source; a Mainline hello (kind 0) is answered once with a reply of the
//! same size, at most [`HELLO_REPLIES`] per address; replies and LAN
//! hellos are never answered.

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::stats::DropReason;
use crate::api::Via;
use crate::hello::{self, HelloKind, MAX_HELLO_RECORD};
use crate::membership::SignalPath;
use crate::ratelimit::Limits;
use crate::record;

/// Replies to one address: one a second, two at once.
pub(super) const HELLO_REPLIES: Limits = Limits {
    rate_per_second: 1,
    burst: 2,
    max_sources: 1024,
};

impl Node {
    /// Sends a hello (or reply) carrying a fresh record to each address.
    pub(super) fn send_hellos(&mut self, now: Instant, to: &[SocketAddr], kind: HelloKind) {
        if to.is_empty() {
            return;
        }
        let Some(sealed) = self.sealed_record(now, MAX_HELLO_RECORD) else {
            return;
        };
        let datagram = hello::encode(kind, &sealed);
        for &addr in to {
            debug!("mainline: {kind:?} to {addr}");
            self.transmits
                .push_back(self.locals.transmit(addr, datagram.clone()));
        }
    }

    /// A datagram that starts with the hello tag (already rate-limited).
    pub(super) fn on_hello(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let hello = match hello::decode(data) {
            Ok(hello) => hello,
            Err(error) => {
                debug!("hello from {source}: {error}");
                return self.drop_datagram(source, DropReason::HelloMalformed);
            }
        };
        let Some(joined) = self.joined.as_ref() else {
            return self.drop_datagram(source, DropReason::HelloUnverified);
        };
        let record = match record::open(joined.membership.meeting(), hello.record) {
            Ok(record) => record,
            Err(error) => {
                debug!("hello from {source} does not open: {error:?}");
                return self.drop_datagram(source, DropReason::HelloUnverified);
            }
        };
        if record.node_id == self.node_id() {
            // Our own hello came back (our address was listed to us):
            // handled, never answered.
            self.stats.hellos += 1;
            return;
        }
        let via = match hello.kind {
            HelloKind::Lan => Via::Lan,
            HelloKind::Hello | HelloKind::Reply => Via::Mainline,
        };
        if !self.take_opened(now, record, via, SignalPath::Direct(source)) {
            return self.drop_datagram(source, DropReason::HelloUnverified);
        }
        self.stats.hellos += 1;
        if let Some(source_state) = self.joined.as_mut().and_then(|j| j.mainline.as_mut()) {
            source_state.verified(source);
        }
        if hello.kind == HelloKind::Hello && self.hello_replies.allow(now, source, 1) {
            self.send_hellos(now, &[source], HelloKind::Reply);
        }
    }
}
