//! The Mainline DHT on the node: KRPC datagrams in, client events out, and
//! the Mainline member source's lookups, announces and hellos (sent and
//! opened in `hello.rs`). A dual-stack node runs a client per family
//! (BEP 32); the source looks up and announces in each.

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::stats::DropReason;
use crate::addr::Family;
use crate::api::{AddressSource, Event};
use crate::hello::HelloKind;
use crate::mainline::engine::{MainlineDrop, MainlineEvent};
use crate::relay::probes::ProbeBy;
use crate::relay::relay_infohash;
use crate::sources::mainline::Action;
use crate::sources::relays::{ANNOUNCE_RETRY, Done};

/// Most bootstrap addresses one family's client takes from the other
/// family's answers (`want`).
const MAX_OTHER_FAMILY_BOOTSTRAP: usize = 16;

impl Node {
    /// A datagram that starts with `d` (already rate-limited).
    pub(super) fn on_mainline_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Some(mainline) = self.mainline.for_addr_mut(source) else {
            return self.drop_datagram(source, DropReason::UnknownProtocol);
        };
        match mainline.handle_datagram(now, source, data) {
            Ok(()) => self.stats.mainline_messages += 1,
            Err(drop) => self.drop_datagram(
                source,
                match drop {
                    MainlineDrop::Malformed => DropReason::MainlineMalformed,
                    MainlineDrop::Query => DropReason::MainlineQuery,
                    MainlineDrop::UnknownTransaction => DropReason::MainlineUnknownTransaction,
                    MainlineDrop::WrongSource => DropReason::MainlineWrongSource,
                },
            ),
        }
    }

    /// Turns the Mainline client's events into user events, candidates
    /// and announces.
    pub(super) fn process_mainline_events(&mut self, now: Instant) {
        loop {
            let next = self
                .mainline
                .iter_mut()
                .find_map(|(family, m)| m.poll_event().map(|e| (family, e)));
            let Some((family, event)) = next else {
                break;
            };
            match event {
                MainlineEvent::OtherFamilyNodes { nodes } => {
                    if let Some(other) = self
                        .mainline
                        .iter_mut()
                        .find(|(f, _)| *f != family)
                        .map(|(_, m)| m)
                        .filter(|m| {
                            !m.is_bootstrapped() && m.bootstrap_len() < MAX_OTHER_FAMILY_BOOTSTRAP
                        })
                    {
                        debug!(
                            "mainline: {} {} nodes to bootstrap from",
                            nodes.len(),
                            other.family()
                        );
                        other.set_bootstrap(now, nodes);
                        other.handle_timeout(now);
                    }
                }
                MainlineEvent::Bootstrapped { nodes } => {
                    self.events.push_back(Event::MainlineBootstrapped { nodes });
                    self.relay_directory_timeout(now);
                    if let Some(source) = self
                        .joined
                        .as_mut()
                        .and_then(|j| j.sources.mainline.as_mut())
                    {
                        source.lookup_now(now);
                    }
                    self.mainline_source_timeout(now);
                }
                MainlineEvent::BootstrapFailed { attempt, retry_in } => self
                    .events
                    .push_back(Event::MainlineBootstrapFailed { attempt, retry_in }),
                MainlineEvent::Observed { addr, by } => {
                    self.observed(now, addr, AddressSource::Mainline { by });
                }
                MainlineEvent::Values { id, by, peers } => {
                    let ours = self.public.all();
                    if let Some(directory) = self.relay_directory.as_mut().filter(|d| d.owns(id)) {
                        directory.on_values(&peers, &ours);
                        continue;
                    }
                    let due = self
                        .joined
                        .as_mut()
                        .and_then(|j| j.sources.mainline.as_mut())
                        .map(|s| s.on_values(now, id, by, &peers, &ours))
                        .unwrap_or_default();
                    self.send_hellos(now, &due, HelloKind::Hello);
                }
                MainlineEvent::LookupDone { id, storers }
                    if self.relay_directory.as_ref().is_some_and(|d| d.owns(id)) =>
                {
                    match self
                        .relay_directory
                        .as_mut()
                        .map(|d| d.lookup_done(now, storers))
                    {
                        Some(Done::AnnounceTo(announce)) => {
                            debug!("relay: announcing to {} Mainline nodes", announce.len());
                            let sent = match self.mainline.get_mut(family) {
                                Some(mainline) if !announce.is_empty() => {
                                    mainline.announce(now, relay_infohash(), &announce)
                                }
                                _ => 0,
                            };
                            if sent > 0 {
                                self.events.push_back(Event::RelayListed { nodes: sent });
                            } else if let Some(directory) = self.relay_directory.as_mut() {
                                debug!(
                                    "relay: the directory announce reached no node; looking again in {:?}",
                                    ANNOUNCE_RETRY
                                );
                                directory.announce_unsent(now);
                            }
                        }
                        Some(Done::Probe(found)) if !found.is_empty() => {
                            // Used once each binds: a listed address may
                            // be anyone's (§12.6).
                            debug!("relay: probing {found:?} from the Mainline directory");
                            self.probe_relays(now, found, ProbeBy::Directory);
                        }
                        _ => {}
                    }
                }
                MainlineEvent::LookupDone { id, storers } => {
                    let unix_ms = self.config.clock.unix_ms(now);
                    let action = self
                        .joined
                        .as_mut()
                        .and_then(|j| j.sources.mainline.as_mut())
                        .filter(|s| s.owns_lookup(id))
                        .and_then(|s| s.lookup_done(now, unix_ms, id, storers));
                    if let Some(action) = action {
                        self.apply_mainline_action(now, action);
                    }
                }
            }
        }
    }

    /// True once a Mainline client of either family is bootstrapped.
    pub(super) fn mainline_ready(&self) -> bool {
        self.mainline.iter().any(|(_, m)| m.is_bootstrapped())
    }

    /// Starts the relay directory's lookup when it is due, in the first
    /// bootstrapped family (IPv4 first).
    pub(super) fn relay_directory_timeout(&mut self, now: Instant) {
        let ready = self.mainline_ready();
        let Some(directory) = self.relay_directory.as_mut() else {
            return;
        };
        let family = self
            .mainline
            .iter()
            .find(|(_, m)| m.is_bootstrapped())
            .or_else(|| self.mainline.iter().next())
            .map(|(family, _)| family);
        let Some(mainline) = family.and_then(|f| self.mainline.get_mut(f)) else {
            return;
        };
        if directory.due(now, ready, self.joined.is_some()) {
            let id = mainline.get_peers(now, relay_infohash());
            directory.lookup_started(id);
        }
    }

    /// Runs the Mainline source's schedule.
    pub(super) fn mainline_source_timeout(&mut self, now: Instant) {
        let ready = self.mainline_ready();
        let unix_ms = self.config.clock.unix_ms(now);
        let actions = self
            .joined
            .as_mut()
            .and_then(|j| j.sources.mainline.as_mut())
            .map(|s| s.handle_timeout(now, unix_ms, ready))
            .unwrap_or_default();
        for action in actions {
            self.apply_mainline_action(now, action);
        }
    }

    fn apply_mainline_action(&mut self, now: Instant, action: Action) {
        match action {
            Action::LookUp(windows) => {
                for (family, mainline) in self.mainline.iter_mut() {
                    if !mainline.is_bootstrapped() {
                        continue;
                    }
                    for &(window, info_hash) in &windows {
                        let id = mainline.get_peers(now, info_hash);
                        if let Some(source) = self
                            .joined
                            .as_mut()
                            .and_then(|j| j.sources.mainline.as_mut())
                        {
                            source.lookup_started(id, family, window);
                        }
                    }
                }
                // A lookup that could not start ends at once.
                self.process_mainline_events(now);
            }
            Action::Announce(info_hash, storers) => {
                let Some(family) = storers.first().map(|(addr, _)| Family::of(*addr)) else {
                    return;
                };
                let Some(mainline) = self.mainline.get_mut(family) else {
                    return;
                };
                if mainline.announce(now, info_hash, &storers) == 0
                    && let Some(source) = self
                        .joined
                        .as_mut()
                        .and_then(|j| j.sources.mainline.as_mut())
                {
                    source.announce_unsent(family, info_hash);
                }
            }
            Action::Hello(to) => self.send_hellos(now, &to, HelloKind::Hello),
        }
    }
}
