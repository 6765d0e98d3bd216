//! One connection's link measurement (spec §6.6), apart from str0m: the
//! peer's DTLS records counted for our reports, ours noted for our
//! declarations, the round trip, when our next report is due, and the copy
//! policy the peer's reports set. Pure: datagrams and reports in, reports
//! and copy counts out.

use std::time::{Duration, Instant};

use super::copies::{CopyPolicy, Kind, kind_of};
use super::link::{
    FIRST_REPORT_AFTER, LinkReport, LossMeter, REPORT_INTERVAL, RttMeter, SentLedger,
    record_number, rtt_sample,
};

/// A round trip this much above 1.5 × the smallest recent one looks like
/// a queue at a bottleneck: loss is then taken for congestion (no copies).
pub const CONGESTION_MARGIN: Duration = Duration::from_millis(10);

/// What a peer's report with a loss figure changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossNews {
    /// The share of our datagrams the peer lost, in ‰.
    pub loss: u16,
    /// How many times each datagram goes out now, at most.
    pub copies: u8,
    /// Whether the round trip says the loss is congestion.
    pub congested: bool,
}

/// The link measurement of one connection.
#[derive(Debug)]
pub struct LinkState {
    /// The connection's creation, the zero of our report stamps.
    created: Instant,
    /// Counts the peer's DTLS records, for our reports.
    meter: LossMeter,
    /// Counts our own DTLS records, for the declarations in our reports.
    ledger: SentLedger,
    /// The round trip, from the echoes in the peer's reports.
    rtt: RttMeter,
    /// The peer's last report stamp and when it arrived, to echo.
    peer_stamp: Option<(u32, Instant)>,
    /// When our first DTLS datagram left and the peer's highest record
    /// number then, until a higher one arrives: the handshake's round
    /// trip, the first sample.
    handshake_sent: Option<(Instant, Option<u64>)>,
    /// The peer's highest DTLS record number so far.
    highest_received: Option<u64>,
    /// A DTLS datagram of ours has left.
    dtls_started: bool,
    /// When our next loss report is due; `None` while nothing is counted.
    next_report: Option<Instant>,
    /// We have given the peer a loss figure.
    figured: bool,
    /// How many times each datagram to the peer goes out.
    copies: CopyPolicy,
}

impl LinkState {
    /// The measurement of a connection created at `created`.
    pub fn new(created: Instant) -> Self {
        Self {
            created,
            meter: LossMeter::default(),
            ledger: SentLedger::default(),
            rtt: RttMeter::default(),
            peer_stamp: None,
            handshake_sent: None,
            highest_received: None,
            dtls_started: false,
            next_report: None,
            figured: false,
            copies: CopyPolicy::default(),
        }
    }

    /// A datagram from the peer arrived at `now`: its DTLS record is
    /// counted, the handshake's round trip taken when it is the first new
    /// record after ours, and a report scheduled.
    pub fn on_datagram(&mut self, now: Instant, data: &[u8]) {
        let dtls = self.meter.observe(data);
        let number = record_number(data);
        if let Some((sent, seen)) = self.handshake_sent
            && number > seen
        {
            // The first new DTLS record after our first one (not a copy of
            // one we had): about a round trip.
            self.handshake_sent = None;
            self.rtt.sample(now, now.duration_since(sent));
            self.copies.set_long_path(self.rtt.min());
        }
        self.highest_received = self.highest_received.max(number);
        if dtls && self.next_report.is_none() {
            // Reports come quickly until both sides have a loss figure:
            // until then priority datagrams go twice.
            let wait = if self.figured && self.copies.measured() {
                REPORT_INTERVAL
            } else {
                FIRST_REPORT_AFTER
            };
            self.next_report = Some(now + wait);
        }
    }

