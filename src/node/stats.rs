//! What a node counts ([`Stats`], with [`DropReason`] for every datagram
//! it drops) and how much state it holds ([`Sizes`], each bounded by
//! [`Sizes::LIMITS`], `protocol-spec.md` §7.1).

use std::fmt;

use super::signaling::MAX_SIGNALING_PEERS;
#[cfg(doc)]
use crate::limits::MAX_DATAGRAM_LEN;

/// Why a received datagram (or record) was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Longer than [`MAX_DATAGRAM_LEN`].
    Oversized,
    /// Empty, or a protocol tinynode does not speak (by first byte).
    UnknownProtocol,
    /// DTLS, or a STUN ICE check, that no WebRTC connection accepted.
    WebrtcUnmatched,
    /// A request from a source over its rate limit.
    RateLimited,
    /// STUN bytes that do not form a valid message.
    StunMalformed,
    /// A valid STUN indication: nothing to answer.
    StunIgnored,
    /// A STUN response for no outstanding transaction.
    StunUnknownTransaction,
    /// A STUN response from an address the request did not go to.
    StunWrongSource,
    /// A STUN message whose FINGERPRINT does not match.
    StunBadFingerprint,
    /// A STUN request whose answer would exceed the amplification bound.
    StunAnswerTooLarge,
    /// A DHT frame that does not decode.
    DhtMalformed,
    /// A DHT response for no request in flight.
    DhtUnknownTransaction,
    /// A DHT response from an address the request did not go to.
    DhtWrongSource,
    /// A DHT announce whose key or signature does not prove its sender ID.
    DhtForgedAnnounce,
    /// A DHT `Push` from a node we did not announce to.
    DhtUnsolicitedPush,
    /// A Mainline datagram that is not a KRPC message we can read
    /// (bencode bombs and malformed answers land here).
    MainlineMalformed,
    /// A Mainline query: a read-only node answers none.
    MainlineQuery,
    /// A Mainline answer for no query in flight.
    MainlineUnknownTransaction,
    /// A Mainline answer from an address the query did not go to.
    MainlineWrongSource,
    /// A hello that does not decode.
    HelloMalformed,
    /// A hello whose record does not open, verify or pass membership's
    /// checks, or that arrived outside a meeting.
    HelloUnverified,
    /// A hello whose code checks but that names another destination than
    /// ours: captured elsewhere and replayed.
    HelloMisdirected,
    /// A beacon that does not decode.
    BeaconMalformed,
    /// A beacon of another meeting (its tag does not match; no
    /// cryptography was spent), or one heard outside a meeting.
    BeaconOtherMeeting,
    /// A beacon that arrived at our unicast socket, not from the group.
    BeaconUnicast,
    /// A beacon with our meeting's tag whose record does not open, verify
    /// or pass membership's checks.
    BeaconUnverified,
    /// A relay frame that does not decode.
    RelayMalformed,
    /// A relay data frame on a channel nobody bound from its source.
    RelayUnknownChannel,
    /// A relay data frame whose binding has no partner yet.
    RelayUnpaired,
    /// A relay data frame over its pair's or the relay's rate.
    RelayRateLimited,
    /// A relay's answer to a bind we did not send (or no longer wait for).
    RelayUnsolicited,
    /// A bind from one of our own addresses, or from a non-public address
    /// while our socket is public: never challenged, never bound.
    RelayForbidden,
}

impl DropReason {
    /// Every reason, in the order stats are printed.
    pub const ALL: [DropReason; 32] = [
        Self::Oversized,
        Self::UnknownProtocol,
        Self::WebrtcUnmatched,
        Self::RateLimited,
        Self::StunMalformed,
        Self::StunIgnored,
        Self::StunUnknownTransaction,
        Self::StunWrongSource,
        Self::StunBadFingerprint,
        Self::StunAnswerTooLarge,
        Self::DhtMalformed,
        Self::DhtUnknownTransaction,
        Self::DhtWrongSource,
        Self::DhtForgedAnnounce,
        Self::DhtUnsolicitedPush,
        Self::MainlineMalformed,
        Self::MainlineQuery,
        Self::MainlineUnknownTransaction,
        Self::MainlineWrongSource,
        Self::HelloMalformed,
        Self::HelloUnverified,
        Self::HelloMisdirected,
        Self::BeaconMalformed,
        Self::BeaconOtherMeeting,
        Self::BeaconUnicast,
        Self::BeaconUnverified,
        Self::RelayMalformed,
        Self::RelayUnknownChannel,
        Self::RelayUnpaired,
        Self::RelayRateLimited,
        Self::RelayUnsolicited,
        Self::RelayForbidden,
    ];

