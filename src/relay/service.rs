//! The relaying side as one state type: the role, the table of bindings
//! and the cookie secrets binds are challenged with (§12.2, §12.5).
//!
//! Every node, relay or not, answers a bind without a valid cookie with a
//! challenge and keeps nothing; only a bind that echoes the cookie reaches
//! the role checks and the table, and only it is ever refused, so a
//! refusal (which may exclude a relay for good) always answers a bind from
//! an address that proved it receives there. Whether a member's token is
//! genuine is the caller's to say (it holds the meeting key).

use std::net::SocketAddr;
use std::time::Instant;

use super::cookie::CookieJar;
use super::server::{ForwardDrop, RelayTable};
use super::wire::{Bind, Frame, Token};
use crate::api::{RelayLimits, RelayRefusal, RelayRole};
use crate::rng::Rng;

/// What became of a bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindOutcome {
    /// No valid cookie: challenged, nothing kept.
    Challenged,
    /// Bound on this channel.
    Bound(u32),
    /// Refused, for this reason.
    Refused(RelayRefusal),
}

/// The relaying side of a node.
pub struct RelayService {
    role: RelayRole,
    table: Option<RelayTable>,
    cookies: CookieJar,
}

impl RelayService {
    /// A node relaying as `role`: members with [`RelayLimits::MEMBERS`],
    /// anyone with `open_limits` (at most [`RelayLimits::MAX_OPEN_PAIRS`]
    /// pairs), nobody (no table, but binds are still challenged).
    pub fn new(role: RelayRole, open_limits: RelayLimits, rng: &mut Rng) -> Self {
        let table = match role {
            RelayRole::Members => Some(RelayTable::new(RelayLimits::MEMBERS, rng.fork())),
            RelayRole::Open => {
                let mut limits = open_limits;
                limits.max_pairs = limits.max_pairs.min(RelayLimits::MAX_OPEN_PAIRS);
                Some(RelayTable::new(limits, rng.fork()))
            }
            RelayRole::Off => None,
        };
        Self {
            role,
            table,
            cookies: CookieJar::new(rng.fork()),
        }
    }

    /// A bind from `source`: the frame that answers it, and what it came
    /// to. `genuine` says whether a member's token is of our meeting (asked
    /// only of a members' relay, after the cookie checked out).
    pub fn on_bind(
        &mut self,
        now: Instant,
        source: SocketAddr,
        bind: &Bind,
        genuine: impl FnOnce(&Bind) -> bool,
    ) -> (Frame<'static>, BindOutcome) {
        let cookie = match bind.cookie {
            Some(cookie) if self.cookies.check(now, source, &bind.token, &cookie) => cookie,
            _ => {
                let cookie = self.cookies.issue(now, source, &bind.token);
                let frame = Frame::Challenge {
                    token: bind.token,
                    cookie,
                };
                return (frame, BindOutcome::Challenged);
            }
        };
        let answer = match (self.role, self.table.as_mut()) {
            (RelayRole::Members, Some(table)) if genuine(bind) => {
                table.bind(now, source, bind.token)
            }
            (RelayRole::Members, Some(_)) => Err(RelayRefusal::BadToken),
            (RelayRole::Open, Some(table)) => table.bind(now, source, bind.token),
            _ => Err(RelayRefusal::NotARelay),
        };
        match answer {
            Ok(bound) => {
                let frame = Frame::Bound {
                    token: bind.token,
                    channel: bound.channel,
                    lifetime_s: bound.lifetime_s,
                    rate_kib: bound.rate_kib,
                };
                (frame, BindOutcome::Bound(bound.channel))
            }
            Err(reason) => {
                let frame = Frame::Refused {
                    token: bind.token,
                    cookie,
                    reason,
                };
                (frame, BindOutcome::Refused(reason))
            }
        }
    }

    /// `source` releases its binding on `channel`; true if it held one.
    pub fn release(&mut self, source: SocketAddr, token: Token, channel: u32) -> bool {
        self.table
            .as_mut()
            .is_some_and(|table| table.release(source, token, channel))
    }

    /// Where `len` bytes of data from `source` on `channel` go: the other
    /// side and its channel, or why nowhere (a node that relays for nobody
    /// knows no channel).
    pub fn forward(
        &mut self,
        now: Instant,
        source: SocketAddr,
        channel: u32,
        len: usize,
    ) -> Result<(SocketAddr, u32), ForwardDrop> {
        match self.table.as_mut() {
            Some(table) => table.forward(now, source, channel, len),
            None => Err(ForwardDrop::UnknownChannel),
        }
    }

    /// Bindings held.
    pub fn bindings(&self) -> usize {
        self.table.as_ref().map_or(0, RelayTable::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(cookie: Option<super::super::wire::Cookie>) -> Bind {
        Bind {
            token: [7; 16],
            session: 1,
            low: crate::id::NodeId([1; 32]),
            high: crate::id::NodeId([2; 32]),
            cookie,
        }
    }

    /// Binds once, echoes the challenge's cookie, and returns the outcome.
    fn bind_with_cookie(
        service: &mut RelayService,
        now: Instant,
        from: SocketAddr,
        genuine: bool,
    ) -> BindOutcome {
        let (frame, outcome) = service.on_bind(now, from, &bind(None), |_| unreachable!());
        assert_eq!(outcome, BindOutcome::Challenged);
        let Frame::Challenge { cookie, .. } = frame else {
            panic!("{frame:?}")
        };
        service
            .on_bind(now, from, &bind(Some(cookie)), |_| genuine)
            .1
    }

    #[test]
    fn every_role_challenges_first_and_only_a_relay_binds() {
        let now = Instant::now();
        let from: SocketAddr = "198.51.100.1:4000".parse().unwrap();
        let limits = RelayLimits::OPEN;
        let mut rng = Rng::from_seed([1; 32]);
        let mut off = RelayService::new(RelayRole::Off, limits, &mut rng);
        assert_eq!(
            bind_with_cookie(&mut off, now, from, true),
            BindOutcome::Refused(RelayRefusal::NotARelay)
        );
        let mut members = RelayService::new(RelayRole::Members, limits, &mut rng);
        assert_eq!(
            bind_with_cookie(&mut members, now, from, false),
            BindOutcome::Refused(RelayRefusal::BadToken)
        );
        assert!(matches!(
            bind_with_cookie(&mut members, now, from, true),
            BindOutcome::Bound(_)
        ));
        let mut open = RelayService::new(RelayRole::Open, limits, &mut rng);
        assert!(matches!(
            bind_with_cookie(&mut open, now, from, false),
            BindOutcome::Bound(_)
        ));
        assert_eq!(open.bindings(), 1);
        assert_eq!(off.bindings(), 0);
        assert_eq!(
            off.forward(now, from, 1, 10),
            Err(ForwardDrop::UnknownChannel)
        );
    }

    #[test]
    fn an_open_relay_holds_no_more_pairs_than_the_cap() {
        let mut rng = Rng::from_seed([2; 32]);
        let limits = RelayLimits {
            max_pairs: usize::MAX,
            ..RelayLimits::OPEN
        };
        let service = RelayService::new(RelayRole::Open, limits, &mut rng);
        assert_eq!(
            service.table.as_ref().map(RelayTable::max_pairs),
            Some(RelayLimits::MAX_OPEN_PAIRS)
        );
    }
}
