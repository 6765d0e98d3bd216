//! A connection's relay paths (`protocol-spec.md` §12.3): its relayed
//! candidates in str0m, the bindings behind them, and the translation
//! between str0m's datagrams and relay frames.
//!
//! str0m sends a relayed candidate's datagrams with `source` = our
//! synthetic address; those to the peer's synthetic address at the same
//! relay are wrapped for the relay, every other pairing of a synthetic
//! address (a cross pair, relayed to direct) is dropped here, as it can
//! never work. Frames from the relay are fed to str0m from the
//! peer's synthetic address to ours.

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;
use str0m::{Candidate, Rtc};

use crate::api::RelayRefusal;
use crate::codec::BoundedList;
use crate::relay::client::{BindState, RelayPath};
use crate::relay::is_synthetic;
use crate::relay::wire::Cookie;
use crate::signal::{MAX_RELAYS, RelayHint};
use crate::transmit::{LocalAddrs, Transmit};

/// What becomes of a datagram str0m wants sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed {
    /// Send it as it is.
    Direct(Transmit),
    /// Send this frame to the relay.
    Relayed(Transmit),
    /// Drop it: a cross pair, or a relay that has not bound us yet.
    Dropped,
}

/// Every relay path of one connection.
#[derive(Debug, Default)]
pub struct RelayPaths {
    paths: Vec<RelayPath>,
    /// The relays this side proposed (what its parameters list).
    proposed: Vec<RelayHint>,
    ever_bound: bool,
}

impl RelayPaths {
    /// Adds `path` and its local relayed candidate; `ours` is the hint
    /// for our parameters when this side chose the relay.
    pub fn add(
        &mut self,
        rtc: &mut Rtc,
        path: RelayPath,
        host: SocketAddr,
        ours: Option<RelayHint>,
    ) {
        if self.paths.iter().any(|p| p.local == path.local) {
            return;
        }
        match Candidate::relayed(path.local, host, "udp") {
            Ok(candidate) => {
                rtc.add_local_candidate(candidate);
            }
            Err(error) => {
                debug!("relay: unusable relayed candidate {}: {error}", path.local);
                return;
            }
        }
        if let Some(hint) = ours.filter(|_| self.proposed.len() < MAX_RELAYS) {
            self.proposed.push(hint);
        }
        self.paths.push(path);
    }

    /// The relays to list in our parameters.
    pub fn hints(&self) -> BoundedList<RelayHint, MAX_RELAYS> {
        BoundedList(self.proposed.clone())
    }

    /// Adds the peer's relayed candidate of every path (once the peer's
    /// credentials are set).
    pub fn add_remote_candidates(&self, rtc: &mut Rtc) {
        for path in &self.paths {
            if let Ok(candidate) = Candidate::relayed(path.remote, path.remote, "udp") {
                rtc.add_remote_candidate(candidate);
            }
        }
    }

    /// True if some path was bound at some point.
    pub fn ever_bound(&self) -> bool {
        self.ever_bound
    }

    /// The path whose peer address is `remote`, if it is synthetic.
    pub fn by_remote(&self, remote: SocketAddr) -> Option<&RelayPath> {
        self.paths.iter().find(|p| p.remote == remote)
    }

    /// Decides what becomes of a datagram str0m wants sent.
    pub fn route(&self, transmit: Transmit, locals: &LocalAddrs) -> Routed {
        let from_relayed = is_synthetic(transmit.source);
        let to_relayed = is_synthetic(transmit.destination);
        if !from_relayed && !to_relayed {
            return Routed::Direct(transmit);
        }
        let wrapped = self
            .paths
            .iter()
            .find(|p| p.local == transmit.source && p.remote == transmit.destination)
            .and_then(|p| {
                p.wrap(&transmit.payload)
                    .map(|frame| locals.transmit(p.relay, frame))
            });
        wrapped.map_or(Routed::Dropped, Routed::Relayed)
    }

