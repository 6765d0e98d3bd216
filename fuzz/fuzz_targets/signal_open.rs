//! Opening sealed signals: garbage never opens, sealed signals round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_signal_open(data));
