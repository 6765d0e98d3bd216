//! Stream frames and a stream's state machine: no panic; frames re-parse
//! from their encoding; a stream never delivers more than it granted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_stream_frames(data));
