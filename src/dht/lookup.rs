//! An iterative Kademlia lookup as pure state (Kademlia paper §2.3).
//!
//! Candidates are kept in a map ordered by XOR distance to the target. At
//! most [`ALPHA`] requests are in flight; each has its own deadline. A
//! request goes to the closest candidate not yet asked among the k closest
//! that have not failed. The lookup is finished when those k closest have all
//! answered (or fewer exist and all answered), or when nothing is left to
//! ask. Each candidate records the round it was learned in (seeds are round
//! 1, nodes learned from a round-r answer are round r+1), so the depth of a
//! lookup can be reported. The candidate set is capped at
//! [`MAX_CANDIDATES`]; the farthest unasked ones are dropped first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::routing::Peer;
use super::wire::K;
use crate::addr::diversity_key;
use crate::id::{Distance, NodeId};

/// Requests in flight per lookup.
pub const ALPHA: usize = 3;
/// Time a lookup waits for one answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Most candidates a lookup remembers.
pub const MAX_CANDIDATES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight(Instant),
    Answered,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    peer: Peer,
    state: State,
    round: u32,
}

/// One lookup's progress.
pub struct Lookup {
    target: NodeId,
    local: NodeId,
    /// Requests in flight at most.
    alpha: usize,
    /// How long a candidate may stay in flight before the lookup moves on.
    patience: Duration,
    candidates: BTreeMap<Distance, Candidate>,
    requests: u32,
}

impl Lookup {
    /// A lookup for `target` starting from `seeds` (the local node excluded).
    pub fn new(target: NodeId, local: NodeId, seeds: &[Peer]) -> Self {
        Self::tuned(target, local, seeds, ALPHA, REQUEST_TIMEOUT)
    }

    /// A lookup with `alpha` requests in flight that counts a candidate as
    /// failed once it has been in flight for `patience` (the Mainline
    /// client asks more nodes at once and moves on from stragglers sooner
    /// than its queries time out; a late answer still reaches the routing
    /// table).
    pub fn tuned(
        target: NodeId,
        local: NodeId,
        seeds: &[Peer],
        alpha: usize,
        patience: Duration,
    ) -> Self {
        let mut lookup = Self {
            target,
            local,
            alpha,
            patience,
            candidates: BTreeMap::new(),
            requests: 0,
        };
        lookup.add(seeds, 1);
        lookup
    }

    /// The key looked up.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Peers to send a request to now; they are marked in flight until
    /// `now` + the lookup's patience ([`REQUEST_TIMEOUT`] unless set).
    pub fn next_requests(&mut self, now: Instant) -> Vec<Peer> {
        self.expire(now);
        let mut in_flight = self
            .candidates
            .values()
            .filter(|c| matches!(c.state, State::InFlight(_)))
            .count();
        let mut out = Vec::new();
        for candidate in self
            .candidates
            .values_mut()
            .filter(|c| c.state != State::Failed)
            .take(K)
        {
            if in_flight >= self.alpha {
                break;
            }
            if candidate.state == State::Waiting {
                candidate.state = State::InFlight(now + self.patience);
                in_flight += 1;
                self.requests += 1;
                out.push(candidate.peer);
            }
        }
        out
    }

    /// `id` answered with `closer` nodes.
    pub fn on_answer(&mut self, id: &NodeId, closer: &[Peer]) {
        let Some(candidate) = self.candidates.get_mut(&id.distance(&self.target)) else {
            return;
        };
        if !matches!(candidate.state, State::InFlight(_)) {
            return;
        }
        candidate.state = State::Answered;
        let round = candidate.round + 1;
        self.add(closer, round);
    }

    /// The request to `id` failed.
    pub fn on_failure(&mut self, id: &NodeId) {
        if let Some(candidate) = self.candidates.get_mut(&id.distance(&self.target))
            && matches!(candidate.state, State::InFlight(_))
        {
            candidate.state = State::Failed;
        }
    }

    /// True when the k closest non-failed candidates have all answered.
    pub fn is_finished(&self) -> bool {
        self.candidates
            .values()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .all(|c| c.state == State::Answered)
    }

