//! Demux and routing: any datagram into a node is handled or dropped and
//! counted, never a panic; STUN answers stay within the amplification bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tinynode::fuzzing::check_node_datagram(std::time::Instant::now(), data)
});
