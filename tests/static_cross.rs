//! The static binaries `scripts/build-static.sh` builds (x86-64, aarch64
//! and armv7 musl) are statically linked, say their target in
//! `--version`, and run `tinynode demo` to success: the x86-64 one
//! natively, the ARM ones under qemu-user, registered with `binfmt_misc`
//! so that the demo's child processes (the same binary) are emulated too.
//! And an emulated aarch64 member connects and chats with a native x86-64
//! member through a native serve node on loopback.
//!
//! `.ci/run` builds the binaries and installs `qemu-user-static` and
//! `file`; the test registers qemu with `binfmt_misc` itself (as root).
//! Missing binaries, binaries older than the sources, or missing tools
//! fail the test, unless
//! `TINYNODE_SKIP_CROSS=1` says to skip it knowingly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Running, field, tinynode, watch_connections};

const SKIP_ENV: &str = "TINYNODE_SKIP_CROSS";

/// The static build of `target`, or `None` (printed) when skipping.
fn static_binary(target: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(target)
        .join("release/tinynode");
    if !path.is_file() {
        return skip_or_fail(&format!(
            "{} is missing: run scripts/build-static.sh",
            path.display()
        ));
    }
    // A binary older than the sources tests old code: refuse it.
    let built = modified(&path);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    rust_files(&root.join("src"), &mut sources);
    if let Some(newer) = sources.iter().find(|source| modified(source) > built) {
        return skip_or_fail(&format!(
            "{} is older than {}: run scripts/build-static.sh",
            path.display(),
            newer.display()
        ));
    }
    Some(path)
}

/// When `path` was last written.
fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn skip_or_fail<T>(reason: &str) -> Option<T> {
    if std::env::var_os(SKIP_ENV).is_some_and(|v| v == "1") {
        println!("SKIPPED ({SKIP_ENV}=1): {reason}");
        None
    } else {
        panic!("{reason}; or set {SKIP_ENV}=1 to skip the static builds' test knowingly")
    }
}

/// Registers qemu-user for `arch` (`aarch64`, `arm`) with `binfmt_misc`,
/// mounting it first if needed, from qemu-user-static's own
/// registration line; `None` (printed) when skipping.
///
/// The tests of this file run in parallel and several need emulation: one
/// lock serialises the mount and the registrations, and a failed mount or
/// registration is re-checked (another process, such as a second test run,
/// may have done it first) before it counts as a failure.
fn emulated(arch: &str) -> Option<()> {
    static SETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serialised = SETUP
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
    if binfmt.join(format!("qemu-{arch}")).exists() {
        return Some(());
    }
    let conf = format!("/usr/lib/binfmt.d/qemu-{arch}.conf");
    let Ok(line) = std::fs::read_to_string(&conf) else {
        return skip_or_fail(&format!(
            "{conf} is missing: apt-get install qemu-user-static"
        ));
    };
    if !binfmt.join("register").exists() {
        let mounted = Command::new("mount")
            .args(["-t", "binfmt_misc", "binfmt_misc"])
            .arg(binfmt)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted && !binfmt.join("register").exists() {
            return skip_or_fail("binfmt_misc cannot be mounted (not root?)");
        }
    }
    // Another test may have registered it in the meantime: that is fine.
    let written = std::fs::write(binfmt.join("register"), line.trim());
    if written.is_err() && !binfmt.join(format!("qemu-{arch}")).exists() {
        return skip_or_fail(&format!("qemu-{arch} cannot be registered: {written:?}"));
    }
    Some(())
}

/// `file`'s description of `binary`.
fn file_kind(binary: &Path) -> String {
    let output = Command::new("file")
        .arg("-b")
        .arg(binary)
        .output()
        .expect("file(1) (apt-get install file)");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Checks `target`'s static binary and runs its demo; the binary.
fn check_target(target: &str, arch: Option<&str>) -> Option<PathBuf> {
    let binary = static_binary(target)?;
    if let Some(arch) = arch {
        emulated(arch)?;
    }
    let kind = file_kind(&binary);
    assert!(kind.contains("statically linked"), "{target}: {kind}");
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("run --version");
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.contains(&format!("({target})")), "{version}");
    let demo = Command::new(&binary)
        .arg("demo")
        .output()
        .expect("run the demo");
    let printed = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "{target} demo failed: {printed}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(printed.contains("messages delivered      6/6"), "{printed}");
    let connected = printed
        .lines()
        .find(|l| l.contains("all connections after"))
        .unwrap_or_default();
    println!("{target}: {kind}; demo {}", connected.trim());
    Some(binary)
}

#[test]
fn the_x86_64_static_binary_runs_the_demo() {
    check_target("x86_64-unknown-linux-musl", None);
}

#[test]
fn the_aarch64_static_binary_runs_the_demo_under_qemu() {
    check_target("aarch64-unknown-linux-musl", Some("aarch64"));
}

#[test]
fn the_armv7_static_binary_runs_the_demo_under_qemu() {
    check_target("armv7-unknown-linux-musleabihf", Some("arm"));
}

#[test]
fn an_emulated_aarch64_member_chats_with_a_native_member() {
    let Some(arm) = static_binary("aarch64-unknown-linux-musl") else {
        return;
    };
    let Some(()) = emulated("aarch64") else {
        return;
    };
    let (_serve, serve) = common::start_serve();
    let serve = serve.to_string();
    let member = |mut command: Command| {
        command
            .args(["join", "across architectures", "--bootstrap", &serve])
            .args([
                "--bind",
                "127.0.0.1:0",
                "--json",
                "--no-mainline",
                "--no-lan",
            ])
            .stdin(std::process::Stdio::piped());
        let member = Running::spawn_with_stdin(command);
        let started = member.next_line(Duration::from_secs(30));
        let id = field(&started, "node_id").expect("node_id").to_owned();
        (member, id)
    };
    let emulated_member = member(Command::new(&arm));
    let native_member = member(tinynode());
    let (connected, lines) = watch_connections(
        &[&emulated_member, &native_member],
        Duration::from_secs(30),
        &["dht", "offer"],
        |c| c.len() == 2,
    );
    assert_eq!(connected.len(), 2, "{lines:?}");
    let stdin = emulated_member.0.child.stdin.as_ref().expect("stdin");
    std::io::Write::write_all(&mut &*stdin, b"hello from aarch64\n").expect("write");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = native_member.0.next_line(left);
        if field(&line, "event") == Some("message") {
            assert_eq!(field(&line, "text"), Some("hello from aarch64"));
            break;
        }
    }
}
