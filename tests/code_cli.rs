//! Meeting codes (`protocol-spec.md` §4.2): `tinynode code` prints fresh
//! 70-bit codes that `join` takes without a word, while a code a person
//! made up gets one warning on stderr and a `weak_code` event.

mod common;

use std::time::Duration;

use common::{Running, field, tinynode};
use tinynode::code::{GENERATED_WORDS, WEAK_CODE_BITS, estimate_bits};

fn fresh_code() -> String {
    let output = tinynode().arg("code").output().expect("run tinynode code");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// Starts `join CODE` on loopback with nothing to find, and returns it
/// once it printed `started`.
fn join(code: &str) -> Running {
    let member = Running::spawn(common::lonely_join(code));
    let started = member.next_line(Duration::from_secs(30));
    assert_eq!(field(&started, "event"), Some("started"), "{started}");
    member
}

#[test]
fn generated_codes_are_fresh_strong_and_plain() {
    let (one, two) = (fresh_code(), fresh_code());
    assert_ne!(one, two);
    for code in [&one, &two] {
        assert_eq!(code.split('-').count(), GENERATED_WORDS, "{code}");
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{code}"
        );
        assert!(estimate_bits(code) >= WEAK_CODE_BITS, "{code}");
    }
}

#[test]
fn a_weak_code_is_warned_about_once_and_a_generated_one_not_at_all() {
    let mut weak = join("blue fox");
    let event = weak.next_line(Duration::from_secs(10));
    assert_eq!(field(&event, "event"), Some("weak_code"), "{event}");
    assert!(event.contains("\"bits\":20"), "{event}");
    let warning = weak.wait_stderr("weak", Duration::from_secs(10));
    assert!(warning.contains("tinynode code"), "{warning}");

    let code = fresh_code();
    let mut strong = join(&code);
    // Stop both; the weak one said it once, the strong one never.
    for member in [&mut weak, &mut strong] {
        member.signal(libc::SIGTERM);
        assert_eq!(member.wait(Duration::from_secs(10)).code(), Some(0));
    }
    let rest = |member: &Running| -> Vec<String> {
        let mut lines: Vec<String> = member.stdout.try_iter().collect();
        lines.extend(member.stderr.try_iter());
        lines
    };
    let weak_rest = rest(&weak);
    assert!(
        !weak_rest.iter().any(|l| l.contains("weak")),
        "said twice: {weak_rest:?}"
    );
    let strong_rest = rest(&strong);
    assert!(
        !strong_rest.iter().any(|l| l.contains("weak")),
        "{strong_rest:?}"
    );
}
