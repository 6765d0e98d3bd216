//! The joined meeting on the node: membership, the member sources that
//! feed it and the connections it drives.
//!
//! Records from any source arrive here as [`Found`]; a new member is
//! reported and handed to the connections, a lost one is dropped from them.

use crate::addr::shareable;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info};

use super::Node;
use crate::api::{Event, Via};
use crate::meeting::Meeting;
use crate::membership::{Change, Found, Membership, SignalPath};
use crate::record::{self, NetworkFacts, PeerRecord};
use crate::rtc::{Connections, Member};
use crate::sources::Sources;

/// Everything that exists only while the node is in a meeting.
pub(super) struct Joined {
    /// Who is in it.
    pub(super) membership: Membership,
    /// The member sources.
    pub(super) sources: Sources,
    /// A connection per member.
    pub(super) connections: Connections,
}

impl Joined {
    /// The earliest deadline of the meeting's parts; Mainline lookups
    /// count once it is bootstrapped (`mainline_ready`).
    pub(super) fn poll_timeout(&self, mainline_ready: bool) -> Option<Instant> {
        [
            self.membership.poll_timeout(),
            self.sources.poll_timeout(mainline_ready),
            self.connections.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Node {
    /// Leaves the meeting: every channel closed and each peer told (its
    /// `Close` and the channels' last datagrams still go out), then the
    /// sources, membership and connections dropped, so nothing is
    /// announced or answered for it any more.
    pub(super) fn leave(&mut self, now: Instant) {
        let Some(joined) = self.joined.as_mut() else {
            return;
        };
        info!(
            "leaving meeting with topic {}",
            joined.membership.meeting().topic()
        );
        joined.connections.close_all(now);
        self.process_connections(now);
        if let Some(mut joined) = self.joined.take() {
            while let Some(transmit) = joined.connections.poll_transmit() {
                self.transmits.push_back(transmit);
            }
        }
    }

    /// Joins `meeting`, leaving any meeting joined before first.
    pub(super) fn join(&mut self, now: Instant, meeting: Meeting) {
        self.leave(now);
        info!("joining meeting with topic {}", meeting.topic());
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let first_session = u64::from_be_bytes(self.rng.bytes());
        let infohash = self.mainline.iter().next().is_some().then(|| {
            let keyed = meeting.clone();
            Box::new(move |window| keyed.infohash(window)) as Box<dyn Fn(u64) -> _>
        });
        let sources = Sources::new(now, meeting.topic(), infohash, self.config.lan);
        let mut connections = Connections::new(
            crypto,
            meeting.clone(),
            self.node_id(),
            self.locals.clone(),
            first_session,
        );
        connections.set_relay_servers(self.config.bootstrap.clone());
        self.stream_policy.apply(&mut connections);
        connections.set_relay_needed(self.public.best_class().may_need_relay());
        self.joined = Some(Joined {
            sources,
            membership: Membership::new(meeting, self.node_id()),
            connections,
        });
        self.sources_timeout(now);
    }

    /// Runs every member source's schedule.
    pub(super) fn sources_timeout(&mut self, now: Instant) {
        self.dht_source_timeout(now);
        self.mainline_source_timeout(now);
        self.lan_source_timeout(now);
    }

    /// Timers of the meeting: expired members, source schedules, connections.
    pub(super) fn meeting_timeout(&mut self, now: Instant) {
        let Some(joined) = self.joined.as_mut() else {
            return;
        };
        let changes = joined.membership.handle_timeout(now);
        self.apply_changes(now, changes);
        self.sources_timeout(now);
        let public = self.public.advertised();
        let dht = &self.dht;
        if let Some(joined) = self.joined.as_mut() {
            joined
                .connections
                .name_relay_servers(|addr| dht.node_at(addr));
            joined.connections.handle_timeout(now, &public);
        }
    }

    /// Records a member source found.
    pub(super) fn take_records(&mut self, now: Instant, found: &[Found<'_>]) {
        let unix_ms = self.config.clock.unix_ms(now);
        let Some(joined) = self.joined.as_mut() else {
            return;
        };
        let (changes, rejected) = joined.membership.on_records(now, unix_ms, found);
        self.stats.records_rejected += rejected.len() as u64;
        self.apply_changes(now, changes);
    }

    /// A record a hello or beacon carried, opened by its handler, from
    /// `via` along `path`; false (and counted) when membership rejects it.
    pub(super) fn take_opened(
        &mut self,
        now: Instant,
        record: PeerRecord,
        via: Via,
        path: SignalPath,
        proven: bool,
    ) -> bool {
        let unix_ms = self.config.clock.unix_ms(now);
        let Some(joined) = self.joined.as_mut() else {
            return false;
        };
        match joined
            .membership
            .accept_opened(now, unix_ms, record, via, path, proven)
        {
            Ok(change) => {
                self.apply_changes(now, change.into_iter().collect());
                true
            }
            Err(reason) => {
                debug!("meeting: record via {via} ({path:?}) rejected: {reason:?}");
                self.stats.records_rejected += 1;
                false
            }
        }
    }

    fn apply_changes(&mut self, now: Instant, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Discovered {
                    peer,
                    addr,
                    via,
                    nat,
                    reachable,
                } => {
                    self.events
                        .push_back(Event::PeerDiscovered { peer, addr, via });
                    let public = self.public.advertised();
                    let dht = &self.dht;
                    if let Some(joined) = self.joined.as_mut() {
                        joined
                            .connections
                            .name_relay_servers(|addr| dht.node_at(addr));
                        let member = Member {
                            via,
                            nat,
                            reachable_at: reachable.then_some(addr),
                        };
                        joined.connections.add_member(now, peer, member, &public);
                    }
                }
                Change::Lost { peer, reason } => {
                    self.events.push_back(Event::PeerLost { peer, reason });
                    self.signaling.forget(&peer);
                    if let Some(joined) = self.joined.as_mut() {
                        joined.connections.remove_member(&peer);
                    }
                }
            }
        }
    }

    /// Our record for the joined meeting, sealed fresh at `now`, with as
    /// many of our addresses (most preferred first) as keep it within
    /// `max_len` bytes (a hello or beacon has a fixed room).
    pub(super) fn sealed_record(&mut self, now: Instant, max_len: usize) -> Option<Vec<u8>> {
        let joined = self.joined.as_ref()?;
        let mut addrs = self.record_addrs();
        loop {
            let sealed = record::seal(
                joined.membership.meeting(),
                &self.config.identity,
                &addrs,
                NetworkFacts {
                    nat: self.public.best_class(),
                    reachable: self.reach.is_reachable(),
                },
                self.config.clock.unix_ms(now),
                self.rng.bytes(),
            );
            if sealed.len() <= max_len || addrs.pop().is_none() {
                return Some(sealed);
            }
        }
    }

    /// Addresses to put in our record (`protocol-spec.md` §4.3): the
    /// public address of each family worth advertising, then each local
    /// address a peer could use (not a wildcard or IPv6 link-local) that
    /// is not among them.
    pub(super) fn record_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs = self.public.advertised();
        for &local in self.locals.all() {
            if shareable(local.ip()) && !addrs.contains(&local) {
                addrs.push(local);
            }
        }
        addrs
    }

    /// A STUN server told us our public address.
    pub(super) fn set_public(&mut self, address: SocketAddr) {
        if self.public.set_current(address) {
            self.addresses_changed();
        }
    }

    /// Our addresses changed: the sources re-announce.
    pub(super) fn addresses_changed(&mut self) {
        if let Some(joined) = self.joined.as_mut() {
            joined.sources.addresses_changed();
        }
    }
}
