//! Relay frames on the node (`protocol-spec.md` §12): as a relay, binds
//! answered and data forwarded between the two sides of a pair; as a
//! member, the relays' answers to our binds and the data they bring for
//! our connections.
//!
//! A data frame is ours when one of our connections bound that channel at
//! that source; otherwise it is for our relay table, if we relay.
//!
//! The relaying side's state and rules are `relay::service`'s, our probes
//! `relay::probes`'; this file routes frames between them, the
//! connections and the relay directory.

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::stats::DropReason;
use crate::addr::{Family, canonical, usable_from};
use crate::api::Event;
use crate::relay::client::RelayAnswer;
use crate::relay::probes::{ProbeBy, ProbeStep};
use crate::relay::server::ForwardDrop;
use crate::relay::service::BindOutcome;
use crate::relay::wire::{Bind, Frame, Token, data_frame};
use crate::sources::relays::RelayDirectory;

impl Node {
    /// A datagram that starts with the relay tag, from `source` to our
    /// `destination`.
    pub(super) fn on_relay_frame(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let frame = match Frame::decode(data) {
            Ok(frame) => frame,
            Err(error) => {
                debug!("relay: bad frame from {source}: {error}");
                return self.drop_datagram(source, DropReason::RelayMalformed);
            }
        };
        match frame {
            Frame::Data { channel, payload } => self.on_relay_data(now, source, channel, payload),
            Frame::Bind(bind) => self.on_bind(now, source, destination, &bind),
            Frame::Release { token, channel } => {
                self.stats.relay_requests += 1;
                if self.relay.release(source, token, channel) {
                    self.stats.relay_released += 1;
                    debug!("relay: released {source}'s channel {channel}");
                }
            }
            Frame::Bound {
                token,
                channel,
                lifetime_s,
                rate_kib,
            } => {
                let answer = RelayAnswer::Bound {
                    channel,
                    lifetime_s,
                };
                self.on_relay_answer(now, source, token, answer, rate_kib)
            }
            Frame::Refused {
                token,
                cookie,
                reason,
            } => self.on_relay_answer(
                now,
                source,
                token,
                RelayAnswer::Refused { cookie, reason },
                0,
            ),
            Frame::Challenge { token, cookie } => {
                self.on_relay_answer(now, source, token, RelayAnswer::Challenge(cookie), 0)
            }
        }
    }

    fn on_relay_data(&mut self, now: Instant, source: SocketAddr, channel: u32, payload: &[u8]) {
        if let Some(joined) = self.joined.as_mut()
            && let Some(peer) = joined.connections.peer_at_relay(source, channel)
        {
            self.stats.relayed_datagrams += 1;
            joined
                .connections
                .receive_relayed(now, peer, source, channel, payload);
            self.unsettled = Some(now);
            return;
        }
        match self.relay.forward(now, source, channel, payload.len()) {
            Ok((to, their_channel)) => {
                self.stats.relay_forwarded += 1;
                // From our socket of the other side's family: a pair may
                // bind over IPv4 on one side and IPv6 on the other.
                let frame = data_frame(their_channel, payload);
                self.transmits.push_back(self.locals.transmit(to, frame));
            }
            Err(drop) => {
                let reason = match drop {
                    ForwardDrop::UnknownChannel => DropReason::RelayUnknownChannel,
                    ForwardDrop::Unpaired => DropReason::RelayUnpaired,
                    ForwardDrop::RateLimited => DropReason::RelayRateLimited,
                };
                self.drop_datagram(source, reason);
            }
        }
    }

    /// A bind: from a forbidden source dropped; without a valid cookie
    /// answered with a challenge; otherwise checked as our role requires,
    /// then bound or refused. The answer (smaller than the bind) goes back
    /// from where it arrived.
    fn on_bind(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, bind: &Bind) {
        self.stats.relay_requests += 1;
        if !self.may_bind(source, destination) {
            debug!("relay: bind from {source} dropped (our own or a non-public address)");
            return self.drop_datagram(source, DropReason::RelayForbidden);
        }
        let joined = &self.joined;
        let genuine = |bind: &Bind| {
            joined.as_ref().is_some_and(|j| {
                bind.low < bind.high
                    && j.membership
                        .meeting()
                        .relay_token(bind.session, &bind.low, &bind.high)
                        == bind.token
            })
        };
        let (frame, outcome) = self.relay.on_bind(now, source, bind, genuine);
        match outcome {
            BindOutcome::Challenged => self.stats.relay_challenges += 1,
            BindOutcome::Bound(channel) => debug!("relay: bound {source} on channel {channel}"),
            BindOutcome::Refused(reason) => {
                debug!("relay: refused {source}: {reason}");
                self.stats.relay_refused += 1;
            }
        }
        self.answer_bind(source, destination, frame);
    }

