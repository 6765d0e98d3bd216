//! Replays every checked-in fuzz corpus file through the same checks the
//! `cargo fuzz` targets run, so `cargo test` guards against regressions of
//! past findings.

use std::fs;
use std::path::Path;

fn replay(target: &str, check: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|error| panic!("corpus {}: {error}", dir.display()));
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        check(&data);
        replayed += 1;
    }
    assert!(replayed > 0, "corpus {} is empty", dir.display());
    println!("{target}: replayed {replayed} inputs");
}

#[test]
fn stun_decode_corpus() {
    replay("stun_decode", tinynode::fuzzing::check_stun_decode);
}

#[test]
fn node_datagram_corpus() {
    let now = std::time::Instant::now();
    replay("node_datagram", |data| {
        tinynode::fuzzing::check_node_datagram(now, data)
    });
}

#[test]
fn dht_frame_corpus() {
    replay("dht_frame", tinynode::fuzzing::check_dht_frame);
}

#[test]
fn record_open_corpus() {
    replay("record_open", tinynode::fuzzing::check_record_open);
}

#[test]
fn signal_open_corpus() {
    replay("signal_open", tinynode::fuzzing::check_signal_open);
}

#[test]
fn node_sequence_corpus() {
    let now = std::time::Instant::now();
    replay("node_sequence", |data| {
        tinynode::fuzzing::check_node_sequence(now, data)
    });
}
