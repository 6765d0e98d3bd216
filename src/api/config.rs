//! What a node is told at start ([`NodeConfig`]) and the numbers its
//! engines keep to: STUN retransmission ([`RetransmitConfig`]) and relay
//! limits ([`RelayLimits`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::identity::Identity;

/// A reading of the wall clock paired with the monotonic instant it was
/// taken at, so the node can compute Unix time from `now` without a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// The monotonic instant of the reading.
    pub at: Instant,
    /// Milliseconds since the Unix epoch at that instant.
    pub unix_ms: u64,
}

impl WallClock {
    /// Unix time in milliseconds at `now`.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.at).as_millis() as u64;
        self.unix_ms.saturating_add(since)
    }
}

/// What a node needs to know at start.
#[non_exhaustive]
pub struct NodeConfig {
    /// The concrete addresses of the node's sockets (one per address
    /// family; never a wildcard, since str0m must know its host candidates).
    /// Datagrams arrive on one of them ([`Input::Receive`](crate::Input::Receive)'s `destination`) and
    /// leave from one of them ([`Transmit::source`](crate::Transmit::source)).
    pub local_addrs: Vec<SocketAddr>,
    /// The node's key and ID.
    pub identity: Identity,
    /// The wall clock at start.
    pub clock: WallClock,
    /// DHT nodes to bootstrap from.
    pub bootstrap: Vec<SocketAddr>,
    /// The Mainline DHT: `None` leaves it off; `Some(addrs)` turns it on,
    /// bootstrapping from `addrs` (which may be empty and come later, with
    /// [`Command::MainlineBootstrap`](crate::Command::MainlineBootstrap), once host names are resolved).
    /// Needs an IPv4 socket.
    pub mainline_bootstrap: Option<Vec<SocketAddr>>,
    /// Multicast LAN beacons from the IPv4 socket while in a meeting (the
    /// driver's listener delivers others' beacons).
    pub lan: bool,
    /// STUN retransmission numbers for address discovery.
    pub retransmit: RetransmitConfig,
    /// SOFTWARE value in STUN answers.
    pub software: String,
    /// Whether this node relays for others, and for whom.
    pub relay: RelayRole,
    /// The limits of an open relay ([`RelayRole::Open`], `serve --relay`):
    /// the defaults suit a relay that strangers find in the Mainline
    /// directory; an operator's own relay may allow far more.
    pub open_relay_limits: RelayLimits,
}

impl NodeConfig {
    /// A node with one socket at `local_addr`, `identity`, no bootstrap
    /// nodes, Mainline and LAN beacons off, RFC 5389 retransmission defaults and `tinynode VERSION` as
    /// SOFTWARE.
    pub fn new(local_addr: SocketAddr, identity: Identity, clock: WallClock) -> Self {
        Self {
            local_addrs: vec![local_addr],
            identity,
            clock,
            bootstrap: Vec::new(),
            mainline_bootstrap: None,
            lan: false,
            retransmit: RetransmitConfig::default(),
            software: concat!("tinynode ", env!("CARGO_PKG_VERSION")).to_owned(),
            relay: RelayRole::Members,
            open_relay_limits: RelayLimits::OPEN,
        }
    }
}

/// Whom a node relays for (`protocol-spec.md` §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayRole {
    /// Nobody (`join --no-relay`, and `serve` without `--relay`).
    Off,
    /// Members of its own meeting, whose tokens it can verify (`join`).
    Members,
    /// Anyone who pairs two bindings with one token, blindly
    /// (`serve --relay`).
    Open,
}

/// Retransmission numbers (RFC 5389 §7.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// RTO: the wait before the first retransmission; it doubles each time.
    pub initial_rto: Duration,
    /// Rc: how many requests are sent at most, the first included.
    pub max_sends: u32,
    /// Rm: after the last request, wait this many initial RTOs for an answer.
    pub final_wait_rtos: u32,
    /// Give up on a server after this long, even if the schedule has more.
    pub per_server_limit: Option<Duration>,
}

