//! How much a connection keeps in str0m's send buffer: about four times
//! the path's bandwidth-delay product (spec §6.6).
//!
//! str0m counts every byte written to a data channel until the peer
//! acknowledges it, so the bytes it may hold cap the bytes in flight and,
//! with them, the throughput at one buffer per round trip. A constant
//! either starves long paths or queues seconds of data on short ones. The
//! window follows the path instead: the highest recent delivery rate
//! (acknowledged bytes per round trip) times the smallest recent round
//! trip, times [`BDP_FACTOR`], while SCTP's congestion window decides what
//! actually leaves. In slow start SCTP doubles its congestion window every
//! round trip and the rate sample lags one round trip behind it, so a
//! window of twice the measured product bound the transfer before SCTP's
//! window did, every other round trip (`BENCHMARKS.md`, "Real paths").
//! The window never falls under [`MIN_WINDOW`] nor rises above
//! [`MAX_WINDOW`], which bounds the memory one connection holds.

use std::time::{Duration, Instant};

/// The smallest window, what a path gets before its rate is measured and
/// what a short one keeps: enough for a fast LAN, and small because
/// sctp-proto walks everything in flight on every poll (on loopback 64 KiB
/// moved a pipe at 66 MB/s where 256 KiB gave 38; `BENCHMARKS.md`,
/// "Pipe"). Long paths measure their way past it in a few round trips.
pub const MIN_WINDOW: usize = 64 * 1024;
/// The window in bandwidth-delay products: twice what the last round
/// trip delivered, and twice again for SCTP's slow start to double into.
pub const BDP_FACTOR: u64 = 4;
/// The largest window, and str0m's own limit: the send memory of one
/// connection (a 200 ms path at 20 MB/s).
pub const MAX_WINDOW: usize = 4 * 1024 * 1024;
/// What all connections of a node together may hold for sending: with
/// several open, each gets an equal share (at least [`MIN_WINDOW`];
/// [`MAX_WINDOW`] × the connections allowed would be 128 MiB).
pub const TOTAL_WINDOW: usize = 16 * 1024 * 1024;
/// Shortest delivery-rate sample.
pub const MIN_SAMPLE: Duration = Duration::from_millis(20);
/// Round trips a delivery-rate maximum stands before a lower one replaces
/// it (a transfer that slowed must not keep its old window).
pub const RATE_WINDOW_RTTS: u32 = 10;

/// The window of one connection.
#[derive(Clone, Debug, Default)]
pub struct SendWindow {
    /// When the current rate sample began, and the bytes delivered then.
    sample: Option<(Instant, u64)>,
    /// The highest recent delivery rate (bytes per second) and when.
    max_rate: Option<(u64, Instant)>,
    limit: usize,
}

impl SendWindow {
    /// Notes progress: `delivered` bytes acknowledged in all (written
    /// minus still buffered) at `now`, on a path whose smallest round trip
    /// is `min_rtt` (if known yet).
    pub fn on_progress(&mut self, now: Instant, delivered: u64, min_rtt: Option<Duration>) {
        let period = min_rtt.unwrap_or(MIN_SAMPLE).max(MIN_SAMPLE);
        let Some((start, from)) = self.sample else {
            self.sample = Some((now, delivered));
            return;
        };
        let elapsed = now.duration_since(start);
        if elapsed < period {
            return;
        }
        let bytes = delivered.saturating_sub(from);
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let rate = bytes.saturating_mul(1_000_000) / micros;
        let expired = self
            .max_rate
            .is_some_and(|(_, at)| now.duration_since(at) > period * RATE_WINDOW_RTTS);
        if expired || self.max_rate.is_none_or(|(max, _)| rate >= max) {
            self.max_rate = Some((rate, now));
        }
        self.sample = Some((now, delivered));
        self.limit = match (self.max_rate, min_rtt) {
            (Some((rate, _)), Some(rtt)) => {
                let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
                let bdp = rate.saturating_mul(micros) / 1_000_000;
                usize::try_from(bdp.saturating_mul(BDP_FACTOR)).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
    }

    /// Bytes str0m may hold now.
    pub fn limit(&self) -> usize {
        self.limit.clamp(MIN_WINDOW, MAX_WINDOW)
    }

    /// Each open connection's share of [`TOTAL_WINDOW`] when `open` are open.
    pub fn share(open: usize) -> usize {
        (TOTAL_WINDOW / open.max(1)).clamp(MIN_WINDOW, MAX_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a transfer delivering `rate` bytes/s for `duration`, sampled
    /// every millisecond.
    fn run(
        window: &mut SendWindow,
        start: Instant,
        from: u64,
        rate: u64,
        duration: Duration,
        rtt: Duration,
    ) -> u64 {
        let mut delivered = from;
        let steps = u64::try_from(duration.as_millis()).unwrap();
        for ms in 0..steps {
            delivered += rate / 1000;
            window.on_progress(start + Duration::from_millis(ms), delivered, Some(rtt));
        }
        delivered
    }

    #[test]
    fn the_window_is_four_bandwidth_delay_products_within_bounds() {
        let start = Instant::now();
        let mut window = SendWindow::default();
        assert_eq!(window.limit(), MIN_WINDOW, "nothing measured");
        let rtt = Duration::from_millis(100);
        run(
            &mut window,
            start,
            0,
            5_000_000,
            Duration::from_secs(1),
            rtt,
        );
        let limit = window.limit();
        assert!(
            (1_900_000..=2_100_000).contains(&limit),
            "5 MB/s × 100 ms × 4: {limit}"
        );
        let mut fast = SendWindow::default();
        run(
            &mut fast,
            start,
            0,
            100_000_000,
            Duration::from_secs(1),
            Duration::from_millis(200),
        );
        assert_eq!(fast.limit(), MAX_WINDOW);
        let mut short = SendWindow::default();
        run(
            &mut short,
            start,
            0,
            10_000_000,
            Duration::from_secs(1),
            Duration::from_millis(1),
        );
        assert_eq!(short.limit(), MIN_WINDOW);
    }

    #[test]
    fn open_connections_share_the_total() {
        assert_eq!(SendWindow::share(1), MAX_WINDOW);
        assert_eq!(SendWindow::share(4), MAX_WINDOW);
        assert_eq!(SendWindow::share(8), 2 * 1024 * 1024);
        assert_eq!(SendWindow::share(32), 512 * 1024);
        assert!(
            SendWindow::share(crate::rtc::MAX_CONNECTIONS) * crate::rtc::MAX_CONNECTIONS
                <= TOTAL_WINDOW
        );
    }

    #[test]
    fn a_slower_path_shrinks_the_window_after_the_old_maximum_expires() {
        let start = Instant::now();
        let rtt = Duration::from_millis(100);
        let mut window = SendWindow::default();
        let delivered = run(
            &mut window,
            start,
            0,
            10_000_000,
            Duration::from_secs(1),
            rtt,
        );
        let high = window.limit();
        run(
            &mut window,
            start + Duration::from_secs(1),
            delivered,
            2_000_000,
            Duration::from_secs(3),
            rtt,
        );
        assert!(window.limit() < high / 3, "{} after {high}", window.limit());
    }
}
