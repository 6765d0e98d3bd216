//! Invariant checks shared by the `cargo fuzz` targets in `fuzz/` and by the
//! corpus replay in `tests/fuzz_corpus.rs`, so the fuzzer and `cargo test`
//! exercise exactly the same code. Each check panics when an invariant
//! breaks; that is how a fuzzer reports a finding.

use std::net::SocketAddr;
use std::time::Instant;

use crate::node::{Input, Node, NodeConfig, Output};
use crate::stun::message::{IntegrityKey, Message, MessageEncoder};
use crate::stun::server::AMPLIFICATION_FACTOR;

/// Decode → encode → decode must agree, and the checks on a decoded message
/// must not panic.
pub fn check_stun_decode(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    message.fingerprint_status();
    message.integrity_status(&IntegrityKey::short_term("fuzz"));
    message.reflexive_address();
    let mut encoder =
        MessageEncoder::new(message.class(), message.method(), message.transaction_id());
    for attribute in message.attributes() {
        encoder.push(&attribute);
    }
    let bytes = encoder.finish();
    let again = Message::decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(again.header().class, message.class());
    assert_eq!(again.method(), message.method());
    assert_eq!(again.transaction_id(), message.transaction_id());
    assert!(
        again.attributes().eq(message.attributes()),
        "attributes differ after a round trip"
    );
    assert!(
        bytes.len() <= data.len(),
        "re-encoding never grows a message"
    );
}

/// One datagram into a fresh node: it is accounted for exactly once (answered
/// or dropped), and any answer goes back to the sender within the
/// amplification bound.
pub fn check_node_datagram(data: &[u8]) {
    let local: SocketAddr = SocketAddr::from(([10, 0, 0, 1], 3478));
    let source: SocketAddr = SocketAddr::from(([192, 0, 2, 7], 40000));
    let mut node = Node::new(NodeConfig::new(local), [0; 32]);
    node.handle_input(Instant::now(), Input::Receive { source, data });
    let mut answers = 0u64;
    loop {
        match node.poll_output() {
            Output::Transmit(transmit) => {
                answers += 1;
                assert_eq!(transmit.destination, source);
                assert!(transmit.payload.len() <= AMPLIFICATION_FACTOR * data.len());
                Message::decode(&transmit.payload).expect("answers are valid STUN");
            }
            Output::Event(event) => panic!("unsolicited datagram raised {event:?}"),
            Output::Wait(deadline) => {
                assert_eq!(deadline, None, "an idle node stays idle");
                break;
            }
        }
    }
    let stats = node.stats();
    assert_eq!(stats.received, 1);
    assert_eq!(stats.stun_answers + stats.stun_error_answers, answers);
    assert_eq!(answers + stats.dropped_total(), 1, "accounted exactly once");
}
