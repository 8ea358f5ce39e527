//! Criterion benchmarks of the video path: what a published or received camera track costs
//! per frame.
//!
//! Run with `cargo bench -p daily-video`; `cargo test --benches -p daily-video` keeps them
//! compiling (and runs each once). Encoding and decoding cycle through 60 frames of the moving
//! test pattern (2 s at 30 fps), so the encoder sees motion, not one repeated picture.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use daily_video::{
    ColorFormat, EncodedFrame, EncoderConfig, I420Buffer, VideoDecoder, VideoEncoder, from_i420,
    testpattern, to_i420,
};
use std::hint::black_box;
use std::time::Duration;

/// The sizes benchmarked, with the bitrate used at each: Daily's camera default at 640x360 and
/// 2 Mbit/s at 1280x720 (`benches/CODEC_CHOICE.md`).
const SIZES: [(u32, u32, u32); 2] = [(640, 360, 680_000), (1280, 720, 2_000_000)];
const FRAMES: u32 = 60;

fn label(w: u32, h: u32) -> String {
    format!("{w}x{h}")
}

fn pictures(w: u32, h: u32) -> Vec<I420Buffer> {
    (0..FRAMES)
        .map(|n| {
            let mut b = I420Buffer::default();
            testpattern::i420(n, w, h, &mut b).unwrap();
            b
        })
        .collect()
}

fn colour(c: &mut Criterion) {
    let mut g = c.benchmark_group("colour");
    for (w, h, _) in SIZES {
        g.throughput(Throughput::Elements(1));
        let mut rgba = Vec::new();
        testpattern::rgba(5, w, h, &mut rgba);
        let mut yuv = I420Buffer::new(w, h);
        for format in [ColorFormat::Rgba, ColorFormat::Argb] {
            let mut src = Vec::new();
            to_i420(&rgba, ColorFormat::Rgba, w, h, &mut yuv).unwrap();
            from_i420(&yuv, format, &mut src).unwrap();
            g.bench_with_input(
                BenchmarkId::new(format!("{format}_to_i420"), label(w, h)),
                &src,
                |b, src| b.iter(|| to_i420(black_box(src), format, w, h, &mut yuv).unwrap()),
            );
            let mut out = Vec::new();
            g.bench_with_input(
                BenchmarkId::new(format!("i420_to_{format}"), label(w, h)),
                &yuv,
                |b, yuv| b.iter(|| from_i420(black_box(yuv), format, &mut out).unwrap()),
            );
        }
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("vp8_encode");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    for (w, h, bitrate) in SIZES {
        let pics = pictures(w, h);
        for threads in [1, 2] {
            let cfg = EncoderConfig {
                width: w,
                height: h,
                fps: 30,
                bitrate_bps: bitrate,
                threads,
            };
            let mut enc = VideoEncoder::new(cfg).unwrap();
            let mut out = EncodedFrame::default();
            let mut n = 0u32;
            g.throughput(Throughput::Elements(1));
            g.bench_function(
                BenchmarkId::new(format!("{threads}_thread"), label(w, h)),
                |b| {
                    b.iter(|| {
                        let pic = &pics[(n % FRAMES) as usize];
                        enc.encode(pic, n.wrapping_mul(3000), false, &mut out)
                            .unwrap();
                        n += 1;
                    })
                },
            );
        }
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("vp8_decode");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for (w, h, bitrate) in SIZES {
        let mut enc = VideoEncoder::new(EncoderConfig {
            width: w,
            height: h,
            fps: 30,
            bitrate_bps: bitrate,
            threads: 1,
        })
        .unwrap();
        // Frame 0 is a keyframe, so the cycle restarts cleanly.
        let frames: Vec<Vec<u8>> = pictures(w, h)
            .iter()
            .enumerate()
            .map(|(n, p)| {
                let mut out = EncodedFrame::default();
                enc.encode(p, n as u32 * 3000, n == 0, &mut out).unwrap();
                out.data
            })
            .collect();
        let mut dec = VideoDecoder::new().unwrap();
        let mut pic = I420Buffer::default();
        let mut n = 0usize;
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("1_thread", label(w, h)), |b| {
            b.iter(|| {
                dec.decode(black_box(&frames[n % frames.len()]), &mut pic)
                    .unwrap();
                n += 1;
            })
        });
    }
    g.finish();
}

criterion_group!(benches, colour, encode, decode);
criterion_main!(benches);
