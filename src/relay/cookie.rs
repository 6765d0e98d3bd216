//! The relay's stateless return-routability check, `protocol-spec.md`
//! §12.2: a first bind is answered with a *cookie*, the first 16 bytes of
//! HMAC-SHA256(secret, [`COOKIE_LABEL`] ‖ source ‖ token), and only a bind
//! that echoes it can create or refresh a binding. A spoofed source never
//! sees its cookie, so it cannot make the relay keep state for (or send
//! data to) an address that did not ask (the role of TURN's 401 + NONCE).
//!
//! The relay keeps two secrets: the current one and the one before it.
//! A new secret is drawn every [`COOKIE_ROTATION`], so a cookie is
//! accepted for one to two rotations and then earns a fresh challenge.
//! Sans-IO: rotation happens when the jar is used at a later `now`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::hmac;

use super::addr_bytes;
use super::wire::{COOKIE_LEN, Cookie, Token};
use crate::addr::canonical;
use crate::rng::Rng;

/// Domain-separation label of relay cookies.
pub const COOKIE_LABEL: &[u8] = b"tinynode relay cookie v1";
/// How often the relay draws a new cookie secret.
pub const COOKIE_ROTATION: Duration = Duration::from_secs(120);

/// The relay's cookie secrets.
pub struct CookieJar {
    rng: Rng,
    current: [u8; 32],
    previous: Option<[u8; 32]>,
    /// When `current` was drawn; `None` until first used.
    drawn_at: Option<Instant>,
}

impl CookieJar {
    /// A jar whose secrets come from `rng`.
    pub fn new(mut rng: Rng) -> Self {
        let current = rng.bytes();
        Self {
            rng,
            current,
            previous: None,
            drawn_at: None,
        }
    }

    /// The cookie for `source` binding under `token` at `now`.
    pub fn issue(&mut self, now: Instant, source: SocketAddr, token: &Token) -> Cookie {
        self.rotate(now);
        cookie(&self.current, source, token)
    }

    /// True if `cookie` is one this jar issued to `source` for `token`
    /// under its current or previous secret.
    pub fn check(
        &mut self,
        now: Instant,
        source: SocketAddr,
        token: &Token,
        cookie: &Cookie,
    ) -> bool {
        self.rotate(now);
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|key| same(&self::cookie(key, source, token), cookie))
    }

    fn rotate(&mut self, now: Instant) {
        let drawn_at = *self.drawn_at.get_or_insert(now);
        if now < drawn_at + COOKIE_ROTATION {
            return;
        }
        let fresh = self.rng.bytes();
        let old = std::mem::replace(&mut self.current, fresh);
        // A jar unused for two rotations keeps nothing from before.
        self.previous = (now < drawn_at + 2 * COOKIE_ROTATION).then_some(old);
        self.drawn_at = Some(now);
    }
}

/// The cookie `secret` gives `source` binding under `token`: the first 16
/// bytes of HMAC-SHA256(secret, [`COOKIE_LABEL`] ‖ source ‖ token), the
/// source written as in §12.3's synthetic addresses.
pub fn cookie(secret: &[u8; 32], source: SocketAddr, token: &Token) -> Cookie {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(COOKIE_LABEL);
    context.update(&addr_bytes(canonical(source)));
    context.update(token);
    let tag = context.sign();
    let mut out = [0; COOKIE_LEN];
    out.copy_from_slice(&tag.as_ref()[..COOKIE_LEN]);
    out
}

/// Compares without an early exit, so timing tells nothing about how much
/// of a guessed cookie was right.
fn same(a: &Cookie, b: &Cookie) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_cookie_is_bound_to_its_source_and_token() {
        let now = Instant::now();
        let mut jar = CookieJar::new(Rng::from_seed([1; 32]));
        let source = addr("198.51.100.1:4000");
        let cookie = jar.issue(now, source, &[7; 16]);
        assert!(jar.check(now, source, &[7; 16], &cookie));
        assert!(!jar.check(now, addr("198.51.100.1:4001"), &[7; 16], &cookie));
        assert!(!jar.check(now, addr("198.51.100.2:4000"), &[7; 16], &cookie));
        assert!(!jar.check(now, source, &[8; 16], &cookie));
        let mut flipped = cookie;
        flipped[15] ^= 1;
        assert!(!jar.check(now, source, &[7; 16], &flipped));
        // A v4-mapped spelling of the source is the same source.
        assert!(jar.check(now, addr("[::ffff:198.51.100.1]:4000"), &[7; 16], &cookie));
    }

    #[test]
    fn a_cookie_lives_one_to_two_rotations() {
        let start = Instant::now();
        let mut jar = CookieJar::new(Rng::from_seed([1; 32]));
        let source = addr("[2001:db8::1]:9");
        let cookie = jar.issue(start, source, &[1; 16]);
        let after_one = start + COOKIE_ROTATION;
        assert!(
            jar.check(after_one, source, &[1; 16], &cookie),
            "previous secret"
        );
        assert_ne!(jar.issue(after_one, source, &[1; 16]), cookie);
        let after_two = after_one + COOKIE_ROTATION;
        assert!(
            !jar.check(after_two, source, &[1; 16], &cookie),
            "two rotations on"
        );
    }

    #[test]
    fn a_jar_unused_for_long_forgets_every_old_secret() {
        let start = Instant::now();
        let mut jar = CookieJar::new(Rng::from_seed([2; 32]));
        let source = addr("192.0.2.1:1");
        let cookie = jar.issue(start, source, &[1; 16]);
        let much_later = start + 5 * COOKIE_ROTATION;
        assert!(!jar.check(much_later, source, &[1; 16], &cookie));
    }
}
