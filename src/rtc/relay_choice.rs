//! Relays in the connection registry (`protocol-spec.md` §12.3): which
//! relays a connection attempt proposes and binds at, and the relays'
//! frames and answers routed to the connection they belong to.
//!
//! Proposals, in order: members with a direct channel to us (tier a),
//! members whose records say unsolicited datagrams reach them (tier b),
//! then `serve --relay` candidates (tier c) that have not refused as not
//! relaying; on a first attempt members alone when there are any.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Connections;
use super::conn::Conn;
use crate::codec::WireAddr;
use crate::id::NodeId;
use crate::relay::client::RelayPath;
use crate::relay::wire::RefuseReason;
use crate::signal::{MAX_RELAYS, RelayHint, SessionParams};

/// What the registry knows about relays it could propose.
#[derive(Debug, Default)]
pub(super) struct RelayChoice {
    /// `serve --relay` candidates (bootstrap nodes), in order.
    pub(super) servers: Vec<SocketAddr>,
    /// Relays that refused as not relaying: not proposed again.
    pub(super) refusers: BTreeSet<SocketAddr>,
    /// Our NAT maps by destination: every attempt wants a relay.
    pub(super) needed: bool,
}

impl Connections {
    /// Nodes that may relay for us when no member can (`serve --relay`
    /// nodes among the bootstrap nodes).
    pub fn set_relay_servers(&mut self, servers: Vec<SocketAddr>) {
        self.relays.servers = servers;
    }

    /// More relay candidates (found in the Mainline relay directory),
    /// after those known already.
    pub fn add_relay_servers(&mut self, servers: &[SocketAddr]) {
        for server in servers {
            if !self.relays.servers.contains(server) {
                self.relays.servers.push(*server);
            }
        }
    }

    /// Whether our NAT needs a relay for some peers (it maps by
    /// destination): then every attempt proposes relays.
    pub fn set_relay_needed(&mut self, needed: bool) {
        self.relays.needed = needed;
    }

    /// The connection with a relay path bound at `relay` on `channel`.
    pub fn peer_at_relay(&self, relay: SocketAddr, channel: u32) -> Option<NodeId> {
        self.conns
            .iter()
            .find(|(_, c)| c.relays().channels().any(|rc| rc == (relay, channel)))
            .map(|(p, _)| *p)
    }

    /// A relay frame for `peer`'s connection from `relay` on `channel`.
    pub fn receive_relayed(
        &mut self,
        now: Instant,
        peer: NodeId,
        relay: SocketAddr,
        channel: u32,
        data: &[u8],
    ) {
        if let Some(conn) = self.conns.get_mut(&peer)
            && conn.receive_relayed(now, relay, channel, data)
        {
            self.collect(now, peer);
        }
    }

