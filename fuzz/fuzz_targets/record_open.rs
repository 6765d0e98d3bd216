//! Opening sealed records: garbage never opens, sealed records round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_record_open(data));