    /// A frame from `relay` on `channel`: the (source, destination) to
    /// feed str0m its payload with.
    pub fn receive(&self, relay: SocketAddr, channel: u32) -> Option<(SocketAddr, SocketAddr)> {
        self.paths
            .iter()
            .find(|p| p.relay == relay && p.channel() == Some(channel))
            .map(|p| (p.remote, p.local))
    }

    /// The relay at `relay` bound the path with `token`; a release to
    /// send if the path was released meanwhile.
    pub fn on_bound(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        token: [u8; 16],
        (channel, lifetime_s): (u32, u16),
        locals: &LocalAddrs,
    ) -> Option<Transmit> {
        let path = self.find_mut(relay, token)?;
        let release = path.on_bound(now, channel, lifetime_s);
        self.ever_bound = true;
        release.map(|frame| locals.transmit(relay, frame))
    }

    /// The relay at `relay` challenged the path with `token`: the bind
    /// with its cookie, to send now.
    pub fn on_challenge(
        &mut self,
        relay: SocketAddr,
        token: [u8; 16],
        cookie: Cookie,
        locals: &LocalAddrs,
    ) -> Option<Transmit> {
        let frame = self.find_mut(relay, token)?.on_challenge(cookie)?;
        Some(locals.transmit(relay, frame))
    }

    /// The relay at `relay` refused the bind with `token` and `cookie`;
    /// true if that ended the path (the cookie was ours).
    pub fn on_refused(
        &mut self,
        relay: SocketAddr,
        token: [u8; 16],
        cookie: Cookie,
        reason: RelayRefusal,
    ) -> bool {
        let Some(path) = self.find_mut(relay, token) else {
            return false;
        };
        let ended = path.on_refused(cookie, reason);
        if ended {
            debug!("relay: {relay} refused us: {reason}");
        } else {
            debug!("relay: a refusal from {relay} without our cookie ignored");
        }
        ended
    }

    /// Binds due at `now`, as transmits.
    pub fn handle_timeout(&mut self, now: Instant, locals: &LocalAddrs) -> Vec<Transmit> {
        self.paths
            .iter_mut()
            .filter_map(|p| p.handle_timeout(now).map(|f| locals.transmit(p.relay, f)))
            .collect()
    }

    /// The earliest bind or refresh due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.paths.iter().filter_map(RelayPath::poll_timeout).min()
    }

    /// A direct path carries the traffic: drops every relayed candidate
    /// from str0m (so it stops checking them) and releases every binding;
    /// the release frames to send.
    pub fn release_all(&mut self, rtc: &mut Rtc, locals: &LocalAddrs) -> Vec<Transmit> {
        let mut out = Vec::new();
        for path in &mut self.paths {
            if !path.usable() {
                continue;
            }
            if let Ok(candidate) = Candidate::relayed(path.local, locals.toward(path.relay), "udp")
            {
                rtc.direct_api().invalidate_candidate(&candidate);
            }
            if let Some(frame) = path.release() {
                out.push(locals.transmit(path.relay, frame));
            }
        }
        out
    }

    /// (relay, channel) of every bound path, for the registry's index.
    pub fn channels(&self) -> impl Iterator<Item = (SocketAddr, u32)> + '_ {
        self.paths
            .iter()
            .filter_map(|p| p.channel().map(|c| (p.relay, c)))
    }

    /// (relay, token) of every path whose relay may still answer (a
    /// released path's late binding is released at once).
    pub fn tokens(&self) -> impl Iterator<Item = (SocketAddr, [u8; 16])> + '_ {
        self.paths
            .iter()
            .filter(|p| !matches!(p.state(), BindState::Refused(_) | BindState::Silent))
            .map(|p| (p.relay, p.token()))
    }

    fn find_mut(&mut self, relay: SocketAddr, token: [u8; 16]) -> Option<&mut RelayPath> {
        self.paths
            .iter_mut()
            .find(|p| p.relay == relay && p.token() == token)
    }
}
