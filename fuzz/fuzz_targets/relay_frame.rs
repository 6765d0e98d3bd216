//! Relay frames: no panic; decode → encode gives the same bytes; a relay
//! holding one pair accounts for any datagram from one side once and
//! sends at most one frame, no longer, to the pair only.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tinynode::fuzzing::check_relay_frame(std::time::Instant::now(), data)
});
