//! The fuzz targets' checks (`fuzz/src/proto_checks.rs`) on the fuzz corpus
//! (`fuzz/corpus/<target>/`) plus a few thousand deterministic mutants of it: no parser of
//! network input may panic, and accepted messages round-trip. Stable Rust, a few seconds; the
//! real fuzzing is `cargo fuzz` (docs/fuzzing.md).

#[path = "../../../fuzz/src/mutate.rs"]
mod mutate;
#[path = "../../../fuzz/src/proto_checks.rs"]
mod proto_checks;

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Seeds of `target` plus those of the other message target (same JSON shapes, spliced).
fn seeds(targets: &[&str]) -> Vec<(String, Vec<u8>)> {
    targets
        .iter()
        .flat_map(|t| mutate::corpus(&corpus_dir(t)))
        .collect()
}

#[test]
fn client_message_corpus_and_mutants() {
    let s = seeds(&["client_message", "server_message"]);
    mutate::run(&s, 5000, 1, proto_checks::client_message);
}

#[test]
fn server_message_corpus_and_mutants() {
    let s = seeds(&["server_message", "client_message"]);
    mutate::run(&s, 5000, 2, proto_checks::server_message);
}

#[test]
fn room_url_corpus_and_mutants() {
    let s = seeds(&["room_url"]);
    mutate::run(&s, 5000, 3, proto_checks::room_url);
}

/// Hand-picked edge cases of the JSON layer that mutation rarely reaches.
#[test]
fn json_edge_cases() {
    let deep = "[".repeat(100_000);
    let deep_data = format!(
        r#"{{"type":"appMessage","requestId":1,"data":{}0{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let big = format!(
        r#"{{"type":"setUserName","userName":"{}"}}"#,
        "x".repeat(300_000)
    );
    for text in [
        deep.as_str(),
        deep_data.as_str(),
        big.as_str(),
        "",
        "null",
        r#"{"type":"appMessage","requestId":1,"data":1e400}"#,
        r#"{"type":"appMessage","requestId":1,"data":-0.0}"#,
        r#"{"type":"appMessage","requestId":1,"data":1.7976931348623157e308}"#,
        r#"{"type":"appMessage","requestId":1,"data":5e-324}"#,
        r#"{"type":"appMessage","requestId":1,"data":"\ud800"}"#,
        r#"{"type":"setUserName","userName":"a","userName":"b"}"#,
        r#"{"type":"publishOffer","sdp":"","tracks":[{"mid":"0","trackId":"t","source":"customAudio"}]}"#,
        r#"{"type":"publishOffer","sdp":"","tracks":[{"mid":"0","trackId":"t","source":"microphone","trackName":"x"}]}"#,
    ] {
        proto_checks::client_message(text.as_bytes());
        proto_checks::server_message(text.as_bytes());
    }
    for url in [
        "http://[::1]:1/r",
        "http://::1/r",
        "http://a]:b:80/r",
        "https://h:0/r",
        "http://h:65535/r",
    ] {
        proto_checks::room_url(url.as_bytes());
    }
}
