//! The Kademlia routing table: 256 k-buckets by XOR distance from the local
//! ID (bucket *i* holds nodes whose distance has its highest set bit at *i*).
//!
//! Only nodes that answered one of our requests are offered to the table
//! ([`RoutingTable::on_answered`]). A bucket keeps at most [`K`] entries in
//! least-recently-seen order. When a full bucket is offered a new node, its
//! least-recently-seen entry is probed with a ping and the newcomer waits in
//! the bucket's single pending slot: if the probe fails the old entry is
//! replaced, if it answers the newcomer is discarded (long-lived nodes are
//! preferred, as in the Kademlia paper §2.2). An entry whose requests fail
//! [`MAX_FAILURES`] times in a row is removed.

use crate::addr::Family;
use std::net::SocketAddr;
use std::time::Instant;

use super::wire::K;
use crate::addr::diversity_key;
use crate::id::{ID_BITS, NodeId};

/// Consecutive failed requests after which an entry is removed.
pub const MAX_FAILURES: u32 = 2;

/// A known node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its ID.
    pub id: NodeId,
    /// Where it answered from.
    pub addr: SocketAddr,
}

#[derive(Clone, Debug)]
struct Entry {
    peer: Peer,
    failures: u32,
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// A newcomer waiting for the probe of an entry (by ID) to fail.
    pending: Option<(Peer, NodeId)>,
    /// When a node in this bucket last answered, or a lookup went through it.
    touched: Option<Instant>,
}

/// What offering a node to the table did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// The node was added or refreshed.
    Stored,
    /// The bucket is full: ping this least-recently-seen entry; the offered
    /// node replaces it if the ping fails.
    Probe(Peer),
    /// The bucket is full and already probing; the node is not kept.
    Ignored,
}

/// k-buckets around a local ID.
pub struct RoutingTable {
    local: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table for the node `local`.
    pub fn new(local: NodeId) -> Self {
        Self {
            local,
            buckets: vec![Bucket::default(); ID_BITS],
        }
    }