impl Default for RetransmitConfig {
    /// The RFC 5389 recommendation: RTO 500 ms, Rc 7, Rm 16, no cap.
    fn default() -> Self {
        Self {
            initial_rto: Duration::from_millis(500),
            max_sends: 7,
            final_wait_rtos: 16,
            per_server_limit: None,
        }
    }
}

impl RetransmitConfig {
    /// Time from the first request to the moment of sending request number
    /// `index` (0-based), when `index < max_sends`.
    pub(crate) fn send_offset(&self, index: u32) -> Duration {
        // The gaps double from the RTO (RFC 5389 §7.2.1): RTO × (2^index − 1)
        // in all.
        let gaps = Backoff::new(self.initial_rto, Duration::MAX);
        (0..index.min(64)).fold(Duration::ZERO, |sum, gap| {
            sum.saturating_add(gaps.delay(gap))
        })
    }

    /// Time from the first request until the transaction is given up.
    pub fn transaction_timeout(&self) -> Duration {
        let last_send = self.send_offset(self.max_sends.saturating_sub(1));
        let full = last_send.saturating_add(self.initial_rto.saturating_mul(self.final_wait_rtos));
        match self.per_server_limit {
            Some(limit) => full.min(limit),
            None => full,
        }
    }
}

/// The numbers a relay keeps to: pairs, bindings per source, bytes a
/// second per pair and in all (`protocol-spec.md` §12.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// Most tokens (pairs, bound on one side or both).
    pub max_pairs: usize,
    /// Most bindings from one source IP (an IPv4 address, an IPv6 /64).
    pub max_per_ip: usize,
    /// Most bindings from one prefix (an IPv4 /24, an IPv6 /48).
    pub max_per_prefix: usize,
    /// New bindings one source may create a minute...
    pub binds_per_minute: u64,
    /// ...and at most this many at once.
    pub binds_burst: u64,
    /// Bytes a second one pair may send through, both ways together.
    pub pair_rate: u64,
    /// Bytes one pair may save up.
    pub pair_burst: u64,
    /// Bytes a second the whole relay forwards.
    pub total_rate: u64,
    /// Bytes the whole relay may save up.
    pub total_burst: u64,
    /// A binding ends this long after its last bind unless bound again.
    pub lifetime: Duration,
    /// A binding that forwarded nothing for this long ends.
    pub idle: Duration,
}

impl RelayLimits {
    /// Limits of a member relaying for its own meeting (§12.5).
    pub const MEMBERS: Self = Self {
        max_pairs: 16,
        max_per_ip: 8,
        max_per_prefix: 16,
        binds_per_minute: 30,
        binds_burst: 16,
        pair_rate: 256 * 1024,
        pair_burst: 512 * 1024,
        total_rate: 1024 * 1024,
        total_burst: 2 * 1024 * 1024,
        lifetime: Duration::from_secs(600),
        idle: Duration::from_secs(30),
    };

    /// Limits of a `serve --relay` node (§12.5), the default of
    /// [`NodeConfig::open_relay_limits`].
    pub const OPEN: Self = Self {
        max_pairs: 64,
        max_per_ip: 8,
        max_per_prefix: 16,
        binds_per_minute: 30,
        binds_burst: 16,
        pair_rate: 256 * 1024,
        pair_burst: 512 * 1024,
        total_rate: 2 * 1024 * 1024,
        total_burst: 4 * 1024 * 1024,
        lifetime: Duration::from_secs(600),
        idle: Duration::from_secs(30),
    };

    /// Most pairs an open relay may be configured to hold: the node's
    /// state stays bounded whatever the operator asks.
    pub const MAX_OPEN_PAIRS: usize = 1024;

    /// A rate that never limits (`serve --relay-rate unlimited`): a
    /// terabyte a second, far beyond any link, and far from overflowing
    /// the buckets.
    pub const UNLIMITED_RATE: u64 = 1 << 40;
}