    /// Short name for logs and stats lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::UnknownProtocol => "unknown_protocol",
            Self::WebrtcUnmatched => "webrtc_unmatched",
            Self::RateLimited => "rate_limited",
            Self::StunMalformed => "stun_malformed",
            Self::StunIgnored => "stun_ignored",
            Self::StunUnknownTransaction => "stun_unknown_transaction",
            Self::StunWrongSource => "stun_wrong_source",
            Self::StunBadFingerprint => "stun_bad_fingerprint",
            Self::StunAnswerTooLarge => "stun_answer_too_large",
            Self::DhtMalformed => "dht_malformed",
            Self::DhtUnknownTransaction => "dht_unknown_transaction",
            Self::DhtWrongSource => "dht_wrong_source",
            Self::DhtForgedAnnounce => "dht_forged_announce",
            Self::DhtUnsolicitedPush => "dht_unsolicited_push",
            Self::MainlineMalformed => "mainline_malformed",
            Self::MainlineQuery => "mainline_query",
            Self::MainlineUnknownTransaction => "mainline_unknown_transaction",
            Self::MainlineWrongSource => "mainline_wrong_source",
            Self::HelloMalformed => "hello_malformed",
            Self::HelloUnverified => "hello_unverified",
            Self::HelloMisdirected => "hello_misdirected",
            Self::BeaconMalformed => "beacon_malformed",
            Self::BeaconOtherMeeting => "beacon_other_meeting",
            Self::BeaconUnicast => "beacon_unicast",
            Self::BeaconUnverified => "beacon_unverified",
            Self::RelayMalformed => "relay_malformed",
            Self::RelayUnknownChannel => "relay_unknown_channel",
            Self::RelayUnpaired => "relay_unpaired",
            Self::RelayRateLimited => "relay_rate_limited",
            Self::RelayUnsolicited => "relay_unsolicited",
            Self::RelayForbidden => "relay_forbidden",
        }
    }
}

/// Counters of what the node received, answered and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams offered to the node.
    pub received: u64,
    /// STUN success answers sent.
    pub stun_answers: u64,
    /// STUN error answers (400, 420) sent.
    pub stun_error_answers: u64,
    /// STUN responses accepted by the address-discovery client.
    pub stun_responses: u64,
    /// DHT messages handled.
    pub dht_messages: u64,
    /// Meeting records rejected (forged, foreign, stale, replayed).
    pub records_rejected: u64,
    /// Datagrams taken by a WebRTC connection (ICE, DTLS).
    pub webrtc_datagrams: u64,
    /// Signals rejected (not sealed for our meeting, forged, stale, replayed).
    pub signals_rejected: u64,
    /// Signals that arrived a second time, along a second path (offers are
    /// sent along two), and were ignored.
    pub signals_duplicate: u64,
    /// Mainline answers (responses and errors) matched to our queries.
    pub mainline_messages: u64,
    /// Verified hellos and replies.
    pub hellos: u64,
    /// Verified beacons (our own, looped back, included).
    pub beacons: u64,
    /// Relay data frames this node forwarded, as a relay.
    pub relay_forwarded: u64,
    /// Binds and releases this node handled, as a relay (answered bound
    /// or refused, or released).
    pub relay_requests: u64,
    /// Binds this node refused, as a relay (also in `relay_requests`).
    pub relay_refused: u64,
    /// Binds without a valid cookie this node answered with a challenge,
    /// as a relay (also in `relay_requests`).
    pub relay_challenges: u64,
    /// Releases that freed one of this node's channels, as a relay (also
    /// in `relay_requests`): a client whose direct path opened let go.
    pub relay_released: u64,
    /// Relays' answers to our own binds.
    pub relay_answers: u64,
    /// Relay data frames handed to our connections.
    pub relayed_datagrams: u64,
    /// Datagrams the node meant to send to an address family it has no
    /// socket of (an address from a peer of the other family), dropped
    /// unsent. Not received datagrams: outside `received`.
    pub unsendable: u64,
    /// Link reports in which a peer said it lost some of our datagrams
    /// (spec §6.6).
    pub loss_reports: u64,
    /// Copies of data datagrams sent beyond the first to make up for the
    /// loss peers reported (spec §6.6).
    pub extra_copies: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }

    /// Datagrams dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Datagrams that were answered or acted on.
    pub fn handled(&self) -> u64 {
        self.stun_answers
            + self.stun_error_answers
            + self.stun_responses
            + self.dht_messages
            + self.webrtc_datagrams
            + self.mainline_messages
            + self.hellos
            + self.beacons
            + self.relay_forwarded
            + self.relay_requests
            + self.relay_answers
            + self.relayed_datagrams
    }

    pub(super) fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received={} stun_answers={} stun_error_answers={} stun_responses={} dht_messages={} \
             webrtc_datagrams={} records_rejected={} signals_rejected={} signals_duplicate={} \
             mainline_messages={} hellos={} beacons={} relay_forwarded={} relay_requests={} \
             relay_refused={} relay_challenges={} relay_released={} relay_answers={} \
             relayed_datagrams={} unsendable={} loss_reports={} extra_copies={} dropped={}",
            self.received,
            self.stun_answers,
            self.stun_error_answers,
            self.stun_responses,
            self.dht_messages,
            self.webrtc_datagrams,
            self.records_rejected,
            self.signals_rejected,
            self.signals_duplicate,
            self.mainline_messages,
            self.hellos,
            self.beacons,
            self.relay_forwarded,
            self.relay_requests,
            self.relay_refused,
            self.relay_challenges,
            self.relay_released,
            self.relay_answers,
            self.relayed_datagrams,
            self.unsendable,
            self.loss_reports,
            self.extra_copies,
            self.dropped_total()
        )?;
        for reason in DropReason::ALL {
            let count = self.dropped(reason);
            if count > 0 {
                write!(f, " {}={count}", reason.name())?;
            }
        }
        Ok(())
    }
}

