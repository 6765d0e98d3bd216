//! Deterministic random bytes for the sans-IO core.
//!
//! The core never asks the operating system for randomness: the driver seeds
//! an [`Rng`] once from the OS, tests seed it with a constant, and everything
//! after that is reproducible. The generator is HMAC-SHA256 in counter mode
//! (block *i* = HMAC(seed, *i*)), so its output is unpredictable to anyone who
//! does not know the seed, as STUN transaction IDs must be (RFC 5389 §6).

use ring::hmac;

/// A seeded stream of pseudo-random bytes.
pub struct Rng {
    key: hmac::Key,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &seed),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.used == self.block.len() {
                self.refill();
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    /// The next `N` bytes, for example a 12-byte STUN transaction ID.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        self.fill(&mut out);
        out
    }

    /// An independent generator seeded from this one, for a component that
    /// needs its own stream.
    pub fn fork(&mut self) -> Self {
        Self::from_seed(self.bytes())
    }

    fn refill(&mut self) {
        let tag = hmac::sign(&self.key, &self.counter.to_be_bytes());
        self.block.copy_from_slice(tag.as_ref());
        self.counter += 1;
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = Rng::from_seed([1; 32]);
        let mut b = Rng::from_seed([1; 32]);
        let mut c = Rng::from_seed([2; 32]);
        let (x, y, z): ([u8; 100], [u8; 100], [u8; 100]) = (a.bytes(), b.bytes(), c.bytes());
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_ne!(x[..32], x[32..64], "consecutive blocks differ");
    }

    #[test]
    fn forks_are_independent_of_the_parent() {
        let mut parent = Rng::from_seed([7; 32]);
        let mut child = parent.fork();
        assert_ne!(parent.bytes::<16>(), child.bytes::<16>());
    }
}
