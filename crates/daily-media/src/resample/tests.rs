use super::*;
use crate::testutil::*;

/// Resamples `seconds` of a sine through `rs` in 10 ms chunks; returns the output.
fn run_sine(
    rs: &mut Resampler,
    in_rate: u32,
    in_ch: usize,
    freq: f64,
    amp: f64,
    seconds: f64,
) -> Vec<i16> {
    let chunks = (seconds * 100.0) as usize;
    let input = sine(in_rate, in_ch, freq, amp, rs.input_frames() * chunks);
    let out_ch = rs.out_channels;
    let mut out = vec![0i16; rs.output_frames() * out_ch * chunks];
    for (i, o) in input
        .chunks_exact(rs.input_frames() * in_ch)
        .zip(out.chunks_exact_mut(rs.output_frames() * out_ch))
    {
        rs.process(i, o).unwrap();
    }
    out
}

fn check_sine_kept(in_rate: u32, out_rate: u32) {
    let mut rs = Resampler::new(in_rate, 1, out_rate, 1).unwrap();
    assert_eq!(rs.input_frames(), in_rate as usize / 100);
    assert_eq!(rs.output_frames(), out_rate as usize / 100);
    let latency_ms = rs.latency_frames() as f64 * 1000.0 / f64::from(out_rate);
    assert!(
        latency_ms <= 3.0,
        "{in_rate}->{out_rate}: latency {latency_ms} ms"
    );
    let out = run_sine(&mut rs, in_rate, 1, 440.0, 0.5, 1.0);
    assert_eq!(
        out.len(),
        out_rate as usize,
        "exact frame count over 100 chunks"
    );
    // Skip the latency and the filter's settling time.
    let settled = &out[rs.latency_frames() + out_rate as usize / 50..];
    let f = estimate_frequency(settled, out_rate);
    assert!(
        (f - 440.0).abs() < 1.0,
        "{in_rate}->{out_rate}: frequency {f}"
    );
    let a = rms(settled) * 2f64.sqrt() / 32768.0;
    assert!(
        (a - 0.5).abs() < 0.01,
        "{in_rate}->{out_rate}: amplitude {a}"
    );
    // And it is the same sine, shifted by exactly the reported latency: compare against an
    // ideal sine at the output rate delayed by latency_frames().
    let ideal = sine(out_rate, 1, 440.0, 0.5, out.len() + rs.latency_frames());
    let lat = rs.latency_frames();
    let skip = out_rate as usize / 50;
    let corr = correlation(&out[lat + skip..], &ideal[skip..out.len() - lat]);
    // The FFT path delays by a whole number of output frames; the sinc path's true delay
    // may fall between two frames, so it gets half a frame of slack.
    let min_corr = if matches!(rs.backend, Backend::Fft(_)) {
        0.999
    } else {
        0.98
    };
    assert!(
        corr > min_corr,
        "{in_rate}->{out_rate}: correlation with ideal delayed sine {corr}"
    );
}

/// Quality figures of one conversion, measured on a 1 s sine of peak `amp` (fraction of full
/// scale) fed in 10 ms chunks, over the output after its first 100 ms. See
/// `benches/README.md` for what each figure means.
struct Quality {
    /// Against the analytic sine at the output rate, delayed by `latency_frames()`.
    snr_db: f64,
    /// Against the least-squares fit of a sine of the same frequency (any gain and phase)
    /// plus DC: THD+N as a ratio, in dB.
    thd_n_db: f64,
    /// Gain of the fitted sine relative to `amp`, in dB.
    gain_db: f64,
    /// Delay of the fitted sine minus `latency_frames()`, in output frames.
    delay_error_frames: f64,
}

fn quality(in_rate: u32, out_rate: u32, freq: f64, amp: f64) -> Quality {
    use std::f64::consts::PI;
    let mut rs = Resampler::new(in_rate, 1, out_rate, 1).unwrap();
    let out = run_sine(&mut rs, in_rate, 1, freq, amp, 1.0);
    let lat = rs.latency_frames() as f64;
    let peak = amp * 32767.0; // what `sine` writes, before rounding to i16
    let w = 2.0 * PI * freq / f64::from(out_rate);
    let skip = out_rate as usize / 10;
    let y: Vec<(f64, f64)> = out[skip..]
        .iter()
        .enumerate()
        .map(|(i, &s)| ((skip + i) as f64, f64::from(s)))
        .collect();

    let (mut sig, mut err) = (0.0, 0.0);
    for &(n, s) in &y {
        let r = peak * (w * (n - lat)).sin();
        sig += r * r;
        err += (s - r) * (s - r);
    }
    let snr_db = 10.0 * (sig / err).log10();

    // Least squares for s ≈ a·sin(wn) + b·cos(wn) + c via the 3×3 normal equations.
    let basis = |n: f64| [(w * n).sin(), (w * n).cos(), 1.0];
    let mut m = [[0.0f64; 4]; 3];
    for &(n, s) in &y {
        let v = basis(n);
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += v[i] * v[j];
            }
            m[i][3] += v[i] * s;
        }
    }
    for col in 0..3 {
        let p = (col..3)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap();
        m.swap(col, p);
        let pivot = m[col];
        for (row, r) in m.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / pivot[col];
                for (x, p) in r.iter_mut().zip(pivot).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    let [a, b, c] = [0, 1, 2].map(|i| m[i][3] / m[i][i]);
    let (mut fit, mut resid) = (0.0, 0.0);
    for &(n, s) in &y {
        let f = a * (w * n).sin() + b * (w * n).cos();
        fit += f * f;
        resid += (s - f - c) * (s - f - c);
    }
    // a·sin(wn) + b·cos(wn) = A·sin(w(n - d)) with A = hypot(a, b), w·d = -atan2(b, a).
    let fitted_amp = a.hypot(b);
    let mut delay = -b.atan2(a) / w;
    let period = 2.0 * PI / w;
    while delay - lat > period / 2.0 {
        delay -= period;
    }
    while delay - lat < -period / 2.0 {
        delay += period;
    }
    Quality {
        snr_db,
        thd_n_db: 10.0 * (fit / resid).log10(),
        gain_db: 20.0 * (fitted_amp / peak).log10(),
        delay_error_frames: delay - lat,
    }
}