/// How much state a node holds, by kind; each is bounded (see
/// [`Sizes::LIMITS`] and `protocol-spec.md` §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sizes {
    /// Routing-table entries.
    pub routing: usize,
    /// Records stored for others.
    pub stored_records: usize,
    /// DHT requests in flight.
    pub pending_requests: usize,
    /// Lookups under way.
    pub lookups: usize,
    /// Members of the meeting known.
    pub peers: usize,
    /// Peers with signaling state.
    pub signaling: usize,
    /// WebRTC connections.
    pub connections: usize,
    /// Sources tracked by the rate limiter.
    pub rate_limited_sources: usize,
    /// Mainline routing-table entries.
    pub mainline_routing: usize,
    /// Mainline queries in flight.
    pub mainline_pending: usize,
    /// Bindings held as a relay.
    pub relay_bindings: usize,
    /// IPs remembered as sent to (for reachability probes).
    pub contacted_ips: usize,
    /// Destinations whose hello nonces are remembered (§9.6).
    pub hello_nonces: usize,
    /// Bytes str0m may hold for sending over all open connections (§6.6).
    pub send_window: usize,
}

impl Sizes {
    /// The most each may reach.
    pub const LIMITS: Sizes = Sizes {
        routing: crate::id::ID_BITS * crate::dht::wire::K,
        stored_records: crate::dht::store::MAX_TOTAL,
        pending_requests: crate::dht::rpc::MAX_PENDING,
        lookups: crate::dht::engine::MAX_LOOKUPS,
        peers: crate::membership::MAX_PEERS,
        signaling: MAX_SIGNALING_PEERS,
        connections: crate::rtc::MAX_CONNECTIONS,
        rate_limited_sources: crate::ratelimit::MAX_SOURCES,
        mainline_routing: crate::id::ID_BITS * crate::dht::wire::K,
        mainline_pending: crate::mainline::engine::MAX_PENDING,
        relay_bindings: 2 * crate::api::RelayLimits::MAX_OPEN_PAIRS,
        contacted_ips: crate::reach::MAX_CONTACTED,
        hello_nonces: super::hello::MAX_SENT_NONCES,
        send_window: crate::rtc::window::TOTAL_WINDOW,
    };

    /// True if every count is within [`Sizes::LIMITS`].
    pub fn within_limits(&self) -> bool {
        let limits = Self::LIMITS;
        self.routing <= limits.routing
            && self.stored_records <= limits.stored_records
            && self.pending_requests <= limits.pending_requests
            && self.lookups <= limits.lookups
            && self.peers <= limits.peers
            && self.signaling <= limits.signaling
            && self.connections <= limits.connections
            && self.rate_limited_sources <= limits.rate_limited_sources
            && self.mainline_routing <= limits.mainline_routing
            && self.send_window <= limits.send_window
            && self.mainline_pending <= limits.mainline_pending
            && self.relay_bindings <= limits.relay_bindings
            && self.contacted_ips <= limits.contacted_ips
            && self.hello_nonces <= limits.hello_nonces
    }
}
