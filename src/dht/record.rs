//! Peer records: what a member announces under its meeting's topic.
//!
//! A record says "node ID N, with public key P, is reachable at these
//! addresses, as of time T". It is signed by the announcer and sealed with
//! the meeting key, so storing nodes see only an opaque blob and nobody
//! without the code can read or forge one:
//!
//! ```text
//! body      = bincode(RecordBody { node_id, public_key, addrs, timestamp_ms })
//! signature = Ed25519(key, RECORD_LABEL || topic || body)
//! plaintext = bincode(SignedRecord { body, signature })
//! blob      = nonce(12) || ChaCha20-Poly1305(meeting key, nonce,
//!             aad = RECORD_LABEL || topic, plaintext)
//! ```
//!
//! Opening checks the seal, the signature, and that `node_id` is SHA-256 of
//! `public_key`. Freshness (stale or replayed records) is judged by the
//! reader, which knows the time and what it saw before.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::id::NodeId;
use super::wire::{Blob, BoundedList, WireAddr, decode_value, encode_value};
use crate::identity::{self, Identity, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::meeting::{Meeting, NONCE_LEN};

/// Domain-separation label of records (signature input and AEAD data).
pub const RECORD_LABEL: &[u8] = b"tinynode record v1";
/// Addresses in one record.
pub const MAX_RECORD_ADDRS: usize = 4;

#[derive(Serialize, Deserialize)]
struct RecordBody {
    node_id: NodeId,
    public_key: [u8; PUBLIC_KEY_LEN],
    addrs: BoundedList<WireAddr, MAX_RECORD_ADDRS>,
    timestamp_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct SignedRecord {
    body: RecordBody,
    signature: Blob<SIGNATURE_LEN>,
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
}

/// Why a blob is not a valid record of this meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Not sealed with this meeting's key (another meeting, or forged).
    NotSealedForMeeting,
    /// The plaintext does not decode.
    Malformed,
    /// The signature does not verify.
    BadSignature,
    /// The node ID is not the hash of the public key.
    IdMismatch,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSealedForMeeting => "not sealed with this meeting's key",
            Self::Malformed => "malformed record",
            Self::BadSignature => "bad signature",
            Self::IdMismatch => "node ID does not match the key",
        })
    }
}

impl std::error::Error for RecordError {}

fn label_and_topic(topic: &NodeId) -> Vec<u8> {
    [RECORD_LABEL, &topic.0].concat()
}

/// Builds the sealed record for `identity` in `meeting`.
pub fn seal(
    meeting: &Meeting,
    identity: &Identity,
    addrs: &[SocketAddr],
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
    };
    let aad = label_and_topic(&meeting.topic());
    let signed_bytes = [aad.as_slice(), &encode_value(&body)].concat();
    let signature = Blob(identity.sign(&signed_bytes).to_vec());
    let plaintext = encode_value(&SignedRecord { body, signature });
    meeting.seal(nonce, &aad, &plaintext)
}

/// Opens and verifies a sealed record of `meeting`.
pub fn open(meeting: &Meeting, blob: &[u8]) -> Result<PeerRecord, RecordError> {
    let aad = label_and_topic(&meeting.topic());
    let plaintext = meeting
        .open(&aad, blob)
        .ok_or(RecordError::NotSealedForMeeting)?;
    let signed: SignedRecord = decode_value(&plaintext).map_err(|_| RecordError::Malformed)?;
    let body = signed.body;
    let signed_bytes = [aad.as_slice(), &encode_value(&body)].concat();
    if !identity::verify(&body.public_key, &signed_bytes, &signed.signature.0) {
        return Err(RecordError::BadSignature);
    }
    if identity::node_id_of(&body.public_key) != body.node_id {
        return Err(RecordError::IdMismatch);
    }
    Ok(PeerRecord {
        node_id: body.node_id,
        public_key: body.public_key,
        addrs: body.addrs.0.into_iter().map(SocketAddr::from).collect(),
        timestamp_ms: body.timestamp_ms,
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
        let blob = seal(&meeting, &identity, &addrs(), 1_700_000_000_000, [9; 12]);
        let record = open(&meeting, &blob).unwrap();
        assert_eq!(record.node_id, identity.node_id());
        assert_eq!(record.addrs, addrs());
        assert_eq!(record.timestamp_ms, 1_700_000_000_000);
    }

    #[test]
    fn other_meetings_and_tampering_are_rejected() {
        let meeting = Meeting::derive("record test").unwrap();
        let other = Meeting::derive("record test 2").unwrap();
        let identity = Identity::from_seed([4; 32]);
        let blob = seal(&meeting, &identity, &addrs(), 1, [9; 12]);
        assert_eq!(open(&other, &blob), Err(RecordError::NotSealedForMeeting));
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&meeting, &tampered),
            Err(RecordError::NotSealedForMeeting)
        );
    }

    #[test]
    fn a_member_cannot_forge_another_members_record() {
        // Someone with the code re-signs a body claiming another node's ID.
        let meeting = Meeting::derive("record test").unwrap();
        let victim = Identity::from_seed([1; 32]);
        let forger = Identity::from_seed([2; 32]);
        let aad = label_and_topic(&meeting.topic());
        let body = RecordBody {
            node_id: victim.node_id(),
            public_key: forger.public_key(),
            addrs: BoundedList(vec![]),
            timestamp_ms: 1,
        };
        let signature = Blob(
            forger
                .sign(&[aad.as_slice(), &encode_value(&body)].concat())
                .to_vec(),
        );
        let blob = meeting.seal(
            [1; 12],
            &aad,
            &encode_value(&SignedRecord { body, signature }),
        );
        assert_eq!(open(&meeting, &blob), Err(RecordError::IdMismatch));
        // And a body with the victim's key but the forger's signature fails.
        let body = RecordBody {
            node_id: victim.node_id(),
            public_key: victim.public_key(),
            addrs: BoundedList(vec![]),
            timestamp_ms: 1,
        };
        let signature = Blob(
            forger
                .sign(&[aad.as_slice(), &encode_value(&body)].concat())
                .to_vec(),
        );
        let blob = meeting.seal(
            [2; 12],
            &aad,
            &encode_value(&SignedRecord { body, signature }),
        );
        assert_eq!(open(&meeting, &blob), Err(RecordError::BadSignature));
    }
}
