//! Authenticated announces: the bytes an announcer signs, and the storing
//! node's check that the request's sender owns its node ID.
//!
//! signing input = `ANNOUNCE_LABEL || topic (32) || token (16) ||
//! SHA-256(record) (32)`, signed with pure Ed25519 (RFC 8032). The token
//! binds the signature to the source address the storing node issued it
//! to, so a captured announce cannot be replayed from elsewhere; the
//! record's hash binds it to the record.

use ring::digest::{SHA256, digest};

use super::wire::{Blob, Request, TOKEN_LEN};
use crate::id::NodeId;
use crate::identity::{self, Identity};

/// Domain-separation label at the start of the signing input.
pub const ANNOUNCE_LABEL: &[u8] = b"tinynode announce v1";

/// The bytes an announcer signs for `record` under `topic` with `token`.
pub fn signing_input(topic: &NodeId, token: &[u8; TOKEN_LEN], record: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(ANNOUNCE_LABEL.len() + 32 + TOKEN_LEN + 32);
    input.extend_from_slice(ANNOUNCE_LABEL);
    input.extend_from_slice(&topic.0);
    input.extend_from_slice(token);
    input.extend_from_slice(digest(&SHA256, record).as_ref());
    input
}

/// The `SignedAnnounce` request for `record` under `topic`, signed by
/// `identity` for the storing node that gave `token`.
pub fn signed_announce(
    identity: &Identity,
    topic: NodeId,
    token: [u8; TOKEN_LEN],
    record: &[u8],
) -> Request {
    let signature = identity.sign(&signing_input(&topic, &token, record));
    Request::SignedAnnounce {
        topic,
        token,
        record: Blob(record.to_vec()),
        public_key: identity.public_key(),
        signature: Blob(signature.to_vec()),
    }
}

/// True if `sender` is SHA-256 of `public_key` and `signature` is that
/// key's signature of the announce's signing input.
pub fn is_genuine(
    sender: &NodeId,
    topic: &NodeId,
    token: &[u8; TOKEN_LEN],
    record: &[u8],
    public_key: &[u8],
    signature: &[u8],
) -> bool {
    identity::node_id_of(public_key) == *sender
        && identity::verify(public_key, &signing_input(topic, token, record), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(request: &Request) -> (&NodeId, &[u8; TOKEN_LEN], &[u8], &[u8], &[u8]) {
        let Request::SignedAnnounce {
            topic,
            token,
            record,
            public_key,
            signature,
        } = request
        else {
            panic!("not a signed announce");
        };
        (topic, token, &record.0, public_key, &signature.0)
    }

    #[test]
    fn only_the_key_owner_with_the_signed_fields_passes() {
        let alice = Identity::from_seed([1; 32]);
        let mallory = Identity::from_seed([2; 32]);
        let request = signed_announce(&alice, NodeId([3; 32]), [4; TOKEN_LEN], b"sealed");
        let (topic, token, record, key, signature) = fields(&request);
        let as_alice =
            |topic: &NodeId, token: &[u8; TOKEN_LEN], record: &[u8], key: &[u8], sig: &[u8]| {
                is_genuine(&alice.node_id(), topic, token, record, key, sig)
            };
        assert!(as_alice(topic, token, record, key, signature));
        // Mallory claiming Alice's ID with its own key and signature.
        let forged = signed_announce(&mallory, NodeId([3; 32]), [4; TOKEN_LEN], b"sealed");
        let (_, _, _, mkey, msig) = fields(&forged);
        assert!(!as_alice(topic, token, record, mkey, msig));
        // Alice's key with Mallory's signature.
        assert!(!as_alice(topic, token, record, key, msig));
        // Any signed field changed.
        assert!(!as_alice(&NodeId([9; 32]), token, record, key, signature));
        assert!(!as_alice(topic, &[5; TOKEN_LEN], record, key, signature));
        assert!(!as_alice(topic, token, b"sealeD", key, signature));
        // A truncated signature.
        assert!(!as_alice(topic, token, record, key, &signature[..63]));
    }

    #[test]
    fn the_signing_input_is_label_topic_token_and_record_hash() {
        let input = signing_input(&NodeId([1; 32]), &[2; TOKEN_LEN], b"");
        assert_eq!(input.len(), 20 + 32 + 16 + 32);
        assert_eq!(&input[..20], b"tinynode announce v1");
        assert_eq!(&input[20..52], &[1; 32]);
        assert_eq!(&input[52..68], &[2; 16]);
        // SHA-256 of the empty string.
        assert_eq!(
            crate::hex::hex(&input[68..]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
