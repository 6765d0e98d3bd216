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

/// The open-branch checks can fail: a blob that opens but is not what the
/// fuzz identity seals (here, a genuine record of another member, as a
/// forgery found by the fuzzer would be) makes `check_record_open` panic,
/// and a genuine seal of the fuzz identity passes.
#[test]
fn a_record_that_opens_but_is_no_genuine_seal_fails_the_check() {
    use tinynode::wire::record;
    use tinynode::{Identity, Meeting};
    let meeting = Meeting::derive(tinynode::fuzzing::FUZZ_MEETING_CODE).unwrap();
    let addr = "192.0.2.1:4000".parse().unwrap();
    let genuine = record::seal(
        &meeting,
        &Identity::from_seed([7; 32]),
        &[addr],
        tinynode::wire::record::NetworkFacts::UNKNOWN,
        5,
        [3; 12],
    );
    tinynode::fuzzing::check_record_open(&genuine);
    let stranger = record::seal(
        &meeting,
        &Identity::from_seed([9; 32]),
        &[addr],
        tinynode::wire::record::NetworkFacts::UNKNOWN,
        5,
        [3; 12],
    );
    let caught = std::panic::catch_unwind(|| tinynode::fuzzing::check_record_open(&stranger));
    assert!(caught.is_err(), "an unexpected opener must fail the check");
}

#[test]
fn krpc_corpus() {
    replay("krpc", tinynode::fuzzing::check_krpc);
}

#[test]
fn beacon_corpus() {
    let now = std::time::Instant::now();
    replay("beacon", |data| tinynode::fuzzing::check_beacon(now, data));
}

#[test]
fn relay_frame_corpus() {
    let now = std::time::Instant::now();
    replay("relay_frame", |data| {
        tinynode::fuzzing::check_relay_frame(now, data)
    });
}

#[test]
fn link_corpus() {
    replay("link", tinynode::fuzzing::check_link);
}

#[test]
fn stream_frames_corpus() {
    replay("stream_frames", tinynode::fuzzing::check_stream_frames);
}

#[test]
fn transfer_frames_corpus() {
    replay("transfer_frames", tinynode::fuzzing::check_transfer_frames);
}
