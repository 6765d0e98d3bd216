//! Requests in flight, by transaction ID: where each went, whom we expect
//! to answer, what it is for and when it fails. Shared by tinynode's DHT
//! (`rpc.rs`, which adds resends) and the Mainline client, so both match
//! responses the same way: a response counts only if it echoes an ID in
//! flight and comes from that request's destination.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::id::NodeId;

/// A request in flight; `P` says what it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending<P> {
    /// Where it went.
    pub to: SocketAddr,
    /// The node we expect to answer, if we know it.
    pub id: Option<NodeId>,
    /// What it is for.
    pub purpose: P,
    /// When it fails unanswered.
    pub deadline: Instant,
}

/// Why a response answers no request of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// No request with its transaction ID is in flight.
    UnknownTransaction,
    /// The request with its ID went to another address.
    WrongSource,
}

/// Requests in flight, keyed by transaction ID `K`, each with extra state
/// `X` of its owner's (nothing, or what resending it takes).
#[derive(Debug)]
pub struct Requests<K, P, X = ()> {
    in_flight: BTreeMap<K, (Pending<P>, X)>,
}

impl<K, P, X> Default for Requests<K, P, X> {
    fn default() -> Self {
        Self {
            in_flight: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, P: Copy, X> Requests<K, P, X> {
    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// True if a request with `txid` is in flight.
    pub fn contains(&self, txid: &K) -> bool {
        self.in_flight.contains_key(txid)
    }

    /// True if a request to `addr` is in flight.
    pub fn awaits(&self, addr: SocketAddr) -> bool {
        self.in_flight.values().any(|(p, _)| p.to == addr)
    }

    /// True if some request in flight is for a purpose `matches` accepts.
    pub fn any(&self, matches: impl Fn(&P) -> bool) -> bool {
        self.in_flight.values().any(|(p, _)| matches(&p.purpose))
    }

    /// Puts a request in flight under `txid` (replacing one with the same
    /// ID; callers draw IDs at random and check [`contains`](Self::contains)).
    pub fn insert(&mut self, txid: K, pending: Pending<P>, extra: X) {
        self.in_flight.insert(txid, (pending, extra));
    }

    /// The request a response from `source` under `txid` answers, taken
    /// out of flight.
    pub fn take_answered(&mut self, txid: &K, source: SocketAddr) -> Result<Pending<P>, Unmatched> {
        let (pending, _) = self
            .in_flight
            .get(txid)
            .ok_or(Unmatched::UnknownTransaction)?;
        if pending.to != source {
            return Err(Unmatched::WrongSource);
        }
        self.in_flight
            .remove(txid)
            .map(|(pending, _)| pending)
            .ok_or(Unmatched::UnknownTransaction)
    }

    /// Requests past their deadline at `now`, taken out of flight in
    /// transaction-ID order.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Pending<P>> {
        let expired: Vec<K> = self
            .in_flight
            .iter()
            .filter(|(_, (p, _))| now >= p.deadline)
            .map(|(txid, _)| *txid)
            .collect();
        expired
            .iter()
            .filter_map(|txid| self.in_flight.remove(txid).map(|(p, _)| p))
            .collect()
    }

    /// Each request in flight with its extra state.
    pub fn iter(&self) -> impl Iterator<Item = (&Pending<P>, &X)> {
        self.in_flight.values().map(|(p, x)| (p, x))
    }

    /// Each request in flight with its extra state, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Pending<P>, &mut X)> {
        self.in_flight.values_mut().map(|(p, x)| (&*p, x))
    }

    /// The earliest deadline in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.values().map(|(p, _)| p.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 6881))
    }

    #[test]
    fn a_response_matches_only_its_id_from_its_destination() {
        let now = Instant::now();
        let mut requests: Requests<u16, &str> = Requests::default();
        let pending = |to, purpose| Pending {
            to,
            id: None,
            purpose,
            deadline: now + Duration::from_secs(2),
        };
        requests.insert(1, pending(addr(1), "ping"), ());
        requests.insert(2, pending(addr(2), "lookup"), ());
        assert!(requests.awaits(addr(1)) && !requests.awaits(addr(3)));
        assert!(requests.any(|p| *p == "lookup"));
        assert_eq!(
            requests.take_answered(&3, addr(1)),
            Err(Unmatched::UnknownTransaction)
        );
        assert_eq!(
            requests.take_answered(&1, addr(2)),
            Err(Unmatched::WrongSource)
        );
        assert_eq!(
            requests.take_answered(&1, addr(1)).map(|p| p.purpose),
            Ok("ping")
        );
        assert_eq!(
            requests.take_answered(&1, addr(1)),
            Err(Unmatched::UnknownTransaction),
            "answered once"
        );
        assert_eq!(requests.next_deadline(), Some(now + Duration::from_secs(2)));
        assert!(
            requests
                .take_expired(now + Duration::from_secs(1))
                .is_empty()
        );
        let expired = requests.take_expired(now + Duration::from_secs(2));
        assert_eq!(
            expired.iter().map(|p| p.purpose).collect::<Vec<_>>(),
            ["lookup"]
        );
        assert_eq!(requests.len(), 0);
    }
}