    /// A relay's answer to a bind (`Ok((channel, lifetime_s))` or the
    /// refusal); false if no connection is binding there with `token`.
    pub fn on_relay_answer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        token: [u8; 16],
        answer: Result<(u32, u16), RefuseReason>,
    ) -> bool {
        let Some(peer) = self
            .conns
            .iter()
            .find(|(_, c)| c.relays().tokens().any(|t| t == (relay, token)))
            .map(|(p, _)| *p)
        else {
            return false;
        };
        if answer == Err(RefuseReason::NotARelay) {
            self.relays.refusers.insert(relay);
        }
        if let Some(conn) = self.conns.get_mut(&peer) {
            conn.on_relay_answer(now, relay, token, answer);
        }
        self.collect(now, peer);
        true
    }

    /// Gives `conn` (attempt `session` with `peer`) relay paths we choose
    /// (`protocol-spec.md` §12.3): members with a direct path open first
    /// (they keep both NAT mappings warm), then `serve --relay` nodes; on a
    /// first attempt members alone when there are any.
    pub(super) fn propose_relays(
        &self,
        now: Instant,
        conn: &mut Conn,
        peer: NodeId,
        session: u64,
        failures: u32,
    ) {
        conn.set_wants_relay();
        // Tier a: members with a direct channel to us; tier b: members
        // that unsolicited datagrams reach.
        let mut members: Vec<(SocketAddr, Option<NodeId>)> = self
            .conns
            .iter()
            .filter(|(p, _)| **p != peer)
            .filter_map(|(p, c)| c.direct_addr().map(|a| (a, Some(*p))))
            .collect();
        let reachable: Vec<(SocketAddr, Option<NodeId>)> = self
            .members
            .iter()
            .filter(|(p, _)| **p != peer && !members.iter().any(|(_, m)| *m == Some(**p)))
            .filter_map(|(p, m)| m.reachable_at.map(|a| (a, Some(*p))))
            .collect();
        members.extend(reachable);
        let servers = self
            .relays
            .servers
            .iter()
            .filter(|s| !self.relays.refusers.contains(s))
            .map(|s| (*s, None));
        let chosen: Vec<(SocketAddr, Option<NodeId>)> = if failures == 0 && !members.is_empty() {
            members.into_iter().take(MAX_RELAYS).collect()
        } else {
            members
                .into_iter()
                .chain(servers)
                .take(MAX_RELAYS)
                .collect()
        };
        if chosen.is_empty() {
            debug!("relay: no relay to propose to {}", peer.short());
        }
        for (addr, member) in chosen {
            let path = self.relay_path(now, addr, addr, session, peer);
            let hint = RelayHint {
                addr: WireAddr::from(addr),
                member,
            };
            conn.add_relay(path, Some(hint));
        }
    }

    /// Paths through the relays `params` proposes, each reached where we
    /// reach it (a member relay at our own connection's address).
    pub(super) fn hinted_paths(
        &self,
        now: Instant,
        peer: NodeId,
        session: u64,
        params: &SessionParams,
    ) -> Vec<RelayPath> {
        params
            .relays
            .0
            .iter()
            .filter(|h: &&RelayHint| h.member != Some(self.local) && h.member != Some(peer))
            .map(|hint| {
                let hint_addr = SocketAddr::from(hint.addr);
                let reach = hint
                    .member
                    .and_then(|m| self.conns.get(&m).and_then(Conn::direct_addr))
                    .unwrap_or(hint_addr);
                self.relay_path(now, reach, hint_addr, session, peer)
            })
            .collect()
    }

    fn relay_path(
        &self,
        now: Instant,
        reach: SocketAddr,
        hint: SocketAddr,
        session: u64,
        peer: NodeId,
    ) -> RelayPath {
        let (low, high) = (self.local.min(peer), self.local.max(peer));
        let token = self.meeting.relay_token(session, &low, &high);
        RelayPath::new(now, reach, hint, session, (self.local, peer), token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Via;
    use crate::meeting::Meeting;
    use crate::nat::NatClass;
    use crate::rtc::Member;
    use crate::signal::SignalKind;
    use crate::transmit::LocalAddrs;
    use std::sync::Arc;

    /// Connections of node 1, with one `serve --relay` candidate; our own
    /// NAT needs a relay when `we_need`.
    fn registry(we_need: bool) -> Connections {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let meeting = Meeting::derive("relay choice").unwrap();
        let locals = LocalAddrs::new(vec!["10.0.0.1:4000".parse().unwrap()]);
        let mut connections = Connections::new(crypto, meeting, NodeId([1; 32]), locals, 1);
        connections.set_relay_servers(vec!["198.51.100.1:3478".parse().unwrap()]);
        connections.set_relay_needed(we_need);
        connections
    }

    fn offer_to(peer_nat: NatClass, we_need: bool) -> SessionParams {
        let now = Instant::now();
        let mut connections = registry(we_need);
        let member = Member {
            via: Via::Dht,
            nat: peer_nat,
            reachable_at: None,
        };
        connections.add_member(now, NodeId([2; 32]), member, None);
        match connections.poll_signal().map(|s| s.kind) {
            Some(SignalKind::Offer(params)) => params,
            other => panic!("an offer: {other:?}"),
        }
    }

    #[test]
    fn a_member_that_unsolicited_datagrams_reach_is_proposed_before_servers() {
        let now = Instant::now();
        let mut connections = registry(true);
        let open_member: SocketAddr = "203.0.113.5:4000".parse().unwrap();
        // A higher ID: it offers to us, so no connection of ours starts.
        let reachable = Member {
            via: Via::Dht,
            nat: NatClass::Open,
            reachable_at: Some(open_member),
        };
        connections.add_member(now, NodeId([0; 32]), reachable, None);
        assert!(connections.poll_signal().is_none());
        let peer = Member {
            via: Via::Dht,
            nat: NatClass::Unknown,
            reachable_at: None,
        };
        connections.add_member(now, NodeId([2; 32]), peer, None);
        let Some(SignalKind::Offer(params)) = connections.poll_signal().map(|s| s.kind) else {
            panic!("an offer");
        };
        assert_eq!(
            params.relays.0,
            [RelayHint {
                addr: WireAddr::from(open_member),
                member: Some(NodeId([0; 32])),
            }]
        );
    }

    #[test]
    fn the_first_offer_lists_relays_when_either_side_needs_one() {
        let symmetric = NatClass::EndpointDependent { sequential: false };
        let cone = NatClass::EndpointIndependent;
        assert!(
            offer_to(cone, false).relays.0.is_empty(),
            "neither needs one"
        );
        assert_eq!(
            offer_to(symmetric, false).relays.0.len(),
            1,
            "the peer's record"
        );
        assert_eq!(offer_to(cone, true).relays.0.len(), 1, "our own class");
        assert!(
            offer_to(NatClass::Unknown, false).relays.0.is_empty(),
            "a peer that did not say"
        );
    }
}
