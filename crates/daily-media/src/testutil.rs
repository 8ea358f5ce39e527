//! Signal helpers shared by the unit tests.

/// `frames` frames of a sine of `freq` Hz and peak `amp` (fraction of full scale), the same in
/// every channel.
pub fn sine(rate: u32, channels: usize, freq: f64, amp: f64, frames: usize) -> Vec<i16> {
    (0..frames)
        .flat_map(|n| {
            let s = (amp
                * 32767.0
                * (2.0 * std::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin())
            .round() as i16;
            std::iter::repeat_n(s, channels)
        })
        .collect()
}

pub fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Pearson correlation of two equally long signals.
pub fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64;
    let mb = b.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The lag (0..=max_lag) at which `delayed[lag..]` best matches `reference`, and the correlation
/// there.
pub fn best_lag(reference: &[i16], delayed: &[i16], max_lag: usize) -> (usize, f64) {
    (0..=max_lag)
        .map(|lag| (lag, correlation(&delayed[lag..], reference)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

/// Frequency of a (mono) sine from its zero crossings, interpolated between samples.
pub fn estimate_frequency(x: &[i16], rate: u32) -> f64 {
    let mut first = None;
    let mut last = 0.0;
    let mut count = 0usize;
    for i in 1..x.len() {
        let (a, b) = (f64::from(x[i - 1]), f64::from(x[i]));
        if a < 0.0 && b >= 0.0 {
            let t = (i - 1) as f64 + (-a) / (b - a);
            if first.is_none() {
                first = Some(t);
            } else {
                count += 1;
            }
            last = t;
        }
    }
    let first = first.expect("no zero crossing");
    count as f64 * f64::from(rate) / (last - first)
}

pub fn split_stereo(x: &[i16]) -> (Vec<i16>, Vec<i16>) {
    (
        x.iter().step_by(2).copied().collect(),
        x.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// A linear chirp from `f0` to `f1` Hz over `frames` frames, peak `amp`: unlike a sine it
/// matches itself at only one lag, so delays can be measured by cross-correlation.
pub fn chirp(rate: u32, f0: f64, f1: f64, amp: f64, frames: usize) -> Vec<i16> {
    let dur = frames as f64 / f64::from(rate);
    (0..frames)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let phase = 2.0 * std::f64::consts::PI * (f0 * t + (f1 - f0) * t * t / (2.0 * dur));
            (amp * 32767.0 * phase.sin()).round() as i16
        })
        .collect()
}

/// A crude voiced-speech stand-in: ten harmonics of a fundamental gliding between 120 and
/// 220 Hz, in 3 Hz "syllables" separated by silence. Like speech (and unlike a pure tone or a
/// chirp, on which libopus' long-term prediction can take a second to recover from a loss) it
/// has pauses, and like a chirp it matches itself at only one lag.
pub fn speechlike(rate: u32, amp: f64, frames: usize) -> Vec<i16> {
    use std::f64::consts::PI;
    let mut phase = 0.0f64;
    (0..frames)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let f0 = 170.0 + 50.0 * (2.0 * PI * 0.7 * t).sin();
            phase += 2.0 * PI * f0 / f64::from(rate);
            let env = (2.0 * PI * 3.0 * t).sin().max(0.0).sqrt();
            let v: f64 = (1..=10).map(|k| (k as f64 * phase).sin() / k as f64).sum();
            (amp * 32767.0 * env * v / 1.6).round() as i16
        })
        .collect()
}