/// Prints the figures compared against soxr in `benches/README.md`
/// (`cargo test -p daily-media --lib resampler_quality -- --nocapture`).
#[test]
fn resampler_quality_on_sines() {
    // THD+N is at the 16-bit floor (input and output are i16) for all of these.
    for (a, b, f) in [
        (16_000, 48_000, 1_000.0),
        (16_000, 48_000, 6_000.0),
        (48_000, 16_000, 1_000.0),
        (24_000, 48_000, 1_000.0),
        (44_100, 48_000, 1_000.0),
        (48_000, 44_100, 1_000.0),
        (44_100, 16_000, 1_000.0),
    ] {
        let q = quality(a, b, f, 0.5);
        println!(
            "resampler {a} -> {b} Hz, {f} Hz sine at 0.5 FS: SNR vs analytic {:.1} dB, \
             THD+N {:.1} dB, gain {:+.3} dB, delay error {:+.3} frames",
            q.snr_db, q.thd_n_db, q.gain_db, q.delay_error_frames
        );
        assert!(
            q.thd_n_db > 85.0,
            "{a}->{b} {f} Hz: THD+N {} dB",
            q.thd_n_db
        );
        assert!(
            q.gain_db.abs() < 0.2,
            "{a}->{b} {f} Hz: gain {} dB",
            q.gain_db
        );
        assert!(q.delay_error_frames.abs() < 1.0, "{a}->{b} {f} Hz: delay");
    }
}

#[test]
fn sine_16k_to_48k() {
    check_sine_kept(16_000, 48_000);
}

#[test]
fn sine_48k_to_16k() {
    check_sine_kept(48_000, 16_000);
}

#[test]
fn sine_24k_to_48k() {
    check_sine_kept(24_000, 48_000);
}

#[test]
fn sine_44k1_to_48k() {
    check_sine_kept(44_100, 48_000);
}

#[test]
fn sine_48k_to_44k1() {
    check_sine_kept(48_000, 44_100);
}

#[test]
fn sine_8k_to_48k() {
    check_sine_kept(8_000, 48_000);
}

#[test]
fn sine_sinc_fallback_pairs() {
    // gcd 100 Hz: the FFT resampler would need whole 10 ms blocks; the sinc path is used.
    for (a, b) in [
        (44_100, 16_000),
        (16_000, 44_100),
        (44_100, 32_000),
        (8_000, 44_100),
    ] {
        let rs = Resampler::new(a, 1, b, 1).unwrap();
        assert!(matches!(rs.backend, Backend::Sinc(_)), "{a}->{b}");
        check_sine_kept(a, b);
    }
}

#[test]
fn exact_frame_counts_many_chunks() {
    let rates = [8_000, 16_000, 24_000, 32_000, 44_100, 48_000, 12_300];
    for &a in &rates {
        for &b in &rates {
            let mut rs = Resampler::new(a, 1, b, 1).unwrap();
            let input = vec![1000i16; rs.input_frames()];
            let mut out = vec![0i16; rs.output_frames()];
            for _ in 0..200 {
                rs.process(&input, &mut out).unwrap();
            }
            // A constant input must come out as the same constant once settled (checks
            // that the FIFO of the sinc path never under- or overflows into gaps).
            for &s in &out {
                assert!((i32::from(s) - 1000).abs() <= 20, "{a}->{b}: {s}");
            }
        }
    }
}

