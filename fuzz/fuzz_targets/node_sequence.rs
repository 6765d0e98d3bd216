//! Whole node: sequences of (time step, source, datagram); no panic, state
//! within its limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tinynode::fuzzing::check_node_sequence(std::time::Instant::now(), data)
});
