//! Voice activity detection with the semantics of daily-python's `NativeVad`: see [`Vad`].

use crate::{MediaError, Resampler, check_channels, frames_per_10ms};
use earshot::Detector;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// earshot's sample rate.
const MODEL_RATE: u32 = 16_000;
/// earshot's frame: 16 ms at 16 kHz.
const MODEL_FRAME: usize = 256;
/// 10 ms at [`MODEL_RATE`].
const CHUNK: usize = 160;
/// Samples per ms at [`MODEL_RATE`].
const PER_MS: u64 = 16;
/// Shortest non-zero reset period: two 10 ms calls (WebRTC requires the same).
const MIN_RESET_PERIOD_MS: u32 = 20;
/// How long a fresh detector listens before its scores are used (capped at half the period):
/// after a wipe earshot needs 200-300 ms to learn that steady noise is not speech (see
/// [`Vad`]'s "`reset_period_ms`").
const WARMUP_MS: u32 = 300;
/// Band edges of the level feature, in bins of a 256-point FFT at 16 kHz (62.5 Hz each):
/// 0-0.5, 0.5-1, 1-2, 2-4 and 4-8 kHz.
const BAND_EDGES: [usize; 6] = [0, 8, 16, 32, 64, 129];
const BANDS: usize = BAND_EDGES.len() - 1;
/// Longest noise-floor window, in 16 ms frames (992 ms); shortened to fit `reset_period_ms`.
const FLOOR_FRAMES: usize = 62;
/// Lowest floor a band may have, in dBFS (a band's share of the frame's mean square, full scale
/// 1.0): after digital silence or a very quiet line, the floor is taken to be no lower than a
/// quiet room's (these recordings' rooms are at -45 to -55 dBFS), so that faint noise does not
/// look like something far above the noise.
const FLOOR_MIN_DB: f32 = -60.0;
/// Level feature = max over bands of tanh((level − floor − OFFSET) / SCALE), in -1..1.
const LEVEL_OFFSET_DB: f32 = 3.0;
const LEVEL_SCALE_DB: f32 = 10.0;
/// Weight of the level feature added to earshot's logit.
const LEVEL_WEIGHT: f32 = 0.5;
/// earshot's score is clamped to [P_MIN, 1 − P_MIN] before taking its logit.
const P_MIN: f32 = 1e-4;

