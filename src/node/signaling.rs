//! Signals on the node: sealing offers, answers and closes for a member and
//! sending them along a signal path; opening the ones that arrive, with
//! replay protection.
//!
//! A signal to a member goes along the path its last signal to us came
//! (it reached us from there, so that path reaches it), else along the
//! newest path its records came (membership's paths). A path whose signal
//! failed is forgotten. Sequence numbers are one counter per node, started
//! at the Unix time in milliseconds, so a restarted node's signals are
//! newer; a signal whose number is not above the last one accepted from
//! its sender is a replay.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use crate::id::NodeId;
use crate::membership::SignalPath;
use crate::rtc::OutgoingSignal;
use crate::signal::{self, Envelope};

/// Peers whose signaling state is remembered.
pub const MAX_SIGNALING_PEERS: usize = 256;

/// What we know about signaling with one peer.
#[derive(Clone, Copy, Debug)]
struct PeerSignaling {
    /// Highest sequence number accepted from it.
    last_seq: u64,
    /// The path its last signal came along, until a signal sent along it fails.
    path: Option<SignalPath>,
}

/// Why a signal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// Its sequence number is not newer than the last one accepted.
    Replayed,
    /// [`MAX_SIGNALING_PEERS`] peers are remembered already.
    Full,
}

/// Signaling state of every peer.
pub(super) struct Signaling {
    peers: BTreeMap<NodeId, PeerSignaling>,
    next_seq: u64,
}

impl Signaling {
    /// No peer yet; our sequence numbers start at `first_seq`.
    pub(super) fn new(first_seq: u64) -> Self {
        Self {
            peers: BTreeMap::new(),
            next_seq: first_seq,
        }
    }

    /// Peers remembered.
    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }

    /// `peer` left the meeting.
    pub(super) fn forget(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }

    /// A signal to `peer` sent to `via` failed: do not use that path again.
    pub(super) fn path_failed(&mut self, peer: &NodeId, via: SocketAddr) {
        if let Some(state) = self.peers.get_mut(peer)
            && state.path.is_some_and(|p| p.addr() == via)
        {
            state.path = None;
        }
    }

    fn accept(&mut self, from: NodeId, seq: u64, path: SignalPath) -> Result<(), Refused> {
        match self.peers.get(&from) {
            Some(known) if seq <= known.last_seq => return Err(Refused::Replayed),
            None if self.peers.len() >= MAX_SIGNALING_PEERS => return Err(Refused::Full),
            _ => {}
        }
        self.peers.insert(
            from,
            PeerSignaling {
                last_seq: seq,
                path: Some(path),
            },
        );
        Ok(())
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn remembered(&self, peer: &NodeId) -> Option<SignalPath> {
        self.peers.get(peer).and_then(|s| s.path)
    }
}

/// The path to send along: the remembered one, else the newest known.
fn choose_path(remembered: Option<SignalPath>, known: &[SignalPath]) -> Option<SignalPath> {
    remembered.or_else(|| known.last().copied())
}

impl Node {
    /// Opens a signal that arrived along `path` and hands it to the connections.
    pub(super) fn on_signal(&mut self, now: Instant, path: SignalPath, payload: &[u8]) {
        let unix_ms = self.config.clock.unix_ms(now);
        let local = self.node_id();
        let Some(joined) = self.joined.as_mut() else {
            self.stats.signals_rejected += 1;
            return;
        };
        let signal = match signal::open(joined.membership.meeting(), &local, unix_ms, payload) {
            Ok(signal) => signal,
            Err(error) => {
                debug!("signal via {path:?} rejected: {error}");
                self.stats.signals_rejected += 1;
                return;
            }
        };
        if let Err(refused) = self.signaling.accept(signal.from, signal.seq, path) {
            debug!(
                "signal from {} (seq {}) refused: {refused:?}",
                signal.from.short(),
                signal.seq
            );
            self.stats.signals_rejected += 1;
            return;
        }
        joined
            .connections
            .on_signal(now, signal, self.public.current);
        self.process_connections(now);
    }

    /// Seals a signal and sends it along a path that reaches the peer.
    pub(super) fn send_signal(&mut self, now: Instant, outgoing: OutgoingSignal) {
        let Some(joined) = self.joined.as_ref() else {
            return;
        };
        let known = joined
            .membership
            .peer(&outgoing.to)
            .map_or(&[][..], |p| &p.paths[..]);
        let Some(path) = choose_path(self.signaling.remembered(&outgoing.to), known) else {
            debug!("no signal path to {}; signal not sent", outgoing.to.short());
            return;
        };
        let envelope = Envelope {
            to: outgoing.to,
            seq: self.signaling.take_seq(),
            timestamp_ms: self.config.clock.unix_ms(now),
            session: outgoing.session,
        };
        let blob = signal::seal(
            joined.membership.meeting(),
            &self.config.identity,
            envelope,
            outgoing.kind,
            self.rng.bytes(),
        );
        // Both paths carry a DHT `Signal` request: to a relay, or to the
        // member itself, which takes a signal addressed to it as delivered.
        match path {
            SignalPath::DhtRelay(addr) | SignalPath::Direct(addr) => {
                self.dht.signal(now, addr, outgoing.to, blob)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(last: u8) -> SignalPath {
        SignalPath::DhtRelay(SocketAddr::from(([192, 0, 2, last], 4000)))
    }

    #[test]
    fn the_path_a_signal_came_along_wins_until_it_fails() {
        let peer = NodeId([1; 32]);
        let direct = SignalPath::Direct("198.51.100.1:5000".parse().unwrap());
        let mut signaling = Signaling::new(100);
        assert_eq!(
            choose_path(signaling.remembered(&peer), &[relay(1), relay(2)]),
            Some(relay(2))
        );
        signaling.accept(peer, 7, direct).unwrap();
        assert_eq!(
            choose_path(signaling.remembered(&peer), &[relay(1)]),
            Some(direct)
        );
        signaling.path_failed(&peer, relay(1).addr());
        assert_eq!(
            signaling.remembered(&peer),
            Some(direct),
            "another path failed"
        );
        signaling.path_failed(&peer, direct.addr());
        assert_eq!(
            choose_path(signaling.remembered(&peer), &[relay(1)]),
            Some(relay(1))
        );
        assert_eq!(choose_path(None, &[]), None);
    }

    #[test]
    fn replays_and_overflow_are_refused() {
        let mut signaling = Signaling::new(100);
        let peer = NodeId([1; 32]);
        assert_eq!(signaling.accept(peer, 5, relay(1)), Ok(()));
        assert_eq!(signaling.accept(peer, 5, relay(1)), Err(Refused::Replayed));
        assert_eq!(signaling.accept(peer, 4, relay(1)), Err(Refused::Replayed));
        assert_eq!(signaling.accept(peer, 6, relay(1)), Ok(()));
        for i in 1..MAX_SIGNALING_PEERS {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            assert_eq!(signaling.accept(NodeId(id), 1, relay(1)), Ok(()));
        }
        assert_eq!(
            signaling.accept(NodeId([9; 32]), 1, relay(1)),
            Err(Refused::Full)
        );
        assert_eq!((signaling.take_seq(), signaling.take_seq()), (100, 101));
    }
}
