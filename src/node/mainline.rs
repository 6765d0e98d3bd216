//! The Mainline DHT on the node: KRPC datagrams in, client events out, and
//! the Mainline member source's lookups, announces and hellos (sent and
//! opened in `hello.rs`).

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::relay::ProbeBy;
use super::stats::DropReason;
use crate::api::{AddressSource, Event};
use crate::hello::HelloKind;
use crate::mainline::engine::{MainlineDrop, MainlineEvent};
use crate::relay::relay_infohash;
use crate::sources::mainline::Action;

impl Node {
    /// A datagram that starts with `d` (already rate-limited).
    pub(super) fn on_mainline_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Some(mainline) = self.mainline.as_mut() else {
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
        while let Some(event) = self.mainline.as_mut().and_then(|m| m.poll_event()) {
            match event {
                MainlineEvent::Bootstrapped { nodes } => {
                    self.events.push_back(Event::MainlineBootstrapped { nodes });
                    self.relay_directory_timeout(now);
                    if let Some(source) = self.joined.as_mut().and_then(|j| j.mainline.as_mut()) {
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
                    let peers: Vec<SocketAddr> = peers.into_iter().map(SocketAddr::V4).collect();
                    if let Some(directory) = self.relay_directory.as_mut().filter(|d| d.owns(id)) {
                        let found = directory.on_values(&peers, &ours);
                        if !found.is_empty() {
                            // Used once each binds: a listed address may
                            // be anyone's (§12.6).
                            debug!("relay: the Mainline directory lists {found:?}");
                            self.probe_relays(found, ProbeBy::Directory);
                        }
                        continue;
                    }
                    let due = self
                        .joined
                        .as_mut()
                        .and_then(|j| j.mainline.as_mut())
                        .map(|s| s.on_values(now, id, by, &peers, &ours))
                        .unwrap_or_default();
                    self.send_hellos(now, &due, HelloKind::Hello);
                }
                MainlineEvent::LookupDone { id, storers }
                    if self.relay_directory.as_ref().is_some_and(|d| d.owns(id)) =>
                {
                    let announce = self
                        .relay_directory
                        .as_mut()
                        .map(|d| d.lookup_done(now, storers))
                        .unwrap_or_default();
                    if let (false, Some(mainline)) = (announce.is_empty(), self.mainline.as_mut()) {
                        debug!("relay: announcing to {} Mainline nodes", announce.len());
                        mainline.announce(now, relay_infohash(), &announce);
                    }
                }
                MainlineEvent::LookupDone { id, storers } => {
                    let unix_ms = self.config.clock.unix_ms(now);
                    let action = self
                        .joined
                        .as_mut()
                        .and_then(|j| j.mainline.as_mut())
                        .filter(|s| s.owns_lookup(id))
                        .and_then(|s| s.lookup_done(now, unix_ms, id, storers));
                    if let Some(action) = action {
                        self.apply_mainline_action(now, action);
                    }
                }
            }
        }
    }

    /// Starts the relay directory's lookup when it is due.
    pub(super) fn relay_directory_timeout(&mut self, now: Instant) {
        let ready = self.mainline.as_ref().is_some_and(|m| m.is_bootstrapped());
        let (Some(directory), Some(mainline)) =
            (self.relay_directory.as_mut(), self.mainline.as_mut())
        else {
            return;
        };
        if directory.due(now, ready, self.joined.is_some()) {
            let id = mainline.get_peers(now, relay_infohash());
            directory.lookup_started(id);
        }
    }

    /// Runs the Mainline source's schedule.
    pub(super) fn mainline_source_timeout(&mut self, now: Instant) {
        let ready = self.mainline.as_ref().is_some_and(|m| m.is_bootstrapped());
        let unix_ms = self.config.clock.unix_ms(now);
        let actions = self
            .joined
            .as_mut()
            .and_then(|j| j.mainline.as_mut())
            .map(|s| s.handle_timeout(now, unix_ms, ready))
            .unwrap_or_default();
        for action in actions {
            self.apply_mainline_action(now, action);
        }
    }

    fn apply_mainline_action(&mut self, now: Instant, action: Action) {
        let Some(mainline) = self.mainline.as_mut() else {
            return;
        };
        match action {
            Action::LookUp(windows) => {
                for (window, info_hash) in windows {
                    let id = mainline.get_peers(now, info_hash);
                    if let Some(source) = self.joined.as_mut().and_then(|j| j.mainline.as_mut()) {
                        source.lookup_started(id, window);
                    }
                }
                // A lookup that could not start ends at once.
                self.process_mainline_events(now);
            }
            Action::Announce(info_hash, storers) => mainline.announce(now, info_hash, &storers),
            Action::Hello(to) => self.send_hellos(now, &to, HelloKind::Hello),
        }
    }
}
