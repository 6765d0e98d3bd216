//! How many times each datagram of a connection goes out (spec §6.6).
//!
//! Copies pay where a lost datagram costs a retransmission timer: the
//! handshake's flights, the last datagram of a burst (no later packet
//! reports its loss) and small messages, on a link that loses datagrams
//! at random. They do not pay, and are not sent, on a clean link (the
//! peer's report says nothing was lost), through a relay (its pair rate
//! is the limit, and a copy halves it), or when loss looks like
//! congestion: the round trip rising above the path's own, or our send
//! queue overflowing. What copies remain are paid from a byte budget,
//! earned as a share of the bytes sent once ([`COPY_SHARE_PERCENT`]).

/// Most copies of one datagram: beyond three, a link loses so much that
/// more copies mostly add load.
pub use super::link::MAX_COPIES;

/// Copies of each handshake datagram, and of priority datagrams until the
/// peer's first loss figure.
pub const UNMEASURED_COPIES: u8 = 2;
/// The chance, in parts per million, that every copy of a datagram is
/// lost that the sender aims to stay under. SCTP's congestion control
/// halves its window at each loss it sees and regrows it by one packet per
/// round trip, so on a long path even rare losses cap the rate (Reno's
/// `rate ≈ 1.22 × MTU / (RTT × √p)`: 1.3 MB/s at 50 ms and 0.04 %): the
/// target is the loss at which that cap is about 10 MB/s at 50 ms.
pub const RESIDUAL_PPM: u64 = 10;
/// Copies may add at most this share of the bytes sent once.
pub const COPY_SHARE_PERCENT: u64 = 200;
/// A path with at least this round trip is long: before its first loss
/// figure, bulk datagrams are copied too.
pub const LONG_PATH: std::time::Duration = std::time::Duration::from_millis(10);
/// Most budget saved up, in bytes.
pub const BUDGET_CAP: u64 = 64 * 1024;
/// A datagram this short or shorter is a small message (control, acks,
/// chat), copied first.
pub const SMALL_DATAGRAM: usize = 300;

/// Copies of each datagram for a link that loses `loss_permille` of them:
/// the fewest (1 to [`MAX_COPIES`]) for which losing every copy, `p^n`,
/// stays at or under `RESIDUAL_PPM`; a link that loses nothing
/// measurable (0 ‰) gets one.
pub fn copies_for(loss_permille: u16) -> u8 {
    let p = u64::from(loss_permille.min(1000));
    (1..MAX_COPIES)
        .find(|&n| {
            let n = u32::from(n);
            p.pow(n) * 1_000_000 <= RESIDUAL_PPM * 1000u64.pow(n)
        })
        .unwrap_or(MAX_COPIES)
}

/// What a datagram is, for the copy decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sent while the connection is being set up.
    Handshake,
    /// Small, or the last of a burst: its loss costs a timer.
    Priority,
    /// The middle of a burst: a later packet reports its loss.
    Bulk,
}

/// The copy decision of one connection.
#[derive(Clone, Debug)]
pub struct CopyPolicy {
    /// Copies the peer's last loss figure calls for.
    wanted: u8,
    /// The peer has given a loss figure.
    measured: bool,
    /// The path goes through a relay.
    relayed: bool,
    /// Loss looks like congestion now.
    congested: bool,
    /// The path's round trip is at least [`LONG_PATH`].
    long_path: bool,
    /// Bytes of copies that may still be sent.
    budget: u64,
}

impl Default for CopyPolicy {
    fn default() -> Self {
        Self {
            wanted: UNMEASURED_COPIES,
            measured: false,
            relayed: false,
            congested: false,
            long_path: false,
            budget: 0,
        }
    }
}

impl CopyPolicy {
    /// The peer's figure for our datagrams.
    pub fn on_loss(&mut self, loss_permille: u16) {
        self.wanted = copies_for(loss_permille);
        self.measured = true;
    }

    /// Whether the peer has given a loss figure yet.
    pub fn measured(&self) -> bool {
        self.measured
    }

    /// Whether the path goes through a relay.
    pub fn set_relayed(&mut self, relayed: bool) {
        self.relayed = relayed;
    }

    /// The path's smallest round trip so far.
    pub fn set_long_path(&mut self, min_rtt: Option<std::time::Duration>) {
        self.long_path = min_rtt.is_some_and(|rtt| rtt >= LONG_PATH);
    }

    /// Whether loss looks like congestion.
    pub fn set_congested(&mut self, congested: bool) {
        self.congested = congested;
    }

    /// Copies the link calls for now, before budget and kind: what the
    /// reports declare.
    pub fn wanted(&self) -> u8 {
        if self.relayed || self.congested {
            1
        } else {
            self.wanted
        }
    }