/// Voice activity detector with the interface of daily-python's `NativeVad`.
///
/// # Contract
/// [`analyze`](Self::analyze) takes interleaved i16 PCM holding at least 10 ms and returns a
/// speech score (0..=1; earshot's probability, moved by a level feature, see "Level") for its
/// *first* 10 ms; higher means more likely speech. Anything after the first 10 ms is
/// ignored, as in daily-python, so callers may pass the same buffers they send. Every call is taken
/// to follow the previous one in time: the detector keeps state across calls.
///
/// # Model
/// The score comes from [earshot](https://crates.io/crates/earshot) (pure Rust, no model file):
/// log-mel features of a Hann-windowed 48 ms window feed a small convolutional front end and two
/// minimal-GRU layers, whose state carries context from frame to frame. earshot consumes
/// contiguous 16 ms (256-sample) frames of 16 kHz mono, so the input is first brought to 16 kHz
/// mono with the crate's [`Resampler`] (stereo is averaged to mono; 16 kHz input is only
/// down-mixed, never filtered).
///
/// # From 10 ms calls to 16 ms frames
/// Each call appends its 10 ms to a 16 ms buffer; whenever the buffer is full it is one earshot
/// frame, run at once (so a call runs one frame or none, 0.625 frames on average). A call returns
/// the score of the last frame completed, which ends at most 6 ms before the end of the call's
/// 10 ms (0.0 before the first frame completes). Feeding earshot the contiguous frames it was
/// trained on matters: an earlier version gave it a 16 ms window sliding by 10 ms per call, so its
/// 48 ms spectral window was three overlapping, discontinuous snippets and its recurrent state
/// advanced at the wrong rate; on the labelled set of `benches/vad_eval.py` (with no reset) that
/// scored frame ROC AUC 0.9916 clean and 0.9679 in white noise at 10 dB SNR against 0.9950 and
/// 0.9746 for contiguous frames, at 1.6× the cost.
///
/// # Level
/// earshot judges spectral shape, so in babble (other people talking) or loud broadband noise it
/// keeps saying "speech" between the nearest talker's words. A level feature adds what it does
/// not use: how far the frame stands above the noise floor. Each 16 ms frame is split by a
/// 256-point FFT (Hann window) into 5 bands (0-0.5, 0.5-1, 1-2, 2-4, 4-8 kHz); each band's level
/// in dBFS is compared with its floor, the minimum of that band's levels over the last
/// `min(992 ms, reset_period_ms)` of frames, clamped to at least -60 dBFS (after digital silence
/// the floor is not -100 dBFS, so faint noise does not look loud). The feature is
/// `max over bands of tanh((level − floor − 3 dB) / 10 dB)`, in -1..1, and the score is
/// `sigmoid(logit(p) + 0.5 × feature)` with earshot's `p` clamped to [1e-4, 1 − 1e-4].
/// The constants were chosen on one clip of `benches/vad_eval.py` (`speech_gaps_16k.wav`) and
/// checked on the other. On that set (`benches/README.md`, issue 18, default period) this moved
/// frame ROC AUC in white noise at 10 dB SNR from 0.9740 to 0.9825 and clean from 0.9941 to 0.9953;
/// babble, wind and applause moved by less than 0.012 (babble at 20 dB +0.011, wind at 10 dB
/// +0.0005). Per band was better than one broadband level on every non-babble condition of the
/// fitting clip. The floor window never reaches further back than `reset_period_ms`, so the
/// memory bound below holds for the fused score. Cost: 4,378 more instructions per 10 ms call
/// (callgrind, 16 kHz mono).
///
/// # Latency and look-back
/// The score covers audio up to 0-6 ms before the end of the call's first 10 ms at 16 kHz;
/// other rates add the resampler's delay, 2.5 ms for every supported pair (8, 24, 32 and 48 kHz
/// take the FFT path, 44.1 kHz the sinc path; see [`Resampler`]). One frame's features look back
/// 48 ms (earshot's Hann taper weighs most the middle of that span); the recurrent state reaches
/// back further, up to `reset_period_ms` (below), and so does the level feature's floor.
///
/// # `reset_period_ms`
/// The parameter mirrors WebRTC's AGC2 VAD wrapper (`agc2/vad_wrapper.h`), which resets its RNN VAD
/// periodically so that its state cannot drift. Here it bounds the model's memory: every earshot
/// state (recurrent state and spectral history) is wiped before the 16 ms frame that would take it
/// past `reset_period_ms` of audio, and the level feature's floor looks at most that far back, so
/// a score depends on at most the last `reset_period_ms` of audio (rounded down to whole
/// frames). 0 means never wipe (the floor then looks back 992 ms). Periods must be 0 or at least
/// 20 ms (as daily-python documents).
///
/// A freshly wiped earshot needs a few hundred ms to settle: it scores steady noise as speech
/// (in white noise at 10 dB SNR, non-speech frames scored 0.52-0.58 on average from 10 to 80 ms
/// after a wipe and 0.40 at 200 ms, against 0.29 with no wipe) and misses speech onsets. An
/// earlier version wiped its one detector every period and so had that blind spot every second,
/// costing AUC 0.9679 → 0.9499 in white noise at 10 dB (`benches/README.md`, issue 18). So two
/// detectors take turns: the standby one is wiped and starts listening `min(300,
/// reset_period_ms / 2)` ms before the active one would reach `reset_period_ms`, and takes over at
/// that moment, warm, while the old one is wiped. Each detector thus lives at most one period (the
/// bound above holds), and scores never come from a cold detector except at the very start (and
/// for periods under 32 ms, which leave no room to warm up). The cost is 1 + w / (period − w)
/// earshot frames per 16 ms on average, w being the warm-up: ×1.43 for 1000 ms, never over ×2.
///
/// [`analyze`](Self::analyze) allocates nothing: the detectors and the buffers are allocated in
/// [`new`](Self::new), or at the first call when the sample rate is inferred.
///
/// # Example
/// ```
/// use daily_media::Vad;
///
/// let mut vad = Vad::new(1000, 48_000, 2)?;
/// let silence = [0i16; 960]; // 10 ms of 48 kHz stereo
/// let p = vad.analyze(&silence)?;
/// assert!((0.0..=1.0).contains(&p));
/// # Ok::<(), daily_media::MediaError>(())
/// ```
pub struct Vad {
    reset_period_ms: u32,
    /// 0 until inferred from the first call.
    sample_rate: u32,
    channels: u16,
    /// `None` until the sample rate is known.
    resampler: Option<Resampler>,
    /// The active detector and the standby one; see "`reset_period_ms`".
    detectors: [Slot; 2],
    /// Index of the detector whose scores are returned.
    active: usize,
    /// 16 kHz mono samples waiting to complete a 16 ms frame: `pending[..filled]`.
    pending: [i16; MODEL_FRAME + CHUNK],
    filled: usize,
    /// Score of the last completed frame.
    score: f32,
    /// A detector's lifetime, `reset_period_ms` in 16 kHz samples (0: unbounded).
    life: u64,
    /// How long the standby detector listens before taking over, in 16 kHz samples.
    warmup: u64,
    /// Band levels above their noise floor; see "Level".
    level: Level,
    /// earshot's own score for the last frame (before the level fusion), for the tests.
    #[cfg(test)]
    model_score: f32,
}

