//! LAN beacons: no panic; decode → encode round trip; a joined node with
//! LAN on accounts for any beacon exactly once and answers at most one
//! hello.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tinynode::fuzzing::check_beacon(std::time::Instant::now(), data)
});
