//! Criterion benchmarks of the audio path: the per-10 ms / per-20 ms costs a bot pays.
//!
//! Run with `cargo bench -p daily-media`; `cargo test --benches -p daily-media` keeps them
//! compiling (and runs each once).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use daily_media::{
    FRAME_10MS_48K, JitterBuffer, JitterConfig, MAX_PACKET_BYTES, OPUS_FRAME_20MS, OPUS_RATE,
    OpusApplication, OpusDecoder, OpusEncoder, Resampler,
};
use std::hint::black_box;

fn speechlike(rate: u32, channels: usize, frames: usize) -> Vec<i16> {
    // A few harmonics with a slow amplitude modulation: busier than a pure sine for the codec.
    (0..frames)
        .flat_map(|n| {
            let t = n as f64 / f64::from(rate);
            let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let s = env
                * (0.3 * (2.0 * std::f64::consts::PI * 180.0 * t).sin()
                    + 0.2 * (2.0 * std::f64::consts::PI * 360.0 * t).sin()
                    + 0.1 * (2.0 * std::f64::consts::PI * 1250.0 * t).sin());
            std::iter::repeat_n((s * 32767.0) as i16, channels)
        })
        .collect()
}

fn opus(c: &mut Criterion) {
    let mut g = c.benchmark_group("opus_20ms");
    g.throughput(Throughput::Elements(OPUS_FRAME_20MS as u64));
    for channels in [1u16, 2] {
        let ch = usize::from(channels);
        let pcm = speechlike(OPUS_RATE, ch, OPUS_FRAME_20MS * 50);
        let mut enc = OpusEncoder::new(channels, Some(32_000 * u32::from(channels))).unwrap();
        let mut dec = OpusDecoder::new(channels).unwrap();
        let mut packet = [0u8; MAX_PACKET_BYTES];
        let mut out = vec![0i16; OPUS_FRAME_20MS * ch];
        let mut frames = pcm.chunks_exact(OPUS_FRAME_20MS * ch).cycle();
        g.bench_function(BenchmarkId::new("encode", channels), |b| {
            b.iter(|| black_box(enc.encode(frames.next().unwrap(), &mut packet).unwrap()))
        });
        g.bench_function(BenchmarkId::new("encode+decode", channels), |b| {
            b.iter(|| {
                let len = enc.encode(frames.next().unwrap(), &mut packet).unwrap();
                black_box(dec.decode(&packet[..len], &mut out).unwrap())
            })
        });
    }
    // The client's default for custom tracks: AUDIO application at 64 kbit/s, mono.
    let pcm = speechlike(OPUS_RATE, 1, OPUS_FRAME_20MS * 50);
    let mut enc = OpusEncoder::with_application(1, Some(64_000), OpusApplication::Audio).unwrap();
    let mut dec = OpusDecoder::new(1).unwrap();
    let mut packet = [0u8; MAX_PACKET_BYTES];
    let mut out = vec![0i16; OPUS_FRAME_20MS];
    let mut frames = pcm.chunks_exact(OPUS_FRAME_20MS).cycle();
    g.bench_function("audio64k_encode+decode/1", |b| {
        b.iter(|| {
            let len = enc.encode(frames.next().unwrap(), &mut packet).unwrap();
            black_box(dec.decode(&packet[..len], &mut out).unwrap())
        })
    });
    g.finish();
}

fn resampler(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample_10ms");
    for (in_rate, out_rate, in_ch, out_ch) in [
        (16_000, 48_000, 1, 1),
        (48_000, 16_000, 1, 1),
        (44_100, 48_000, 1, 1),
        (48_000, 48_000, 2, 1),
        (44_100, 16_000, 1, 1),
        (48_000, 16_000, 2, 1),
    ] {
        let mut rs = Resampler::new(in_rate, in_ch, out_rate, out_ch).unwrap();
        let input = speechlike(in_rate, usize::from(in_ch), rs.input_frames());
        let mut output = vec![0i16; rs.output_frames() * usize::from(out_ch)];
        g.throughput(Throughput::Elements(rs.input_frames() as u64));
        let name = format!("{in_rate}x{in_ch}->{out_rate}x{out_ch}");
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| rs.process(black_box(&input), &mut output).unwrap())
        });
    }
    g.finish();
}

fn jitter(c: &mut Criterion) {
    // Steady state of one stream: per 20 ms, one push and two pops (which decode the packet).
    let mut g = c.benchmark_group("jitter_20ms");
    g.throughput(Throughput::Elements(OPUS_FRAME_20MS as u64));
    let pcm = speechlike(OPUS_RATE, 1, OPUS_FRAME_20MS * 50);
    let mut enc = OpusEncoder::new(1, Some(32_000)).unwrap();
    let mut buf = [0u8; MAX_PACKET_BYTES];
    let packets: Vec<Vec<u8>> = pcm
        .chunks_exact(OPUS_FRAME_20MS)
        .map(|f| {
            let n = enc.encode(f, &mut buf).unwrap();
            buf[..n].to_vec()
        })
        .collect();
    let mut jb = JitterBuffer::new(JitterConfig {
        channels: 1,
        min_delay_ms: 20,
        max_delay_ms: 200,
    })
    .unwrap();
    let mut out = [0i16; FRAME_10MS_48K];
    let (mut seq, mut ts, mut now) = (0u16, 0u32, 0u64);
    let mut i = 0usize;
    g.bench_function("push+2pops", |b| {
        b.iter(|| {
            now += 20_000;
            jb.push(seq, ts, &packets[i % packets.len()], now);
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(OPUS_FRAME_20MS as u32);
            i += 1;
            black_box(jb.pop_10ms(now + 1_000, &mut out));
            black_box(jb.pop_10ms(now + 11_000, &mut out));
        })
    });
    g.finish();
}

criterion_group!(benches, opus, resampler, jitter);
criterion_main!(benches);
