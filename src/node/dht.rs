//! tinynode's DHT on the node: frames in, engine events out, and the DHT
//! as a member source (topic lookups and announces for the joined meeting;
//! records it returns, pushes from the nodes we announced to and announces
//! stored here go to membership).

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::stats::DropReason;
use crate::api::{AddressSource, Event, ReachResult, Via};
use crate::dht::engine::{DatagramPolicy, DhtDrop, DhtEvent};
use crate::dht::wire::TxId;
use crate::id::NodeId;
use crate::membership::{Found, SignalPath};
use crate::sources::dht::Action;

impl Node {
    /// A datagram that starts with the DHT tag (already rate-limited):
    /// the engine decodes and acts on it under the node's rules (pushes
    /// only from nodes we announced to; our reachability probes).
    pub(super) fn on_dht_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let joined = &self.joined;
        let reach = &self.reach;
        let accept_push = |from| {
            joined
                .as_ref()
                .is_some_and(|j| j.sources.dht.announced_to(from))
        };
        let is_probe = |txid: &TxId, from| reach.is_probe(txid, from);
        let policy = DatagramPolicy {
            accept_push: &accept_push,
            is_probe: &is_probe,
        };
        let was_alone = self.dht.routing_len() == 0;
        match self.dht.handle_datagram(now, source, data, policy) {
            Ok(()) => {
                self.stats.dht_messages += 1;
                // The first node known: look the topic up now rather than
                // when the whole bootstrap ends (it waits for every contact
                // it was given, reachable or not).
                if was_alone && self.dht.routing_len() > 0 {
                    if let Some(joined) = self.joined.as_mut() {
                        joined.sources.dht.lookup_now(now);
                    }
                    self.dht_source_timeout(now);
                }
            }
            Err(DhtDrop::Malformed) => self.drop_datagram(source, DropReason::DhtMalformed),
            Err(DhtDrop::UnsolicitedPush) => {
                self.drop_datagram(source, DropReason::DhtUnsolicitedPush)
            }
            Err(DhtDrop::UnknownTransaction) => {
                self.drop_datagram(source, DropReason::DhtUnknownTransaction)
            }
            Err(DhtDrop::WrongSource) => self.drop_datagram(source, DropReason::DhtWrongSource),
            Err(DhtDrop::ForgedAnnounce) => {
                self.drop_datagram(source, DropReason::DhtForgedAnnounce)
            }
            Err(DhtDrop::OverBudget) => self.drop_datagram(source, DropReason::RateLimited),
        }
    }

    /// Turns the engine's events into user events, membership input and
    /// signals.
    pub(super) fn process_dht_events(&mut self, now: Instant) {
        while let Some(event) = self.dht.poll_event() {
            match event {
                DhtEvent::Observed { addr, by } => {
                    self.observed(now, addr, AddressSource::Dht { by });
                }
                DhtEvent::BootstrapFailed { attempt, retry_in } => self
                    .events
                    .push_back(Event::BootstrapFailed { attempt, retry_in }),
                DhtEvent::Bootstrapped { nodes } => {
                    self.events.push_back(Event::Bootstrapped { nodes });
                    self.probe_own_reach(now);
                    if let Some(joined) = self.joined.as_mut() {
                        joined.sources.dht.lookup_now(now);
                        self.dht_source_timeout(now);
                    }
                }
                DhtEvent::LookupDone {
                    id,
                    target,
                    closest,
                    tokens,
                    rounds,
                    requests,
                } => {
                    if let Some(position) = self.user_lookups.iter().position(|l| *l == id) {
                        self.user_lookups.swap_remove(position);
                        self.events.push_back(Event::LookupDone {
                            target,
                            closest: closest.iter().map(|p| p.id).collect(),
                            rounds,
                            requests,
                        });
                    }
                    let action = self
                        .joined
                        .as_mut()
                        .filter(|j| j.sources.dht.owns_lookup(id))
                        .and_then(|j| j.sources.dht.lookup_done(now, tokens));
                    self.apply_dht_action(now, action);
                }
                DhtEvent::Records {
                    topic,
                    relay,
                    records,
                } => self.take_dht_records(now, topic, SignalPath::DhtRelay(relay), &records),
                DhtEvent::Stored {
                    topic,
                    announcer,
                    record,
                } => {
                    // Its announce reached us from `announcer`, so a signal
                    // sent straight there reaches it (what relaying through
                    // our own store would do, without a datagram to
                    // ourselves).
                    let path = SignalPath::Direct(announcer);
                    self.take_dht_records(now, topic, path, &[record]);
                }
                DhtEvent::Delivered {
                    relay,
                    direct,
                    payload,
                    ..
                } => {
                    let path = if direct {
                        SignalPath::Direct(relay)
                    } else {
                        SignalPath::DhtRelay(relay)
                    };
                    self.on_signal(now, path, &payload);
                }
                DhtEvent::ProbeArrived { txid, from } => {
                    let was_reachable = self.reach.is_reachable();
                    if let Some((via, result)) = self.reach.on_probe(&txid, from) {
                        debug!("dht: probe from {from} for {via}: {result:?}");
                        if !was_reachable && self.reach.is_reachable() {
                            debug!("reachable unsolicited: our record says so from now on");
                            self.addresses_changed();
                        }
                        self.events.push_back(Event::ReachProbed { via, result });
                    }
                }
                DhtEvent::ReachAnswered { via, forwarded } => {
                    let result = if forwarded {
                        ReachResult::Forwarded
                    } else {
                        self.reach.not_forwarded(via);
                        ReachResult::NotForwarded
                    };
                    self.events.push_back(Event::ReachProbed { via, result });
                }
                DhtEvent::SignalFailed { to, via, reason } => {
                    debug!("signal to {} via {via} failed: {reason}", to.short());
                    self.signal_path_failed(&to, via);
                }
            }
        }
    }

    /// Once per run, when the DHT is joined: asks up to two bootstrap
    /// nodes to have a third node probe us (§5.8), so our record can say
    /// whether unsolicited datagrams reach us (a member that can relay for
    /// members it has no channel to, §12.1).
    fn probe_own_reach(&mut self, now: Instant) {
        if !self.reach.ask_once() {
            return;
        }
        for via in self.config.bootstrap.iter().take(2).copied() {
            let txid = self.dht.reach_me(now, via);
            self.reach.asked(txid, via);
        }
    }

    /// Runs the DHT source's schedule.
    pub(super) fn dht_source_timeout(&mut self, now: Instant) {
        let action = self
            .joined
            .as_mut()
            .and_then(|j| j.sources.dht.handle_timeout(now));
        self.apply_dht_action(now, action);
    }

    fn apply_dht_action(&mut self, now: Instant, action: Option<Action>) {
        match action {
            None => {}
            Some(Action::LookUp(topic)) => {
                let id = self.dht.get_peers(now, topic);
                if let Some(joined) = self.joined.as_mut() {
                    joined.sources.dht.lookup_started(id);
                }
            }
            Some(Action::Announce(storers)) => {
                let Some(blob) = self.sealed_record(now, usize::MAX) else {
                    return;
                };
                let Some(joined) = self.joined.as_ref() else {
                    return;
                };
                let topic = joined.membership.meeting().topic();
                self.dht
                    .announce(now, &self.config.identity, topic, &storers, &blob);
            }
        }
    }

    /// Hands sealed records under `topic`, which reached us along `path`,
    /// to the meeting with that topic, if we are in it.
    fn take_dht_records(
        &mut self,
        now: Instant,
        topic: NodeId,
        path: SignalPath,
        records: &[Vec<u8>],
    ) {
        let in_meeting = self
            .joined
            .as_ref()
            .is_some_and(|j| j.membership.meeting().topic() == topic);
        if !in_meeting {
            return;
        }
        let found: Vec<Found<'_>> = records
            .iter()
            .map(|blob| Found {
                blob,
                via: Via::Dht,
                path,
            })
            .collect();
        self.take_records(now, &found);
    }
}
