//! Loss and round-trip measurement for one connection (spec §6.6).
//!
//! SCTP (sctp-proto, inside str0m) repairs a lost datagram either by fast
//! retransmission, which needs later packets to report the gap, or by its
//! retransmission timer, which never fires sooner than 1 s. What tinynode
//! controls is how many times a datagram goes out, so each side measures
//! how many of the other's datagrams arrive and says so in a **link
//! report** on a small unreliable channel (`copies.rs` decides the copies).
//!
//! The count is exact and authenticated where it matters. A sender notes
//! how many datagrams it sent for each block of [`BLOCK`] of its own DTLS
//! record numbers ([`SentLedger`]) and declares completed blocks in its
//! reports, which travel inside DTLS; the receiver counts what arrived per
//! block from the record numbers DTLS 1.2 sends in the clear
//! ([`LossMeter`]) and compares only blocks the sender declared. A forged
//! or replayed header can add arrivals to a block, never expected
//! datagrams, so it can hide loss but neither widen a count nor raise the
//! copies; a change of copy count is a change in the declared numbers, not
//! a guess from what arrives. Reports also carry a timestamp and an echo,
//! so each side learns the round-trip time ([`RttMeter`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// SCTP stream of the link channel, beside the chat channel's stream 0.
pub const LINK_STREAM: u16 = 1;
/// Label of the link channel.
pub const LINK_LABEL: &str = "tinynode-link";
/// Most copies of one datagram.
pub const MAX_COPIES: u8 = 3;
/// How long a receiver counts before it reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How long it waits between reports until both sides have a loss figure:
/// soon, so the peer learns the round trip and the first declared blocks
/// early, and priority datagrams stop going twice on a clean link.
pub const FIRST_REPORT_AFTER: Duration = Duration::from_millis(25);
/// Fewest expected datagrams a loss figure is based on; with fewer, the
/// tally goes on into the next report.
pub const MIN_SAMPLES: u64 = 64;
/// Record numbers per counted block.
pub const BLOCK: u64 = 16;
/// Blocks a receiver tracks past the last declared one (arrivals beyond
/// are not counted): 64 Ki records, about 3 s of a fast transfer.
pub const MAX_TRACKED_BLOCKS: usize = 4096;
/// Most blocks one declaration may cover.
pub const MAX_DECLARED_BLOCKS: u32 = 1 << 20;
/// Version byte of a link report.
pub const REPORT_VERSION: u8 = 2;
/// Length of a link report.
pub const REPORT_LEN: usize = 32;
/// The loss field of a report that measured nothing.
pub const NO_LOSS_FIGURE: u16 = 0xFFFF;
/// The echo field of a report that has no timestamp to echo.
pub const NO_ECHO: u32 = u32::MAX;

/// Completed blocks of a sender's records and the datagrams it sent for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SentBlocks {
    /// The first block (record number / [`BLOCK`]).
    pub first: u64,
    /// How many blocks, from `first` on.
    pub count: u32,
    /// Datagrams sent with a record number in those blocks, copies included.
    pub datagrams: u32,
}

/// One link report (spec §6.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkReport {
    /// Permille of the peer's datagrams that did not arrive, if measured.
    pub loss: Option<u16>,
    /// Most copies of one datagram the reporter sends now (1 to [`MAX_COPIES`]).
    pub copies: u8,
    /// Blocks of the reporter's own records it declares complete.
    pub sent: Option<SentBlocks>,
    /// The reporter's clock, in milliseconds (wrapping).
    pub stamp: u32,
    /// The last `stamp` it received from the peer, if any.
    pub echo: Option<u32>,
    /// Milliseconds between receiving that stamp and writing this report.
    pub held: u32,
}

impl LinkReport {
    /// The report's 32 bytes.
    pub fn encode(&self) -> [u8; REPORT_LEN] {
        let mut out = [0u8; REPORT_LEN];
        out[0] = REPORT_VERSION;
        let loss = self.loss.map_or(NO_LOSS_FIGURE, |l| l.min(1000));
        out[1..3].copy_from_slice(&loss.to_be_bytes());
        out[3] = self.copies.clamp(1, MAX_COPIES);
        let sent = self.sent.unwrap_or_default();
        out[4..12].copy_from_slice(&sent.first.to_be_bytes());
        out[12..16].copy_from_slice(&sent.count.to_be_bytes());
        out[16..20].copy_from_slice(&sent.datagrams.to_be_bytes());
        out[20..24].copy_from_slice(&self.stamp.to_be_bytes());
        out[24..28].copy_from_slice(&self.echo.unwrap_or(NO_ECHO).to_be_bytes());
        out[28..32].copy_from_slice(&self.held.to_be_bytes());
        out
    }