    #[cfg(test)]
    /// The local ID.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.entries.len()).sum()
    }

    /// True when no node is known.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.entries.is_empty())
    }

    /// The node `peer` answered a request at `now`.
    pub fn on_answered(&mut self, now: Instant, peer: Peer) -> Offer {
        let Some(index) = self.local.distance(&peer.id).bucket_index() else {
            return Offer::Ignored;
        };
        let bucket = &mut self.buckets[index];
        bucket.touched = Some(now);
        if let Some(position) = bucket.entries.iter().position(|e| e.peer.id == peer.id) {
            let mut entry = bucket.entries.remove(position);
            entry.peer.addr = peer.addr;
            entry.failures = 0;
            bucket.entries.push(entry);
            if bucket.pending.is_some_and(|(_, probed)| probed == peer.id) {
                bucket.pending = None;
            }
            return Offer::Stored;
        }
        // One entry per public /24 (/64) per bucket: a host or network
        // with many addresses cannot fill a bucket (libtorrent's
        // restrict_routing_ips); the entry it already has stays.
        if let Some(key) = diversity_key(peer.addr.ip())
            && bucket
                .entries
                .iter()
                .any(|e| diversity_key(e.peer.addr.ip()) == Some(key))
        {
            return Offer::Ignored;
        }
        if bucket.entries.len() < K {
            bucket.entries.push(Entry { peer, failures: 0 });
            return Offer::Stored;
        }
        if bucket.pending.is_some() {
            return Offer::Ignored;
        }
        let probed = bucket.entries[0].peer;
        bucket.pending = Some((peer, probed.id));
        Offer::Probe(probed)
    }

    /// A request to `id` failed. Removes it after [`MAX_FAILURES`], or at once
    /// when a pending node waits for its slot.
    pub fn on_failed(&mut self, id: &NodeId) {
        let Some(index) = self.local.distance(id).bucket_index() else {
            return;
        };
        let bucket = &mut self.buckets[index];
        let Some(position) = bucket.entries.iter().position(|e| e.peer.id == *id) else {
            return;
        };
        bucket.entries[position].failures += 1;
        let probed = bucket.pending.is_some_and(|(_, probed)| probed == *id);
        if probed || bucket.entries[position].failures >= MAX_FAILURES {
            bucket.entries.remove(position);
            if let Some((newcomer, _)) = bucket.pending.take() {
                bucket.entries.push(Entry {
                    peer: newcomer,
                    failures: 0,
                });
            }
        }
    }

    /// Up to `count` known nodes closest to `target`, nearest first.
    pub fn closest(&self, target: &NodeId, count: usize) -> Vec<Peer> {
        self.closest_of(target, count, None)
    }

    /// The `count` known peers closest to `target` whose address is of
    /// `family` (any family for `None`), nearest first.
    pub fn closest_of(&self, target: &NodeId, count: usize, family: Option<Family>) -> Vec<Peer> {
        let mut all: Vec<Peer> = self
            .buckets
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| e.peer))
            .filter(|peer| family.is_none_or(|f| Family::of(peer.addr) == f))
            .collect();
        all.sort_by_key(|peer| peer.id.distance(target));
        all.truncate(count);
        all
    }

    /// Up to `count` known nodes spread over the key space and the
    /// internet: one from each bucket in turn, farthest bucket first
    /// (most recently seen first within a bucket), at most one per public
    /// /16 (IPv6 /32). What a node cache should keep: the near buckets are
    /// the ones a Sybil fills first, since our ID is in every query.
    pub fn spread(&self, count: usize) -> Vec<Peer> {
        let mut taken_networks = Vec::new();
        let mut picked = Vec::new();
        let deepest = self
            .buckets
            .iter()
            .map(|b| b.entries.len())
            .max()
            .unwrap_or(0);
        for depth in 0..deepest {
            for bucket in self.buckets.iter().rev() {
                let Some(entry) = bucket.entries.iter().rev().nth(depth) else {
                    continue;
                };
                if diversity_key(entry.peer.addr.ip()).is_some() {
                    let network = crate::addr::wide_network(entry.peer.addr.ip());
                    if taken_networks.contains(&network) {
                        continue;
                    }
                    taken_networks.push(network);
                }
                picked.push(entry.peer);
                if picked.len() == count {
                    return picked;
                }
            }
        }
        picked
    }

    /// The node the table knows at `addr`, if any.
    pub fn id_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter())
            .find(|e| e.peer.addr == addr)
            .map(|e| e.peer.id)
    }

    /// The address of `id`, if it is in the table.
    pub fn address_of(&self, id: &NodeId) -> Option<SocketAddr> {
        let index = self.local.distance(id).bucket_index()?;
        self.buckets[index]
            .entries
            .iter()
            .find(|e| e.peer.id == *id)
            .map(|e| e.peer.addr)
    }

    /// Marks the bucket that `target` falls in as recently looked up.
    pub fn touch(&mut self, now: Instant, target: &NodeId) {
        if let Some(index) = self.local.distance(target).bucket_index() {
            self.buckets[index].touched = Some(now);
        }
    }

    /// Indices of non-empty buckets not touched since `since`.
    pub fn stale_buckets(&self, since: Instant) -> Vec<usize> {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.entries.is_empty() && b.touched.is_none_or(|t| t < since))
            .map(|(i, _)| i)
            .collect()
    }

    /// A key in bucket `index`: the local ID with bit `index` flipped and
    /// the lower bits taken from `random`.
    pub fn key_in_bucket(&self, index: usize, random: [u8; 32]) -> NodeId {
        let mut key = self.local.0;
        let bit_from_top = ID_BITS - 1 - index;
        for bit in bit_from_top..ID_BITS {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let value = if bit == bit_from_top {
                key[byte] & mask == 0
            } else {
                random[byte] & mask != 0
            };
            key[byte] = if value {
                key[byte] | mask
            } else {
                key[byte] & !mask
            };
        }
        NodeId(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(first: u8, n: u8) -> Peer {
        let mut id = [0u8; 32];
        id[0] = first;
        id[31] = n;
        Peer {
            id: NodeId(id),
            addr: SocketAddr::from(([192, 0, n, 1], 4000)),
        }
    }

    #[test]
    fn a_bucket_holds_one_node_per_public_slash_24_and_any_number_from_a_lab() {
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 32]));
        let at = |n: u8, addr: &str| Peer {
            addr: addr.parse().unwrap(),
            ..peer(0x80, n)
        };
        assert_eq!(
            table.on_answered(now, at(1, "203.0.113.1:1")),
            Offer::Stored
        );
        assert_eq!(
            table.on_answered(now, at(2, "203.0.113.2:1")),
            Offer::Ignored,
            "same /24"
        );
        assert_eq!(
            table.on_answered(now, at(3, "203.0.113.1:2")),
            Offer::Ignored,
            "same IP"
        );
        assert_eq!(
            table.on_answered(now, at(4, "[2001:db8:0:1::5]:1")),
            Offer::Stored
        );
        assert_eq!(
            table.on_answered(now, at(5, "[2001:db8:0:1::6]:1")),
            Offer::Ignored,
            "same /64"
        );
        assert_eq!(
            table.on_answered(now, at(6, "127.0.0.1:7000")),
            Offer::Stored
        );
        assert_eq!(
            table.on_answered(now, at(7, "127.0.0.1:7001")),
            Offer::Stored,
            "loopback"
        );
        assert_eq!(
            table.on_answered(now, at(1, "203.0.113.1:1")),
            Offer::Stored,
            "a known entry"
        );
    }

    #[test]
    fn the_spread_takes_every_bucket_in_turn_and_one_node_per_network() {
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 32]));
        // Six close nodes (one bucket), each in a network of its own, and
        // two far nodes of one /16.
        for n in 1..=6u8 {
            let close = Peer {
                id: NodeId([
                    0, 0, 0, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, n,
                ]),
                addr: SocketAddr::from(([10 + n, 0, 0, 1], 1)),
            };
            table.on_answered(now, close);
        }
        table.on_answered(
            now,
            Peer {
                addr: "203.0.1.1:1".parse().unwrap(),
                ..peer(0x80, 1)
            },
        );
        table.on_answered(
            now,
            Peer {
                addr: "203.0.2.1:1".parse().unwrap(),
                ..peer(0x40, 2)
            },
        );
        let spread = table.spread(4);
        assert_eq!(spread.len(), 4);
        let far = spread
            .iter()
            .filter(|p| p.addr.ip().to_string().starts_with("203.0."))
            .count();
        assert_eq!(far, 1, "one of the far /16: {spread:?}");
    }

    #[test]
    fn full_bucket_probes_the_least_recently_seen() {
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 32]));
        for n in 0..K as u8 {
            assert_eq!(table.on_answered(now, peer(0x80, n)), Offer::Stored);
        }
        let newcomer = peer(0x80, 100);
        assert_eq!(
            table.on_answered(now, newcomer),
            Offer::Probe(peer(0x80, 0))
        );
        assert_eq!(table.on_answered(now, peer(0x80, 101)), Offer::Ignored);
        // The old node answers: it stays (now most recent), the newcomer is dropped.
        assert_eq!(table.on_answered(now, peer(0x80, 0)), Offer::Stored);
        assert_eq!(table.address_of(&newcomer.id), None);
        // Next probe targets the new least-recently-seen, and its failure admits the newcomer.
        assert_eq!(
            table.on_answered(now, newcomer),
            Offer::Probe(peer(0x80, 1))
        );
        table.on_failed(&peer(0x80, 1).id);
        assert_eq!(table.address_of(&peer(0x80, 1).id), None);
        assert_eq!(table.address_of(&newcomer.id), Some(newcomer.addr));
        assert_eq!(table.len(), K);
    }

    #[test]
    fn repeated_failures_remove_and_closest_is_sorted() {
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 32]));
        for (first, n) in [(0x80, 1), (0x01, 2), (0x00, 3), (0x40, 4)] {
            table.on_answered(now, peer(first, n));
        }
        let target = NodeId([0; 32]);
        let order: Vec<u8> = table
            .closest(&target, 3)
            .iter()
            .map(|p| p.id.0[31])
            .collect();
        assert_eq!(order, [3, 2, 4]);
        table.on_failed(&peer(0x40, 4).id);
        assert_eq!(table.len(), 4);
        table.on_failed(&peer(0x40, 4).id);
        assert_eq!(table.len(), 3);
        assert_eq!(
            table.on_answered(
                now,
                Peer {
                    id: target,
                    addr: peer(0, 9).addr
                }
            ),
            Offer::Ignored
        );
    }

    #[test]
    fn keys_land_in_the_asked_bucket() {
        let table = RoutingTable::new(NodeId([0x5a; 32]));
        for index in [0, 7, 8, 100, 255] {
            let key = table.key_in_bucket(index, [0xc3; 32]);
            assert_eq!(table.local().distance(&key).bucket_index(), Some(index));
        }
    }
}
