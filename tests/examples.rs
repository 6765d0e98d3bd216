//! The embedding examples work, not only build: `echo_members` (the mio
//! driver) and `own_loop` (a plain `UdpSocket` loop) join one meeting on
//! loopback, and `own_loop` gets its greeting echoed back byte for byte.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Running;

/// The example binary `name`, built beside this test (`cargo test` builds
/// examples; a test run on its own builds them here).
fn example(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("test path");
    let profile_dir = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--examples", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(build.status().expect("cargo build").success());
    }
    path
}

#[test]
fn own_loop_gets_its_greeting_echoed_by_echo_members() {
    let code = format!("examples test {}", std::process::id());
    let echo = Running::spawn({
        let mut command = Command::new(example("echo_members"));
        command.arg(&code);
        command
    });
    let address = echo.next_line(Duration::from_secs(30));
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let mut member = Running::spawn({
        let mut command = Command::new(example("own_loop"));
        command.args([&code, &address]);
        command
    });
    let status = member.wait(Duration::from_secs(90));
    let said: Vec<String> = member.stdout.try_iter().collect();
    let errors: Vec<String> = member.stderr.try_iter().collect();
    assert!(status.success(), "own_loop: {status}\n{said:?}\n{errors:?}");
    assert!(
        said.iter()
            .any(|line| line.ends_with("echoed byte for byte")),
        "{said:?}"
    );
    // And the echo side saw the member connect.
    let echoed: Vec<String> = echo.stdout.try_iter().collect();
    assert!(
        echoed.iter().any(|l| l.starts_with("connected to")),
        "{echoed:?}"
    );
}
