//! Demux and routing: any datagram into a node is answered within the
//! amplification bound or dropped and counted, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_node_datagram(data));
