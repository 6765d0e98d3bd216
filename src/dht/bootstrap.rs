//! Joining the DHT: ping the configured bootstrap nodes; the first answer
//! starts the self-lookup; when every ping of an attempt failed, try again
//! after [`BOOTSTRAP_BACKOFF`]; when the routing table empties later, start
//! over. A small state machine of its own; the engine sends the pings and
//! runs the lookup. The Mainline client (`mainline/engine.rs`) joins the
//! same way.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;

/// Waits between bootstrap attempts that got no answer: 1 s doubling to 60 s.
pub const BOOTSTRAP_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// The bootstrap's state.
pub(crate) struct Bootstrap {
    addrs: Vec<SocketAddr>,
    attempt: u32,
    next_at: Option<Instant>,
    outstanding: usize,
    answered: bool,
}

/// An attempt that failed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failed {
    /// Attempts so far.
    pub(crate) attempt: u32,
    /// Wait before the next.
    pub(crate) retry_in: Duration,
}

impl Bootstrap {
    /// Bootstraps from `addrs`, the first attempt at `now` (none without addresses).
    pub(crate) fn new(now: Instant, addrs: Vec<SocketAddr>) -> Self {
        let next_at = (!addrs.is_empty()).then_some(now);
        Self {
            addrs,
            attempt: 0,
            next_at,
            outstanding: 0,
            answered: false,
        }
    }

    /// The addresses to ping when an attempt is due at `now`.
    pub(crate) fn due(&mut self, now: Instant) -> Option<Vec<SocketAddr>> {
        if self.next_at.is_none_or(|at| now < at) {
            return None;
        }
        self.next_at = None;
        self.outstanding = self.addrs.len();
        Some(self.addrs.clone())
    }

    /// The addresses it bootstraps from.
    pub(crate) fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Which attempt is under way (1-based).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt + 1
    }

    /// A bootstrap node answered; true for the first answer, which starts
    /// the self-lookup.
    pub(crate) fn on_answer(&mut self) -> bool {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.answered {
            return false;
        }
        self.answered = true;
        self.attempt = 0;
        true
    }

    /// A bootstrap ping failed; the attempt's failure once all have.
    pub(crate) fn on_failure(&mut self, now: Instant) -> Option<Failed> {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.outstanding > 0 || self.answered {
            return None;
        }
        self.attempt += 1;
        let retry_in = BOOTSTRAP_BACKOFF.delay(self.attempt - 1);
        self.next_at = Some(now + retry_in);
        Some(Failed {
            attempt: self.attempt,
            retry_in,
        })
    }

    /// The routing table emptied: start over now; false when there is
    /// nothing to start over from.
    pub(crate) fn restart(&mut self, now: Instant) -> bool {
        if !self.answered || self.addrs.is_empty() {
            return false;
        }
        self.answered = false;
        self.next_at = Some(now);
        true
    }

    /// When [`due`](Self::due) must next be asked.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Vec<SocketAddr> {
        vec![
            "192.0.2.1:1".parse().unwrap(),
            "192.0.2.2:1".parse().unwrap(),
        ]
    }

    #[test]
    fn failed_attempts_back_off_and_the_first_answer_ends_them() {
        let now = Instant::now();
        let mut bootstrap = Bootstrap::new(now, addrs());
        let mut t = now;
        let mut waits = Vec::new();
        for _ in 0..8 {
            assert_eq!(bootstrap.due(t), Some(addrs()));
            assert_eq!(bootstrap.on_failure(t), None, "one ping still out");
            let failed = bootstrap.on_failure(t).expect("both failed");
            waits.push(failed.retry_in.as_secs());
            assert_eq!(bootstrap.due(t), None, "not before the backoff");
            t = bootstrap.poll_timeout().unwrap();
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(bootstrap.due(t), Some(addrs()));
        assert!(bootstrap.on_answer());
        assert!(
            !bootstrap.on_answer(),
            "only the first answer starts the self-lookup"
        );
        assert_eq!(bootstrap.on_failure(t), None);
        assert_eq!(bootstrap.poll_timeout(), None);
        assert!(bootstrap.restart(t));
        assert_eq!(bootstrap.due(t), Some(addrs()));
        assert_eq!(bootstrap.attempt(), 1, "a restart begins a fresh schedule");
    }

    #[test]
    fn nothing_to_bootstrap_from_is_never_due() {
        let now = Instant::now();
        let mut bootstrap = Bootstrap::new(now, Vec::new());
        assert_eq!(bootstrap.poll_timeout(), None);
        assert_eq!(bootstrap.due(now), None);
        assert!(!bootstrap.restart(now));
    }
}