    /// The earliest deadline of a request in flight: when the lookup moves
    /// on without its answer.
    pub fn deadline(&self) -> Option<Instant> {
        self.candidates
            .values()
            .filter_map(|c| match c.state {
                State::InFlight(deadline) => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Up to `count` nodes that answered, closest first.
    pub fn closest_answered(&self, count: usize) -> Vec<Peer> {
        self.candidates
            .values()
            .filter(|c| c.state == State::Answered)
            .take(count)
            .map(|c| c.peer)
            .collect()
    }

    /// Deepest round among the k closest answered nodes.
    pub fn rounds(&self) -> u32 {
        self.candidates
            .values()
            .filter(|c| c.state == State::Answered)
            .take(K)
            .map(|c| c.round)
            .max()
            .unwrap_or(0)
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    fn expire(&mut self, now: Instant) {
        for candidate in self.candidates.values_mut() {
            if matches!(candidate.state, State::InFlight(deadline) if now >= deadline) {
                candidate.state = State::Failed;
            }
        }
    }

    fn add(&mut self, peers: &[Peer], round: u32) {
        for peer in peers.iter().filter(|p| p.id != self.local) {
            // One candidate per public /24 (/64): a Sybil cluster in one
            // network cannot crowd out the true closest nodes.
            let key = diversity_key(peer.addr.ip());
            if key.is_some()
                && self
                    .candidates
                    .values()
                    .any(|c| c.peer.id != peer.id && diversity_key(c.peer.addr.ip()) == key)
            {
                continue;
            }
            self.candidates
                .entry(peer.id.distance(&self.target))
                .or_insert(Candidate {
                    peer: *peer,
                    state: State::Waiting,
                    round,
                });
        }
        while self.candidates.len() > MAX_CANDIDATES {
            let farthest_waiting = self
                .candidates
                .iter()
                .rev()
                .find(|(_, c)| c.state == State::Waiting)
                .map(|(d, _)| *d);
            match farthest_waiting {
                Some(distance) => {
                    self.candidates.remove(&distance);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn peer(n: u8) -> Peer {
        let mut id = [0u8; 32];
        id[0] = n;
        Peer {
            id: NodeId(id),
            addr: SocketAddr::from(([192, 0, n, 1], 4000)),
        }
    }

    #[test]
    fn a_sybil_cluster_in_one_slash_24_gets_one_candidate() {
        let now = Instant::now();
        let target = NodeId([0; 32]);
        let honest: Vec<Peer> = (40..50).map(peer).collect();
        let mut lookup = Lookup::new(target, NodeId([0xff; 32]), &honest[..1]);
        let first = lookup.next_requests(now);
        // The first node answers with sixteen Sybils closer than anyone,
        // all in 203.0.113.0/24, and the honest nodes.
        let sybils: Vec<Peer> = (1..=16)
            .map(|n| Peer {
                addr: SocketAddr::from(([203, 0, 113, n], 4000)),
                ..peer(n)
            })
            .collect();
        let mut listed = sybils.clone();
        listed.extend_from_slice(&honest[1..]);
        lookup.on_answer(&first[0].id, &listed);
        let asked: Vec<Peer> = std::iter::from_fn(|| {
            let next = lookup.next_requests(now);
            for p in &next {
                lookup.on_answer(&p.id, &[]);
            }
            (!next.is_empty()).then_some(next)
        })
        .flatten()
        .collect();
        let sybils_asked = asked.iter().filter(|p| sybils.contains(p)).count();
        assert_eq!(sybils_asked, 1, "{asked:?}");
        let honest_asked = asked.iter().filter(|p| honest.contains(p)).count();
        assert!(
            honest_asked >= K / 2,
            "the rest of the k closest are honest: {asked:?}"
        );
    }

    #[test]
    fn asks_alpha_at_a_time_and_converges() {
        let now = Instant::now();
        let target = NodeId([0; 32]);
        let seeds: Vec<Peer> = (100..110).map(peer).collect();
        let mut lookup = Lookup::new(target, NodeId([0xff; 32]), &seeds);
        let first = lookup.next_requests(now);
        assert_eq!(
            first.iter().map(|p| p.id.0[0]).collect::<Vec<_>>(),
            [100, 101, 102]
        );
        assert!(lookup.next_requests(now).is_empty(), "alpha in flight");
        lookup.on_answer(&peer(100).id, &(1..9).map(peer).collect::<Vec<_>>());
        // The closest new candidates are asked next.
        assert_eq!(lookup.next_requests(now)[0].id.0[0], 1);
        // Drive to completion: everyone answers with nothing new.
        let mut guard = 0;
        while !lookup.is_finished() {
            for p in lookup.next_requests(now) {
                lookup.on_answer(&p.id, &[]);
            }
            // Answer the ones from the earlier batches too.
            for n in [101, 102, 1] {
                lookup.on_answer(&peer(n).id, &[]);
            }
            guard += 1;
            assert!(guard < 50);
        }
        let closest: Vec<u8> = lookup
            .closest_answered(K)
            .iter()
            .map(|p| p.id.0[0])
            .collect();
        assert_eq!(closest, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(lookup.rounds(), 2);
    }

    #[test]
    fn timeouts_fail_and_unblock() {
        let now = Instant::now();
        let mut lookup = Lookup::new(NodeId([0; 32]), NodeId([0xff; 32]), &[peer(1), peer(2)]);
        assert_eq!(lookup.next_requests(now).len(), 2);
        assert_eq!(lookup.deadline(), Some(now + REQUEST_TIMEOUT));
        assert!(lookup.next_requests(now + REQUEST_TIMEOUT).is_empty());
        assert!(lookup.is_finished(), "every candidate failed");
        assert!(lookup.closest_answered(K).is_empty());
    }

    #[test]
    fn candidate_set_is_bounded() {
        let seeds: Vec<Peer> = (1..=200).map(peer).collect();
        let lookup = Lookup::new(NodeId([0; 32]), NodeId([0xff; 32]), &seeds);
        assert_eq!(lookup.candidates.len(), MAX_CANDIDATES);
    }
}
