//! Signaling payloads: how two members set up a WebRTC connection through
//! the DHT.
//!
//! tinynode uses str0m's direct API rather than SDP: the only facts a peer
//! needs are the ICE credentials, the DTLS certificate fingerprint and the
//! candidate addresses, and roles follow from the node IDs (the lower ID
//! offers, controls ICE, is the DTLS client and the SCTP client). That keeps
//! signals small (one datagram) and avoids generating and parsing SDP.
//!
//! A signal (`SignalBody { from, public_key, to, seq, timestamp_ms, session,
//! kind }`) is signed by its sender and sealed with the meeting key under
//! [`SIGNAL_LABEL`] (see `sealed.rs`), so the relaying DHT node learns
//! nothing and nobody without the code can forge one.
//!
//! The reader checks the seal, the signature, that `from` is SHA-256 of
//! `public_key`, that `to` is itself, that the time stamp is within
//! [`MAX_SIGNAL_SKEW`] of its clock, and that `seq` is higher than any
//! earlier signal from the same sender (no replays).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::{Blob, BoundedList, WireAddr};
use crate::id::NodeId;
use crate::identity::{Identity, PUBLIC_KEY_LEN};
use crate::meeting::{Meeting, NONCE_LEN};
use crate::sealed::{self, OpenError, SignedBody};

/// Domain-separation label of signals.
pub const SIGNAL_LABEL: &[u8] = b"tinynode signal v2";
/// Signals dated further than this from the reader's clock are rejected.
pub const MAX_SIGNAL_SKEW: Duration = Duration::from_secs(2 * 60);
/// Candidate addresses in one signal.
pub const MAX_CANDIDATES: usize = 4;
/// Longest ICE ufrag, password or hash-function name.
pub const MAX_TEXT: usize = 256;
/// Relays proposed in one signal.
pub const MAX_RELAYS: usize = 2;

/// A relay a member proposes for a connection (`protocol-spec.md` §12.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayHint {
    /// The relay's address as the proposer reaches it; the synthetic
    /// relayed addresses are derived from it.
    pub addr: WireAddr,
    /// The relay's node ID when the proposer knows it (a member's, or a
    /// serve node's as its DHT frames name it), so the other side can
    /// reach it where it reaches that node itself: at its own connection
    /// to the member, or at its own bootstrap address of the serve node,
    /// which may be of the other address family.
    pub node: Option<NodeId>,
}

/// What a WebRTC endpoint tells its peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionParams {
    /// ICE username fragment.
    pub ice_ufrag: Blob<MAX_TEXT>,
    /// ICE password.
    pub ice_pwd: Blob<MAX_TEXT>,
    /// DTLS fingerprint hash function, normally `sha-256`.
    pub fingerprint_hash: Blob<MAX_TEXT>,
    /// DTLS certificate fingerprint.
    pub fingerprint: Blob<64>,
    /// Candidate addresses (host, then server-reflexive).
    pub candidates: BoundedList<WireAddr, MAX_CANDIDATES>,
    /// Relays the sender binds at for this attempt; the receiver binds at
    /// them too.
    pub relays: BoundedList<RelayHint, MAX_RELAYS>,
}

/// The purpose of a signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalKind {
    /// From the lower node ID: start a session.
    Offer(SessionParams),
    /// From the higher node ID: accept a session.
    Answer(SessionParams),
    /// The session is over (the sender is leaving).
    Close,
}

#[derive(Serialize, Deserialize)]
struct SignalBody {
    from: NodeId,
    public_key: [u8; PUBLIC_KEY_LEN],
    to: NodeId,
    seq: u64,
    timestamp_ms: u64,
    session: u64,
    kind: SignalKind,
}

impl SignedBody for SignalBody {
    fn signer(&self) -> (NodeId, [u8; PUBLIC_KEY_LEN]) {
        (self.from, self.public_key)
    }
}

/// An opened, verified signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    /// The sender.
    pub from: NodeId,
    /// The sender's sequence number.
    pub seq: u64,
    /// Which connection attempt it belongs to.
    pub session: u64,
    /// When the sender made it (Unix time in milliseconds).
    pub timestamp_ms: u64,
    /// What it says.
    pub kind: SignalKind,
}

/// Everything needed to build a signal, except the sender's identity.
#[derive(Clone, Copy, Debug)]
pub struct Envelope {
    /// The recipient.
    pub to: NodeId,
    /// A number higher than every earlier signal of this sender.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub timestamp_ms: u64,
    /// The connection attempt.
    pub session: u64,
}

/// Why a sealed signal was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalError {
    /// It did not open or verify.
    Invalid(OpenError),
    /// Addressed to another node.
    NotForUs,
    /// Time stamp too far from our clock.
    Stale,
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(error) => error.fmt(f),
            Self::NotForUs => f.write_str("addressed to another node"),
            Self::Stale => f.write_str("time stamp too far from our clock"),
        }
    }
}

impl std::error::Error for SignalError {}