    /// Reads a report; `None` for anything but a well-formed version-2
    /// report (loss ≤ 1000 or none, 1 to 3 copies, a declaration of at
    /// most `MAX_DECLARED_BLOCKS` with at most three datagrams per
    /// record, all zero when it declares nothing).
    pub fn decode(data: &[u8]) -> Option<LinkReport> {
        let data: &[u8; REPORT_LEN] = data.try_into().ok()?;
        let u32_at =
            |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        if data[0] != REPORT_VERSION {
            return None;
        }
        let loss = match u16::from_be_bytes([data[1], data[2]]) {
            NO_LOSS_FIGURE => None,
            loss if loss <= 1000 => Some(loss),
            _ => return None,
        };
        let copies = data[3];
        if !(1..=MAX_COPIES).contains(&copies) {
            return None;
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&data[4..12]);
        let sent = SentBlocks {
            first: u64::from_be_bytes(first),
            count: u32_at(12),
            datagrams: u32_at(16),
        };
        let most = u64::from(sent.count) * BLOCK * u64::from(MAX_COPIES);
        let empty_but_filled = sent.count == 0 && sent != SentBlocks::default();
        if sent.count > MAX_DECLARED_BLOCKS || u64::from(sent.datagrams) > most || empty_but_filled
        {
            return None;
        }
        let echo = u32_at(24);
        Some(LinkReport {
            loss,
            copies,
            sent: (sent.count > 0).then_some(sent),
            stamp: u32_at(20),
            echo: (echo != NO_ECHO).then_some(echo),
            held: u32_at(28),
        })
    }
}

/// The content types of DTLS 1.x records with a plaintext header
/// (ChangeCipherSpec 20 to Heartbeat 24, and tls12_cid 25): a narrower
/// fact than `demux`'s DTLS class (20 to 63, RFC 7983), which also takes
/// DTLS 1.3's encrypted headers, whose numbers cannot be read.
pub const DTLS_CONTENT_TYPES: std::ops::RangeInclusive<u8> = 20..=25;

/// The DTLS 1.2 record number of the first record in a datagram, as one
/// number (epoch in the top 16 bits, sequence number below); `None` when
/// it does not start with a DTLS 1.x record header (content types 20 to
/// 25, version major 0xFE).
pub fn record_number(datagram: &[u8]) -> Option<u64> {
    let header = datagram.get(..11)?;
    if !DTLS_CONTENT_TYPES.contains(&header[0]) || header[1] != 0xFE {
        return None;
    }
    let mut number = [0u8; 8];
    number.copy_from_slice(&header[3..11]);
    Some(u64::from_be_bytes(number))
}

/// True for a record number of the handshake's first epoch, which
/// neither side counts (its flights are retransmitted by DTLS itself).
fn handshake_epoch(number: u64) -> bool {
    number >> 48 == 0
}

/// What a sender sent, per block of its record numbers, until declared.
#[derive(Clone, Debug, Default)]
pub struct SentLedger {
    /// The block being filled and its datagrams so far.
    current: Option<(u64, u32)>,
    /// Completed blocks not yet declared.
    done: Option<SentBlocks>,
}

impl SentLedger {
    /// Notes a datagram that went out `copies` times; records of the
    /// handshake's epoch and numbers below the current block are ignored.
    pub fn note(&mut self, datagram: &[u8], copies: u8) {
        let Some(number) = record_number(datagram).filter(|n| !handshake_epoch(*n)) else {
            return;
        };
        let block = number / BLOCK;
        match self.current {
            Some((current, ref mut sent)) if current == block => {
                *sent = sent.saturating_add(u32::from(copies));
            }
            Some((current, _)) if block < current => {}
            previous => {
                if let Some((current, sent)) = previous {
                    self.complete(current, block, sent);
                }
                self.current = Some((block, u32::from(copies)));
            }
        }
    }

