//! Repeated warnings, throttled: a condition that can recur once per
//! datagram (a full request table under a flood, a firewall that refuses
//! every send, a full send queue) is logged at its 1st, 2nd, 4th, 8th …
//! occurrence with the count so far, so a flood costs a few dozen log
//! lines, not one per datagram, and the first one is never hidden.
//!
//! A leaf: imports nothing from the crate.

/// Counts occurrences of one condition and says which to log.
#[derive(Clone, Copy, Debug, Default)]
pub struct Throttle {
    count: u64,
}

impl Throttle {
    /// Counts one occurrence; the count so far when this one should be
    /// logged (a power of two), else `None`.
    pub fn tick(&mut self) -> Option<u64> {
        self.count += 1;
        self.count.is_power_of_two().then_some(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_at_powers_of_two() {
        let mut throttle = Throttle::default();
        let logged: Vec<u64> = (0..100).filter_map(|_| throttle.tick()).collect();
        assert_eq!(logged, [1, 2, 4, 8, 16, 32, 64]);
    }
}
