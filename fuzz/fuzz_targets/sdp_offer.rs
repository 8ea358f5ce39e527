#![no_main]
//! Fuzz target: see `daily_fuzz::rtc_checks::sdp_offer` and docs/fuzzing.md.
libfuzzer_sys::fuzz_target!(|data: &[u8]| daily_fuzz::rtc_checks::sdp_offer(data));
