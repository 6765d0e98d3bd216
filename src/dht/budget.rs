//! What others' requests may cost a node, for the whole node
//! (`protocol-spec.md` §7.2): per-source rate limits do not stop a flood
//! from spoofed or many sources, so the work such requests make us do is
//! budgeted here. Requests for others (verification pings, `ReachMe`
//! probes) go out only while three quarters of the request table stay free
//! for our own work and within [`REMOTE_TRIGGERED_RATE`]; Ed25519 checks of
//! announces stay within [`SIGNATURE_CHECKS`]; and our own requests that
//! find the table full are counted for a throttled warning.

use std::time::Instant;

use super::rpc::REMOTE_TRIGGERED_ROOM;
use crate::ratelimit::{Limits, RateLimiter};
use crate::throttle::Throttle;

/// Requests others' requests may make us send (verification pings and
/// `ReachMe` probes), a second, for the whole node, and the burst.
pub const REMOTE_TRIGGERED_RATE: Limits = Limits {
    rate_per_second: 50,
    burst: 100,
    max_sources: 1,
};

/// Ed25519 verifications of `SignedAnnounce`s a second, for the whole
/// node, and the burst: about 5 ms of CPU a second on x86-64, some tens of
/// ms on a small ARM core.
pub const SIGNATURE_CHECKS: Limits = Limits {
    rate_per_second: 100,
    burst: 200,
    max_sources: 1,
};

/// The node's budgets against floods.
pub(super) struct Budgets {
    remote_triggered: RateLimiter<()>,
    /// Ed25519 checks of announces, handed to the server.
    pub(super) signature_checks: RateLimiter<()>,
    table_full: Throttle,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            remote_triggered: RateLimiter::new(REMOTE_TRIGGERED_RATE),
            signature_checks: RateLimiter::new(SIGNATURE_CHECKS),
            table_full: Throttle::default(),
        }
    }
}

impl Budgets {
    /// True if a request someone else's request asks of us may go out at
    /// `now`, with `in_flight` requests of ours out: fewer than
    /// [`REMOTE_TRIGGERED_ROOM`] in flight, within [`REMOTE_TRIGGERED_RATE`].
    pub(super) fn may_send_for_others(&mut self, now: Instant, in_flight: usize) -> bool {
        in_flight < REMOTE_TRIGGERED_ROOM && self.remote_triggered.allow(now, (), 1)
    }

    /// Counts one own request not sent for a full table; the count so far
    /// when this one should be warned about (1st, 2nd, 4th …).
    pub(super) fn table_full(&mut self) -> Option<u64> {
        self.table_full.tick()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_for_others_leave_three_quarters_of_the_table_and_have_a_rate() {
        let now = Instant::now();
        let mut budgets = Budgets::default();
        let allowed = (0..1000)
            .filter(|_| budgets.may_send_for_others(now, 0))
            .count();
        assert_eq!(allowed as u64, REMOTE_TRIGGERED_RATE.burst, "the burst");
        let later = now + Duration::from_secs(10);
        assert!(
            !budgets.may_send_for_others(later, REMOTE_TRIGGERED_ROOM),
            "no room to spare"
        );
        assert!(budgets.may_send_for_others(later, REMOTE_TRIGGERED_ROOM - 1));
    }

    #[test]
    fn a_full_table_is_warned_about_at_powers_of_two() {
        let mut budgets = Budgets::default();
        let warned: Vec<u64> = (0..10).filter_map(|_| budgets.table_full()).collect();
        assert_eq!(warned, [1, 2, 4, 8]);
    }
}
