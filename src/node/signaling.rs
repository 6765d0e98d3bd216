//! Signals on the node: sealing offers, answers and closes for a member and
//! sending them along a signal path; opening the ones that arrive, with
//! replay protection.
//!
//! A signal to a member goes along the path its last signal to us came
//! (it reached us from there, so that path reaches it), else along the
//! newest path its records came (membership's paths). An offer also goes,
//! sealed once, along a second path when there is one, so one relay that
//! swallows signals cannot keep two members apart. A path whose signal
//! failed (the relay refused or did not answer, or an offer along it got no
//! answer in time) is used again only when no other is left. Sequence numbers are one counter per node,
//! started at the Unix time in milliseconds, so a restarted node's signals
//! are newer; a signal whose number is below the last one accepted from its
//! sender is a replay, and one equal to it is the same signal arriving
//! along a second path (ignored, counted apart).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use crate::api::Via;
use crate::id::NodeId;
use crate::membership::SignalPath;
use crate::rtc::OutgoingSignal;
use crate::signal::{self, Envelope, SignalKind};

/// Peers whose signaling state is remembered.
pub const MAX_SIGNALING_PEERS: usize = 256;

/// Paths one offer is sent along.
pub const OFFER_PATHS: usize = 2;

/// What we know about signaling with one peer.
#[derive(Clone, Debug, Default)]
struct PeerSignaling {
    /// Highest sequence number accepted from it, once one was.
    last_seq: Option<u64>,
    /// The path its last signal came along, until a signal sent along it fails.
    path: Option<SignalPath>,
    /// The paths our latest unanswered offer to it went along.
    offered_via: Vec<SignalPath>,
}

