//! Records stored for others: sealed blobs under a topic, keyed by the
//! announcing node's ID.
//!
//! Each record expires [`RECORD_TTL`] after its last announce. Memory is
//! bounded whatever arrives: at most [`MAX_PER_TOPIC`] records per topic,
//! [`MAX_PER_SOURCE_IP`] per announcing IP address, [`MAX_TOTAL`] in all, and
//! [`MAX_TOPICS`] topics. An announce that would exceed a cap is refused
//! (existing records are never evicted by newcomers, so a flood cannot push
//! out a meeting's members). A record can be replaced only by an announce
//! from the same source address, or after it expired.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::id::NodeId;

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

/// One stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The sealed record.
    pub record: Vec<u8>,
    /// The address the announce came from (the path to the announcer).
    pub source: SocketAddr,
    /// When it expires.
    pub expires_at: Instant,
}

/// What storing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// A new announcer for this topic.
    New,
    /// An existing announcer refreshed its record.
    Refreshed,
}

/// Why a record was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A cap was reached.
    Full,
    /// Another address owns this announcer's live record.
    Owned,
}

/// The records this node stores for others.
#[derive(Default)]
pub struct Store {
    topics: HashMap<NodeId, HashMap<NodeId, Stored>>,
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

impl Store {
    /// Stores or refreshes `announcer`'s record under `topic`.
    pub fn put(
        &mut self,
        now: Instant,
        topic: NodeId,
        announcer: NodeId,
        source: SocketAddr,
        record: Vec<u8>,
    ) -> Result<Put, Refused> {
        self.expire(now);
        let expires_at = now + RECORD_TTL;
        if let Some(existing) = self
            .topics
            .get_mut(&topic)
            .and_then(|t| t.get_mut(&announcer))
        {
            if existing.source != source {
                return Err(Refused::Owned);
            }
            *existing = Stored {
                record,
                source,
                expires_at,
            };
            return Ok(Put::Refreshed);
        }
        let topic_len = self.topics.get(&topic).map_or(0, HashMap::len);
        let new_topic = topic_len == 0;
        if self.total >= MAX_TOTAL
            || topic_len >= MAX_PER_TOPIC
            || self.per_ip.get(&source.ip()).copied().unwrap_or(0) >= MAX_PER_SOURCE_IP
            || (new_topic && self.topics.len() >= MAX_TOPICS)
        {
            return Err(Refused::Full);
        }
        self.topics.entry(topic).or_default().insert(
            announcer,
            Stored {
                record,
                source,
                expires_at,
            },
        );
        *self.per_ip.entry(source.ip()).or_default() += 1;
        self.total += 1;
        Ok(Put::New)
    }

    /// Live records under `topic` (announcer and record).
    pub fn get(&self, now: Instant, topic: &NodeId) -> Vec<(NodeId, &Stored)> {
        self.topics
            .get(topic)
            .map(|records| {
                records
                    .iter()
                    .filter(|(_, stored)| stored.expires_at > now)
                    .map(|(id, stored)| (*id, stored))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The address `announcer` last announced from, under any topic.
    pub fn source_of(&self, now: Instant, announcer: &NodeId) -> Option<SocketAddr> {
        self.topics
            .values()
            .filter_map(|records| records.get(announcer))
            .find(|stored| stored.expires_at > now)
            .map(|stored| stored.source)
    }

    /// Number of live and not-yet-removed records.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The earliest expiry, for the node's next deadline.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.topics
            .values()
            .flat_map(|r| r.values().map(|s| s.expires_at))
            .min()
    }

    /// Removes expired records.
    pub fn expire(&mut self, now: Instant) {
        let per_ip = &mut self.per_ip;
        let total = &mut self.total;
        self.topics.retain(|_, records| {
            records.retain(|_, stored| {
                let live = stored.expires_at > now;
                if !live {
                    *total -= 1;
                    if let Some(count) = per_ip.get_mut(&stored.source.ip()) {
                        *count -= 1;
                    }
                }
                live
            });
            !records.is_empty()
        });
        per_ip.retain(|_, count| *count > 0);
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
        assert_eq!(
            store.put(now, id(1), id(2), addr(9, 1), vec![3]),
            Err(Refused::Owned)
        );
        assert_eq!(store.get(now, &id(1))[0].1.record, vec![2]);
        assert_eq!(store.source_of(now, &id(2)), Some(addr(1, 1)));
        assert_eq!(store.next_expiry(), Some(now + RECORD_TTL));
        store.expire(now + RECORD_TTL);
        assert!(store.get(now + RECORD_TTL, &id(1)).is_empty());
        assert!(store.is_empty());
        assert_eq!(
            store.put(now + RECORD_TTL, id(1), id(2), addr(9, 1), vec![3]),
            Ok(Put::New)
        );
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
