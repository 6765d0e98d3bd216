//! Announce tokens (as in BitTorrent's BEP 5): a `Peers` reply carries a
//! token bound to the requester's address, and only an `Announce` from that
//! same address with that token is accepted, so nobody can announce for an
//! address they do not receive on.
//!
//! token = first 16 bytes of HMAC-SHA256(secret, address bytes), where the
//! address bytes are the 4 or 16 IP bytes followed by the big-endian port.
//! The secret rotates every [`TOKEN_ROTATION`]; tokens from the current and
//! the previous secret are accepted, so a token lives 5 to 10 minutes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ring::hmac;

use super::wire::TOKEN_LEN;
use crate::ct::constant_time_eq;

/// How often the token secret changes.
pub const TOKEN_ROTATION: Duration = Duration::from_secs(5 * 60);

/// Issues and checks announce tokens.
pub struct Tokens {
    current: hmac::Key,
    previous: hmac::Key,
    rotate_at: Instant,
}

impl Tokens {
    /// Tokens with secrets `first` (current) and `second` (previous).
    pub fn new(now: Instant, first: [u8; 32], second: [u8; 32]) -> Self {
        Self {
            current: hmac::Key::new(hmac::HMAC_SHA256, &first),
            previous: hmac::Key::new(hmac::HMAC_SHA256, &second),
            rotate_at: now + TOKEN_ROTATION,
        }
    }

    /// When the next rotation is due.
    pub fn rotate_at(&self) -> Instant {
        self.rotate_at
    }

    /// Replaces the previous secret with the current one and the current one
    /// with `fresh`.
    pub fn rotate(&mut self, now: Instant, fresh: [u8; 32]) {
        self.previous =
            std::mem::replace(&mut self.current, hmac::Key::new(hmac::HMAC_SHA256, &fresh));
        self.rotate_at = now + TOKEN_ROTATION;
    }

    /// The token for `addr`.
    pub fn issue(&self, addr: SocketAddr) -> [u8; TOKEN_LEN] {
        token(&self.current, addr)
    }

    /// True if `candidate` was issued to `addr` under the current or previous secret.
    pub fn check(&self, addr: SocketAddr, candidate: &[u8; TOKEN_LEN]) -> bool {
        [&self.current, &self.previous]
            .iter()
            .any(|key| constant_time_eq(&token(key, addr), candidate))
    }
}

fn token(key: &hmac::Key, addr: SocketAddr) -> [u8; TOKEN_LEN] {
    let mut context = hmac::Context::with_key(key);
    // The canonical form (`protocol-spec.md` §1.1): a v4-mapped source
    // gets the token of its IPv4 address.
    match crate::addr::canonical_ip(addr.ip()) {
        IpAddr::V4(ip) => context.update(&ip.octets()),
        IpAddr::V6(ip) => context.update(&ip.octets()),
    }
    context.update(&addr.port().to_be_bytes());
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&context.sign().as_ref()[..TOKEN_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_address_and_survive_one_rotation() {
        let now = Instant::now();
        let a: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:5001".parse().unwrap();
        let mut tokens = Tokens::new(now, [1; 32], [2; 32]);
        let token = tokens.issue(a);
        assert!(tokens.check(a, &token));
        assert!(!tokens.check(b, &token));
        tokens.rotate(now + TOKEN_ROTATION, [3; 32]);
        assert!(tokens.check(a, &token), "previous secret still accepted");
        tokens.rotate(now + 2 * TOKEN_ROTATION, [4; 32]);
        assert!(!tokens.check(a, &token), "two rotations later it is gone");
    }
}