/// The level feature: per-band levels of each 16 ms frame against a noise floor tracked as the
/// minimum of the last `span` frames' levels (see [`Vad`]'s "Level").
struct Level {
    fft: Arc<dyn RealToComplex<f32>>,
    /// Symmetric Hann window, scaled: see [`Level::new`].
    window: [f32; MODEL_FRAME],
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Band levels in dB of the last `len` frames, a ring written at `next`.
    history: [[f32; BANDS]; FLOOR_FRAMES],
    next: usize,
    len: usize,
    /// Frames the floor looks at: `min(FLOOR_FRAMES, reset_period_ms / 16 ms)`.
    span: usize,
}

impl Level {
    fn new(life: u64) -> Level {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(MODEL_FRAME);
        let span = if life == 0 {
            FLOOR_FRAMES
        } else {
            usize::try_from(life / MODEL_FRAME as u64)
                .unwrap_or(FLOOR_FRAMES)
                .clamp(1, FLOOR_FRAMES)
        };
        // Hann window, scaled (with i16 → ±1.0) so that a band's |X|² summed is its share of
        // the frame's mean square (Parseval, one-sided spectrum).
        let hann = |n: usize| {
            let x = 2.0 * std::f64::consts::PI * n as f64 / (MODEL_FRAME - 1) as f64;
            0.5 - 0.5 * x.cos()
        };
        let energy: f64 = (0..MODEL_FRAME).map(|n| hann(n) * hann(n)).sum();
        let gain = (2.0 / (MODEL_FRAME as f64 * energy)).sqrt() / 32768.0;
        let mut window = [0f32; MODEL_FRAME];
        for (n, w) in window.iter_mut().enumerate() {
            *w = (hann(n) * gain) as f32;
        }
        Level {
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            history: [[0.0; BANDS]; FLOOR_FRAMES],
            next: 0,
            len: 0,
            span,
        }
    }

    fn reset(&mut self) {
        self.next = 0;
        self.len = 0;
    }

