//! One connection's binding at one relay, `protocol-spec.md` §12.3: bind
//! (retransmitted on a backoff until the relay answers), answer the
//! relay's challenge by binding again with its cookie (§12.2), refresh at
//! half the lifetime with the cookie, wrap the connection's relayed
//! datagrams in data frames, release when done. A refusal counts only if
//! it echoes the cookie we sent: nobody who did not see our bind can end
//! the path.
//!
//! Sans-IO: [`RelayPath::handle_timeout`] returns the frames to send; the
//! connection owning the path turns them into transmits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::synthetic_addr;
use super::wire::{Bind, Cookie, Frame, data_frame};
use crate::api::RelayRefusal;
use crate::backoff::Backoff;
use crate::id::NodeId;

/// Waits between unanswered binds: 250 ms doubling to 2 s.
pub const BIND_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
/// Binds sent before a silent relay is given up.
pub const MAX_BINDS: u32 = 6;

/// A relay's answer to one of our binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayAnswer {
    /// Bind again, echoing this cookie.
    Challenge(Cookie),
    /// Bound on `channel` for `lifetime_s` seconds.
    Bound {
        /// Our channel at the relay.
        channel: u32,
        /// Seconds until the binding expires unless bound again.
        lifetime_s: u16,
    },
    /// Refused, to a bind that carried `cookie`.
    Refused {
        /// The cookie of the bind refused.
        cookie: Cookie,
        /// Why.
        reason: RelayRefusal,
    },
}

/// Where a binding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindState {
    /// Binds sent, no answer yet.
    Binding {
        /// Binds sent so far.
        sent: u32,
    },
    /// The relay gave us a channel.
    Bound {
        /// Our channel at the relay.
        channel: u32,
    },
    /// The relay said no.
    Refused(RelayRefusal),
    /// The relay never answered.
    Silent,
    /// We released it (a direct path carries the traffic).
    Released,
}

/// One binding at one relay, for one connection attempt.
#[derive(Clone, Debug)]
pub struct RelayPath {
    /// Where we send to reach the relay.
    pub relay: SocketAddr,
    /// Our relayed (synthetic) address at this relay.
    pub local: SocketAddr,
    /// The peer's relayed (synthetic) address at this relay.
    pub remote: SocketAddr,
    bind: Bind,
    state: BindState,
    next: Option<Instant>,
}

impl RelayPath {
    /// A path through the relay signaled as `hint` and reached at
    /// `relay`, for attempt `session` between `me` and `peer` with pairing
    /// `token`; its first bind goes out at `now`.
    pub fn new(
        now: Instant,
        relay: SocketAddr,
        hint: SocketAddr,
        session: u64,
        (me, peer): (NodeId, NodeId),
        token: [u8; 16],
    ) -> Self {
        Self {
            relay,
            local: synthetic_addr(hint, session, &me),
            remote: synthetic_addr(hint, session, &peer),
            bind: Bind {
                token,
                session,
                low: me.min(peer),
                high: me.max(peer),
                cookie: None,
            },
            state: BindState::Binding { sent: 0 },
            next: Some(now),
        }
    }

    /// Where the binding is.
    pub fn state(&self) -> BindState {
        self.state
    }

    /// The pairing token.
    pub fn token(&self) -> [u8; 16] {
        self.bind.token
    }

    /// Our channel, once bound.
    pub fn channel(&self) -> Option<u32> {
        match self.state {
            BindState::Bound { channel } => Some(channel),
            _ => None,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// A bind frame to send at `now`, if one is due (first bind,
    /// retransmission, refresh).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next.is_none_or(|at| now < at) {
            return None;
        }
        match self.state {
            BindState::Binding { sent } if sent >= MAX_BINDS => {
                self.state = BindState::Silent;
                self.next = None;
                None
            }
            BindState::Binding { sent } => {
                self.state = BindState::Binding { sent: sent + 1 };
                self.next = Some(now + BIND_BACKOFF.delay(sent));
                Some(Frame::Bind(self.bind).encode())
            }
            BindState::Bound { .. } => {
                // Refresh: one bind, answered like the first. A lost one is
                // retried a second later; the lifetime leaves room for many.
                self.next = Some(now + Duration::from_secs(1));
                Some(Frame::Bind(self.bind).encode())
            }
            _ => {
                self.next = None;
                None
            }
        }
    }

    /// The relay bound us on `channel` for `lifetime_s` seconds; if we
    /// released the path meanwhile, the release frame to send for it.
    pub fn on_bound(&mut self, now: Instant, channel: u32, lifetime_s: u16) -> Option<Vec<u8>> {
        match self.state {
            BindState::Binding { .. } | BindState::Bound { .. } => {
                self.state = BindState::Bound { channel };
                let half = Duration::from_secs(u64::from(lifetime_s.max(2)) / 2);
                self.next = Some(now + half);
                None
            }
            BindState::Released => Some(
                Frame::Release {
                    token: self.bind.token,
                    channel,
                }
                .encode(),
            ),
            BindState::Refused(_) | BindState::Silent => None,
        }
    }

    /// The relay challenged our bind: the bind with its cookie, to send
    /// now, unless we sent that cookie already (a repeated challenge) or
    /// the path is over.
    pub fn on_challenge(&mut self, cookie: Cookie) -> Option<Vec<u8>> {
        let live = matches!(
            self.state,
            BindState::Binding { .. } | BindState::Bound { .. }
        );
        if !live || self.bind.cookie == Some(cookie) {
            return None;
        }
        self.bind.cookie = Some(cookie);
        Some(Frame::Bind(self.bind).encode())
    }