    fn answer_bind(&mut self, source: SocketAddr, destination: SocketAddr, frame: Frame<'_>) {
        self.transmits.push_back(crate::transmit::Transmit {
            source: destination,
            destination: source,
            payload: frame.encode(),
        });
    }

    /// False for a bind's source that a relay must never bind (§12.2): one
    /// of our own addresses (we would forward to ourselves), or one of a
    /// narrower scope than our socket's (or, on a wildcard socket, than our
    /// public address): a public relay takes no private or loopback
    /// source, which only a spoofer on a loosely filtered host could send.
    fn may_bind(&self, source: SocketAddr, destination: SocketAddr) -> bool {
        let source = canonical(source);
        let ours = self
            .locals
            .all()
            .iter()
            .chain(self.public.all().iter())
            .any(|a| canonical(*a) == source);
        let vantage = if destination.ip().is_unspecified() {
            self.public.current(Family::of(source)).map(|a| a.ip())
        } else {
            Some(destination.ip())
        };
        !ours && vantage.is_none_or(|v| usable_from(source, v))
    }

    fn on_relay_answer(
        &mut self,
        now: Instant,
        source: SocketAddr,
        token: Token,
        answer: RelayAnswer,
        rate_kib: u16,
    ) {
        let taken = self
            .joined
            .as_mut()
            .is_some_and(|j| j.connections.on_relay_answer(now, source, token, answer));
        if taken {
            self.stats.relay_answers += 1;
            return;
        }
        let Some(step) = self.relay_probes.on_answer(source, token, answer, rate_kib) else {
            return self.drop_datagram(source, DropReason::RelayUnsolicited);
        };
        self.stats.relay_answers += 1;
        let (by, result) = match step {
            ProbeStep::Again(frame) => {
                if let Some(frame) = frame {
                    self.transmits
                        .push_back(self.locals.transmit(source, frame));
                }
                return;
            }
            ProbeStep::Unsolicited => {
                debug!("relay: a refusal from {source} without our cookie ignored");
                return self.drop_datagram(source, DropReason::RelayUnsolicited);
            }
            ProbeStep::Done {
                by,
                result,
                release,
            } => {
                if let Some(frame) = release {
                    self.transmits
                        .push_back(self.locals.transmit(source, frame));
                }
                (by, result)
            }
        };
        if by == ProbeBy::Directory
            && let Some(directory) = self.relay_directory.as_mut()
        {
            directory.probed(now, source, result.is_ok());
        }
        match by {
            ProbeBy::User => self.events.push_back(Event::RelayProbed {
                relay: source,
                result,
            }),
            ProbeBy::Directory if result.is_ok() => self.use_directory_relay(now, source),
            ProbeBy::Directory => {
                debug!("relay: {source}, listed in the directory, does not relay")
            }
        }
    }

    /// A relay from the Mainline directory answered our probe: propose it
    /// for connections, and join the tinynode DHT through the directory's
    /// relays once they are of two networks, so members no direct hello
    /// reaches meet there (§12.6).
    fn use_directory_relay(&mut self, now: Instant, relay: SocketAddr) {
        debug!("relay: {relay}, listed in the directory, relays for us");
        if let Some(joined) = self.joined.as_mut() {
            joined.connections.add_relay_servers(&[relay]);
        }
        let bootstrap = self
            .relay_directory
            .as_ref()
            .map(RelayDirectory::dht_bootstrap)
            .unwrap_or_default();
        if bootstrap.is_empty() {
            debug!("relay: one network's directory relays are not enough to join the DHT through");
            return;
        }
        self.dht.add_bootstrap(now, &bootstrap);
        self.dht.handle_timeout(now);
    }

    /// Binds once at each of `relays` with a fresh token, to learn which
    /// relay for us (`by` the user: [`Event::RelayProbed`]; by the relay
    /// directory: used if it binds); a bound probe is released at once.
    pub(super) fn probe_relays(&mut self, now: Instant, relays: Vec<SocketAddr>, by: ProbeBy) {
        for (relay, by) in self.relay_probes.expire(now) {
            if by == ProbeBy::Directory
                && let Some(directory) = self.relay_directory.as_mut()
            {
                directory.probed(now, relay, false);
            }
        }
        for relay in relays {
            debug!("relay: probing {relay}");
            let frame = self.relay_probes.start(now, relay, by, &mut self.rng);
            self.transmits.push_back(self.locals.transmit(relay, frame));
        }
    }

    /// Bindings held as a relay.
    pub(super) fn relay_bindings(&self) -> usize {
        self.relay.bindings()
    }
}
