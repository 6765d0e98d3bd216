//! DHT frame decode: no panic, and decode → encode → decode agrees.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_dht_frame(data));
