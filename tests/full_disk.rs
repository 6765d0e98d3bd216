//! A full disk while the identity file is written (a small tmpfs the test
//! mounts, as root): `join` fails with a clear error and leaves no partial
//! key file, so the next start, with room, creates a whole one. Needs root;
//! fails without it unless `TINYNODE_SKIP_ROOT=1` says to skip knowingly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Running, field};

/// A 64 KiB tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount() -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            if std::env::var_os("TINYNODE_SKIP_ROOT").is_some_and(|v| v == "1") {
                println!("SKIPPED (TINYNODE_SKIP_ROOT=1): not root");
                return None;
            }
            panic!("mounting a tmpfs needs root; or set TINYNODE_SKIP_ROOT=1 to skip knowingly");
        }
        let dir = std::env::temp_dir().join(format!("tinynode-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tinynode-full"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs failed");
        Some(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the file system at `dir` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = [0u8; 1024];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    filler
}

fn join_with_identity(key: &Path) -> Command {
    let mut command = common::lonely_join("full-disk-able-acid-acorn-actor-adapt");
    command.arg("--identity").arg(key);
    command
}

#[test]
fn a_full_disk_leaves_no_partial_identity_and_the_next_start_creates_a_whole_one() {
    let Some(tmpfs) = Tmpfs::mount() else {
        return;
    };
    let key = tmpfs.path().join("key");
    let filler = fill(tmpfs.path());
    let output = join_with_identity(&key).output().expect("run join");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("identity file") && stderr.contains("space"),
        "{stderr}"
    );
    let names: Vec<_> = std::fs::read_dir(tmpfs.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["filler"], "nothing partial left behind");

    std::fs::remove_file(filler).unwrap();
    let mut member = Running::spawn(join_with_identity(&key));
    let started = member.next_line(Duration::from_secs(30));
    assert_eq!(field(&started, "event"), Some("started"), "{started}");
    member.signal(libc::SIGTERM);
    assert_eq!(member.wait(Duration::from_secs(10)).code(), Some(0));
    let meta = std::fs::metadata(&key).unwrap();
    assert!(meta.len() > 80, "a whole key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
}
