//! Criterion benchmarks of the audio path: the per-10 ms / per-20 ms costs a bot pays.
//!
//! Run with `cargo bench -p daily-media`; `cargo test --benches -p daily-media` keeps them
//! compiling (and runs each once).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use daily_media::{
    FRAME_10MS_48K, JitterBuffer, JitterConfig, MAX_PACKET_BYTES, OPUS_FRAME_20MS, OPUS_RATE,
    OpusApplication, OpusDecoder, OpusEncoder, Resampler, Vad,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// libopus called directly (the raw `opusic-sys` functions), to measure what our wrapper adds.
mod direct {
    #![allow(unsafe_code)]
    use opusic_sys as sys;

    /// A mono 48 kHz libopus encoder configured as `OpusEncoder` configures its own: the given
    /// application and bitrate, in-band FEC off (0 % expected loss), default complexity.
    pub struct Encoder(*mut sys::OpusEncoder);
    pub struct Decoder(*mut sys::OpusDecoder);

    impl Encoder {
        pub fn new(app: i32, bitrate: i32) -> Self {
            let mut err = 0;
            // SAFETY: plain values and a live error pointer; the ctl requests take one int each.
            unsafe {
                let st = sys::opus_encoder_create(48_000, 1, app, &mut err);
                assert!(err == sys::OPUS_OK && !st.is_null());
                assert_eq!(sys::opus_encoder_ctl(st, sys::OPUS_SET_BITRATE_REQUEST, bitrate), 0);
                assert_eq!(sys::opus_encoder_ctl(st, sys::OPUS_SET_INBAND_FEC_REQUEST, 0i32), 0);
                assert_eq!(sys::opus_encoder_ctl(st, sys::OPUS_SET_PACKET_LOSS_PERC_REQUEST, 0i32), 0);
                Encoder(st)
            }
        }
        pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
            // SAFETY: pcm holds the frames passed; out.len() bounds what libopus writes.
            let n = unsafe { sys::opus_encode(self.0, pcm.as_ptr(), pcm.len() as i32, out.as_mut_ptr(), out.len() as i32) };
            assert!(n > 0);
            n as usize
        }
    }

    impl Decoder {
        pub fn new() -> Self {
            let mut err = 0;
            // SAFETY: plain values and a live error pointer.
            let st = unsafe { sys::opus_decoder_create(48_000, 1, &mut err) };
            assert!(err == sys::OPUS_OK && !st.is_null());
            Decoder(st)
        }
        pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> usize {
            // SAFETY: packet.len() bytes are read; out.len() (mono) bounds what is written.
            let n = unsafe { sys::opus_decode(self.0, packet.as_ptr(), packet.len() as i32, out.as_mut_ptr(), out.len() as i32, 0) };
            assert!(n > 0);
            n as usize
        }
    }

    impl Drop for Encoder {
        fn drop(&mut self) {
            // SAFETY: created by opus_encoder_create, freed once.
            unsafe { sys::opus_encoder_destroy(self.0) }
        }
    }

    impl Drop for Decoder {
        fn drop(&mut self) {
            // SAFETY: created by opus_decoder_create, freed once.
            unsafe { sys::opus_decoder_destroy(self.0) }
        }
    }
}

/// The 16-bit mono samples of a canonical PCM WAV in the repository's `data/`.
fn speech_wav(name: &str) -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut at = 12; // "RIFF" size "WAVE"
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            let end = (at + 8 + len).min(bytes.len());
            return bytes[at + 8..end].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// Real speech (LibriVox at 48 kHz): the synthetic signal above keeps libopus in CELT mode and
