//! Loss-adaptive redundancy for one connection (spec §6.6).
//!
//! SCTP (sctp-proto, inside str0m) repairs a lost datagram either by fast
//! retransmission, which needs three later packets to report the gap, or
//! by its retransmission timer, which never fires sooner than 1 s and
//! doubles while the retransmission is lost too. On a lossy link with a
//! short round trip almost every repair is the timer's, so a few percent
//! of loss makes a transfer 50 to 100 times slower (`BENCHMARKS.md`,
//! "Lossy links"). str0m 0.25 does not let its user lower that timer.
//!
//! What tinynode controls is how many times each datagram goes out. The
//! receiver of a connection's DTLS records counts how many of them arrive
//! ([`LossMeter`], from the record numbers DTLS 1.2 sends in the clear) and
//! reports the sender's loss back on a small unreliable channel
//! ([`encode_report`]); the sender sends each datagram as many times as
//! keeps the chance that every copy is lost under [`RESIDUAL_PERMILLE`]
//! ([`copies_for`]), at most [`MAX_COPIES`]. A clean link sends one copy;
//! copies are identical DTLS records, and DTLS drops the repeats.

use std::time::Duration;

/// SCTP stream of the link channel, beside the chat channel's stream 0.
pub const LINK_STREAM: u16 = 1;
/// Label of the link channel.
pub const LINK_LABEL: &str = "tinynode-link";
/// Most copies of one datagram: beyond three, a link loses so much that
/// more copies mostly add load.
pub const MAX_COPIES: u8 = 3;
/// Copies of every datagram while a connection is being set up and until
/// the peer's first report: handshake datagrams are few, and each one lost
/// costs a retransmission timer (250 ms to 3 s).
pub const UNMEASURED_COPIES: u8 = 2;
/// The chance, in permille, that every copy of a datagram is lost that the
/// sender aims to stay under.
pub const RESIDUAL_PERMILLE: u64 = 10;
/// How long a receiver counts before it reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How long it counts before its first report on a connection: soon, so
/// a clean link stops sending two copies of everything within a moment
/// and a lossy one gets its third copy early.
pub const FIRST_REPORT_AFTER: Duration = Duration::from_millis(250);
/// Fewest datagrams a report is based on; fewer are counted on into the
/// next interval.
pub const MIN_SAMPLES: u64 = 8;
/// A record number this far past the highest counted starts a new count
/// (a new epoch, or a forged header), so one datagram cannot fake a gap.
pub const MAX_JUMP: u64 = 256;
/// Version byte of a link report.
pub const REPORT_VERSION: u8 = 1;
/// Length of a link report: version, then loss in permille (big-endian u16).
pub const REPORT_LEN: usize = 3;

/// Copies of each datagram for a link that loses `loss_permille` of them:
/// the fewest (1 to [`MAX_COPIES`]) for which losing every copy, `p^n`,
/// stays at or under [`RESIDUAL_PERMILLE`].
pub fn copies_for(loss_permille: u16) -> u8 {
    let p = u64::from(loss_permille.min(1000));
    (1..MAX_COPIES)
        .find(|&n| p.pow(u32::from(n)) <= RESIDUAL_PERMILLE * 1000u64.pow(u32::from(n) - 1))
        .unwrap_or(MAX_COPIES)
}

/// A link report: the fraction, in permille, of the peer's datagrams that
/// did not arrive.
pub fn encode_report(loss_permille: u16) -> [u8; REPORT_LEN] {
    let [high, low] = loss_permille.min(1000).to_be_bytes();
    [REPORT_VERSION, high, low]
}

/// Reads a link report; `None` for anything but a version-1 report of at
/// most 1000 permille.
pub fn decode_report(data: &[u8]) -> Option<u16> {
    match *data {
        [REPORT_VERSION, high, low] => {
            let loss = u16::from_be_bytes([high, low]);
            (loss <= 1000).then_some(loss)
        }
        _ => None,
    }
}

