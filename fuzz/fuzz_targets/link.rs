//! Link reports and the loss meter: no panic; reports round trip and are
//! shares; a meter recovers to report a clean link after any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_link(data));
