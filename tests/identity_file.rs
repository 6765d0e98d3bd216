//! `--identity PATH`: the key file is created owner-only, reloaded as the
//! same identity, and a file that is not a key is refused.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use tinynode::driver::{KeyFileError, load_or_create_identity};

#[test]
fn key_file_is_created_private_and_reloaded() {
    let dir = std::env::temp_dir().join(format!("tinynode-identity-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key");
    let created = load_or_create_identity(&path).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let loaded = load_or_create_identity(&path).unwrap();
    assert_eq!(created.node_id(), loaded.node_id());
    fs::write(&path, b"not a key").unwrap();
    assert!(matches!(
        load_or_create_identity(&path),
        Err(KeyFileError::InvalidKey(_))
    ));
    fs::remove_dir_all(&dir).unwrap();
}