/// Seals `kind` from `identity` for `envelope.to` in `meeting`.
pub fn seal(
    meeting: &Meeting,
    identity: &Identity,
    envelope: Envelope,
    kind: SignalKind,
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    let body = SignalBody {
        from: identity.node_id(),
        public_key: identity.public_key(),
        to: envelope.to,
        seq: envelope.seq,
        timestamp_ms: envelope.timestamp_ms,
        session: envelope.session,
        kind,
    };
    sealed::seal(meeting, identity, SIGNAL_LABEL, body, nonce)
}

/// Opens a sealed signal addressed to `local`, read at Unix time `unix_ms`.
pub fn open(
    meeting: &Meeting,
    local: &NodeId,
    unix_ms: u64,
    blob: &[u8],
) -> Result<Signal, SignalError> {
    let body: SignalBody =
        sealed::open(meeting, SIGNAL_LABEL, blob).map_err(SignalError::Invalid)?;
    if body.to != *local {
        return Err(SignalError::NotForUs);
    }
    if unix_ms.abs_diff(body.timestamp_ms) > MAX_SIGNAL_SKEW.as_millis() as u64 {
        return Err(SignalError::Stale);
    }
    Ok(Signal {
        from: body.from,
        seq: body.seq,
        session: body.session,
        timestamp_ms: body.timestamp_ms,
        kind: body.kind,
    })
}

impl SessionParams {
    /// The candidate addresses as socket addresses.
    pub fn candidate_addrs(&self) -> Vec<SocketAddr> {
        self.candidates
            .0
            .iter()
            .map(|c| SocketAddr::from(*c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn params() -> SessionParams {
        SessionParams {
            ice_ufrag: Blob(b"ufrag".to_vec()),
            ice_pwd: Blob(b"password-password".to_vec()),
            fingerprint_hash: Blob(b"sha-256".to_vec()),
            fingerprint: Blob(vec![0xab; 32]),
            candidates: BoundedList(vec![WireAddr::V4([127, 0, 0, 1], 5000)]),
            relays: BoundedList(vec![RelayHint {
                addr: WireAddr::V4([198, 51, 100, 1], 3478),
                node: Some(NodeId([9; 32])),
            }]),
        }
    }

    fn envelope(to: NodeId, seq: u64, timestamp_ms: u64) -> Envelope {
        Envelope {
            to,
            seq,
            timestamp_ms,
            session: 7,
        }
    }

    #[test]
    fn members_exchange_signals() {
        let meeting = Meeting::derive("signal test").unwrap();
        let (a, b) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let blob = seal(
            &meeting,
            &a,
            envelope(b.node_id(), 1, NOW_MS),
            SignalKind::Offer(params()),
            [0; 12],
        );
        let signal = open(&meeting, &b.node_id(), NOW_MS + 1000, &blob).unwrap();
        assert_eq!(signal.from, a.node_id());
        assert_eq!((signal.seq, signal.session), (1, 7));
        assert_eq!(signal.kind, SignalKind::Offer(params()));
        if let SignalKind::Offer(p) = signal.kind {
            assert_eq!(
                p.candidate_addrs(),
                ["127.0.0.1:5000".parse::<SocketAddr>().unwrap()]
            );
        }
    }

    #[test]
    fn outsiders_misaddressed_and_stale_signals_are_rejected() {
        let meeting = Meeting::derive("signal test").unwrap();
        let outsider_meeting = Meeting::derive("a guess").unwrap();
        let (a, b, c) = (
            Identity::from_seed([1; 32]),
            Identity::from_seed([2; 32]),
            Identity::from_seed([3; 32]),
        );
        let forged = seal(
            &outsider_meeting,
            &a,
            envelope(b.node_id(), 1, NOW_MS),
            SignalKind::Close,
            [0; 12],
        );
        assert_eq!(
            open(&meeting, &b.node_id(), NOW_MS, &forged),
            Err(SignalError::Invalid(OpenError::NotSealedForMeeting))
        );
        let to_c = seal(
            &meeting,
            &a,
            envelope(c.node_id(), 1, NOW_MS),
            SignalKind::Close,
            [1; 12],
        );
        assert_eq!(
            open(&meeting, &b.node_id(), NOW_MS, &to_c),
            Err(SignalError::NotForUs)
        );
        let old = seal(
            &meeting,
            &a,
            envelope(b.node_id(), 1, NOW_MS - 3 * 60_000),
            SignalKind::Close,
            [2; 12],
        );
        assert_eq!(
            open(&meeting, &b.node_id(), NOW_MS, &old),
            Err(SignalError::Stale)
        );
        let mut tampered = seal(
            &meeting,
            &a,
            envelope(b.node_id(), 1, NOW_MS),
            SignalKind::Close,
            [3; 12],
        );
        tampered[15] ^= 1;
        assert_eq!(
            open(&meeting, &b.node_id(), NOW_MS, &tampered),
            Err(SignalError::Invalid(OpenError::NotSealedForMeeting))
        );
    }
}
