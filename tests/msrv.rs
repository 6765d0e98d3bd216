//! The minimum Rust version the project states is the real one: the
//! highest `rust-version` among the packages the product builds with
//! (normal and build dependencies, not test peers), in `Cargo.toml` and in
//! the README's install section alike. A dependency update that raises it
//! fails here until both say so.

use std::process::Command;

/// `cargo` with `args`, run in the project; its standard output.
fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// `1.89.0` → (1, 89, 0); `1.89` → (1, 89, 0).
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().expect("a number"));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

/// The value of the string field `key` in `text` right after `from`.
fn string_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = text[start..].find('"')? + start;
    Some(&text[start..end])
}

/// (name, version, rust-version) of every package in `cargo metadata`.
/// Each package object starts `{"name":N,"version":V,"id":`; the
/// dependency objects inside it start with `{"name":` too, but never
/// with a `version` next, and the package's `rust_version` comes last.
fn packages(metadata: &str) -> Vec<(String, String, Option<String>)> {
    let mut found: Vec<(String, String, Option<String>)> = Vec::new();
    for fragment in metadata.split("{\"name\":\"").skip(1) {
        let Some((name, rest)) = fragment.split_once('"') else {
            continue;
        };
        if let Some(rest) = rest.strip_prefix(",\"version\":\"")
            && rest.contains("\"id\":")
        {
            let version = rest.split('"').next().unwrap_or_default();
            found.push((name.to_owned(), version.to_owned(), None));
        }
        if let (Some(last), Some(rust)) = (found.last_mut(), string_field(fragment, "rust_version"))
        {
            last.2 = Some(rust.to_owned());
        }
    }
    found
}

#[test]
fn the_stated_minimum_rust_version_is_the_dependency_trees_highest() {
    let tree = cargo(&[
        "tree",
        "-e",
        "normal,build",
        "--prefix",
        "none",
        "-f",
        "{p}",
    ]);
    let used: Vec<(String, String)> = tree
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some((name.to_owned(), version.to_owned()))
        })
        .collect();
    assert!(used.iter().any(|(name, _)| name == "str0m"), "{tree}");
    let metadata = cargo(&["metadata", "--format-version", "1", "--locked"]);
    let all = packages(&metadata);
    assert!(all.len() >= used.len() / 2, "parsed {} packages", all.len());
    let (highest, by) = all
        .iter()
        .filter(|(name, version, _)| used.iter().any(|(n, v)| n == name && v == version))
        .filter_map(|(name, _, rust)| rust.as_deref().map(|r| (version(r), name.clone())))
        .max()
        .expect("some dependency states a rust-version");
    let stated = version(env!("CARGO_PKG_RUST_VERSION"));
    assert_eq!(
        stated, highest,
        "Cargo.toml says rust-version {stated:?}, but {by} needs {highest:?}"
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let (major, minor, _) = highest;
    let wanted = format!("Rust {major}.{minor} or newer");
    assert!(
        readme.contains(&wanted),
        "README.md must say \"{wanted}\" ({by} needs it)"
    );
}