/// hides what in-band FEC costs. With FEC on and loss expected, libopus codes speech in hybrid
/// mode (SILK + CELT) to carry LBRR data; the client turns FEC on only when loss is reported.
fn opus_speech(c: &mut Criterion) {
    let mut g = c.benchmark_group("opus_20ms_speech");
    g.throughput(Throughput::Elements(OPUS_FRAME_20MS as u64));
    let pcm = speech_wav("librivox_48k.wav");
    for (name, fec) in [("audio64k_encode+decode", None), ("audio64k_fec5_encode+decode", Some(5u8))] {
        let mut enc = OpusEncoder::with_application(1, Some(64_000), OpusApplication::Audio).unwrap();
        if let Some(loss) = fec {
            enc.set_fec(true, loss).unwrap();
        }
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut packet = [0u8; MAX_PACKET_BYTES];
        let mut out = vec![0i16; OPUS_FRAME_20MS];
        let mut frames = pcm.chunks_exact(OPUS_FRAME_20MS).cycle();
        g.bench_function(name, |b| {
            b.iter(|| {
                let len = enc.encode(frames.next().unwrap(), &mut packet).unwrap();
                black_box(dec.decode(&packet[..len], &mut out).unwrap())
            })
        });
    }
    g.finish();
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

/// Our wrapper against libopus called directly (raw `opusic-sys` calls, [`direct`]) with the
/// same settings, encode + decode of one 20 ms mono frame. The two run interleaved, frame by
/// frame and alternating which goes first, and each benchmark reports one side of that loop.
/// The two benchmarks still run at different times, and on a shared VM the speed drifts by
/// more than the difference being measured, so after the pair a line with the ratio over all
/// interleaved frames of both (the same instants for both sides) is printed: that is the figure
/// to compare.
fn opus_vs_libopus(c: &mut Criterion) {
    let mut g = c.benchmark_group("opus_20ms_paired");
    g.throughput(Throughput::Elements(OPUS_FRAME_20MS as u64));
    let pcm = speechlike(OPUS_RATE, 1, OPUS_FRAME_20MS * 50);
    let frames: Vec<&[i16]> = pcm.chunks_exact(OPUS_FRAME_20MS).collect();
    for (name, ours_app, app, bitrate) in [
        (
            "voip32k",
            OpusApplication::Voip,
            opusic_sys::OPUS_APPLICATION_VOIP,
            32_000,
        ),
        (
            "audio64k",
            OpusApplication::Audio,
            opusic_sys::OPUS_APPLICATION_AUDIO,
            64_000,
        ),
    ] {
        let mut ours_enc = OpusEncoder::with_application(1, Some(bitrate), ours_app).unwrap();
        let mut ours_dec = OpusDecoder::new(1).unwrap();
        let mut enc = direct::Encoder::new(app, bitrate as i32);
        let mut dec = direct::Decoder::new();
        let mut packet = [0u8; MAX_PACKET_BYTES];
        let mut out = vec![0i16; OPUS_FRAME_20MS];
        // Same settings means the same bitstream: check it before timing anything.
        let mut direct_packet = [0u8; MAX_PACKET_BYTES];
        for frame in &frames {
            let a = ours_enc.encode(frame, &mut packet).unwrap();
            let b = enc.encode(frame, &mut direct_packet);
            assert_eq!(
                packet[..a],
                direct_packet[..b],
                "{name}: wrapper and libopus differ"
            );
        }
        let mut i = 0usize;
        let (mut sum_ours, mut sum_direct) = (Duration::ZERO, Duration::ZERO);
        for side in ["ours", "libopus_direct"] {
            let id = BenchmarkId::new(format!("{name}_encode+decode/1"), side);
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let (mut t_ours, mut t_direct) = (Duration::ZERO, Duration::ZERO);
                    for _ in 0..iters {
                        let frame = frames[i % frames.len()];
                        for k in 0..2 {
                            let t0 = Instant::now();
                            if (i + k).is_multiple_of(2) {
                                let len = ours_enc.encode(frame, &mut packet).unwrap();
                                black_box(ours_dec.decode(&packet[..len], &mut out).unwrap());
                                t_ours += t0.elapsed();
                            } else {
                                let len = enc.encode(frame, &mut packet);
                                black_box(dec.decode(&packet[..len], &mut out));
                                t_direct += t0.elapsed();
                            }
                        }
                        i += 1;
                    }
                    sum_ours += t_ours;
                    sum_direct += t_direct;
                    if side == "ours" { t_ours } else { t_direct }
                })
            });
        }
        let frames_each = i as f64;
        println!(
            "opus_20ms_paired/{name}: interleaved over {i} frames each: ours {:.2} µs, libopus \
             direct {:.2} µs per frame, ours/direct {:.3}",
            sum_ours.as_secs_f64() * 1e6 / frames_each,
            sum_direct.as_secs_f64() * 1e6 / frames_each,
            sum_ours.as_secs_f64() / sum_direct.as_secs_f64()
        );
    }
    g.finish();
}

fn resampler(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample_10ms");
    for (in_rate, out_rate, in_ch, out_ch) in [
        (16_000, 48_000, 1, 1),
        (48_000, 16_000, 1, 1),
        (24_000, 48_000, 1, 1),
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

fn vad(c: &mut Criterion) {
    // One `NativeVad.analyze_frames` call: 10 ms in; earshot runs on every completed 16 ms frame
    // (and its warm standby near each hand-over), so the mean covers both.
    let mut g = c.benchmark_group("vad");
    for (rate, channels) in [(16_000u32, 1u16), (48_000, 2), (44_100, 1)] {
        let ch = usize::from(channels);
        let n = rate as usize / 100;
        let pcm = speechlike(rate, ch, n * 100);
        let mut chunks = pcm.chunks_exact(n * ch).cycle();
        let mut vad = Vad::new(1000, rate, channels).unwrap();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(
            BenchmarkId::new("analyze_10ms", format!("{rate}x{channels}")),
            |b| b.iter(|| black_box(vad.analyze(chunks.next().unwrap()).unwrap())),
        );
    }
    g.finish();
}

criterion_group!(benches, opus, opus_speech, opus_vs_libopus, resampler, jitter, vad);
criterion_main!(benches);