    /// The level feature of `frame` (256 samples), in -1..1; records the frame in the history.
    fn update(&mut self, frame: &[i16]) -> f32 {
        for ((x, &s), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
            *x = f32::from(s) * w;
        }
        // Cannot fail: the buffers were made by this plan.
        let _ =
            self.fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch);
        let mut db = [0f32; BANDS];
        for (b, d) in db.iter_mut().enumerate() {
            let power: f32 = self.spectrum[BAND_EDGES[b]..BAND_EDGES[b + 1]]
                .iter()
                .map(|c| c.norm_sqr())
                .sum();
            *d = 10.0 * (power + 1e-10).log10();
        }
        self.history[self.next] = db;
        self.next = (self.next + 1) % self.span;
        self.len = (self.len + 1).min(self.span);
        let mut floor = [f32::INFINITY; BANDS];
        for h in &self.history[..self.len] {
            for (f, &v) in floor.iter_mut().zip(h) {
                *f = f.min(v);
            }
        }
        let mut feature = -1.0f32;
        for (&d, &f) in db.iter().zip(&floor) {
            let above = d - f.max(FLOOR_MIN_DB);
            feature = feature.max(((above - LEVEL_OFFSET_DB) / LEVEL_SCALE_DB).tanh());
        }
        feature
    }
}

/// One earshot detector and how much audio its state holds.
struct Slot {
    model: Box<Detector>,
    /// 16 kHz samples heard since the last wipe.
    heard: u64,
    /// Whether it is being fed (the active one always is; the standby one while warming up).
    running: bool,
}

impl Slot {
    fn new(running: bool) -> Slot {
        Slot {
            model: Detector::default_boxed(),
            heard: 0,
            running,
        }
    }

    fn wipe(&mut self, running: bool) {
        self.model.reset();
        self.heard = 0;
        self.running = running;
    }

    fn predict(&mut self, frame: &[i16]) -> f32 {
        self.heard += MODEL_FRAME as u64;
        self.model.predict_i16(frame)
    }
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("reset_period_ms", &self.reset_period_ms)
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("active", &self.active)
            .field("heard", &[self.detectors[0].heard, self.detectors[1].heard])
            .finish_non_exhaustive()
    }
}

impl Vad {
    /// A detector for `channels` (1 or 2) interleaved channels at `sample_rate` Hz (a multiple
    /// of 100 in 8000..=48000, see [`frames_per_10ms`]). A `sample_rate` of 0 means "infer it
    /// from the first call to [`analyze`](Self::analyze)", whose input is then taken to be
    /// exactly 10 ms: `len / channels × 100` Hz. `reset_period_ms` is 0 (never reset) or at
    /// least 20.
    pub fn new(reset_period_ms: u32, sample_rate: u32, channels: u16) -> Result<Vad, MediaError> {
        check_channels(channels)?;
        if reset_period_ms != 0 && reset_period_ms < MIN_RESET_PERIOD_MS {
            return Err(MediaError::InvalidConfig {
                reason: "VAD reset_period_ms must be 0 (never) or at least 20",
            });
        }
        let resampler = if sample_rate == 0 {
            None
        } else {
            Some(Resampler::new(sample_rate, channels, MODEL_RATE, 1)?)
        };
        Ok(Vad {
            reset_period_ms,
            sample_rate,
            channels,
            resampler,
            detectors: [Slot::new(true), Slot::new(false)],
            active: 0,
            pending: [0; MODEL_FRAME + CHUNK],
            filled: 0,
            score: 0.0,
            life: u64::from(reset_period_ms) * PER_MS,
            warmup: u64::from(WARMUP_MS.min(reset_period_ms / 2)) * PER_MS,
            level: Level::new(u64::from(reset_period_ms) * PER_MS),
            #[cfg(test)]
            model_score: 0.0,
        })
    }

    /// The period after which the model state is reset, in ms (0: never).
    pub fn reset_period_ms(&self) -> u32 {
        self.reset_period_ms
    }

