//! Node identity: an Ed25519 key pair (ring) and the node ID derived from it,
//! SHA-256 of the public key, which places the node in the 256-bit Kademlia
//! key space and lets anyone check that a signed record's key owns its ID.
//!
//! A key file holds the PKCS#8 v2 document ring generates (DER, binary). It is
//! created atomically with owner-only permissions (0600) and never
//! overwritten: the key is written to a temporary file beside it (created
//! exclusively), synced, then hard-linked into place, so a crash or a full
//! disk leaves either no key file or a whole one, never a partial one that
//! every later start would refuse. A key file that the group or others can
//! read or write is refused, as OpenSSH refuses such private keys: someone
//! else may have read or planted it.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
    /// The key file can be read or written by others than its owner (its
    /// mode).
    Exposed(PathBuf, u32),
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
            Self::Exposed(path, mode) => write!(
                f,
                "identity file {} has mode {:03o}: a private key must be readable by its \
                 owner alone (chmod 600)",
                path.display(),
                mode & 0o777
            ),
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
    /// does not exist (see the module note).
    pub fn load_or_create(path: &Path, rng: &dyn SecureRandom) -> Result<Self, IdentityError> {
        let io_error = |error| IdentityError::Io(path.to_owned(), error);
        match read_private(path) {
            Ok(bytes) => Ed25519KeyPair::from_pkcs8(&bytes)
                .map(Self::from_key_pair)
                .map_err(|_| IdentityError::InvalidKey(path.to_owned())),
            Err(IdentityError::Io(_, error)) if error.kind() == io::ErrorKind::NotFound => {
                let document =
                    Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| IdentityError::Random)?;
                match create_atomically(path, document.as_ref()) {
                    Ok(()) => Ed25519KeyPair::from_pkcs8(document.as_ref())
                        .map(Self::from_key_pair)
                        .map_err(|_| IdentityError::Random),
                    // Another process created it first: use theirs.
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path, rng)
                    }
                    Err(error) => Err(io_error(error)),
                }
            }
            Err(error) => Err(error),
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

/// Most bytes read from a key file (a PKCS#8 Ed25519 document is 83–85).
const MAX_KEY_FILE: u64 = 4096;

/// The bytes of the private file at `path`, readable and writable by its
/// owner alone, read to at most [`MAX_KEY_FILE`] bytes.
fn read_private(path: &Path) -> Result<Vec<u8>, IdentityError> {
    let io_error = |error| IdentityError::Io(path.to_owned(), error);
    let file = fs::File::open(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if meta.mode() & 0o077 != 0 {
        return Err(IdentityError::Exposed(path.to_owned(), meta.mode()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    Ok(bytes)
}

/// Creates `path` holding `bytes` (mode 0600) all at once, never replacing
/// an existing file (`AlreadyExists` then): a temporary file beside it,
/// created exclusively, written and synced, hard-linked to `path`, the
/// directory synced; the temporary name is removed in every case.
fn create_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or(io::ErrorKind::InvalidInput)?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    written?;
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Durability of the new name; a failure here loses nothing written.
        let _ = fs::File::open(directory).and_then(|d| d.sync_all());
    }
    Ok(())
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
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tinynode-identity-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_key_file_is_created_whole_owner_only_and_then_reused() {
        let dir = scratch("create");
        let path = dir.join("key");
        let rng = ring::rand::SystemRandom::new();
        let first = Identity::load_or_create(&path, &rng).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Identity::load_or_create(&path, &rng).unwrap();
        assert_eq!(first.node_id(), again.node_id());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key"], "no temporary file left");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = scratch("exposed");
        let path = dir.join("key");
        let rng = ring::rand::SystemRandom::new();
        Identity::load_or_create(&path, &rng).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let refused = Identity::load_or_create(&path, &rng);
        assert!(matches!(refused, Err(IdentityError::Exposed(..))));
        assert!(refused.err().unwrap().to_string().contains("chmod 600"));
        let _ = fs::remove_dir_all(&dir);
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