/// The DTLS 1.2 record number (epoch, sequence number) of the first record
/// in a datagram; `None` when it does not start with a DTLS 1.x record
/// header (content types 20 to 25, version major 0xFE).
pub fn record_number(datagram: &[u8]) -> Option<(u16, u64)> {
    let header = datagram.get(..11)?;
    if !(20..=25).contains(&header[0]) || header[1] != 0xFE {
        return None;
    }
    let epoch = u16::from_be_bytes([header[3], header[4]]);
    let mut seq = [0u8; 8];
    seq[2..].copy_from_slice(&header[5..11]);
    Some((epoch, u64::from_be_bytes(seq)))
}

/// Counts the DTLS records of one peer and estimates the fraction of its
/// datagrams lost on the way.
///
/// Within one count (one epoch, record numbers `low..=high`) the peer sent
/// `high - low + 1` records, each `n` times, where `n` is the longest run
/// of one record number seen (copies leave back to back). The loss is
/// `1 - received / (n × records)`.
#[derive(Clone, Debug, Default)]
pub struct LossMeter {
    epoch: u16,
    /// Lowest and highest record number of this count; `None` before the first.
    range: Option<(u64, u64)>,
    last: u64,
    run: u8,
    longest_run: u8,
    received: u64,
    /// Datagrams that did not fit the count.
    set_aside: u64,
}

impl LossMeter {
    /// Counts one datagram from the peer; false when it is no DTLS record.
    ///
    /// Records are counted before str0m authenticates them, so one that
    /// does not fit the count (another epoch than the next, a number below
    /// the count or far past it) is set aside rather than trusted: a
    /// forged header cannot fake a gap, and enough set-aside datagrams
    /// start a fresh count ([`take_report`](Self::take_report)).
    pub fn observe(&mut self, datagram: &[u8]) -> bool {
        let Some((epoch, seq)) = record_number(datagram) else {
            return false;
        };
        match self.range {
            Some((low, high)) if epoch == self.epoch && (low..=high + MAX_JUMP).contains(&seq) => {
                self.range = Some((low, high.max(seq)));
            }
            Some(_) if epoch != self.epoch.wrapping_add(1) || seq >= MAX_JUMP => {
                self.set_aside += 1;
                return true;
            }
            // The first record, or the handshake's end (the next epoch
            // starts near zero): a new count.
            _ => *self = Self::starting(epoch, seq),
        }
        self.run = if seq == self.last && self.received > 0 {
            self.run.saturating_add(1)
        } else {
            1
        };
        self.last = seq;
        self.longest_run = self.longest_run.max(self.run);
        self.received += 1;
        true
    }

    fn starting(epoch: u16, seq: u64) -> Self {
        Self {
            epoch,
            range: Some((seq, seq)),
            last: seq,
            ..Self::default()
        }
    }

