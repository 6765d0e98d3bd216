//! The node's key on disk (`--identity PATH`) and fresh keys from the OS
//! random generator: the file and randomness half of [`Identity`], which
//! itself only converts bytes.
//!
//! A key file holds a PKCS#8 v2 document (DER, binary). It is created
//! atomically with owner-only permissions (0600) and never overwritten:
//! the key is written to a temporary file beside it (created exclusively),
//! synced, then hard-linked into place, so a crash or a full disk leaves
//! either no key file or a whole one, never a partial one that every later
//! start would refuse. A key file that the group or others can read or
//! write is refused, as OpenSSH refuses such private keys: someone else may
//! have read or planted it.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use crate::identity::Identity;

/// Why an identity could not be loaded, created or generated.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading or writing the key file failed.
    Io(PathBuf, io::Error),
    /// The file is not an Ed25519 PKCS#8 key.
    InvalidKey(PathBuf),
    /// The OS random generator failed.
    Random,
    /// The key file can be read or written by others than its owner (its
    /// mode).
    Exposed(PathBuf, u32),
}

impl fmt::Display for KeyFileError {
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

impl std::error::Error for KeyFileError {}

/// A fresh identity from the OS random generator.
pub fn generate_identity() -> Result<Identity, KeyFileError> {
    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| KeyFileError::Random)?;
    Ok(Identity::from_seed(seed))
}

/// Loads the key at `path`, or creates a fresh one there (mode 0600) if the
/// file does not exist (see the module note).
pub fn load_or_create_identity(path: &Path) -> Result<Identity, KeyFileError> {
    match read_private(path) {
        Ok(bytes) => {
            Identity::from_pkcs8(&bytes).map_err(|_| KeyFileError::InvalidKey(path.to_owned()))
        }
        Err(KeyFileError::Io(_, error)) if error.kind() == io::ErrorKind::NotFound => {
            let identity = generate_identity()?;
            match create_atomically(path, &identity.to_pkcs8()) {
                Ok(()) => Ok(identity),
                // Another process created it first: use theirs.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    load_or_create_identity(path)
                }
                Err(error) => Err(KeyFileError::Io(path.to_owned(), error)),
            }
        }
        Err(error) => Err(error),
    }
}

/// Most bytes read from a key file (a PKCS#8 Ed25519 document is 83–85).
const MAX_KEY_FILE: u64 = 4096;

/// The bytes of the private file at `path`, readable and writable by its
/// owner alone, read to at most [`MAX_KEY_FILE`] bytes.
fn read_private(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let io_error = |error| KeyFileError::Io(path.to_owned(), error);
    let file = fs::File::open(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if meta.mode() & 0o077 != 0 {
        return Err(KeyFileError::Exposed(path.to_owned(), meta.mode()));
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
        let first = load_or_create_identity(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create_identity(&path).unwrap();
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
        load_or_create_identity(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let refused = load_or_create_identity(&path);
        assert!(matches!(refused, Err(KeyFileError::Exposed(..))));
        assert!(refused.err().unwrap().to_string().contains("chmod 600"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn two_generated_identities_differ() {
        let a = generate_identity().unwrap();
        let b = generate_identity().unwrap();
        assert_ne!(a.node_id(), b.node_id());
    }
}
