//! Records stored for others: sealed blobs under a topic, keyed by the
//! announcing node's ID and the address the announce came from.
//!
//! Each record expires [`RECORD_TTL`] after its last announce. Memory is
//! bounded whatever arrives: at most [`MAX_PER_TOPIC`] records per topic,
//! [`MAX_PER_SOURCE_IP`] per announcing IP address, [`MAX_TOTAL`] in all, and
//! [`MAX_TOPICS`] topics. An announce that would exceed a cap is refused
//! (existing records are never evicted by other announcers, so a flood
//! cannot push out a meeting's members). One announcer may have records from
//! up to [`MAX_SOURCES_PER_ANNOUNCER`] addresses (a node that restarted on a
//! new port is reachable before its old record expires); a further address
//! replaces that announcer's oldest one. Announcers are authenticated
//! before a record gets here (a `SignedAnnounce` proves the sender ID), so
//! only a member itself can replace its records; what the records say is
//! sealed, so readers keep the newest record per node, and relays deliver
//! signals to every stored address.

use crate::addr::source_key;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::id::NodeId;

/// Lifetime of a stored record after its last announce.
pub const RECORD_TTL: Duration = Duration::from_secs(10 * 60);
/// Records per topic.
pub const MAX_PER_TOPIC: usize = 64;
/// Records per announcing IP address, over all topics.
pub const MAX_PER_SOURCE_IP: usize = 16;
/// Records in all.
pub const MAX_TOTAL: usize = 4096;
/// Distinct topics.
pub const MAX_TOPICS: usize = 1024;
/// Source addresses kept per announcer and topic.
pub const MAX_SOURCES_PER_ANNOUNCER: usize = 2;

/// One stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The sealed record.
    pub record: Vec<u8>,
    /// The address the announce came from (the path to the announcer).
    pub source: SocketAddr,
    /// When it was last announced.
    pub announced_at: Instant,
    /// When it expires.
    pub expires_at: Instant,
}

/// What storing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// A record from a new announcer, or from a new address of one.
    New,
    /// An existing record was refreshed.
    Refreshed,
}

/// Why a record was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A cap was reached.
    Full,
}

type Key = (NodeId, SocketAddr);

/// The records this node stores for others.
#[derive(Default)]
pub struct Store {
    topics: BTreeMap<NodeId, BTreeMap<Key, Stored>>,
    per_ip: BTreeMap<IpAddr, usize>,
    total: usize,
    /// Every record by when it expires, so the next expiry and the
    /// expired records are found without scanning them all.
    expiries: BTreeSet<(Instant, NodeId, Key)>,
}

impl Store {
    /// Stores or refreshes `announcer`'s record from `source` under `topic`.
    pub fn put(
        &mut self,
        now: Instant,
        topic: NodeId,
        announcer: NodeId,
        source: SocketAddr,
        record: Vec<u8>,
    ) -> Result<Put, Refused> {
        self.expire(now);
        let stored = Stored {
            record,
            source,
            announced_at: now,
            expires_at: now + RECORD_TTL,
        };
        if let Some(existing) = self
            .topics
            .get_mut(&topic)
            .and_then(|t| t.get_mut(&(announcer, source)))
        {
            let key = (announcer, source);
            self.expiries.remove(&(existing.expires_at, topic, key));
            self.expiries.insert((stored.expires_at, topic, key));
            *existing = stored;
            return Ok(Put::Refreshed);
        }
        let records = self.topics.get(&topic);
        let topic_len = records.map_or(0, BTreeMap::len);
        let oldest_of_announcer = records.and_then(|records| {
            let mine: Vec<(&Key, &Stored)> = records
                .iter()
                .filter(|((id, _), _)| *id == announcer)
                .collect();
            (mine.len() >= MAX_SOURCES_PER_ANNOUNCER)
                .then(|| {
                    mine.into_iter()
                        .min_by_key(|(_, s)| s.announced_at)
                        .map(|(key, _)| *key)
                })
                .flatten()
        });
        if self
            .per_ip
            .get(&source_key(source.ip()))
            .copied()
            .unwrap_or(0)
            >= MAX_PER_SOURCE_IP
        {
            return Err(Refused::Full);
        }
        if let Some(key) = oldest_of_announcer {
            self.remove(&topic, &key);
        } else if self.total >= MAX_TOTAL
            || topic_len >= MAX_PER_TOPIC
            || (topic_len == 0 && self.topics.len() >= MAX_TOPICS)
        {
            return Err(Refused::Full);
        }
        self.expiries
            .insert((stored.expires_at, topic, (announcer, source)));
        self.topics
            .entry(topic)
            .or_default()
            .insert((announcer, source), stored);
        *self.per_ip.entry(source_key(source.ip())).or_default() += 1;
        self.total += 1;
        Ok(Put::New)
    }

