//! Why things happen and end: small enums with `Display`, each named in
//! logs and JSON.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// What a reachability probe (`protocol-spec.md` §5.8) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReachResult {
    /// A third node's datagram got in unasked, from this address, which
    /// we had never sent to: unsolicited datagrams reach us.
    Reached(SocketAddr),
    /// It got in, but from an address we had sent to, whose mapping our
    /// own datagram may have opened: nothing learned.
    Inconclusive(SocketAddr),
    /// The node asked no third node (it knows none, is too old, or did
    /// not answer).
    NotForwarded,
    /// The node asked a third node to probe us (it answered `Pong`): the
    /// probe follows within a round trip or two if our NAT lets it in,
    /// and nothing follows if it does not. Not a finding yet: the caller
    /// times its wait from here (spec §5.8: 1.5 s).
    Forwarded,
}

/// Who told us our public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressSource {
    /// A STUN server's Binding response.
    Stun {
        /// The server.
        server: SocketAddr,
    },
    /// A DHT peer's response.
    Dht {
        /// The peer.
        by: SocketAddr,
    },
    /// A Mainline node's answer (BEP 42 `ip`).
    Mainline {
        /// The node.
        by: SocketAddr,
    },
}

impl AddressSource {
    /// The name used in logs and JSON (`"via":"stun"`, `"via":"dht"`,
    /// `"via":"mainline"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Stun { .. } => "stun",
            Self::Dht { .. } => "dht",
            Self::Mainline { .. } => "mainline",
        }
    }

    /// Who reported the address.
    pub fn reporter(&self) -> SocketAddr {
        match self {
            Self::Stun { server } => *server,
            Self::Dht { by } | Self::Mainline { by } => *by,
        }
    }
}

/// Where a member was found: the member source whose record revealed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Via {
    /// tinynode's own DHT: a `Peers` reply, a push or a stored announce.
    Dht,
    /// The Mainline DHT: an address it listed answered a hello.
    Mainline,
    /// The local network: a beacon, or a hello answering ours.
    Lan,
    /// No source had found it: it reached us first, with an offer (a
    /// connection's `via` only).
    Offer,
}

impl Via {
    /// The name used in logs and JSON (`"via":"dht"`, `"via":"mainline"`,
    /// `"via":"lan"`, `"via":"offer"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Dht => "dht",
            Self::Mainline => "mainline",
            Self::Lan => "lan",
            Self::Offer => "offer",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a member is no longer a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// Its newest record expired and no fresher one arrived.
    RecordExpired,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RecordExpired => "record expired",
        })
    }
}

/// Why a connection attempt failed or an open connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionReason {
    /// The offer got no answer before the connect timeout.
    NoAnswer,
    /// Answered, but ICE or DTLS did not complete before the connect timeout.
    NotEstablished,
    /// Not established, and the attempt needed a relay (a NAT that maps
    /// by destination, or an earlier failure) but no relay bound it.
    NoRelay,
    /// Not established, and no address pair could have worked: one side
    /// offered no candidate (IPv6 link-local addresses are never offered)
    /// and no relay bound it.
    NoAddress,
    /// The data channel closed.
    ChannelClosed,
    /// ICE consent checks stopped getting answers.
    IceLost,
    /// The peer said it is leaving.
    PeerLeft,
    /// Our address changed (another network): the connection's path used
    /// the old one, so it is made again.
    AddressChanged,
    /// The peer offered a new connection in place of this one (it
    /// restarted, or its address changed).
    Replaced,
    /// str0m reported an error (logged at debug level).
    WebRtcError,
}

impl fmt::Display for ConnectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoAnswer => "no answer to the offer",
            Self::NotEstablished => "no data channel: ICE or DTLS did not complete",
            Self::NoRelay => "needs a relay, none available",
            Self::NoAddress => {
                "no address to connect on: one side has only IPv6 link-local addresses, which \
                 tinynode does not use; give the hosts an IPv4 or a global IPv6 address"
            }
            Self::ChannelClosed => "data channel closed",
            Self::IceLost => "ICE connection lost",
            Self::PeerLeft => "peer left",
            Self::AddressChanged => "our address changed; connecting again",
            Self::Replaced => "the peer started a new connection",
            Self::WebRtcError => "WebRTC error",
        })
    }
}

/// Why one server did not give an address.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// No matching response arrived.
    NoResponse {
        /// Requests sent.
        sends: u32,
        /// Time waited from the first request.
        waited: Duration,
    },
    /// The server answered with an error response.
    ErrorResponse {
        /// ERROR-CODE, or 0 if the response had none.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A success response without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS.
    NoAddressInResponse,
    /// The server is IPv4 and the socket IPv6, or the reverse.
    AddressFamilyMismatch {
        /// The socket's local address.
        local: SocketAddr,
    },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoResponse { sends, waited } => write!(
                f,
                "no response to {sends} request{} in {:.1} s",
                if *sends == 1 { "" } else { "s" },
                waited.as_secs_f64()
            ),
            Self::ErrorResponse { code, reason } => write!(f, "error response {code} {reason}"),
            Self::NoAddressInResponse => f.write_str("response carried no mapped address"),
            Self::AddressFamilyMismatch { local } => {
                write!(f, "address family differs from the socket's ({local})")
            }
        }
    }
}

/// One server that was tried and failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFailure {
    /// The server's address.
    pub server: SocketAddr,
    /// What went wrong.
    pub reason: FailureReason,
}

impl fmt::Display for ServerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.server, self.reason)
    }
}

/// Why a node would not relay for us (`protocol-spec.md` §12.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayRefusal {
    /// This node does not relay (no `--relay`, `--no-relay`, or not a member).
    NotARelay,
    /// A member relay could not verify the token for its meeting.
    BadToken,
    /// The relay holds as many pairs as it will.
    Full,
    /// The source IP holds as many bindings as it may.
    TooManyFromSource,
    /// Both sides of this token are bound already, from other addresses.
    TokenTaken,
    /// The source may not bind here: one of the relay's own addresses, or
    /// not a global address while the relay's socket is.
    Forbidden,
    /// The source (IPv4 address or IPv6 /64) asked for new bindings too
    /// fast.
    TooFast,
    /// A reason this version does not know.
    Unknown(u8),
}

impl fmt::Display for RelayRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARelay => f.write_str("not a relay"),
            Self::BadToken => f.write_str("token not of this meeting"),
            Self::Full => f.write_str("relay full"),
            Self::TooManyFromSource => f.write_str("too many bindings from this IP"),
            Self::TokenTaken => f.write_str("token bound by others"),
            Self::Forbidden => f.write_str("source address not allowed"),
            Self::TooFast => f.write_str("new bindings too fast from this source"),
            Self::Unknown(code) => write!(f, "reason {code}"),
        }
    }
}
