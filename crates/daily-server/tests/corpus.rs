//! The str0m fuzz targets' checks (`fuzz/src/rtc_checks.rs`) on the fuzz corpus plus
//! deterministic mutants: a thousand or more through the parsers alone, and some through the
//! whole server path (SDP offers and answers through `accept_offer`/`accept_answer`, UDP
//! datagrams into a server transport), which is slow in a debug build. Stable Rust, a few
//! seconds; the real fuzzing is `cargo fuzz` (docs/fuzzing.md).

#[path = "../../../fuzz/src/mutate.rs"]
mod mutate;
#[path = "../../../fuzz/src/rtc_checks.rs"]
#[allow(dead_code)]
mod rtc_checks;

use std::path::Path;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    mutate::corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target),
    )
}

#[test]
fn sdp_offer_corpus_and_mutants() {
    let s = seeds("sdp_offer");
    mutate::run(&s, 1000, 11, |d| drop(rtc_checks::sdp_offer_parse(d)));
    mutate::run(&s, 50, 21, rtc_checks::sdp_offer);
}

#[test]
fn sdp_answer_corpus_and_mutants() {
    let s = seeds("sdp_answer");
    mutate::run(&s, 1000, 12, |d| drop(rtc_checks::sdp_answer_parse(d)));
    mutate::run(&s, 50, 22, rtc_checks::sdp_answer);
}

#[test]
fn rtp_datagram_corpus_and_mutants() {
    let s = seeds("rtp_datagram");
    mutate::run(&s, 3000, 13, rtc_checks::datagram_parse);
    mutate::run(&s, 100, 23, rtc_checks::rtp_datagram);
}