    /// When our next report is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_report
    }

    /// The report to send at `now`, when one is due: the share of the
    /// peer's datagrams that arrived (if enough were compared), our copy
    /// count, our records since the last report, a stamp and an echo.
    /// `None` when it is not due, the channel is not `open`, or there is
    /// nothing to say (so reports, datagrams the peer counts, do not keep
    /// an idle connection awake). The next datagram from the peer sets the
    /// next report time.
    pub fn take_report(&mut self, now: Instant, open: bool) -> Option<LinkReport> {
        if self.next_report.is_none_or(|at| now < at) {
            return None;
        }
        self.next_report = None;
        if !open {
            return None;
        }
        let loss = self.meter.take_report();
        let sent = self.ledger.take();
        if loss.is_none() && sent.is_none() {
            return None;
        }
        self.figured |= loss.is_some();
        Some(LinkReport {
            loss,
            copies: self.copies.wanted(),
            sent,
            stamp: self.clock_ms(now),
            echo: self.peer_stamp.map(|(stamp, _)| stamp),
            held: self.peer_stamp.map_or(0, |(_, at)| {
                u32::try_from(now.duration_since(at).as_millis()).unwrap_or(u32::MAX)
            }),
        })
    }

    /// The peer's `report`, arrived at `now`: its declaration feeds our
    /// loss count, its echo gives a round trip, its loss figure sets our
    /// copies (none while `outbox_dropped` or the round trip says
    /// congestion). What the loss figure changed, if it had one.
    pub fn on_report(
        &mut self,
        now: Instant,
        report: &LinkReport,
        outbox_dropped: bool,
    ) -> Option<LossNews> {
        if let Some(sent) = report.sent {
            self.meter.declared(sent);
            // The first figure goes out as soon as there is one: until
            // then the peer copies its priority datagrams.
            if !self.figured && self.next_report.is_some() {
                self.next_report = Some(now);
            }
        }
        self.peer_stamp = Some((report.stamp, now));
        if let Some(rtt) = report
            .echo
            .and_then(|echo| rtt_sample(self.clock_ms(now), echo, report.held))
        {
            self.rtt.sample(now, rtt);
            self.copies.set_long_path(self.rtt.min());
        }
        let congested = outbox_dropped
            || matches!((self.rtt.latest(), self.rtt.min()), (Some(latest), Some(min))
                if latest > min * 3 / 2 + CONGESTION_MARGIN);
        self.copies.set_congested(congested);
        let loss = report.loss?;
        self.copies.on_loss(loss);
        Some(LossNews {
            loss,
            copies: self.copies.wanted(),
            congested,
        })
    }

    /// How many times to send one of our datagrams of `len` bytes: `dtls`
    /// (not an ICE check), the `last` DTLS datagram of its burst, going
    /// through a relay (`relayed`), on an `open` channel. The count is
    /// noted for our declarations.
    pub fn copies_of(
        &mut self,
        payload: &[u8],
        dtls: bool,
        last: bool,
        relayed: bool,
        open: bool,
        last_input: Instant,
    ) -> u8 {
        if dtls && !self.dtls_started {
            self.dtls_started = true;
            self.handshake_sent = Some((last_input, self.highest_received));
        }
        self.copies.set_relayed(relayed);
        let copies = if !open {
            self.copies.copies(payload.len(), Kind::Handshake)
        } else if dtls {
            self.copies
                .copies(payload.len(), kind_of(payload.len(), last))
        } else {
            // An ICE consent check: a lost one is retried within 250 ms.
            1
        };
        self.ledger.note(payload, copies);
        copies
    }

    /// How many times datagrams to the peer may go out now (tests; the
    /// debug log reports changes).
    #[cfg(test)]
    pub fn wanted(&self) -> u8 {
        self.copies.wanted()
    }

    /// The smallest recent round trip.
    pub fn rtt_min(&self) -> Option<Duration> {
        self.rtt.min()
    }

    /// The latest round trip.
    pub fn rtt_latest(&self) -> Option<Duration> {
        self.rtt.latest()
    }

    /// This connection's clock for report stamps: milliseconds since it
    /// was created (wrapping).
    fn clock_ms(&self, now: Instant) -> u32 {
        (now.duration_since(self.created).as_millis() & u128::from(u32::MAX)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTLS 1.2 application-data record header with sequence `number`.
    fn record(number: u64) -> Vec<u8> {
        let mut bytes = vec![0x17, 0xfe, 0xfd, 0, 1];
        bytes.extend_from_slice(&number.to_be_bytes()[2..]);
        bytes.extend_from_slice(&[0, 16]);
        bytes.extend_from_slice(&[0; 16]);
        bytes
    }

    fn report(loss: Option<u16>, stamp: u32, echo: Option<u32>) -> LinkReport {
        LinkReport {
            loss,
            copies: 1,
            sent: None,
            stamp,
            echo,
            held: 0,
        }
    }

    #[test]
    fn a_report_is_due_soon_after_the_first_record_and_only_on_an_open_channel() {
        let start = Instant::now();
        let mut link = LinkState::new(start);
        assert_eq!(link.poll_timeout(), None, "nothing counted, no timer");
        link.on_datagram(start, &record(1));
        let due = start + FIRST_REPORT_AFTER;
        assert_eq!(link.poll_timeout(), Some(due));
        assert_eq!(link.take_report(due - Duration::from_millis(1), true), None);
        assert_eq!(link.take_report(due, false), None, "not open: dropped");
        assert_eq!(link.poll_timeout(), None);
        link.on_datagram(due, &record(2));
        assert!(link.copies_of(&record(7), true, true, false, true, due) >= 1);
        // Too few records for a figure or a whole block: nothing to say,
        // and no report keeps the idle link awake (the Pair tests of
        // conn.rs carry full reports both ways).
        assert_eq!(link.take_report(due + FIRST_REPORT_AFTER, true), None);
        assert_eq!(link.poll_timeout(), None);
    }

    #[test]
    fn the_handshake_gives_the_first_round_trip() {
        let start = Instant::now();
        let mut link = LinkState::new(start);
        link.on_datagram(start, &record(1));
        // Our first DTLS datagram leaves; the peer's next new record
        // answers it 40 ms later (a copy of record 1 does not).
        link.copies_of(&record(1), true, true, false, false, start);
        link.on_datagram(start + Duration::from_millis(20), &record(1));
        assert_eq!(link.rtt_min(), None);
        link.on_datagram(start + Duration::from_millis(40), &record(2));
        assert_eq!(link.rtt_min(), Some(Duration::from_millis(40)));
    }

    #[test]
    fn a_loss_figure_sets_copies_unless_the_path_is_congested() {
        let start = Instant::now();
        let mut link = LinkState::new(start);
        assert_eq!(link.on_report(start, &report(None, 5, None), false), None);
        let news = link.on_report(start, &report(Some(250), 6, None), false);
        assert_eq!(
            news,
            Some(LossNews {
                loss: 250,
                copies: 3,
                congested: false
            })
        );
        let congested = link.on_report(start, &report(Some(250), 7, None), true);
        assert!(
            congested.is_some_and(|n| n.congested && n.copies == 1),
            "{congested:?}"
        );
    }
}