    /// Closes block `current` (sent datagrams `sent`) now that `next` has begun.
    fn complete(&mut self, current: u64, next: u64, sent: u32) {
        let span = u32::try_from(next - current).unwrap_or(u32::MAX);
        match &mut self.done {
            Some(done)
                if done.first + u64::from(done.count) == current
                    && done.count.saturating_add(span) <= MAX_DECLARED_BLOCKS =>
            {
                done.count += span;
                done.datagrams = done.datagrams.saturating_add(sent);
            }
            _ if span <= MAX_DECLARED_BLOCKS => {
                self.done = Some(SentBlocks {
                    first: current,
                    count: span,
                    datagrams: sent,
                });
            }
            // A jump of the numbering (a new epoch): nothing to declare.
            _ => self.done = None,
        }
    }

    /// The completed blocks since the last call, to declare in a report.
    pub fn take(&mut self) -> Option<SentBlocks> {
        self.done.take()
    }
}

/// Counts the peer's datagrams per block of its record numbers and
/// compares them with what it declares it sent.
#[derive(Clone, Debug, Default)]
pub struct LossMeter {
    /// The first block tracked; `None` before the first record of the
    /// data epoch.
    base: Option<u64>,
    /// Datagrams arrived per block, from `base` on.
    arrivals: VecDeque<u8>,
    /// Datagrams the peer declared for the blocks compared so far.
    expected: u64,
    /// Of those, how many arrived.
    arrived: u64,
}

impl LossMeter {
    /// Counts one datagram from the peer; false when it is no DTLS record.
    /// The first record of the data epoch starts the tracking; records
    /// below the tracked blocks or more than [`MAX_TRACKED_BLOCKS`] past
    /// them are not counted.
    pub fn observe(&mut self, datagram: &[u8]) -> bool {
        let Some(number) = record_number(datagram) else {
            return false;
        };
        if handshake_epoch(number) {
            return true;
        }
        let base = *self.base.get_or_insert(number / BLOCK);
        let Some(index) = (number / BLOCK)
            .checked_sub(base)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < MAX_TRACKED_BLOCKS)
        else {
            return true;
        };
        if index >= self.arrivals.len() {
            self.arrivals.resize(index + 1, 0);
        }
        self.arrivals[index] = self.arrivals[index].saturating_add(1);
        true
    }

    /// The peer declared `sent` (from its authenticated report): compares
    /// those blocks when all of them were tracked, then forgets every
    /// block before their end.
    ///
    /// Tracking starts at an unauthenticated record, so a declaration
    /// far behind it (a forged first record far ahead) restarts it at the
    /// declaration's end, and one beyond what could be tracked compares
    /// nothing.
    pub fn declared(&mut self, sent: SentBlocks) {
        let end = sent.first.saturating_add(u64::from(sent.count));
        let Some(base) = self.base else {
            self.base = Some(end);
            return;
        };
        let tracked = MAX_TRACKED_BLOCKS as u64;
        if end <= base {
            if base - end > tracked {
                self.base = Some(end);
                self.arrivals.clear();
            }
            return;
        }
        if sent.first >= base && sent.first - base < tracked {
            let skip = usize::try_from(sent.first - base).unwrap_or(usize::MAX);
            let take = usize::try_from(sent.count).unwrap_or(usize::MAX);
            let arrived: u64 = self
                .arrivals
                .iter()
                .skip(skip)
                .take(take)
                .map(|&n| u64::from(n))
                .sum();
            let datagrams = u64::from(sent.datagrams);
            self.expected += datagrams;
            self.arrived += arrived.min(datagrams);
        }
        let done = usize::try_from(end - base).unwrap_or(usize::MAX);
        self.arrivals.drain(..done.min(self.arrivals.len()));
        self.base = Some(end);
    }

    /// The loss in permille over the blocks compared since the last
    /// figure, when they held at least [`MIN_SAMPLES`] datagrams.
    pub fn take_report(&mut self) -> Option<u16> {
        if self.expected < MIN_SAMPLES {
            return None;
        }
        let loss = (self.expected - self.arrived) * 1000 / self.expected;
        self.expected = 0;
        self.arrived = 0;
        Some(u16::try_from(loss).unwrap_or(1000))
    }
}