    /// Live records under `topic`, with their announcers.
    pub fn get(&self, now: Instant, topic: &NodeId) -> Vec<(NodeId, &Stored)> {
        self.topics
            .get(topic)
            .map(|records| {
                records
                    .iter()
                    .filter(|(_, stored)| stored.expires_at > now)
                    .map(|((id, _), stored)| (*id, stored))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every address `announcer` has a live record from, under any topic,
    /// most recently announced first.
    pub fn sources_of(&self, now: Instant, announcer: &NodeId) -> Vec<SocketAddr> {
        let mut found: Vec<(Instant, SocketAddr)> = self
            .topics
            .values()
            .flat_map(|records| records.iter())
            .filter(|((id, _), stored)| id == announcer && stored.expires_at > now)
            .map(|(_, stored)| (stored.announced_at, stored.source))
            .collect();
        found.sort_by_key(|(announced_at, _)| std::cmp::Reverse(*announced_at));
        let mut sources: Vec<SocketAddr> = Vec::new();
        for (_, source) in found {
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
        sources
    }

    fn remove(&mut self, topic: &NodeId, key: &Key) {
        let Some(records) = self.topics.get_mut(topic) else {
            return;
        };
        if let Some(stored) = records.remove(key) {
            self.expiries.remove(&(stored.expires_at, *topic, *key));
            self.total -= 1;
            if let Some(count) = self.per_ip.get_mut(&source_key(stored.source.ip())) {
                *count -= 1;
                if *count == 0 {
                    self.per_ip.remove(&source_key(stored.source.ip()));
                }
            }
        }
        if records.is_empty() {
            self.topics.remove(topic);
        }
    }

    /// Number of live and not-yet-removed records.
    pub fn len(&self) -> usize {
        self.total
    }

    /// The earliest expiry, for the node's next deadline.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _, _)| *at)
    }

    /// Removes expired records.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(at, topic, key)) = self.expiries.first()
            && at <= now
        {
            self.remove(&topic, &key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[..2].copy_from_slice(&n.to_be_bytes());
        NodeId(bytes)
    }

    fn addr(ip: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, ip], port))
    }

    #[test]
    fn records_expire_after_ttl_and_refresh_extends_them() {
        let now = Instant::now();
        let mut store = Store::default();
        assert_eq!(
            store.put(now, id(1), id(2), addr(1, 1), vec![1]),
            Ok(Put::New)
        );
        assert_eq!(
            store.put(now, id(1), id(2), addr(1, 1), vec![2]),
            Ok(Put::Refreshed)
        );
        assert_eq!(store.get(now, &id(1))[0].1.record, vec![2]);
        assert_eq!(store.sources_of(now, &id(2)), [addr(1, 1)]);
        assert_eq!(store.next_expiry(), Some(now + RECORD_TTL));
        store.expire(now + RECORD_TTL);
        assert!(store.get(now + RECORD_TTL, &id(1)).is_empty());
        assert_eq!(store.len(), 0);
        assert_eq!(
            store.put(now + RECORD_TTL, id(1), id(2), addr(9, 1), vec![3]),
            Ok(Put::New)
        );
    }

    #[test]
    fn the_expiry_index_follows_refreshes_and_expires_only_what_is_due() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let mut store = Store::default();
        store.put(t0, id(1), id(2), addr(1, 1), vec![1]).unwrap();
        store.put(t0, id(1), id(3), addr(2, 1), vec![2]).unwrap();
        store.put(later, id(4), id(5), addr(3, 1), vec![3]).unwrap();
        assert_eq!(store.next_expiry(), Some(t0 + RECORD_TTL));
        // Refreshing the two early ones moves their expiry.
        store.put(later, id(1), id(2), addr(1, 1), vec![4]).unwrap();
        store.put(later, id(1), id(3), addr(2, 1), vec![5]).unwrap();
        assert_eq!(store.next_expiry(), Some(later + RECORD_TTL));
        store.expire(t0 + RECORD_TTL);
        assert_eq!(store.len(), 3, "nothing was due");
        store.expire(later + RECORD_TTL);
        assert_eq!((store.len(), store.next_expiry()), (0, None));
        assert!(store.per_ip.is_empty() && store.topics.is_empty());
    }

    #[test]
    fn an_announcer_on_a_new_address_replaces_its_oldest() {
        let t0 = Instant::now();
        let mut store = Store::default();
        let t1 = t0 + Duration::from_secs(1);
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(
            store.put(t0, id(1), id(2), addr(1, 1), vec![1]),
            Ok(Put::New)
        );
        assert_eq!(
            store.put(t1, id(1), id(2), addr(1, 2), vec![2]),
            Ok(Put::New)
        );
        assert_eq!(store.sources_of(t1, &id(2)), [addr(1, 2), addr(1, 1)]);
        assert_eq!(
            store.put(t2, id(1), id(2), addr(1, 3), vec![3]),
            Ok(Put::New)
        );
        assert_eq!(store.sources_of(t2, &id(2)), [addr(1, 3), addr(1, 2)]);
        assert_eq!(store.len(), MAX_SOURCES_PER_ANNOUNCER);
    }

    #[test]
    fn caps_hold_and_existing_records_are_never_evicted() {
        let now = Instant::now();
        let mut store = Store::default();
        for n in 0..MAX_PER_SOURCE_IP as u16 {
            assert_eq!(
                store.put(now, id(1), id(100 + n), addr(1, n), vec![]),
                Ok(Put::New)
            );
        }
        assert_eq!(
            store.put(now, id(1), id(999), addr(1, 999), vec![]),
            Err(Refused::Full)
        );
        for n in 0..(MAX_PER_TOPIC - MAX_PER_SOURCE_IP) as u16 {
            let ip = 10 + (n / 10) as u8;
            assert_eq!(
                store.put(now, id(1), id(1000 + n), addr(ip, n), vec![]),
                Ok(Put::New)
            );
        }
        assert_eq!(
            store.put(now, id(1), id(5000), addr(200, 1), vec![]),
            Err(Refused::Full)
        );
        assert_eq!(store.get(now, &id(1)).len(), MAX_PER_TOPIC);
        assert!(store.get(now, &id(1)).iter().any(|(a, _)| *a == id(100)));
        assert_eq!(store.len(), MAX_PER_TOPIC);
    }
}