    /// How many times to send a datagram of `len` bytes of `kind`.
    pub fn copies(&mut self, len: usize, kind: Kind) -> u8 {
        let len = len as u64;
        match kind {
            Kind::Handshake => return if self.relayed { 1 } else { UNMEASURED_COPIES },
            Kind::Priority | Kind::Bulk => {
                self.budget = (self.budget + len * COPY_SHARE_PERCENT / 100).min(BUDGET_CAP);
            }
        }
        let wanted = self.wanted();
        // Bulk datagrams leave half the budget to the priority ones. Before
        // the link is measured, bulk is copied on a long path only: there
        // slow start sends little before the first figure, and a loss in
        // it leaves SCTP's window small for hundreds of round trips; on a
        // short one a clean link would pay for much, and SCTP regrows fast.
        let reserve = if kind == Kind::Bulk {
            BUDGET_CAP / 2
        } else {
            0
        };
        let allowed = self.measured || kind == Kind::Priority || self.long_path;
        if wanted == 1 || !allowed || len == 0 {
            return 1;
        }
        // As many extra copies as wanted and the budget pays for.
        let affordable = self.budget.saturating_sub(reserve) / len;
        let extra = u64::from(wanted - 1).min(affordable);
        self.budget -= extra * len;
        1 + u8::try_from(extra).unwrap_or(0)
    }
}

/// Kind of an open connection's datagram of `len` bytes, `last` in its burst.
pub fn kind_of(len: usize, last: bool) -> Kind {
    if last || len <= SMALL_DATAGRAM {
        Kind::Priority
    } else {
        Kind::Bulk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_the_chance_of_losing_all_under_ten_per_million() {
        assert_eq!(copies_for(0), 1);
        assert_eq!(copies_for(1), 2, "0.1 %: one copy would lose 1,000 ppm");
        assert_eq!(copies_for(3), 2, "0.3 %: two copies lose 9 ppm");
        assert_eq!(copies_for(4), 3);
        assert_eq!(copies_for(21), 3, "2.1 %: three copies lose 9.3 ppm");
        assert_eq!(copies_for(1000), MAX_COPIES);
        assert_eq!(copies_for(u16::MAX), MAX_COPIES);
    }

    #[test]
    fn a_clean_link_sends_one_copy_of_everything_after_the_handshake() {
        let mut policy = CopyPolicy::default();
        assert_eq!(policy.copies(200, Kind::Handshake), 2);
        policy.on_loss(0);
        for _ in 0..100 {
            assert_eq!(policy.copies(1200, Kind::Bulk), 1);
            assert_eq!(policy.copies(100, Kind::Priority), 1);
        }
    }

    #[test]
    fn on_a_lossy_link_copies_stay_within_their_share_and_priority_goes_first() {
        let mut policy = CopyPolicy::default();
        policy.on_loss(200);
        let (mut sent, mut copies) = (0u64, 0u64);
        let mut tails = 0;
        for i in 0..10_000 {
            let kind = if i % 10 == 9 {
                Kind::Priority
            } else {
                Kind::Bulk
            };
            let n = policy.copies(1200, kind);
            sent += 1200;
            copies += 1200 * u64::from(n - 1);
            tails += usize::from(kind == Kind::Priority && n == MAX_COPIES);
        }
        assert!(copies * 100 <= sent * COPY_SHARE_PERCENT + BUDGET_CAP * 100);
        assert!(
            copies * 100 >= sent * (COPY_SHARE_PERCENT - 5),
            "the budget is used"
        );
        assert_eq!(tails, 1000, "every tail copied");
    }

    #[test]
    fn before_the_first_figure_only_priority_datagrams_are_copied() {
        let mut policy = CopyPolicy::default();
        for _ in 0..1000 {
            assert_eq!(policy.copies(1200, Kind::Bulk), 1);
        }
        assert_eq!(policy.copies(100, Kind::Priority), UNMEASURED_COPIES);
        policy.on_loss(0);
        assert_eq!(policy.copies(100, Kind::Priority), 1);
    }

    #[test]
    fn on_a_long_path_bulk_is_copied_until_the_first_figure() {
        let mut policy = CopyPolicy::default();
        policy.set_long_path(Some(std::time::Duration::from_millis(50)));
        let copied = (0..1000)
            .filter(|_| policy.copies(1200, Kind::Bulk) == UNMEASURED_COPIES)
            .count();
        assert!(copied > 900, "{copied}");
        policy.on_loss(0);
        assert_eq!(policy.copies(1200, Kind::Bulk), 1);
    }

    #[test]
    fn relays_and_congestion_get_one_copy() {
        let mut policy = CopyPolicy::default();
        policy.on_loss(200);
        policy.set_relayed(true);
        assert_eq!(policy.copies(300, Kind::Handshake), 1);
        for _ in 0..100 {
            assert_eq!(policy.copies(100, Kind::Priority), 1);
        }
        policy.set_relayed(false);
        policy.set_congested(true);
        assert_eq!(policy.copies(100, Kind::Priority), 1);
        policy.set_congested(false);
        assert_eq!(policy.copies(100, Kind::Priority), 3);
    }
}