    /// The input sample rate in Hz; 0 until inferred from the first call if constructed with 0.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of interleaved input channels.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Speech probability (0..=1) of the first 10 ms of `pcm` (interleaved i16, at least 10 ms
    /// long; the rest is ignored).
    ///
    /// Errors: [`MediaError::BufferSize`] if `pcm` is shorter than 10 ms (or, when the rate is
    /// being inferred, not a whole number of frames), [`MediaError::UnsupportedSampleRate`] if
    /// the inferred rate is not one this crate handles. A failed inference leaves the rate
    /// unknown, so a later call can still infer it.
    pub fn analyze(&mut self, pcm: &[i16]) -> Result<f32, MediaError> {
        let channels = usize::from(self.channels);
        let resampler = match &mut self.resampler {
            Some(rs) => rs,
            None => {
                if !pcm.len().is_multiple_of(channels) {
                    return Err(MediaError::BufferSize {
                        what: "VAD input for sample-rate inference (whole frames)",
                        expected: pcm.len() - pcm.len() % channels,
                        actual: pcm.len(),
                    });
                }
                let rate = u32::try_from(pcm.len() / channels)
                    .ok()
                    .and_then(|frames| frames.checked_mul(100))
                    .unwrap_or(u32::MAX);
                frames_per_10ms(rate)?;
                let rs = Resampler::new(rate, self.channels, MODEL_RATE, 1)?;
                self.sample_rate = rate;
                self.resampler.insert(rs)
            }
        };
        let need = resampler.input_frames() * channels;
        let Some(chunk) = pcm.get(..need) else {
            return Err(MediaError::BufferSize {
                what: "VAD input (at least 10 ms)",
                expected: need,
                actual: pcm.len(),
            });
        };
        resampler.process(chunk, &mut self.pending[self.filled..self.filled + CHUNK])?;
        self.filled += CHUNK;
        if self.filled >= MODEL_FRAME {
            let mut frame = [0i16; MODEL_FRAME];
            frame.copy_from_slice(&self.pending[..MODEL_FRAME]);
            self.pending.copy_within(MODEL_FRAME..self.filled, 0);
            self.filled -= MODEL_FRAME;
            let p = self.run_frame(&frame);
            #[cfg(test)]
            {
                self.model_score = p;
            }
            let level = self.level.update(&frame);
            let p = p.clamp(P_MIN, 1.0 - P_MIN);
            let z = (p / (1.0 - p)).ln() + LEVEL_WEIGHT * level;
            self.score = 1.0 / (1.0 + (-z).exp());
        }
        Ok(self.score.clamp(0.0, 1.0))
    }

    /// Runs one 16 ms frame through the active detector (and the standby one while it warms up),
    /// first handing over or starting the standby as "`reset_period_ms`" describes.
    fn run_frame(&mut self, frame: &[i16]) -> f32 {
        let next = MODEL_FRAME as u64;
        if self.life != 0 {
            if self.detectors[self.active].heard + next > self.life {
                // The active detector would outlive the period: wipe it, the warm standby answers.
                self.detectors[self.active].wipe(false);
                self.active ^= 1;
                let now = &mut self.detectors[self.active];
                if !now.running || now.heard + next > self.life {
                    // Periods under two frames leave no room to warm up.
                    now.wipe(true);
                }
            }
            let heard = self.detectors[self.active].heard;
            let standby = &mut self.detectors[self.active ^ 1];
            if !standby.running && heard + next + self.warmup > self.life {
                standby.wipe(true);
            }
            if standby.running {
                standby.predict(frame);
            }
        }
        self.detectors[self.active].predict(frame)
    }

