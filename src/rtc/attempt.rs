//! A connection attempt's life, apart from str0m: its phase, its connect
//! deadline and when the offerer sends its offer again. Pure: plain
//! `Instant`s in, decisions out.
//!
//! An attempt not open [`CONNECT_TIMEOUT`] after it was created fails; an
//! attempt still hearing from its peer is making progress on a lossy path,
//! so every datagram from the peer moves the deadline to
//! [`PROGRESS_GRACE`] later, up to [`CONNECT_LIMIT`] after creation. While
//! the offerer waits for the answer it offers again at
//! [`OFFER_RESENDS`] (a lost offer or answer costs a second, not the
//! attempt).

use std::time::{Duration, Instant};

/// Time from creating a connection (the offer) to an open data channel
/// before the attempt fails, unless the peer is heard from.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An attempt that hears from its peer keeps at least this long to finish.
pub const PROGRESS_GRACE: Duration = Duration::from_secs(5);
/// The longest any attempt takes, progress or not.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// When, after the offer, the offerer sends it again while no answer has
/// come (each a new signal of the same session; the answerer answers a
/// repeated offer with its answer again).
pub const OFFER_RESENDS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(7),
];

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Offered; waiting for the answer.
    AwaitingAnswer,
    /// Both sides' parameters applied: ICE, DTLS and SCTP under way.
    Connecting,
    /// The data channel is open.
    Open,
}

/// One attempt's phase, deadline and offer resends.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    phase: Phase,
    created: Instant,
    deadline: Instant,
    resends: usize,
}

impl Attempt {
    /// An attempt created at `now`: the offerer's awaits the answer, the
    /// answerer's starts [`Phase::Connecting`] once it applied the offer.
    pub fn new(now: Instant) -> Self {
        Self {
            phase: Phase::AwaitingAnswer,
            created: now,
            deadline: now + CONNECT_TIMEOUT,
            resends: 0,
        }
    }

    /// Where the attempt is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once the data channel is open.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Both sides' parameters are applied.
    pub fn start(&mut self) {
        self.phase = Phase::Connecting;
    }

    /// The data channel opened: no deadline from now on.
    pub fn open(&mut self) {
        self.phase = Phase::Open;
    }

    /// A datagram from the peer arrived at `now`: an attempt making
    /// progress gets [`PROGRESS_GRACE`] more, within [`CONNECT_LIMIT`].
    pub fn heard_from_peer(&mut self, now: Instant) {
        if !self.is_open() {
            let limit = self.created + CONNECT_LIMIT;
            self.deadline = self.deadline.max(now + PROGRESS_GRACE).min(limit);
        }
    }

    /// True when the attempt is past its deadline without opening.
    pub fn expired(&self, now: Instant) -> bool {
        !self.is_open() && now >= self.deadline
    }

    /// True (once per due resend) when the offer should go again at `now`.
    pub fn take_resend(&mut self, now: Instant) -> bool {
        let due = self.next_resend().is_some_and(|at| now >= at);
        self.resends += usize::from(due);
        due
    }

    /// When the offer is due again: while awaiting the answer, at the next
    /// of [`OFFER_RESENDS`].
    fn next_resend(&self) -> Option<Instant> {
        let offset = OFFER_RESENDS.get(self.resends)?;
        (self.phase == Phase::AwaitingAnswer).then_some(self.created + *offset)
    }

    /// The next instant the attempt decides something: its deadline (until
    /// open) or its next resend.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = (!self.is_open()).then_some(self.deadline);
        deadline.into_iter().chain(self.next_resend()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn an_unanswered_offer_goes_again_on_schedule_then_expires() {
        let start = Instant::now();
        let mut attempt = Attempt::new(start);
        let mut resent = Vec::new();
        let mut now = start;
        while !attempt.expired(now) {
            now = attempt.poll_timeout().expect("a deadline until open");
            if attempt.take_resend(now) {
                resent.push(now - start);
            }
            assert!(!attempt.take_resend(now), "once per resend");
        }
        assert_eq!(resent, OFFER_RESENDS);
        assert_eq!(now - start, CONNECT_TIMEOUT);
    }

    #[test]
    fn progress_extends_the_deadline_up_to_the_limit() {
        let start = Instant::now();
        let mut attempt = Attempt::new(start);
        attempt.start();
        assert!(!attempt.take_resend(start + SECOND), "answered: no resend");
        attempt.heard_from_peer(start + 8 * SECOND);
        assert!(!attempt.expired(start + 12 * SECOND));
        assert!(attempt.expired(start + 13 * SECOND));
        for second in 9..40 {
            attempt.heard_from_peer(start + second * SECOND);
        }
        assert_eq!(attempt.poll_timeout(), Some(start + CONNECT_LIMIT));
    }

    #[test]
    fn an_open_attempt_has_no_deadline() {
        let start = Instant::now();
        let mut attempt = Attempt::new(start);
        attempt.start();
        attempt.open();
        assert_eq!(attempt.poll_timeout(), None);
        assert!(!attempt.expired(start + 10 * CONNECT_LIMIT));
        attempt.heard_from_peer(start + CONNECT_LIMIT);
        assert_eq!(attempt.poll_timeout(), None);
    }
}
