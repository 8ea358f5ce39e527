//! Cost of one 20 ms Opus frame at the client's settings (AUDIO application, 64 kbit/s,
//! complexity 4, FEC off, mono), encode and decode apart, on real speech (LibriVox, `data/`).
//!
//! `cargo run --release -p daily-media --example opus_cost -- RATE [RUNS]` with RATE 16000 or
//! 48000 (the encoder's input rate; decoding is always at 48 kHz). Each run encodes and then
//! decodes the whole file; the minimum over RUNS (default 5) of the mean per frame is printed,
//! in µs. Under `valgrind --tool=callgrind` use RUNS=1 and read the inclusive instruction
//! counts of `opus_encode` and `opus_decode` (benches/README.md, "Opus: bundled vs system").

use daily_media::{MAX_PACKET_BYTES, OPUS_FRAME_20MS, OpusApplication, OpusDecoder, OpusEncoder};
use std::time::Instant;

/// The 16-bit mono samples of a canonical PCM WAV in the repository's `data/`.
fn speech_wav(name: &str) -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut at = 12; // "RIFF" size "WAVE"
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            let end = (at + 8 + len).min(bytes.len());
            return bytes[at + 8..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rate: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(48_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let pcm = speech_wav(match rate {
        16_000 => "librivox_16k.wav",
        48_000 => "librivox_48k.wav",
        _ => panic!("RATE must be 16000 or 48000"),
    });
    let frame = rate as usize / 50;
    let frames: Vec<&[i16]> = pcm.chunks_exact(frame).collect();
    let mut packets = vec![[0u8; MAX_PACKET_BYTES]; frames.len()];
    let mut lens = vec![0usize; frames.len()];
    let mut out = vec![0i16; OPUS_FRAME_20MS];
    let (mut best_enc, mut best_dec) = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        let mut enc =
            OpusEncoder::with_rate(rate, 1, Some(64_000), OpusApplication::Audio).unwrap();
        enc.set_complexity(4).unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let t = Instant::now();
        for ((f, p), l) in frames.iter().zip(packets.iter_mut()).zip(lens.iter_mut()) {
            *l = enc.encode(f, p).unwrap();
        }
        best_enc = best_enc.min(t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64);
        let t = Instant::now();
        for (p, &l) in packets.iter().zip(&lens) {
            std::hint::black_box(dec.decode(&p[..l], &mut out).unwrap());
        }
        best_dec = best_dec.min(t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64);
    }
    let bytes: usize = lens.iter().sum();
    println!(
        "rate {rate} Hz, {} frames, {:.1} kbit/s: encode {best_enc:.2} µs/frame, decode {best_dec:.2} µs/frame (min of {runs} runs)",
        frames.len(),
        bytes as f64 * 8.0 / (frames.len() as f64 * 20.0),
    );
}
