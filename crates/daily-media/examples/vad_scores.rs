//! Per-10 ms speech scores of a raw recording, for `benches/vad_eval.py`.
//!
//! `vad_scores MODEL RESET_PERIOD_MS < in.raw > out.f32`: reads 16-bit little-endian mono PCM at
//! 16 kHz from stdin and writes one little-endian f32 per whole 10 ms frame to stdout.
//!
//! Models:
//! - `ours`: [`daily_media::Vad`] (what `NativeVad.analyze_frames` returns), given each 10 ms once.
//! - `earshot`: earshot alone, fed contiguous 16 ms frames as its documentation asks; the score
//!   of a 10 ms frame is that of the last 16 ms frame completed by the end of it (causal, so up to
//!   6 ms stale, 0 before the first). With a reset period the detector is reset before the first
//!   16 ms frame that starts at or after each multiple of the period.
//! - `rnnoise`: the VAD probability of RNNoise (crate nnnoiseless, pure Rust), which works on
//!   10 ms frames at 48 kHz: each 10 ms is brought to 48 kHz with [`daily_media::Resampler`]
//!   (2.5 ms delay) and run as one frame. The reset period is ignored.

use std::io::{Read, Write};

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: vad_scores ours|earshot|rnnoise RESET_PERIOD_MS < in.raw > out.f32";
    let model = args.next().expect(usage);
    let reset_ms: u32 = args.next().expect(usage).parse().expect(usage);
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .expect("read stdin");
    let pcm: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let frames = pcm.len() / 160;
    let scores: Vec<f32> = match model.as_str() {
        "ours" => {
            let mut vad = daily_media::Vad::new(reset_ms, 16_000, 1).expect("Vad::new");
            pcm.chunks_exact(160)
                .map(|c| vad.analyze(c).expect("analyze"))
                .collect()
        }
        "earshot" => {
            let mut det = earshot::Detector::default_boxed();
            let mut out = Vec::with_capacity(frames);
            let (mut done, mut last, mut next_reset) = (0usize, 0.0f32, u64::from(reset_ms) * 16);
            for k in 0..frames {
                let end = (k + 1) * 160;
                while (done + 1) * 256 <= end {
                    let start = done * 256;
                    if reset_ms != 0 && start as u64 >= next_reset {
                        det.reset();
                        next_reset += u64::from(reset_ms) * 16;
                    }
                    last = det.predict_i16(&pcm[start..start + 256]);
                    done += 1;
                }
                out.push(last);
            }
            out
        }
        "rnnoise" => {
            let mut up = daily_media::Resampler::new(16_000, 1, 48_000, 1).expect("resampler");
            let mut state = nnnoiseless::DenoiseState::new();
            let (mut frame48, mut input, mut out) = ([0i16; 480], [0f32; 480], [0f32; 480]);
            pcm.chunks_exact(160)
                .map(|c| {
                    up.process(c, &mut frame48).expect("resample");
                    for (f, &s) in input.iter_mut().zip(&frame48) {
                        *f = f32::from(s); // RNNoise takes i16-scaled floats
                    }
                    state.process_frame(&mut out, &input)
                })
                .collect()
        }
        _ => panic!("{usage}"),
    };
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    for s in scores {
        w.write_all(&s.to_le_bytes()).expect("write");
    }
}
