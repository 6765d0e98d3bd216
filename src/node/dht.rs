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
use crate::dht::engine::{DhtDrop, DhtEvent};
use crate::dht::wire::{Message, decode_frame};
use crate::id::NodeId;
use crate::membership::{Found, SignalPath};
use crate::sources::dht::Action;

impl Node {
    /// A datagram that starts with the DHT tag (already rate-limited).
    pub(super) fn on_dht_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let message = match decode_frame(data) {
            Ok(message) => message,
            Err(_) if self.dht.answer_unsupported(source, data) => {
                debug!("dht: {source} sent a request of a newer kind; answered Unsupported");
                self.stats.dht_messages += 1;
                return;
            }
            Err(error) => {
                debug!("dht: from {source}: {error}");
                return self.drop_datagram(source, DropReason::DhtMalformed);
            }
        };
        if let Message::Response { txid, .. } = &message
            && let Some(&via) = self.reach_probes.get(txid)
            && source != via
        {
            // A third node's probe for our ReachMe: it got in unasked,
            // which proves something only if we never sent to it. (Two
            // third nodes probe; after an inconclusive one the other may
            // still prove it.)
            self.stats.dht_messages += 1;
            let result = if self.contacted.maybe_sent_to(source.ip()) {
                ReachResult::Inconclusive(source)
            } else {
                self.reach_probes.remove(txid);
                ReachResult::Reached(source)
            };
            debug!("dht: probe from {source} for {via}: {result:?}");
            self.on_reach_result(result);
            self.events.push_back(Event::ReachProbed { via, result });
            return;
        }
        if let Message::Push { .. } = message {
            let solicited = self
                .joined
                .as_ref()
                .is_some_and(|j| j.dht_source.announced_to(source));
            if !solicited {
                debug!("dht: push from {source}, which we did not announce to; dropped");
                return self.drop_datagram(source, DropReason::DhtUnsolicitedPush);
            }
        }
        let was_alone = self.dht.routing_len() == 0;
        match self.dht.handle_message(now, source, data.len(), message) {
            Ok(()) => {
                self.stats.dht_messages += 1;
                // The first node known: look the topic up now rather than
                // when the whole bootstrap ends (it waits for every contact
                // it was given, reachable or not).
                if was_alone && self.dht.routing_len() > 0 {
                    if let Some(joined) = self.joined.as_mut() {
                        joined.dht_source.lookup_now(now);
                    }
                    self.dht_source_timeout(now);
                }
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
                        joined.dht_source.lookup_now(now);
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
                        .filter(|j| j.dht_source.owns_lookup(id))
                        .and_then(|j| j.dht_source.lookup_done(now, tokens));
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
                DhtEvent::ReachAnswered { via, forwarded } => {
                    if !forwarded {
                        self.reach_probes.retain(|_, v| *v != via);
                        self.events.push_back(Event::ReachProbed {
                            via,
                            result: ReachResult::NotForwarded,
                        });
                    }
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
        if self.reach_asked {
            return;
        }
        self.reach_asked = true;
        for via in self.config.bootstrap.iter().take(2).copied() {
            let txid = self.dht.reach_me(now, via);
            self.reach_probes.insert(txid, via);
        }
    }

    /// What a probe found about us: reachable unsolicited, once a probe
    /// from an address we never sent to got in.
    fn on_reach_result(&mut self, result: ReachResult) {
        if let ReachResult::Reached(_) = result
            && !self.reachable
        {
            debug!("reachable unsolicited: our record says so from now on");
            self.reachable = true;
            self.addresses_changed();
        }
    }

    /// Runs the DHT source's schedule.
    pub(super) fn dht_source_timeout(&mut self, now: Instant) {
        let action = self
            .joined
            .as_mut()
            .and_then(|j| j.dht_source.handle_timeout(now));
        self.apply_dht_action(now, action);
    }

    fn apply_dht_action(&mut self, now: Instant, action: Option<Action>) {
        match action {
            None => {}
            Some(Action::LookUp(topic)) => {
                let id = self.dht.get_peers(now, topic);
                if let Some(joined) = self.joined.as_mut() {
                    joined.dht_source.lookup_started(id);
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
