//! Peer records: what a member announces under its meeting's topic.
//!
//! A record says "node ID N, with public key P, is reachable at these
//! addresses, as of time T". It is signed by the announcer and sealed with
//! the meeting key under [`RECORD_LABEL`] (see `sealed.rs`), so storing
//! nodes see only an opaque blob and nobody without the code can read or
//! forge one, and no member can speak for another. Freshness (stale or replayed records) is judged by the
//! reader, which knows the time and what it saw before.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::{BoundedList, WireAddr};
use crate::id::NodeId;
use crate::identity::{Identity, PUBLIC_KEY_LEN};
use crate::meeting::{Meeting, NONCE_LEN};
use crate::nat::NatClass;
use crate::sealed::{self, OpenError, SignedBody};

/// Domain-separation label of records (signature input and AEAD data).
pub const RECORD_LABEL: &[u8] = b"tinynode record v2";
/// Addresses in one record.
pub const MAX_RECORD_ADDRS: usize = 4;
/// A record is valid for this long after its timestamp; readers drop older
/// ones. Storing nodes keep a record for the same time after its announce
/// (`protocol-spec.md` §5.4).
pub const RECORD_TTL: Duration = Duration::from_secs(10 * 60);

#[derive(Serialize, Deserialize)]
struct RecordBody {
    node_id: NodeId,
    public_key: [u8; PUBLIC_KEY_LEN],
    addrs: BoundedList<WireAddr, MAX_RECORD_ADDRS>,
    timestamp_ms: u64,
    nat: u8,
    reachable: bool,
}

impl SignedBody for RecordBody {
    fn signer(&self) -> (NodeId, [u8; PUBLIC_KEY_LEN]) {
        (self.node_id, self.public_key)
    }
}

/// An opened and verified record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The announcer.
    pub node_id: NodeId,
    /// Its Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Where it says it can be reached, most preferred first.
    pub addrs: Vec<SocketAddr>,
    /// Unix time in milliseconds when it was made.
    pub timestamp_ms: u64,
    /// Its NAT's mapping class as it saw it then (`protocol-spec.md` §11):
    /// a peer that knows a member's NAT maps by destination proposes
    /// relays in its first offer.
    pub nat: NatClass,
    /// A reachability probe (`protocol-spec.md` §5.8) showed that
    /// unsolicited datagrams reach it: it can relay for members it has no
    /// channel to.
    pub reachable: bool,
}

/// What a member says of its network in its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkFacts {
    /// Its NAT's mapping class.
    pub nat: NatClass,
    /// Whether unsolicited datagrams reach it.
    pub reachable: bool,
}

impl NetworkFacts {
    /// Nothing known.
    pub const UNKNOWN: Self = Self {
        nat: NatClass::Unknown,
        reachable: false,
    };
}

/// Why a blob is not a valid record of this meeting.
pub type RecordError = OpenError;

/// Builds the sealed record for `identity` in `meeting`.
pub fn seal(
    meeting: &Meeting,
    identity: &Identity,
    addrs: &[SocketAddr],
    facts: NetworkFacts,
    timestamp_ms: u64,
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    let body = RecordBody {
        node_id: identity.node_id(),
        public_key: identity.public_key(),
        addrs: BoundedList(
            addrs
                .iter()
                .take(MAX_RECORD_ADDRS)
                .map(|a| WireAddr::from(*a))
                .collect(),
        ),
        timestamp_ms,
        nat: facts.nat.code(),
        reachable: facts.reachable,
    };
    sealed::seal(meeting, identity, RECORD_LABEL, body, nonce)
}

/// Opens and verifies a sealed record of `meeting`.
pub fn open(meeting: &Meeting, blob: &[u8]) -> Result<PeerRecord, RecordError> {
    let body: RecordBody = sealed::open(meeting, RECORD_LABEL, blob)?;
    Ok(PeerRecord {
        node_id: body.node_id,
        public_key: body.public_key,
        addrs: body.addrs.0.into_iter().map(SocketAddr::from).collect(),
        timestamp_ms: body.timestamp_ms,
        nat: NatClass::from_code(body.nat),
        reachable: body.reachable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Vec<SocketAddr> {
        vec![
            "203.0.113.1:4000".parse().unwrap(),
            "10.0.0.2:4000".parse().unwrap(),
        ]
    }

    #[test]
    fn members_open_what_members_seal() {
        let meeting = Meeting::derive("record test").unwrap();
        let identity = Identity::from_seed([4; 32]);
        let blob = seal(
            &meeting,
            &identity,
            &addrs(),
            NetworkFacts {
                nat: NatClass::EndpointIndependent,
                reachable: true,
            },
            1_700_000_000_000,
            [9; 12],
        );
        let record = open(&meeting, &blob).unwrap();
        assert_eq!(record.node_id, identity.node_id());
        assert_eq!(record.addrs, addrs());
        assert_eq!(record.timestamp_ms, 1_700_000_000_000);
        assert_eq!(record.nat, NatClass::EndpointIndependent);
        assert!(record.reachable);
    }

    #[test]
    fn other_meetings_and_tampering_are_rejected() {
        let meeting = Meeting::derive("record test").unwrap();
        let other = Meeting::derive("record test 2").unwrap();
        let identity = Identity::from_seed([4; 32]);
        let blob = seal(
            &meeting,
            &identity,
            &addrs(),
            NetworkFacts::UNKNOWN,
            1,
            [9; 12],
        );
        assert_eq!(open(&other, &blob), Err(RecordError::NotSealedForMeeting));
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&meeting, &tampered),
            Err(RecordError::NotSealedForMeeting)
        );
    }
}
