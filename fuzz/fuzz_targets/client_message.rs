#![no_main]
//! Fuzz target: see `daily_fuzz::proto_checks::client_message` and docs/fuzzing.md.
libfuzzer_sys::fuzz_target!(|data: &[u8]| daily_fuzz::proto_checks::client_message(data));
