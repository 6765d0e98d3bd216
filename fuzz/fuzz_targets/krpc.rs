//! Mainline input (bencode, KRPC, hellos): no panic; bencode round trip in
//! canonical form; KRPC responses within their caps and round-tripping.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinynode::fuzzing::check_krpc(data));
