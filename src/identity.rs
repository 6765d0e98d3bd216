//! Node identity: an Ed25519 key pair (ring) and the node ID derived from it,
//! SHA-256 of the public key, which places the node in the 256-bit Kademlia
//! key space and lets anyone check that a signed record's key owns its ID.
//!
//! Pure: an identity is built from bytes (a 32-byte seed, or a PKCS#8
//! document) and written back as bytes. Keeping it in a file, and making a
//! fresh one from the OS random generator, is the driver's job
//! (`driver/key_file.rs`), so the core builds on any target.

use std::fmt;

use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::id::NodeId;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The PKCS#8 v2 (RFC 5958) DER document of an Ed25519 key, as ring
/// generates it: this prefix, the 32-byte seed, [`PKCS8_MIDDLE`], the
/// 32-byte public key (83 bytes in all).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Between the seed and the public key: the implicit `[1]` public key, a
/// bit string of 33 bytes (no unused bits).
const PKCS8_MIDDLE: [u8; 3] = [0x81, 0x21, 0x00];

/// A node's signing key and the ID derived from it.
pub struct Identity {
    key_pair: Ed25519KeyPair,
    node_id: NodeId,
    /// The key as a PKCS#8 v2 document, for [`Identity::to_pkcs8`].
    pkcs8: Vec<u8>,
}

/// Bytes that are not an Ed25519 PKCS#8 key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidKey;

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an Ed25519 PKCS#8 key")
    }
}

impl std::error::Error for InvalidKey {}

impl Identity {
    /// The key whose secret seed is `seed` (any 32 bytes are one). With
    /// 32 random bytes this makes a fresh identity; with fixed bytes, a
    /// reproducible one for tests and simulations.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key_pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are an Ed25519 seed");
        let mut pkcs8 = Vec::with_capacity(83);
        pkcs8.extend_from_slice(&PKCS8_PREFIX);
        pkcs8.extend_from_slice(&seed);
        pkcs8.extend_from_slice(&PKCS8_MIDDLE);
        pkcs8.extend_from_slice(key_pair.public_key().as_ref());
        Self::from_parts(key_pair, pkcs8)
    }

    /// The key in `document`, an Ed25519 PKCS#8 v2 document (what
    /// [`Identity::to_pkcs8`] and OpenSSL's `genpkey -algorithm ed25519`
    /// with a public key write); its public key must match its seed.
    pub fn from_pkcs8(document: &[u8]) -> Result<Self, InvalidKey> {
        let key_pair = Ed25519KeyPair::from_pkcs8(document).map_err(|_| InvalidKey)?;
        Ok(Self::from_parts(key_pair, document.to_vec()))
    }

    /// The key as a PKCS#8 v2 document (DER), which
    /// [`Identity::from_pkcs8`] reads back as the same identity.
    pub fn to_pkcs8(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }

    fn from_parts(key_pair: Ed25519KeyPair, pkcs8: Vec<u8>) -> Self {
        let node_id = node_id_of(key_pair.public_key().as_ref());
        Self {
            key_pair,
            node_id,
            pkcs8,
        }
    }

    /// SHA-256 of the public key.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(self.key_pair.public_key().as_ref());
        key
    }

    /// Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(self.key_pair.sign(message).as_ref());
        signature
    }
}

/// The node ID that belongs to `public_key`.
pub fn node_id_of(public_key: &[u8]) -> NodeId {
    let mut id = [0u8; 32];
    id.copy_from_slice(digest(&SHA256, public_key).as_ref());
    NodeId(id)
}

/// True if `signature` is `public_key`'s Ed25519 signature of `message`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_key_round_trips_through_pkcs8() {
        let seeded = Identity::from_seed([7; 32]);
        let document = seeded.to_pkcs8();
        assert_eq!(document.len(), 83);
        // ring checks that the document's public key matches its seed.
        let loaded = Identity::from_pkcs8(&document).unwrap();
        assert_eq!(loaded.node_id(), seeded.node_id());
        assert_eq!(loaded.to_pkcs8(), document);
    }

    #[test]
    fn a_ring_generated_document_loads_and_is_kept_as_is() {
        let rng = ring::rand::SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let identity = Identity::from_pkcs8(document.as_ref()).unwrap();
        assert_eq!(identity.to_pkcs8(), document.as_ref());
        // Our template is ring's: the seed sits between the same bytes.
        assert_eq!(document.as_ref()[..16], PKCS8_PREFIX);
        assert_eq!(document.as_ref()[48..51], PKCS8_MIDDLE);
    }

    #[test]
    fn bytes_that_are_not_a_key_are_refused() {
        assert_eq!(Identity::from_pkcs8(b"not a key").err(), Some(InvalidKey));
        let mut document = Identity::from_seed([1; 32]).to_pkcs8();
        document[82] ^= 1; // a public key that does not match the seed
        assert_eq!(Identity::from_pkcs8(&document).err(), Some(InvalidKey));
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let signature = a.sign(b"hello");
        assert!(verify(&a.public_key(), b"hello", &signature));
        assert!(!verify(&a.public_key(), b"hellO", &signature));
        assert!(!verify(&b.public_key(), b"hello", &signature));
        assert_eq!(a.node_id(), node_id_of(&a.public_key()));
        assert_ne!(a.node_id(), b.node_id());
    }
}