/// Why a signal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// Its sequence number is below the last one accepted.
    Replayed,
    /// The signal accepted last, again: it was sent along two paths.
    Duplicate,
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

    /// Our offer to `peer` went unanswered: the paths it went along, which
    /// are failed paths now.
    pub(super) fn offer_unanswered(&mut self, peer: &NodeId) -> Vec<SignalPath> {
        self.peers
            .get_mut(peer)
            .map(|state| std::mem::take(&mut state.offered_via))
            .unwrap_or_default()
    }

    /// Takes signal `seq` from `from`, remembering the path it came along
    /// if `path` is one worth answering along (`None`: a direct signal from
    /// an address the member's record does not list).
    fn accept(&mut self, from: NodeId, seq: u64, path: Option<SignalPath>) -> Result<(), Refused> {
        let state = self.entry(from).ok_or(Refused::Full)?;
        match state.last_seq {
            Some(last) if seq < last => return Err(Refused::Replayed),
            Some(last) if seq == last => return Err(Refused::Duplicate),
            _ => {}
        }
        state.last_seq = Some(seq);
        if path.is_some() {
            state.path = path;
        }
        // It signalled us, so some path works: the offer is not unanswered.
        state.offered_via.clear();
        Ok(())
    }

    /// An offer to `to` is going along `paths`.
    fn offered(&mut self, to: NodeId, paths: &[SignalPath]) {
        if let Some(state) = self.entry(to) {
            state.offered_via = paths.to_vec();
        }
    }

    /// `peer`'s state, created if there is room for it.
    fn entry(&mut self, peer: NodeId) -> Option<&mut PeerSignaling> {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_SIGNALING_PEERS {
            return None;
        }
        Some(self.peers.entry(peer).or_default())
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

/// The paths to send along, at most `count`: the remembered one, else the
/// newest known; then the newest known ones to other addresses.
fn choose_paths(
    remembered: Option<SignalPath>,
    known: &[SignalPath],
    count: usize,
) -> Vec<SignalPath> {
    let mut chosen: Vec<SignalPath> = Vec::with_capacity(count);
    for path in remembered.into_iter().chain(known.iter().rev().copied()) {
        if chosen.len() == count {
            break;
        }
        if chosen.iter().all(|c| c.addr() != path.addr()) {
            chosen.push(path);
        }
    }
    chosen
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
        // A direct signal's source becomes the path answers take only if
        // the sender's record lists it or it is a confirmed path already:
        // a captured signal raced from another address steers nothing.
        // (A sender whose record has not arrived yet has no path to steer:
        // its signal's source is the only way back, as before.)
        let listed = match path {
            SignalPath::DhtRelay(_) => true,
            SignalPath::Direct(source) => joined.membership.peer(&signal.from).is_none_or(|p| {
                p.paths.contains(&path)
                    || p.addrs
                        .iter()
                        .any(|a| crate::addr::canonical(*a) == crate::addr::canonical(source))
            }),
        };
        let remembered = listed.then_some(path);
        if let Err(refused) = self.signaling.accept(signal.from, signal.seq, remembered) {
            if refused == Refused::Duplicate {
                self.stats.signals_duplicate += 1;
                return;
            }
            debug!(
                "signal from {} (seq {}) refused: {refused:?}",
                signal.from.short(),
                signal.seq
            );
            self.stats.signals_rejected += 1;
            return;
        }
        let via = joined
            .membership
            .peer(&signal.from)
            .map_or(Via::Offer, |p| p.via);
        joined
            .connections
            .on_signal(now, signal, via, &self.public.advertised());
        self.process_connections(now);
    }

    /// Our offer to `peer` got no answer in time: demote the paths it went
    /// along (a later record along one brings it back).
    pub(super) fn offer_unanswered(&mut self, peer: &NodeId) {
        for path in self.signaling.offer_unanswered(peer) {
            debug!("offer to {} via {path:?} unanswered", peer.short());
            self.signal_path_failed(peer, path.addr());
        }
    }

    /// A signal to `peer` sent to `via` failed or went unanswered: the
    /// remembered path through `via` is forgotten, and record paths through
    /// it are used only when no other is left, until a record arrives
    /// along one.
    pub(super) fn signal_path_failed(&mut self, peer: &NodeId, via: SocketAddr) {
        self.signaling.path_failed(peer, via);
        if let Some(joined) = self.joined.as_mut() {
            joined.membership.demote_path(peer, via);
        }
    }

    /// Seals a signal and sends it along the paths that reach the peer.
    pub(super) fn send_signal(&mut self, now: Instant, outgoing: OutgoingSignal) {
        let Some(joined) = self.joined.as_ref() else {
            return;
        };
        // Tentative paths only while no confirmed one is known.
        let known = joined.membership.peer(&outgoing.to).map_or(&[][..], |p| {
            if p.paths.is_empty() {
                &p.tentative[..]
            } else {
                &p.paths[..]
            }
        });
        let is_offer = matches!(outgoing.kind, SignalKind::Offer(_));
        // Offers and answers go along two paths, so one swallowed or
        // steered path cannot keep a pair apart; a close along one.
        let count = match outgoing.kind {
            SignalKind::Offer(_) | SignalKind::Answer(_) => OFFER_PATHS,
            SignalKind::Close => 1,
        };
        let paths = choose_paths(self.signaling.remembered(&outgoing.to), known, count);
        if paths.is_empty() {
            debug!("no signal path to {}; signal not sent", outgoing.to.short());
            return;
        }
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
        if is_offer {
            self.signaling.offered(outgoing.to, &paths);
        }
        // Both kinds of path carry a DHT `Signal` request: to a relay, or to
        // the member itself, which takes a signal addressed to it as delivered.
        for path in paths {
            match path {
                SignalPath::DhtRelay(addr) | SignalPath::Direct(addr) => {
                    self.dht.signal(now, addr, outgoing.to, blob.clone())
                }
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
        let first = |s: &Signaling, known: &[SignalPath]| {
            choose_paths(s.remembered(&peer), known, 1).first().copied()
        };
        assert_eq!(first(&signaling, &[relay(1), relay(2)]), Some(relay(2)));
        signaling.accept(peer, 7, Some(direct)).unwrap();
        assert_eq!(first(&signaling, &[relay(1)]), Some(direct));
        signaling.path_failed(&peer, relay(1).addr());
        assert_eq!(
            signaling.remembered(&peer),
            Some(direct),
            "another path failed"
        );
        signaling.path_failed(&peer, direct.addr());
        assert_eq!(first(&signaling, &[relay(1)]), Some(relay(1)));
        assert_eq!(choose_paths(None, &[], 2), []);
    }

    #[test]
    fn offers_take_two_distinct_paths_and_an_unanswered_one_fails_both() {
        let peer = NodeId([1; 32]);
        let direct = SignalPath::Direct(relay(2).addr());
        assert_eq!(
            choose_paths(None, &[relay(1), relay(2), relay(3)], OFFER_PATHS),
            [relay(3), relay(2)],
            "the two newest"
        );
        assert_eq!(
            choose_paths(Some(direct), &[relay(1), relay(2)], OFFER_PATHS),
            [direct, relay(1)],
            "the remembered path, then the newest to another address"
        );
        assert_eq!(choose_paths(None, &[relay(1)], OFFER_PATHS), [relay(1)]);

        let mut signaling = Signaling::new(100);
        signaling.offered(peer, &[relay(3), relay(2)]);
        assert_eq!(signaling.offer_unanswered(&peer), [relay(3), relay(2)]);
        assert_eq!(signaling.offer_unanswered(&peer), [], "reported once");
        signaling.offered(peer, &[relay(3)]);
        signaling.accept(peer, 9, Some(relay(3))).unwrap();
        assert_eq!(
            signaling.offer_unanswered(&peer),
            [],
            "it signalled us: the offer was not lost"
        );
    }

    #[test]
    fn replays_and_overflow_are_refused() {
        let mut signaling = Signaling::new(100);
        let peer = NodeId([1; 32]);
        assert_eq!(signaling.accept(peer, 5, Some(relay(1))), Ok(()));
        assert_eq!(
            signaling.accept(peer, 5, Some(relay(2))),
            Err(Refused::Duplicate)
        );
        assert_eq!(
            signaling.accept(peer, 4, Some(relay(1))),
            Err(Refused::Replayed)
        );
        assert_eq!(signaling.accept(peer, 6, Some(relay(1))), Ok(()));
        for i in 1..MAX_SIGNALING_PEERS {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            assert_eq!(signaling.accept(NodeId(id), 1, Some(relay(1))), Ok(()));
        }
        assert_eq!(
            signaling.accept(NodeId([9; 32]), 1, Some(relay(1))),
            Err(Refused::Full)
        );
        assert_eq!((signaling.take_seq(), signaling.take_seq()), (100, 101));
    }
}