    /// Forgets everything heard so far (model state, sample history, resampler), as if newly
    /// constructed; an inferred sample rate is kept.
    pub fn reset(&mut self) {
        self.detectors[0].wipe(true);
        self.detectors[1].wipe(false);
        self.active = 0;
        self.filled = 0;
        self.score = 0.0;
        self.level.reset();
        if let Some(rs) = &mut self.resampler {
            rs.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn all_rates_and_channel_counts() {
        for rate in [8_000, 16_000, 24_000, 32_000, 44_100, 48_000] {
            for channels in [1u16, 2] {
                let mut vad = Vad::new(1000, rate, channels).unwrap();
                assert_eq!(
                    (vad.sample_rate(), vad.channels(), vad.reset_period_ms()),
                    (rate, channels, 1000)
                );
                let n = frames_per_10ms(rate).unwrap();
                let pcm = sine(rate, usize::from(channels), 440.0, 0.3, n * 50);
                for chunk in pcm.chunks_exact(n * usize::from(channels)) {
                    let p = vad.analyze(chunk).unwrap();
                    assert!((0.0..=1.0).contains(&p), "{rate} Hz x{channels}: {p}");
                }
            }
        }
    }

    #[test]
    fn invalid_configurations_are_errors() {
        for rate in [7_900, 11_025, 22_050, 48_100, 96_000] {
            assert_eq!(
                Vad::new(1000, rate, 1).unwrap_err(),
                MediaError::UnsupportedSampleRate { rate }
            );
        }
        for channels in [0, 3, 8] {
            assert_eq!(
                Vad::new(1000, 16_000, channels).unwrap_err(),
                MediaError::UnsupportedChannels { channels }
            );
            assert!(Vad::new(1000, 0, channels).is_err());
        }
        for period in [1, 10, 19] {
            assert!(matches!(
                Vad::new(period, 16_000, 1),
                Err(MediaError::InvalidConfig { .. })
            ));
        }
        for period in [0, 20, 25, 1000, u32::MAX] {
            assert!(Vad::new(period, 16_000, 1).is_ok(), "{period}");
        }
    }

    #[test]
    fn too_short_input_is_an_error() {
        let mut vad = Vad::new(1000, 48_000, 2).unwrap();
        assert_eq!(
            vad.analyze(&[0; 959]),
            Err(MediaError::BufferSize {
                what: "VAD input (at least 10 ms)",
                expected: 960,
                actual: 959,
            })
        );
        assert!(vad.analyze(&[]).is_err());
        assert!(vad.analyze(&[0; 960]).is_ok());
        assert!(vad.analyze(&[0; 2000]).is_ok());
    }

    #[test]
    fn sample_rate_is_inferred_from_the_first_call() {
        for (channels, len, rate) in [
            (1u16, 160usize, 16_000u32),
            (1, 480, 48_000),
            (2, 960, 48_000),
            (2, 882, 44_100),
            (1, 80, 8_000),
        ] {
            let mut vad = Vad::new(0, 0, channels).unwrap();
            assert_eq!(vad.sample_rate(), 0);
            vad.analyze(&vec![100; len]).unwrap();
            assert_eq!(vad.sample_rate(), rate);
            // From now on the rate is fixed: longer chunks are fine, shorter ones are not.
            vad.analyze(&vec![100; len * 2]).unwrap();
            assert!(matches!(
                vad.analyze(&vec![100; len - 1]),
                Err(MediaError::BufferSize { .. })
            ));
        }
    }

    #[test]
    fn failed_inference_is_an_error_and_can_be_retried() {
        let mut vad = Vad::new(1000, 0, 2).unwrap();
        // 0 Hz, 200 kHz, half a frame, 7.9 kHz: all refused, none panics.
        assert_eq!(
            vad.analyze(&[]),
            Err(MediaError::UnsupportedSampleRate { rate: 0 })
        );
        assert_eq!(
            vad.analyze(&[0; 4000]),
            Err(MediaError::UnsupportedSampleRate { rate: 200_000 })
        );
        assert_eq!(
            vad.analyze(&[0; 441]),
            Err(MediaError::BufferSize {
                what: "VAD input for sample-rate inference (whole frames)",
                expected: 440,
                actual: 441,
            })
        );
        assert_eq!(
            vad.analyze(&[0; 158]),
            Err(MediaError::UnsupportedSampleRate { rate: 7_900 })
        );
        assert_eq!(vad.sample_rate(), 0);
        vad.analyze(&[0; 640]).unwrap();
        assert_eq!(vad.sample_rate(), 32_000);
    }

    #[test]
    fn only_the_first_10ms_count() {
        let speech = speechlike(16_000, 0.4, 16_000);
        let mut a = Vad::new(0, 16_000, 1).unwrap();
        let mut b = Vad::new(0, 16_000, 1).unwrap();
        let mut tail = vec![0i16; 480];
        for (i, chunk) in speech.chunks_exact(CHUNK).enumerate() {
            tail[..CHUNK].copy_from_slice(chunk);
            // b sees a different tail after the same first 10 ms.
            tail[160..].fill(if i % 2 == 0 { 20_000 } else { -7 });
            assert_eq!(a.analyze(chunk).unwrap(), b.analyze(&tail).unwrap());
        }
    }

    /// Scores of every 10 ms chunk of `pcm` (16 kHz mono).
    fn scores(vad: &mut Vad, pcm: &[i16]) -> Vec<f32> {
        pcm.chunks_exact(CHUNK)
            .map(|c| vad.analyze(c).unwrap())
            .collect()
    }

    #[test]
    fn reset_period_hands_over_to_a_warm_detector() {
        // With 1000 ms a detector lives 62 frames (992 ms); the standby starts 19 frames (304 ms)
        // before the hand-over. So frames 0..62 are scored by a detector started at frame 0, and
        // for n >= 1 frames 62 + 43(n-1) .. 62 + 43n by one wiped and started at frame 43n.
        let speech = speechlike(16_000, 0.4, 16_000 * 3);
        let frames: Vec<&[i16]> = speech.chunks_exact(MODEL_FRAME).collect();
        let mut expected = vec![0.0f32; frames.len()];
        let mut start = 0;
        let mut end = 62;
        while start < frames.len() {
            let mut d = Detector::default_boxed();
            for (f, frame) in frames
                .iter()
                .enumerate()
                .take(end.min(frames.len()))
                .skip(start)
            {
                let p = d.predict_i16(frame);
                if start == 0 || f >= start + 19 {
                    expected[f] = p; // answering, not warming up
                }
            }
            start = if start == 0 { 43 } else { start + 43 };
            end = start + 62;
        }
        // earshot's own scores, before the level fusion.
        let mut vad = Vad::new(1000, 16_000, 1).unwrap();
        let model: Vec<f32> = speech
            .chunks_exact(CHUNK)
            .map(|c| {
                vad.analyze(c).unwrap();
                vad.model_score
            })
            .collect();
        for (k, &p) in model.iter().enumerate() {
            // Call k returns the score of the last frame completed by its end (0 before any).
            let done = CHUNK * (k + 1) / MODEL_FRAME;
            let want = if done == 0 { 0.0 } else { expected[done - 1] };
            assert_eq!(p, want, "call {k}");
        }

        // Until the first hand-over the scores are those of a detector that is never reset.
        let got = scores(&mut Vad::new(1000, 16_000, 1).unwrap(), &speech);
        let never = scores(&mut Vad::new(0, 16_000, 1).unwrap(), &speech);
        assert_eq!(got[..99], never[..99]);
        assert_ne!(got, never);
    }

    #[test]
    fn reset_period_bounds_the_memory() {
        // Two recordings that differ only in their first 500 ms: with a period of P ms, scores
        // from 500 + P + 16 ms (a frame of rounding) on must be identical, whatever the period.
        let a = speechlike(16_000, 0.4, 16_000 * 4);
        let mut b = a.clone();
        b[..8_000].copy_from_slice(&sine(16_000, 1, 700.0, 0.5, 8_000));
        for period in [20, 50, 130, 700, 1000] {
            let sa = scores(&mut Vad::new(period, 16_000, 1).unwrap(), &a);
            let sb = scores(&mut Vad::new(period, 16_000, 1).unwrap(), &b);
            let from = (500 + period as usize + 16).div_ceil(10);
            assert_ne!(sa[..50], sb[..50], "{period}");
            assert_eq!(sa[from..], sb[from..], "{period}");
        }

        // reset() forgets everything.
        let mut v = Vad::new(0, 16_000, 1).unwrap();
        let first = scores(&mut v, &a[..16_000]);
        v.reset();
        assert_eq!(first, scores(&mut v, &a[..16_000]));
    }

    /// Uniform white noise of peak `amp` (full scale 1.0), `n` samples, fixed seed.
    fn noise(amp: f64, n: usize) -> Vec<i16> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let u = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
                ((u * 2.0 - 1.0) * amp * 32767.0) as i16
            })
            .collect()
    }

    /// Level features of every 16 ms frame of `pcm`.
    fn levels(level: &mut Level, pcm: &[i16]) -> Vec<f32> {
        pcm.chunks_exact(MODEL_FRAME)
            .map(|f| level.update(f))
            .collect()
    }

    #[test]
    fn level_feature_tracks_the_noise_floor() {
        // Steady noise stays near its floor (the feature is not -1 there: the loudest band is
        // 5-10 dB above its own 1 s minimum, as band levels fluctuate); a tone 20 dB above it
        // stands out; once the quiet part is older than the window, louder noise is the floor.
        let mut level = Level::new(0);
        let steady = levels(&mut level, &noise(0.03, 32_000));
        let settled = &steady[FLOOR_FRAMES..];
        let mean = settled.iter().sum::<f32>() / settled.len() as f32;
        assert!(
            mean < 0.6 && settled.iter().all(|&f| f < 0.85),
            "{settled:?}"
        );
        let mut loud = noise(0.03, 4_096);
        for (s, t) in loud.iter_mut().zip(sine(16_000, 1, 1_000.0, 0.3, 4_096)) {
            *s = s.saturating_add(t);
        }
        let tone = levels(&mut level, &loud);
        assert!(tone.iter().all(|&f| f > 0.95), "{tone:?}");
        // A window shortened by the reset period: 100 ms = 6 frames of memory.
        let mut short = Level::new(100 * PER_MS);
        assert_eq!(short.span, 6);
        levels(&mut short, &noise(0.01, 16_000));
        let after = levels(&mut short, &noise(0.3, 256 * 8));
        // The window includes the current frame: from the 6th loud frame on, no quiet one is in it.
        assert!(after[..5].iter().all(|&f| f > 0.9), "{after:?}");
        assert!(after[5..].iter().all(|&f| f < 0.85), "{after:?}");
    }

    #[test]
    fn level_floor_is_clamped_after_digital_silence() {
        // Quiet noise (-60 dBFS) after digital silence must not look like speech: without the
        // clamp its bands would be 30-40 dB above the silence's floor of -100 dBFS.
        let mut level = Level::new(0);
        let mut pcm = vec![0i16; 16_000];
        pcm.extend(noise(0.0017, 2_560));
        let f = levels(&mut level, &pcm);
        assert!(
            f[..62].iter().all(|&x| x == f[0] && x < -0.2),
            "{:?}",
            &f[..3]
        );
        assert!(f[62..].iter().all(|&x| x < 0.5), "{:?}", &f[62..]);
    }

    #[test]
    fn stereo_is_down_mixed() {
        // The same signal in both channels scores as the mono signal.
        let speech = speechlike(48_000, 0.4, 48_000);
        let stereo: Vec<i16> = speech.iter().flat_map(|&s| [s, s]).collect();
        let mut mono = Vad::new(0, 48_000, 1).unwrap();
        let mut st = Vad::new(0, 48_000, 2).unwrap();
        for (m, s) in speech.chunks_exact(480).zip(stereo.chunks_exact(960)) {
            assert_eq!(mono.analyze(m).unwrap(), st.analyze(s).unwrap());
        }
    }
}
