//! Node identity: an Ed25519 key pair (ring) and the node ID derived from it,
//! SHA-256 of the public key, which places the node in the 256-bit Kademlia
//! key space and lets anyone check that a signed record's key owns its ID.
//!
//! A key file holds the PKCS#8 v2 document ring generates (DER, binary). It is
//! created with owner-only permissions (0600) and never overwritten.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};
use ring::rand::SecureRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::id::NodeId;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// A node's signing key and the ID derived from it.
pub struct Identity {
    key_pair: Ed25519KeyPair,
    node_id: NodeId,
}

/// Why an identity could not be loaded or created.
#[derive(Debug)]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    Io(PathBuf, io::Error),
    /// The file is not an Ed25519 PKCS#8 key.
    InvalidKey(PathBuf),
    /// The random generator failed.
    Random,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(path, error) => write!(f, "identity file {}: {error}", path.display()),
            Self::InvalidKey(path) => write!(
                f,
                "identity file {} is not an Ed25519 PKCS#8 key",
                path.display()
            ),
            Self::Random => f.write_str("the random generator failed while creating a key"),
        }
    }
}

impl std::error::Error for IdentityError {}

impl Identity {
    /// A fresh key from `rng`.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, IdentityError> {
        let document = Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| IdentityError::Random)?;
        Ed25519KeyPair::from_pkcs8(document.as_ref())
            .map(Self::from_key_pair)
            .map_err(|_| IdentityError::Random)
    }

    /// A key determined by `seed`, for tests and simulations.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::from_key_pair(
            Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are an Ed25519 seed"),
        )
    }

    /// Loads the key at `path`, or creates it there (mode 0600) if the file
    /// does not exist.
    pub fn load_or_create(path: &Path, rng: &dyn SecureRandom) -> Result<Self, IdentityError> {
        let io_error = |error| IdentityError::Io(path.to_owned(), error);
        match fs::read(path) {
            Ok(bytes) => Ed25519KeyPair::from_pkcs8(&bytes)
                .map(Self::from_key_pair)
                .map_err(|_| IdentityError::InvalidKey(path.to_owned())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let document =
                    Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| IdentityError::Random)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io_error)?;
                file.write_all(document.as_ref())
                    .and_then(|()| file.sync_all())
                    .map_err(io_error)?;
                Ed25519KeyPair::from_pkcs8(document.as_ref())
                    .map(Self::from_key_pair)
                    .map_err(|_| IdentityError::Random)
            }
            Err(error) => Err(io_error(error)),
        }
    }

    fn from_key_pair(key_pair: Ed25519KeyPair) -> Self {
        let node_id = node_id_of(key_pair.public_key().as_ref());
        Self { key_pair, node_id }
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
