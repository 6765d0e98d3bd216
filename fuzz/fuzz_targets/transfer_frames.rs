//! File-transfer frames: no panic; a frame re-parses from its encoding;
//! a reader fed any bytes never holds more than one frame's worth.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_transfer_frames(data));
