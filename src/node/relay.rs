//! Relay frames on the node (`protocol-spec.md` §12): as a relay, binds
//! answered and data forwarded between the two sides of a pair; as a
//! member, the relays' answers to our binds and the data they bring for
//! our connections.
//!
//! A data frame is ours when one of our connections bound that channel at
//! that source; otherwise it is for our relay table, if we relay.
//!
//! Every node, relay or not, answers a bind without a valid cookie with a
//! challenge and keeps nothing (§12.2); only a bind that echoes the cookie
//! reaches the role checks and the table, and only it is ever refused, so
//! a refusal (which may exclude a relay for good) always answers a bind
//! from an address that proved it receives there.

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::stats::DropReason;
use crate::addr::{Family, canonical, usable_from};
use crate::api::RelayRefusal;
use crate::api::{Event, RelayRole};
use crate::id::NodeId;
use crate::relay::client::RelayAnswer;
use crate::relay::server::{ForwardDrop, RelayTable};
use crate::relay::wire::{Bind, Frame, Token, data_frame};
use crate::sources::relays::RelayDirectory;

/// Who asked for a relay probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProbeBy {
    /// [`Command::ProbeRelays`](crate::api::Command::ProbeRelays).
    User,
    /// The Mainline relay directory listed the address: nobody vouches for
    /// it, so it is used only once it binds.
    Directory,
}

/// One of our relay probes waiting for its answer.
#[derive(Clone, Copy, Debug)]
pub(super) struct Probe {
    /// Who asked.
    pub(super) by: ProbeBy,
    /// The bind, with the relay's cookie once it challenged us.
    pub(super) bind: Bind,
    /// When the first bind went out.
    pub(super) sent_at: Instant,
}

/// A relay probe unanswered this long is given up (a directory address
/// then counts as no relay).
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
                if let Some(table) = self.relay_table.as_mut()
                    && table.release(source, token, channel)
                {
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
        let Some(table) = self.relay_table.as_mut() else {
            return self.drop_datagram(source, DropReason::RelayUnknownChannel);
        };
        match table.forward(now, source, channel, payload.len()) {
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
        let cookie = match bind.cookie {
            Some(cookie) if self.relay_cookies.check(now, source, &bind.token, &cookie) => cookie,
            _ => {
                self.stats.relay_challenges += 1;
                let cookie = self.relay_cookies.issue(now, source, &bind.token);
                let frame = Frame::Challenge {
                    token: bind.token,
                    cookie,
                };
                return self.answer_bind(source, destination, frame);
            }
        };
        let answer = match (self.config.relay, self.relay_table.as_mut()) {
            (RelayRole::Off, _) | (_, None) => Err(RelayRefusal::NotARelay),
            (RelayRole::Members, Some(table)) => {
                let genuine = self.joined.as_ref().is_some_and(|j| {
                    j.membership
                        .meeting()
                        .relay_token(bind.session, &bind.low, &bind.high)
                        == bind.token
                        && bind.low < bind.high
                });
                if genuine {
                    table.bind(now, source, bind.token)
                } else {
                    Err(RelayRefusal::BadToken)
                }
            }
            (_, Some(table)) => table.bind(now, source, bind.token),
        };
        let frame = match answer {
            Ok(bound) => {
                debug!("relay: bound {source} on channel {}", bound.channel);
                Frame::Bound {
                    token: bind.token,
                    channel: bound.channel,
                    lifetime_s: bound.lifetime_s,
                    rate_kib: bound.rate_kib,
                }
            }
            Err(reason) => {
                debug!("relay: refused {source}: {reason}");
                self.stats.relay_refused += 1;
                Frame::Refused {
                    token: bind.token,
                    cookie,
                    reason,
                }
            }
        };
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
        } else if let Some(probe) = self.relay_probes.get_mut(&(source, token)) {
            self.stats.relay_answers += 1;
            let result = match answer {
                RelayAnswer::Challenge(cookie) => {
                    // One bind with each fresh cookie; a repeated challenge
                    // changes nothing.
                    if probe.bind.cookie != Some(cookie) {
                        probe.bind.cookie = Some(cookie);
                        let frame = Frame::Bind(probe.bind).encode();
                        self.transmits
                            .push_back(self.locals.transmit(source, frame));
                    }
                    return;
                }
                RelayAnswer::Refused { cookie, reason } if probe.bind.cookie == Some(cookie) => {
                    Err(reason)
                }
                RelayAnswer::Refused { .. } => {
                    debug!("relay: a refusal from {source} without our cookie ignored");
                    return self.drop_datagram(source, DropReason::RelayUnsolicited);
                }
                RelayAnswer::Bound { channel, .. } => {
                    self.transmits.push_back(
                        self.locals
                            .transmit(source, Frame::Release { token, channel }.encode()),
                    );
                    Ok(rate_kib)
                }
            };
            let by = probe.by;
            self.relay_probes.remove(&(source, token));
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
        } else {
            self.drop_datagram(source, DropReason::RelayUnsolicited);
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
        // Probes never answered are given up here, not on a timer of their
        // own: they cost nothing while they wait.
        let silent: Vec<(SocketAddr, [u8; 16])> = self
            .relay_probes
            .iter()
            .filter(|(_, p)| now >= p.sent_at + PROBE_TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        for key in silent {
            if let Some(probe) = self.relay_probes.remove(&key)
                && probe.by == ProbeBy::Directory
                && let Some(directory) = self.relay_directory.as_mut()
            {
                directory.probed(now, key.0, false);
            }
        }
        for relay in relays {
            let token = self.rng.bytes();
            // Random IDs: a probe tells the relay nothing about who we are.
            let (one, other) = (NodeId(self.rng.bytes()), NodeId(self.rng.bytes()));
            let bind = Bind {
                token,
                session: u64::from_be_bytes(self.rng.bytes()),
                low: one.min(other),
                high: one.max(other),
                cookie: None,
            };
            debug!("relay: probing {relay}");
            self.relay_probes.insert(
                (relay, token),
                Probe {
                    by,
                    bind,
                    sent_at: now,
                },
            );
            self.transmits
                .push_back(self.locals.transmit(relay, Frame::Bind(bind).encode()));
        }
    }

    /// Bindings held as a relay.
    pub(super) fn relay_bindings(&self) -> usize {
        self.relay_table.as_ref().map_or(0, RelayTable::len)
    }
}
