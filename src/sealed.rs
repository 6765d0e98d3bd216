//! Signed-then-sealed payloads: the one construction behind meeting records
//! and signals.
//!
//! ```text
//! signature = Ed25519(sender key, label || topic || bincode(body))
//! blob      = seal(meeting key, nonce, aad = label || topic,
//!                  bincode(Signed { body, signature }))
//! ```
//!
//! Opening checks, in order: the seal (only members hold the key), the
//! decoding (no trailing bytes, and canonical: re-encoding the decoded
//! value gives the plaintext back byte for byte), the signature with the
//! public key the body names, and that the body's node ID is SHA-256 of
//! that key. A member can therefore speak only as itself, and outsiders
//! cannot speak at all. Because only the canonical encoding is accepted,
//! the bytes the signature was checked over are exactly the bytes received,
//! and every body has one accepted encoding (no malleable copies).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{Blob, decode_value, encode_value};
use crate::id::NodeId;
use crate::identity::{self, Identity, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::meeting::{Meeting, NONCE_LEN};

/// A body and its sender's signature, as sealed.
#[derive(Serialize, Deserialize)]
struct Signed<B> {
    body: B,
    signature: Blob<SIGNATURE_LEN>,
}

/// A payload body that names its signer.
pub trait SignedBody: Serialize + DeserializeOwned {
    /// The node that claims to have signed the body, and its public key.
    fn signer(&self) -> (NodeId, [u8; PUBLIC_KEY_LEN]);
}

/// Why a sealed blob was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Not sealed with this meeting's key and label (another meeting, or forged).
    NotSealedForMeeting,
    /// The plaintext does not decode.
    Malformed,
    /// The plaintext decodes but is not the canonical encoding of what it
    /// decodes to (a varint longer than it needs to be, for example).
    NonCanonical,
    /// The signature does not verify.
    BadSignature,
    /// The node ID is not the hash of the public key.
    IdMismatch,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSealedForMeeting => "not sealed with this meeting's key",
            Self::Malformed => "malformed payload",
            Self::NonCanonical => "payload not in canonical encoding",
            Self::BadSignature => "bad signature",
            Self::IdMismatch => "node ID does not match the key",
        })
    }
}

impl std::error::Error for OpenError {}

fn label_and_topic(label: &[u8], meeting: &Meeting) -> Vec<u8> {
    [label, &meeting.topic().0].concat()
}

/// Signs `body` as `identity` and seals it for `meeting` under `label`.
pub fn seal<B: SignedBody>(
    meeting: &Meeting,
    identity: &Identity,
    label: &[u8],
    body: B,
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    let aad = label_and_topic(label, meeting);
    let signature = Blob(
        identity
            .sign(&[aad.as_slice(), &encode_value(&body)].concat())
            .to_vec(),
    );
    meeting.seal(nonce, &aad, &encode_value(&Signed { body, signature }))
}

/// Opens a blob sealed for `meeting` under `label` and verifies its signer.
pub fn open<B: SignedBody>(meeting: &Meeting, label: &[u8], blob: &[u8]) -> Result<B, OpenError> {
    let aad = label_and_topic(label, meeting);
    let plaintext = meeting
        .open(&aad, blob)
        .ok_or(OpenError::NotSealedForMeeting)?;
    let signed: Signed<B> =
        decode_value(&plaintext, plaintext.len()).map_err(|_| OpenError::Malformed)?;
    if encode_value(&signed) != plaintext {
        return Err(OpenError::NonCanonical);
    }
    let (node_id, public_key) = signed.body.signer();
    let signed_bytes = [aad.as_slice(), &encode_value(&signed.body)].concat();
    if !identity::verify(&public_key, &signed_bytes, &signed.signature.0) {
        return Err(OpenError::BadSignature);
    }
    if identity::node_id_of(&public_key) != node_id {
        return Err(OpenError::IdMismatch);
    }
    Ok(signed.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        from: NodeId,
        key: [u8; PUBLIC_KEY_LEN],
        text: String,
    }

    impl SignedBody for Note {
        fn signer(&self) -> (NodeId, [u8; PUBLIC_KEY_LEN]) {
            (self.from, self.key)
        }
    }

    fn note(from: &Identity, key: &Identity) -> Note {
        Note {
            from: from.node_id(),
            key: key.public_key(),
            text: "hi".into(),
        }
    }

    #[test]
    fn members_speak_only_as_themselves() {
        let meeting = Meeting::derive("sealed test").unwrap();
        let (alice, mallory) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let genuine = seal(&meeting, &alice, b"label", note(&alice, &alice), [0; 12]);
        assert_eq!(
            open::<Note>(&meeting, b"label", &genuine),
            Ok(note(&alice, &alice))
        );
        assert_eq!(
            open::<Note>(&meeting, b"other label", &genuine),
            Err(OpenError::NotSealedForMeeting)
        );
        // Claiming Alice's ID with Mallory's key: the ID does not match the key.
        let claimed = seal(
            &meeting,
            &mallory,
            b"label",
            note(&alice, &mallory),
            [1; 12],
        );
        assert_eq!(
            open::<Note>(&meeting, b"label", &claimed),
            Err(OpenError::IdMismatch)
        );
        // Naming Alice's key but signing with Mallory's: the signature fails.
        let forged = seal(&meeting, &mallory, b"label", note(&alice, &alice), [2; 12]);
        assert_eq!(
            open::<Note>(&meeting, b"label", &forged),
            Err(OpenError::BadSignature)
        );
        let outsider = Meeting::derive("a guess").unwrap();
        assert_eq!(
            open::<Note>(&outsider, b"label", &genuine),
            Err(OpenError::NotSealedForMeeting)
        );
    }

    #[test]
    fn only_the_canonical_encoding_opens() {
        let meeting = Meeting::derive("sealed test").unwrap();
        let alice = Identity::from_seed([1; 32]);
        let body = note(&alice, &alice);
        let aad = label_and_topic(b"label", &meeting);
        let signature = alice.sign(&[aad.as_slice(), &encode_value(&body)].concat());
        let canonical = encode_value(&Signed {
            body,
            signature: Blob(signature.to_vec()),
        });
        // The text's length, 2, as a three-byte varint: same value, same
        // signature, another encoding.
        assert_eq!(canonical[64], 2);
        let mut long_form = canonical[..64].to_vec();
        long_form.extend_from_slice(&[251, 2, 0]);
        long_form.extend_from_slice(&canonical[65..]);
        let sealed = |plaintext: &[u8]| meeting.seal([3; 12], &aad, plaintext);
        assert!(open::<Note>(&meeting, b"label", &sealed(&canonical)).is_ok());
        assert_eq!(
            open::<Note>(&meeting, b"label", &sealed(&long_form)),
            Err(OpenError::NonCanonical)
        );
    }
}
