//! Relay choice for connection attempts (`protocol-spec.md` §12.3): which
//! relays an attempt proposes, and the relay paths for the relays either
//! side listed.
//!
//! Proposals, in order: members with a direct channel to us (tier a),
//! members whose records say unsolicited datagrams reach them (tier b),
//! then `serve --relay` candidates (tier c) that have not refused as not
//! relaying; on a first attempt members alone when there are any. Pure:
//! the registry (`mod.rs`) hands in what it knows.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use crate::codec::WireAddr;
use crate::id::NodeId;
use crate::meeting::Meeting;
use crate::relay::client::RelayPath;
use crate::signal::{MAX_RELAYS, RelayHint};

/// What the registry knows about relays it could propose.
#[derive(Debug, Default)]
pub(super) struct RelayChoice {
    /// `serve --relay` candidates (bootstrap nodes, directory relays), in
    /// order.
    servers: Vec<SocketAddr>,
    /// Relays that refused as not relaying: not proposed again.
    refusers: BTreeSet<SocketAddr>,
    /// The node IDs of candidates, once the DHT has named them.
    names: BTreeMap<SocketAddr, NodeId>,
    /// Our NAT is not known to be punchable: every attempt wants a relay.
    pub(super) needed: bool,
}

impl RelayChoice {
    /// The `serve --relay` candidates, replacing any before.
    pub(super) fn set_servers(&mut self, servers: Vec<SocketAddr>) {
        self.servers = servers;
    }

    /// More candidates, after those known.
    pub(super) fn add_servers(&mut self, servers: &[SocketAddr]) {
        for server in servers {
            if !self.servers.contains(server) {
                self.servers.push(*server);
            }
        }
    }

    /// Names the candidates not yet named whose node `node_at` knows
    /// (the DHT's routing table: their frames say who they are).
    pub(super) fn name_servers(&mut self, node_at: impl Fn(SocketAddr) -> Option<NodeId>) {
        for &server in &self.servers {
            if !self.names.contains_key(&server)
                && let Some(id) = node_at(server)
            {
                self.names.insert(server, id);
            }
        }
    }

    /// Our address of the candidate named `id`, if we know it.
    pub(super) fn server_named(&self, id: NodeId) -> Option<SocketAddr> {
        self.names
            .iter()
            .find(|(_, named)| **named == id)
            .map(|(addr, _)| *addr)
    }

    /// `relay` answered that it does not relay.
    pub(super) fn refused(&mut self, relay: SocketAddr) {
        self.refusers.insert(relay);
    }

    /// The relays to propose to `peer` on an attempt after `failures`
    /// failed ones, given the members with a direct channel to us
    /// (`direct`) and those that unsolicited datagrams reach
    /// (`reachable`), each at its address.
    pub(super) fn propose(
        &self,
        direct: impl IntoIterator<Item = (NodeId, SocketAddr)>,
        reachable: impl IntoIterator<Item = (NodeId, SocketAddr)>,
        peer: NodeId,
        failures: u32,
    ) -> Vec<RelayHint> {
        let mut members: Vec<(NodeId, SocketAddr)> =
            direct.into_iter().filter(|(m, _)| *m != peer).collect();
        for (member, addr) in reachable {
            if member != peer && !members.iter().any(|(m, _)| *m == member) {
                members.push((member, addr));
            }
        }
        let members = members.into_iter().map(|(m, addr)| RelayHint {
            addr: WireAddr::from(addr),
            node: Some(m),
        });
        let servers = self
            .servers
            .iter()
            .filter(|s| !self.refusers.contains(s))
            .map(|s| RelayHint {
                addr: WireAddr::from(*s),
                node: self.names.get(s).copied(),
            });
        let members: Vec<RelayHint> = members.collect();
        if failures == 0 && !members.is_empty() {
            members.into_iter().take(MAX_RELAYS).collect()
        } else {
            members
                .into_iter()
                .chain(servers)
                .take(MAX_RELAYS)
                .collect()
        }
    }
}

/// Relay paths for attempt `session` between `local` and `peer` through
/// the relays `hints` name (those that are neither side), each with its
/// hint, each reached where we reach it: a relay whose node we know
/// (`reach_of`: our connection to a member, our address of a serve node)
/// there, else at the hint's address. A relay we could reach only over
/// a family we have no socket of (`reachable` says no) is left out.
pub(super) fn paths_for(
    meeting: &Meeting,
    (local, peer): (NodeId, NodeId),
    now: Instant,
    session: u64,
    hints: &[RelayHint],
    reach_of: impl Fn(NodeId) -> Option<SocketAddr>,
    reachable: impl Fn(SocketAddr) -> bool,
) -> Vec<(RelayPath, RelayHint)> {
    let (low, high) = (local.min(peer), local.max(peer));
    let token = meeting.relay_token(session, &low, &high);
    hints
        .iter()
        .filter(|h| h.node != Some(local) && h.node != Some(peer))
        .filter_map(|hint| {
            let hint_addr = SocketAddr::from(hint.addr);
            let reach = hint.node.and_then(&reach_of).unwrap_or(hint_addr);
            reachable(reach).then(|| {
                let path = RelayPath::new(now, reach, hint_addr, session, (local, peer), token);
                (path, *hint)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::Via;
    use crate::nat::NatClass;
    use crate::rtc::{Connections, Member};
    use crate::signal::{SessionParams, SignalKind};
    use crate::transmit::LocalAddrs;

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
        connections.add_member(now, NodeId([2; 32]), member, &[]);
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
        connections.add_member(now, NodeId([0; 32]), reachable, &[]);
        assert!(connections.poll_signal().is_none());
        let peer = Member {
            via: Via::Dht,
            nat: NatClass::Unknown,
            reachable_at: None,
        };
        connections.add_member(now, NodeId([2; 32]), peer, &[]);
        let Some(SignalKind::Offer(params)) = connections.poll_signal().map(|s| s.kind) else {
            panic!("an offer");
        };
        assert_eq!(
            params.relays.0,
            [RelayHint {
                addr: WireAddr::from(open_member),
                node: Some(NodeId([0; 32])),
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
