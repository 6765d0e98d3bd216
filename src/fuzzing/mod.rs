//! Invariant checks shared by the `cargo fuzz` targets in `fuzz/` and by the
//! corpus replay in `tests/fuzz_corpus.rs`, so the fuzzer and `cargo test`
//! exercise exactly the same code. Each check panics when an invariant
//! breaks; that is how a fuzzer reports a finding.
//!
//! | file | checks |
//! |---|---|
//! | `codecs.rs` | parsers: STUN, DHT frames, KRPC, link reports, stream and transfer frames |
//! | `seals.rs` | sealed records, signals and beacons of the fuzz meeting |
//! | `node.rs` | whole nodes: single datagrams, sequences, relay frames |

mod codecs;
mod node;
mod seals;

pub use codecs::{
    check_dht_frame, check_krpc, check_link, check_stream_frames, check_stun_decode,
    check_transfer_frames,
};
pub use node::{bind_with_cookie, check_node_datagram, check_node_sequence, check_relay_frame};
pub use seals::{
    FUZZ_MEETING_CODE, FUZZ_SIGNAL_TIME_MS, check_beacon, check_record_open, check_signal_open,
};