#[test]
fn impulse_lands_at_reported_latency() {
    for (a, b) in [
        (16_000, 48_000),
        (48_000, 16_000),
        (44_100, 48_000),
        (44_100, 16_000),
        (8_000, 48_000),
    ] {
        let mut rs = Resampler::new(a, 1, b, 1).unwrap();
        let n_in = rs.input_frames();
        let n_out = rs.output_frames();
        let mut input = vec![0i16; n_in * 10];
        input[n_in * 2] = 30_000; // impulse at the start of chunk 2
        let mut out = vec![0i16; n_out * 10];
        for (i, o) in input.chunks_exact(n_in).zip(out.chunks_exact_mut(n_out)) {
            rs.process(i, o).unwrap();
        }
        let peak = out
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.unsigned_abs())
            .unwrap()
            .0;
        let expected = n_out * 2 + rs.latency_frames();
        assert!(
            peak.abs_diff(expected) <= 1,
            "{a}->{b}: peak at {peak}, expected {expected}"
        );
    }
}

#[test]
fn wrong_lengths_are_errors() {
    let mut rs = Resampler::new(16_000, 1, 48_000, 2).unwrap();
    let mut out = vec![0i16; 960];
    assert!(matches!(
        rs.process(&[0; 159], &mut out),
        Err(MediaError::BufferSize {
            expected: 160,
            actual: 159,
            ..
        })
    ));
    assert!(matches!(
        rs.process(&[0; 160], &mut out[..480]),
        Err(MediaError::BufferSize {
            expected: 960,
            actual: 480,
            ..
        })
    ));
    assert!(rs.process(&[0; 160], &mut out).is_ok());
    assert!(Resampler::new(22_050, 1, 48_000, 1).is_err());
    assert!(Resampler::new(16_000, 3, 48_000, 1).is_err());
    assert!(Resampler::new(16_000, 1, 48_000, 0).is_err());
}

#[test]
fn same_rate_copies_and_mixes() {
    let mut rs = Resampler::new(48_000, 2, 48_000, 1).unwrap();
    assert_eq!(rs.latency_frames(), 0);
    let mut input = vec![0i16; 960];
    for (i, f) in input.chunks_exact_mut(2).enumerate() {
        f[0] = i as i16;
        f[1] = -(i as i16) + 100;
    }
    let mut out = vec![0i16; 480];
    rs.process(&input, &mut out).unwrap();
    assert!(out.iter().all(|&s| s == 50));

    let mut up = Resampler::new(48_000, 1, 48_000, 2).unwrap();
    let mono: Vec<i16> = (0..480).map(|i| i as i16).collect();
    let mut st = vec![0i16; 960];
    up.process(&mono, &mut st).unwrap();
    for (i, f) in st.chunks_exact(2).enumerate() {
        assert_eq!(f, [i as i16, i as i16]);
    }

    let mut same = Resampler::new(16_000, 2, 16_000, 2).unwrap();
    let x: Vec<i16> = (0..320).map(|i| i as i16).collect();
    let mut y = vec![0i16; 320];
    same.process(&x, &mut y).unwrap();
    assert_eq!(x, y);
}

#[test]
fn channel_conversion_while_resampling() {
    // Mono 16 kHz -> stereo 48 kHz: both channels carry the sine.
    let mut up = Resampler::new(16_000, 1, 48_000, 2).unwrap();
    let out = run_sine(&mut up, 16_000, 1, 440.0, 0.5, 0.5);
    assert_eq!(out.len(), 48_000);
    let (l, r) = split_stereo(&out);
    assert_eq!(l, r);
    let f = estimate_frequency(&l[1000..], 48_000);
    assert!((f - 440.0).abs() < 1.0, "{f}");

    // Stereo 48 kHz with opposite-phase content in one channel only -> mono 16 kHz: the
    // average of (s, 0) is s/2.
    let mut down = Resampler::new(48_000, 2, 16_000, 1).unwrap();
    let mono_in = sine(48_000, 1, 440.0, 0.8, 48_000 / 2);
    let stereo_in: Vec<i16> = mono_in.iter().flat_map(|&s| [s, 0]).collect();
    let mut out = vec![0i16; 8000];
    for (i, o) in stereo_in.chunks_exact(960).zip(out.chunks_exact_mut(160)) {
        down.process(i, o).unwrap();
    }
    let a = rms(&out[800..]) * 2f64.sqrt() / 32768.0;
    assert!((a - 0.4).abs() < 0.01, "{a}");
}

#[test]
fn reset_forgets_history() {
    let mut rs = Resampler::new(16_000, 1, 48_000, 1).unwrap();
    let loud = vec![20_000i16; 160];
    let mut out = vec![0i16; 480];
    for _ in 0..5 {
        rs.process(&loud, &mut out).unwrap();
    }
    rs.reset();
    rs.process(&[0; 160], &mut out).unwrap();
    assert!(out.iter().all(|&s| s == 0));
    let mut sinc = Resampler::new(44_100, 1, 16_000, 1).unwrap();
    let loud = vec![20_000i16; 441];
    let mut out = vec![0i16; 160];
    for _ in 0..5 {
        sinc.process(&loud, &mut out).unwrap();
    }
    sinc.reset();
    sinc.process(&[0; 441], &mut out).unwrap();
    assert!(out.iter().all(|&s| s == 0));
}