    /// The relay refused the bind that carried `cookie`; true if that
    /// ended the path (it echoes our cookie and we were still binding).
    pub fn on_refused(&mut self, cookie: Cookie, reason: RelayRefusal) -> bool {
        let ours = self.bind.cookie == Some(cookie);
        if ours && matches!(self.state, BindState::Binding { .. }) {
            self.state = BindState::Refused(reason);
            self.next = None;
            return true;
        }
        false
    }

    /// `payload` (a datagram str0m sends from [`local`](Self::local)) as
    /// a data frame for the relay; `None` until bound.
    pub fn wrap(&self, payload: &[u8]) -> Option<Vec<u8>> {
        self.channel().map(|channel| data_frame(channel, payload))
    }

    /// Ends the binding: the release frame to send, if it was bound.
    pub fn release(&mut self) -> Option<Vec<u8>> {
        let frame = self.channel().map(|channel| {
            Frame::Release {
                token: self.bind.token,
                channel,
            }
            .encode()
        });
        self.state = BindState::Released;
        self.next = None;
        frame
    }

    /// True while the path may still carry traffic (binding or bound).
    pub fn usable(&self) -> bool {
        matches!(
            self.state,
            BindState::Binding { .. } | BindState::Bound { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(now: Instant) -> RelayPath {
        let relay: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        RelayPath::new(
            now,
            relay,
            relay,
            9,
            (NodeId([2; 32]), NodeId([1; 32])),
            [5; 16],
        )
    }

    #[test]
    fn binds_back_off_then_give_up_on_a_silent_relay() {
        let start = Instant::now();
        let mut path = path(start);
        let mut sent_at = Vec::new();
        while let Some(now) = path.poll_timeout() {
            if path.handle_timeout(now).is_some() {
                sent_at.push(now - start);
            }
        }
        let ms: Vec<u128> = sent_at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 250, 750, 1750, 3750, 5750]);
        assert_eq!(path.state(), BindState::Silent);
        assert_eq!(path.wrap(b"x"), None);
    }

    #[test]
    fn a_bound_path_wraps_refreshes_and_releases() {
        let start = Instant::now();
        let mut path = path(start);
        let bind = path.handle_timeout(start).unwrap();
        let Ok(Frame::Bind(sent)) = Frame::decode(&bind) else {
            panic!("a bind");
        };
        assert_eq!((sent.low, sent.high), (NodeId([1; 32]), NodeId([2; 32])));
        assert_eq!(sent.cookie, None, "the first bind has no cookie");
        let again = path.on_challenge([4; 16]).expect("bind with the cookie");
        let Ok(Frame::Bind(echo)) = Frame::decode(&again) else {
            panic!("a bind");
        };
        assert_eq!(echo.cookie, Some([4; 16]));
        assert_eq!(path.on_challenge([4; 16]), None, "a repeated challenge");
        assert_eq!(
            path.wrap(b"x"),
            None,
            "nothing is sent before the relay binds us"
        );
        assert_eq!(path.on_bound(start, 77, 600), None);
        assert_eq!(path.wrap(b"x"), Some(data_frame(77, b"x")));
        assert_eq!(path.poll_timeout(), Some(start + Duration::from_secs(300)));
        let refresh = path
            .handle_timeout(start + Duration::from_secs(300))
            .expect("refresh");
        assert!(
            matches!(Frame::decode(&refresh), Ok(Frame::Bind(b)) if b.cookie == Some([4; 16])),
            "a refresh carries the cookie"
        );
        let release = path.release().unwrap();
        assert_eq!(
            Frame::decode(&release),
            Ok(Frame::Release {
                token: [5; 16],
                channel: 77
            })
        );
        assert!(!path.usable());
        assert_eq!(path.poll_timeout(), None);
    }

    #[test]
    fn a_refusal_ends_the_path() {
        let start = Instant::now();
        let mut path = path(start);
        path.handle_timeout(start);
        assert!(
            !path.on_refused([0; 16], RelayRefusal::NotARelay),
            "a refusal before any cookie is a forgery"
        );
        path.on_challenge([3; 16]);
        assert!(
            !path.on_refused([9; 16], RelayRefusal::NotARelay),
            "another cookie"
        );
        assert!(matches!(path.state(), BindState::Binding { .. }));
        assert!(path.on_refused([3; 16], RelayRefusal::NotARelay));
        assert_eq!(path.state(), BindState::Refused(RelayRefusal::NotARelay));
        assert_eq!(path.poll_timeout(), None);
        assert_eq!(path.on_bound(start, 1, 600), None);
        assert_eq!(path.channel(), None, "a late bound does not revive it");
    }

    #[test]
    fn a_binding_that_arrives_after_the_release_is_released_at_once() {
        let start = Instant::now();
        let mut path = path(start);
        path.handle_timeout(start);
        assert_eq!(path.release(), None, "nothing bound yet");
        let release = path.on_bound(start, 12, 600).expect("release it");
        assert_eq!(
            Frame::decode(&release),
            Ok(Frame::Release {
                token: [5; 16],
                channel: 12
            })
        );
        assert_eq!(path.state(), BindState::Released);
    }
}
