//! Which connection a datagram belongs to: the registry's index of
//! connections by every remote address they sent to or received from, and
//! by their local ICE username fragment (`protocol-spec.md` §6.4).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::id::NodeId;

/// Which connection a remote address or a local ICE username fragment
/// belongs to.
#[derive(Default)]
pub(super) struct ConnIndex {
    /// Remote addresses a connection sent to or received from.
    pub(super) by_addr: BTreeMap<SocketAddr, NodeId>,
    /// Local ICE username fragments.
    pub(super) by_ufrag: BTreeMap<String, NodeId>,
}

impl ConnIndex {
    /// Drops every entry of `peer`'s connection.
    pub(super) fn forget(&mut self, peer: &NodeId) {
        self.by_addr.retain(|_, p| p != peer);
        self.by_ufrag.retain(|_, p| p != peer);
    }
}
