//! Hellos on the node: a sealed record sent straight to an address
//! (`hello.rs`), by the Mainline source to the addresses storing nodes list
//! and by the LAN source to the senders of new members' beacons.
//!
//! A hello whose code checks with the meeting's hello key, that names one
//! of our addresses as its destination, and whose record opens and
//! verifies, makes its sender a member whose signal path is
//! [`SignalPath::Direct`] to the hello's source. That path is confirmed
//! when the member's signed record lists the source, or when the hello
//! echoes a nonce we sent to that source (it receives there); otherwise it
//! is tentative (`membership.rs`). A Mainline hello (kind 0) is answered
//! with a reply echoing its nonce; a reply or LAN hello that proves its
//! sender's address is answered with an ack echoing its nonce, so the other
//! side can confirm ours; at most [`HELLO_REPLIES`] answers per address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::debug;

use super::Node;
use super::stats::DropReason;
use crate::addr::{Family, Scope, canonical};
use crate::api::Via;
use crate::hello::{self, Hello, HelloKind, HelloNonce, MAX_HELLO_RECORD};
use crate::membership::SignalPath;
use crate::ratelimit::Limits;
use crate::record;

/// Answers to one address: one a second, two at once.
pub(super) const HELLO_REPLIES: Limits = Limits {
    rate_per_second: 1,
    burst: 2,
    max_sources: 1024,
};
/// How long a nonce we sent is accepted as echoed.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(60);
/// Destinations whose nonces are remembered at once.
pub const MAX_SENT_NONCES: usize = 1024;

/// The nonces of the hellos we sent, by destination.
#[derive(Default)]
pub(super) struct SentNonces {
    sent: BTreeMap<SocketAddr, (HelloNonce, Instant)>,
}

impl SentNonces {
    /// Remembers `nonce` as sent to `to` at `now`, forgetting the oldest
    /// destination when full.
    fn sent(&mut self, now: Instant, to: SocketAddr, nonce: HelloNonce) {
        if self.sent.len() >= MAX_SENT_NONCES && !self.sent.contains_key(&to) {
            let oldest = self
                .sent
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.sent.remove(&oldest);
            }
        }
        self.sent.insert(to, (nonce, now));
    }

    /// True if `echo` is the nonce we sent `from` within the last
    /// [`NONCE_LIFETIME`].
    fn echoed(&self, now: Instant, from: SocketAddr, echo: &HelloNonce) -> bool {
        *echo != [0; hello::NONCE_LEN]
            && self
                .sent
                .get(&from)
                .is_some_and(|(nonce, at)| nonce == echo && now < *at + NONCE_LIFETIME)
    }

    /// Destinations remembered.
    pub(super) fn len(&self) -> usize {
        self.sent.len()
    }
}

impl Node {
    /// Sends a hello of `kind` carrying a fresh record and a fresh nonce to
    /// each address.
    pub(super) fn send_hellos(&mut self, now: Instant, to: &[SocketAddr], kind: HelloKind) {
        for &addr in to {
            self.send_hello(now, addr, kind, [0; hello::NONCE_LEN]);
        }
    }

    /// Sends one hello of `kind` to `to`, echoing `echo`.
    fn send_hello(&mut self, now: Instant, to: SocketAddr, kind: HelloKind, echo: HelloNonce) {
        let Some(sealed) = self.sealed_record(now, MAX_HELLO_RECORD) else {
            return;
        };
        let Some(joined) = self.joined.as_ref() else {
            return;
        };
        let nonce = self.rng.bytes();
        let hello = Hello {
            kind,
            record: &sealed,
            to,
            nonce,
            echo,
        };
        let meeting = joined.membership.meeting();
        let datagram = hello::encode(&hello, |bytes| meeting.hello_mac(bytes));
        debug!("hello: {kind:?} to {to}");
        self.hello_nonces.sent(now, canonical(to), nonce);
        self.transmits.push_back(self.locals.transmit(to, datagram));
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
        let meeting = joined.membership.meeting();
        if !hello::verify(data, |bytes| meeting.hello_mac(bytes)) {
            debug!("hello from {source}: not of our meeting");
            return self.drop_datagram(source, DropReason::HelloUnverified);
        }
        let Some(bound) = self.hello_bound_here(hello.to) else {
            debug!(
                "hello from {source} was sent to {}, not to us: a replay",
                hello.to
            );
            return self.drop_datagram(source, DropReason::HelloMisdirected);
        };
        let record = match record::open(meeting, hello.record) {
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
        let echoed = bound
            && self
                .hello_nonces
                .echoed(now, canonical(source), &hello.echo);
        let listed = record
            .addrs
            .iter()
            .any(|a| canonical(*a) == canonical(source));
        let via = match hello.kind {
            HelloKind::Lan => Via::Lan,
            HelloKind::Hello | HelloKind::Reply | HelloKind::Ack => Via::Mainline,
        };
        let peer = record.node_id;
        let fresh = self.joined.as_ref().is_some_and(|j| {
            j.membership
                .peer(&peer)
                .is_some_and(|p| record.timestamp_ms > p.record_ms)
        });
        if !self.take_opened(now, record, via, SignalPath::Direct(source), echoed) {
            return self.drop_datagram(source, DropReason::HelloUnverified);
        }
        if let Some(joined) = self.joined.as_mut() {
            joined
                .connections
                .restart_if_stale(now, peer, source, fresh);
        }
        self.stats.hellos += 1;
        if let Some(source_state) = self
            .joined
            .as_mut()
            .and_then(|j| j.sources.mainline.as_mut())
        {
            source_state.verified(source);
        }
        let answer = match hello.kind {
            HelloKind::Hello => Some(HelloKind::Reply),
            // The other side proved its address to us; let it confirm ours.
            HelloKind::Reply if echoed => Some(HelloKind::Ack),
            HelloKind::Lan if !listed => Some(HelloKind::Ack),
            _ => None,
        };
        if let Some(kind) = answer
            && self.hello_replies.allow(now, source, 1)
        {
            self.send_hello(now, source, kind, hello.nonce);
        }
    }

    /// Whether a hello sent to `to` was sent to us: `Some(true)` when `to`
    /// is one of our socket addresses or has one of our public IPs, `Some(false)` when we
    /// cannot tell (a public address of a family whose public address we
    /// do not know yet: the hello counts, but proves nothing), `None` when
    /// it names someone else (a hello captured elsewhere and replayed).
    fn hello_bound_here(&self, to: SocketAddr) -> Option<bool> {
        let to = canonical(to);
        // A socket address exactly; a public address by its IP, as behind
        // a NAT that maps by destination the port a Mainline node saw is
        // not the one our public address was voted with.
        let ours = self.locals.all().iter().any(|a| canonical(*a) == to)
            || self
                .public
                .all()
                .iter()
                .any(|a| canonical(*a).ip() == to.ip());
        if ours {
            return Some(true);
        }
        let unknown =
            Scope::of(to.ip()) == Scope::Public && self.public.current(Family::of(to)).is_none();
        unknown.then_some(false)
    }
}
