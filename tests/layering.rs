//! The layering `lib.rs` states holds: no module imports from a module that
//! (directly or through others) imports it.
//!
//! Read from the source: every `crate::a` reference in a file outside tests
//! and comments is an edge from the file's top-level module to `a`; inside
//! a directory module, every `super::x` (and a `mod.rs`'s use of its own
//! children) is an edge between the files. Both graphs must be acyclic.
//! `node/` is the one exception inside a directory, by design: its files
//! are `impl Node` blocks split by protocol, as smoltcp splits its
//! interface, and reach the node through `super::Node`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Directories whose files may use each other freely (see the module doc).
const IMPL_SPLIT: &[&str] = &["node"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| line.split(" // ").next().unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers right after each `prefix::` (expanding `prefix::{a, b::c}`).
fn references(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let needle = format!("{prefix}::");
    let mut rest = code;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().last();
        rest = &rest[at + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_form_layers_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut inner: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut checked = 0;
    for path in &files {
        let relative = path.strip_prefix(&src).expect("under src");
        let parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        // The binary's own modules are not the library's layers.
        if matches!(parts[0].as_str(), "main" | "cli" | "lib") {
            continue;
        }
        checked += 1;
        let code = code(&std::fs::read_to_string(path).expect("read"));
        let unit = parts[0].clone();
        for target in references(&code, "crate") {
            if target != unit {
                top.entry(unit.clone()).or_default().insert(target);
            }
        }
        if parts.len() == 2 {
            let file = parts[1].clone();
            let edges = inner.entry(unit.clone()).or_default();
            let mut targets = references(&code, "super");
            if file == "mod" {
                // A mod.rs reaches its children by name.
                let children: BTreeSet<String> = code
                    .lines()
                    .filter_map(|l| {
                        let l = l
                            .trim()
                            .trim_start_matches("pub ")
                            .trim_start_matches("pub(crate) ");
                        l.strip_prefix("mod ")
                            .map(|m| m.trim_end_matches(';').to_owned())
                    })
                    .collect();
                for child in &children {
                    if !references(&code, child).is_empty() {
                        targets.insert(child.clone());
                    }
                }
            } else {
                targets = targets
                    .into_iter()
                    .map(|t| {
                        // `super::Item` defined in mod.rs is an edge to mod.
                        if files.iter().any(|f| f.ends_with(format!("{unit}/{t}.rs"))) {
                            t
                        } else {
                            "mod".to_owned()
                        }
                    })
                    .collect();
            }
            targets.remove(&file);
            edges.entry(file).or_default().extend(targets);
        }
    }
    assert!(checked > 40, "read only {checked} files");
    assert_eq!(find_cycle(&top), None, "a cycle between top-level modules");
    // The table in lib.rs is the truth: every import goes to the same row
    // or a lower one, and every module is in the table.
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let rows = layer_rows(&lib);
    for (module, targets) in &top {
        let row = rows.get(module.as_str());
        assert!(row.is_some(), "{module} is not in lib.rs's layer table");
        // `crate::Event` and the like are root re-exports, not modules.
        for target in targets.iter().filter(|t| t.starts_with(char::is_lowercase)) {
            let target_row = rows.get(target.as_str());
            assert!(
                target_row.is_some(),
                "{target} is not in lib.rs's layer table"
            );
            assert!(
                target_row >= row,
                "{module} (row {row:?}) imports {target} (row {target_row:?}), a layer above it"
            );
        }
    }
    // The public vocabulary is a leaf: the engines import its reason and
    // config types, never the reverse.
    let engines = [
        "dht",
        "mainline",
        "node",
        "relay",
        "rtc",
        "sources",
        "stun",
        "membership",
    ];
    let api = &top["api"];
    assert!(
        engines.iter().all(|engine| !api.contains(*engine)),
        "api imports an engine: {api:?}"
    );
    for (dir, graph) in &inner {
        if IMPL_SPLIT.contains(&dir.as_str()) {
            continue;
        }
        assert_eq!(find_cycle(graph), None, "a cycle inside {dir}/");
    }
}

/// Files of the library that may use OS-specific APIs: the driver (behind
/// the `driver` feature, as is `transfer/disk.rs`, see `transfer/mod.rs`).
const PLATFORM_FILES: &[&str] = &["driver/", "transfer/disk.rs"];

#[test]
fn the_sans_io_core_uses_no_os_specific_api() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let transfer = std::fs::read_to_string(src.join("transfer/mod.rs")).expect("read");
    assert!(
        transfer.contains("#[cfg(feature = \"driver\")]\npub mod disk;"),
        "transfer/disk.rs is built with the driver only"
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    for path in &files {
        let relative = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .into_owned();
        let binary = relative.starts_with("cli/") || relative == "main.rs";
        if binary || PLATFORM_FILES.iter().any(|p| relative.starts_with(p)) {
            continue;
        }
        checked += 1;
        let code = code(&std::fs::read_to_string(path).expect("read"));
        assert!(
            !code.contains("std::os::") && !code.contains("libc::"),
            "{relative} uses an OS-specific API outside the driver"
        );
    }
    assert!(checked > 40, "read only {checked} files");
}

/// Each module of `lib.rs`'s layer table and its row, top (0) to bottom.
fn layer_rows(lib: &str) -> BTreeMap<&str, usize> {
    let start = lib
        .find("//! | layer | modules |")
        .expect("the layer table");
    let mut rows = BTreeMap::new();
    for (row, line) in lib[start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with("//! |"))
        .enumerate()
    {
        let modules = line.rsplit('|').nth(1).expect("a modules column");
        for name in modules.split('`').skip(1).step_by(2) {
            rows.insert(name.trim_end_matches('/'), row);
        }
    }
    rows
}