/// How long a round trip takes on a connection, from the echoes in the
/// peer's reports.
#[derive(Clone, Debug, Default)]
pub struct RttMeter {
    /// The smallest recent sample and when it was taken.
    min: Option<(Duration, Instant)>,
    /// The latest sample.
    latest: Option<Duration>,
}

/// How long the smallest sample stands before a newer one replaces it
/// (a path that changed must not keep its old floor).
pub const MIN_RTT_WINDOW: Duration = Duration::from_secs(30);

impl RttMeter {
    /// A sample taken at `now`.
    pub fn sample(&mut self, now: Instant, rtt: Duration) {
        self.latest = Some(rtt);
        let stale = self
            .min
            .is_none_or(|(min, at)| rtt <= min || now.duration_since(at) > MIN_RTT_WINDOW);
        if stale {
            self.min = Some((rtt, now));
        }
    }

    /// The smallest recent round trip: the path's own, without queues.
    pub fn min(&self) -> Option<Duration> {
        self.min.map(|(min, _)| min)
    }

    /// The latest round trip, queues included.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }
}

/// A round-trip sample from a report received at `now_ms` (our clock)
/// echoing `echo` (our stamp) after the peer held it `held` ms.
pub fn rtt_sample(now_ms: u32, echo: u32, held: u32) -> Option<Duration> {
    let total = now_ms.wrapping_sub(echo);
    // More than a minute is no sample (a wrapped or forged echo).
    (total >= held && total - held <= 60_000)
        .then(|| Duration::from_millis(u64::from(total - held)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTLS application-data datagram with record number `number`.
    pub(crate) fn record(number: u64) -> Vec<u8> {
        let mut d = vec![23, 0xFE, 0xFD];
        d.extend_from_slice(&number.to_be_bytes());
        d.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
        d
    }

    const EPOCH1: u64 = 1 << 48;

    /// Sends records `from..to` (epoch 1) through a ledger with `copies`
    /// each, delivering to `meter` all but the copies `lose` picks.
    fn send(
        ledger: &mut SentLedger,
        meter: &mut LossMeter,
        range: std::ops::Range<u64>,
        copies: u8,
        mut lose: impl FnMut(u64, u8) -> bool,
    ) {
        for seq in range {
            let datagram = record(EPOCH1 + seq);
            ledger.note(&datagram, copies);
            for copy in 0..copies {
                if !lose(seq, copy) {
                    meter.observe(&datagram);
                }
            }
        }
    }

    #[test]
    fn reports_round_trip_and_junk_is_refused() {
        let report = LinkReport {
            loss: Some(97),
            copies: 2,
            sent: Some(SentBlocks {
                first: 7,
                count: 3,
                datagrams: 60,
            }),
            stamp: 123_456,
            echo: Some(99),
            held: 12,
        };
        let bytes = report.encode();
        assert_eq!(LinkReport::decode(&bytes), Some(report));
        let quiet = LinkReport {
            copies: 1,
            ..LinkReport::default()
        };
        assert_eq!(LinkReport::decode(&quiet.encode()), Some(quiet));
        let mut bad = bytes;
        bad[0] = 1;
        assert_eq!(LinkReport::decode(&bad), None, "version 1");
        let mut bad = bytes;
        bad[1..3].copy_from_slice(&1001u16.to_be_bytes());
        assert_eq!(LinkReport::decode(&bad), None, "1001 permille");
        let mut bad = bytes;
        bad[3] = 4;
        assert_eq!(LinkReport::decode(&bad), None, "four copies");
        let mut bad = bytes;
        bad[16..20].copy_from_slice(&(3 * 16 * 3 + 1u32).to_be_bytes());
        assert_eq!(
            LinkReport::decode(&bad),
            None,
            "more datagrams than 3 per record"
        );
        assert_eq!(LinkReport::decode(&bytes[..31]), None);
    }

    #[test]
    fn record_numbers_come_from_dtls_headers_only() {
        assert_eq!(
            record_number(&record(0x0001_0102_0304_0506)),
            Some(0x0001_0102_0304_0506)
        );
        assert_eq!(record_number(&record(5)[..10]), None, "short");
        let mut stun = record(5);
        stun[0] = 0;
        assert_eq!(record_number(&stun), None);
        let mut dtls13 = record(5);
        dtls13[0] = 0x2C;
        assert_eq!(record_number(&dtls13), None, "DTLS 1.3 hides its numbers");
    }

    #[test]
    fn a_clean_link_reports_no_loss() {
        let (mut ledger, mut meter) = (SentLedger::default(), LossMeter::default());
        send(&mut ledger, &mut meter, 0..4, 1, |_, _| false);
        assert_eq!(ledger.take(), None, "no block complete yet");
        send(&mut ledger, &mut meter, 4..70, 1, |_, _| false);
        let first = ledger.take().expect("blocks 0 to 3");
        assert_eq!((first.count, first.datagrams), (4, 64));
        meter.declared(first);
        assert_eq!(meter.take_report(), Some(0));
        send(&mut ledger, &mut meter, 70..400, 1, |_, _| false);
        meter.declared(ledger.take().expect("blocks"));
        assert_eq!(meter.take_report(), Some(0));
    }

    #[test]
    fn fewer_than_the_minimum_compared_give_no_figure_yet() {
        let mut meter = LossMeter::default();
        for seq in 0..5 * BLOCK {
            meter.observe(&record(EPOCH1 + seq));
        }
        let blocks = |first: u64, count: u32| SentBlocks {
            first: EPOCH1 / BLOCK + first,
            count,
            datagrams: count * 16,
        };
        meter.declared(blocks(0, 3));
        assert_eq!(meter.take_report(), None, "48 compared");
        meter.declared(blocks(3, 1));
        assert_eq!(
            meter.take_report(),
            Some(0),
            "{MIN_SAMPLES} compared in all"
        );
    }

    #[test]
    fn single_copies_lost_one_in_ten_report_one_hundred_permille() {
        let (mut ledger, mut meter) = (SentLedger::default(), LossMeter::default());
        send(&mut ledger, &mut meter, 0..1601, 1, |seq, _| seq % 10 == 3);
        meter.declared(ledger.take().expect("blocks 0..100"));
        assert_eq!(meter.take_report(), Some(100));
    }

    #[test]
    fn a_change_of_copy_count_with_nothing_lost_reports_no_loss() {
        // The old meter took the longest run as everyone's copy count and
        // reported half of the single copies lost: 0 % → 53 % → 13 %.
        let (mut ledger, mut meter) = (SentLedger::default(), LossMeter::default());
        send(&mut ledger, &mut meter, 0..200, 2, |_, _| false);
        meter.declared(ledger.take().expect("blocks"));
        assert_eq!(meter.take_report(), Some(0));
        send(&mut ledger, &mut meter, 200..600, 1, |_, _| false);
        send(&mut ledger, &mut meter, 600..700, 3, |_, _| false);
        send(&mut ledger, &mut meter, 700..900, 1, |_, _| false);
        meter.declared(ledger.take().expect("blocks"));
        assert_eq!(meter.take_report(), Some(0));
    }

    #[test]
    fn duplicated_records_count_each_copy() {
        // Two copies each; one copy of every fifth lost, both of record 77.
        let (mut ledger, mut meter) = (SentLedger::default(), LossMeter::default());
        let mut lost = 0;
        send(&mut ledger, &mut meter, 0..160, 2, |seq, copy| {
            let gone = seq == 77 || (seq % 5 == 0 && copy == 1);
            lost += u64::from(gone);
            gone
        });
        send(&mut ledger, &mut meter, 160..161, 1, |_, _| false);
        meter.declared(ledger.take().expect("blocks 0..10"));
        assert_eq!(
            meter.take_report(),
            Some(u16::try_from(lost * 1000 / 320).unwrap())
        );
    }

    #[test]
    fn forged_headers_neither_widen_the_count_nor_raise_the_loss() {
        let (mut ledger, mut meter) = (SentLedger::default(), LossMeter::default());
        send(&mut ledger, &mut meter, 0..16, 1, |_, _| false);
        send(&mut ledger, &mut meter, 16..160, 1, |_, _| false);
        // Forgeries: far past, just past, below, another epoch, replays.
        for forged in [
            EPOCH1 + (1 << 40),
            EPOCH1 + 300,
            EPOCH1 + 3,
            5 << 48,
            EPOCH1 + 20,
            EPOCH1 + 20,
        ] {
            meter.observe(&record(forged));
        }
        meter.declared(ledger.take().expect("blocks 0..9"));
        assert_eq!(meter.take_report(), Some(0), "no gap from forged numbers");
        let mut lost = 0;
        send(&mut ledger, &mut meter, 160..385, 1, |seq, _| {
            lost += u64::from(seq % 4 == 0 && seq < 384);
            seq % 4 == 0
        });
        let sent = ledger.take().expect("blocks 9..24");
        assert_eq!(sent.datagrams, 384 - 144);
        meter.declared(sent);
        // One forgery (record 300) landed among them: it can only hide a loss.
        let truth = lost * 1000 / u64::from(sent.datagrams);
        let loss = u64::from(meter.take_report().expect("compared"));
        assert!((truth - 5..=truth).contains(&loss), "{loss} of {truth}");
    }

    #[test]
    fn a_forged_first_record_blinds_the_meter_until_the_first_declaration_only() {
        let (mut ledger, mut meter) = (SentLedger::default(), LossMeter::default());
        meter.observe(&record(EPOCH1 + (1 << 40)));
        send(&mut ledger, &mut meter, 0..100, 1, |_, _| false);
        meter.declared(ledger.take().expect("blocks"));
        assert_eq!(
            meter.take_report(),
            None,
            "the genuine ones were not tracked"
        );
        send(&mut ledger, &mut meter, 100..400, 1, |seq, _| seq % 10 == 0);
        meter.declared(ledger.take().expect("blocks"));
        let loss = meter.take_report().expect("tracked again");
        // Ten percent lost, and the first records of the first block
        // compared went uncounted while the forgery held the count.
        assert!((100..=120).contains(&loss), "{loss}");
    }

    #[test]
    fn a_lost_declaration_forgets_its_blocks_instead_of_counting_them_lost() {
        let (mut ledger, mut meter) = (SentLedger::default(), LossMeter::default());
        send(&mut ledger, &mut meter, 0..100, 1, |_, _| false);
        let _lost = ledger.take();
        send(&mut ledger, &mut meter, 100..300, 1, |_, _| false);
        meter.declared(ledger.take().expect("later blocks"));
        assert_eq!(meter.take_report(), Some(0));
    }

    #[test]
    fn the_handshake_epoch_is_not_declared_and_a_new_epoch_restarts() {
        let mut ledger = SentLedger::default();
        for seq in 0..40 {
            ledger.note(&record(seq), 2);
        }
        assert_eq!(ledger.take(), None);
        for seq in 0..40 {
            ledger.note(&record(EPOCH1 + seq), 1);
        }
        for seq in 0..20 {
            ledger.note(&record((2 << 48) + seq), 1);
        }
        let declared = ledger.take();
        assert_eq!(
            declared,
            Some(SentBlocks {
                first: (2 << 48) / BLOCK,
                count: 1,
                datagrams: 16
            }),
            "the first epoch's blocks are forgotten at the jump, not declared across it"
        );
    }

    #[test]
    fn round_trips_come_from_echoes() {
        assert_eq!(
            rtt_sample(1_100, 1_000, 30),
            Some(Duration::from_millis(70))
        );
        assert_eq!(
            rtt_sample(5, u32::MAX - 4, 0),
            Some(Duration::from_millis(10)),
            "wraps"
        );
        assert_eq!(
            rtt_sample(1_000, 1_000, 30),
            None,
            "held longer than the trip"
        );
        assert_eq!(rtt_sample(100_000, 1, 0), None, "a minute or more");
        let start = Instant::now();
        let mut meter = RttMeter::default();
        meter.sample(start, Duration::from_millis(100));
        meter.sample(start + Duration::from_secs(1), Duration::from_millis(180));
        assert_eq!(meter.min(), Some(Duration::from_millis(100)));
        assert_eq!(meter.latest(), Some(Duration::from_millis(180)));
        meter.sample(start + Duration::from_secs(40), Duration::from_millis(150));
        assert_eq!(
            meter.min(),
            Some(Duration::from_millis(150)),
            "an old floor expires"
        );
    }
}