    /// The loss in permille, when at least [`MIN_SAMPLES`] records were
    /// counted, and a fresh count; otherwise `None`, and counting goes on
    /// (from scratch when more datagrams were set aside than counted).
    pub fn take_report(&mut self) -> Option<u16> {
        let (low, high) = self.range?;
        let records = high - low + 1;
        if records < MIN_SAMPLES {
            if self.set_aside >= MIN_SAMPLES {
                *self = Self::default();
            }
            return None;
        }
        let copies = u64::from(self.longest_run.clamp(1, MAX_COPIES));
        let expected = records.saturating_mul(copies);
        let arrived = self.received.min(expected);
        let loss = (expected - arrived) * 1000 / expected;
        *self = Self::default();
        Some(u16::try_from(loss).unwrap_or(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: u16, seq: u64) -> Vec<u8> {
        let mut d = vec![23, 0xFE, 0xFD];
        d.extend_from_slice(&epoch.to_be_bytes());
        d.extend_from_slice(&seq.to_be_bytes()[2..]);
        d.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
        d
    }

    #[test]
    fn copies_keep_the_chance_of_losing_all_under_one_percent() {
        assert_eq!(copies_for(0), 1);
        assert_eq!(copies_for(10), 1);
        assert_eq!(copies_for(11), 2);
        assert_eq!(copies_for(100), 2, "10 %: two copies, 1 % lost both");
        assert_eq!(copies_for(101), 3);
        assert_eq!(copies_for(215), 3);
        assert_eq!(copies_for(1000), MAX_COPIES);
        assert_eq!(copies_for(u16::MAX), MAX_COPIES);
    }

    #[test]
    fn reports_round_trip_and_junk_is_refused() {
        for loss in [0, 1, 97, 1000] {
            assert_eq!(decode_report(&encode_report(loss)), Some(loss));
        }
        assert_eq!(encode_report(5000), encode_report(1000));
        assert_eq!(decode_report(&[1, 3, 233]), None, "1001 permille");
        assert_eq!(decode_report(&[2, 0, 1]), None, "unknown version");
        assert_eq!(decode_report(&[1, 0]), None);
        assert_eq!(decode_report(&[1, 0, 1, 0]), None);
    }

    #[test]
    fn record_numbers_come_from_dtls_headers_only() {
        assert_eq!(
            record_number(&record(1, 0x0102_0304_0506)),
            Some((1, 0x0102_0304_0506))
        );
        assert_eq!(record_number(&record(1, 5)[..10]), None, "short");
        let mut stun = record(1, 5);
        stun[0] = 0;
        assert_eq!(record_number(&stun), None);
        let mut dtls13 = record(1, 5);
        dtls13[0] = 0x2C;
        assert_eq!(record_number(&dtls13), None, "DTLS 1.3 hides its numbers");
    }

    #[test]
    fn a_clean_link_reports_no_loss() {
        let mut meter = LossMeter::default();
        assert_eq!(meter.take_report(), None);
        for seq in 0..MIN_SAMPLES - 1 {
            assert!(meter.observe(&record(1, seq)));
        }
        assert_eq!(meter.take_report(), None, "too few to say");
        meter.observe(&record(1, MIN_SAMPLES - 1));
        assert_eq!(meter.take_report(), Some(0));
    }

    #[test]
    fn single_copies_lost_one_in_ten_report_one_hundred_permille() {
        let mut meter = LossMeter::default();
        for seq in (0..100).filter(|s| s % 10 != 3) {
            meter.observe(&record(1, seq));
        }
        assert_eq!(meter.take_report(), Some(100));
    }

    #[test]
    fn duplicated_records_are_counted_as_copies() {
        // 50 records sent twice each; one copy of every fifth lost, and
        // both copies of record 7.
        let mut meter = LossMeter::default();
        let mut sent = 0;
        let mut arrived = 0;
        for seq in 0..50u64 {
            for copy in 0..2 {
                sent += 1;
                if seq == 7 || (seq % 5 == 0 && copy == 1) {
                    continue;
                }
                arrived += 1;
                meter.observe(&record(1, seq));
            }
        }
        let expected = u16::try_from((sent - arrived) * 1000 / sent).unwrap();
        assert_eq!(meter.take_report(), Some(expected));
        assert_eq!(expected, 120);
    }

    #[test]
    fn the_next_epoch_starts_a_new_count_and_forged_numbers_are_set_aside() {
        let mut meter = LossMeter::default();
        for seq in 0..4 {
            meter.observe(&record(0, seq));
        }
        for seq in 0..MIN_SAMPLES {
            meter.observe(&record(1, seq));
        }
        assert_eq!(meter.take_report(), Some(0), "epoch 0 is not a gap");
        meter.observe(&record(1, 100));
        meter.observe(&record(1, 100 + MAX_JUMP + 1));
        meter.observe(&record(9, 101));
        meter.observe(&record(2, 500));
        meter.observe(&record(1, 99));
        for seq in 101..100 + MIN_SAMPLES {
            meter.observe(&record(1, seq));
        }
        assert_eq!(meter.take_report(), Some(0), "forgeries fake no gap");
    }

    #[test]
    fn a_forged_first_record_blinds_the_meter_for_one_interval_only() {
        let mut meter = LossMeter::default();
        meter.observe(&record(1, 1 << 40));
        for seq in 0..MIN_SAMPLES {
            meter.observe(&record(1, seq));
        }
        assert_eq!(meter.take_report(), None, "the genuine ones were set aside");
        for seq in MIN_SAMPLES..3 * MIN_SAMPLES {
            meter.observe(&record(1, seq));
        }
        assert_eq!(meter.take_report(), Some(0));
    }
}
