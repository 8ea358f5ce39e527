//! Voice activity detection with the semantics of daily-python's `NativeVad`: see [`Vad`].

use crate::{MediaError, Resampler, check_channels, frames_per_10ms};
use earshot::Detector;

/// earshot's sample rate.
const MODEL_RATE: u32 = 16_000;
/// earshot's frame: 16 ms at 16 kHz.
const MODEL_FRAME: usize = 256;
/// 10 ms at [`MODEL_RATE`].
const CHUNK: usize = 160;
/// Shortest non-zero reset period: two 10 ms calls (WebRTC requires the same).
const MIN_RESET_PERIOD_MS: u32 = 20;

/// Voice activity detector with the interface of daily-python's `NativeVad`.
///
/// # Contract
/// [`analyze`](Self::analyze) takes interleaved i16 PCM holding at least 10 ms and returns the
/// probability (0..=1) that its *first* 10 ms contain speech; anything after the first 10 ms is
/// ignored, as in daily-python, so callers may pass the same buffers they send. Every call is taken
/// to follow the previous one in time: the detector keeps state across calls.
///
/// # Model
/// The score comes from [earshot](https://crates.io/crates/earshot) (pure Rust, no model file):
/// log-mel features of a Hann-windowed 48 ms window feed a small convolutional front end and two
/// minimal-GRU layers, whose state carries context from call to call. earshot consumes 16 ms
/// (256-sample) frames of 16 kHz mono, so the input is first brought to 16 kHz mono with the
/// crate's [`Resampler`] (stereo is averaged to mono; 16 kHz input is only down-mixed, never
/// filtered).
///
/// # From 10 ms calls to 16 ms frames
/// Each call appends its 10 ms (160 samples at 16 kHz) to a 16 ms history and gives earshot that
/// history, i.e. a 16 ms window that slides by 10 ms per call. So every call returns a fresh score
/// computed on audio that ends exactly at the end of the analyzed 10 ms, at the cost of one earshot
/// frame per call. earshot was trained on contiguous 16 ms hops; with a 10 ms hop its internal 48
/// ms spectral window is made of its last three (overlapping) frames and spans the last 36 ms, and
/// its recurrent state advances every 10 ms instead of every 16 ms. On the real recording in
/// `data/speech_gaps_16k.wav` (see `tests/vad.rs` for the labels and the noise) this scores as well
/// as the alternatives: frame ROC AUC 0.968 clean and 0.964 with white noise at 10 dB SNR (no
/// reset), against 0.965 and 0.957 for feeding earshot contiguous 16 ms frames and repeating the
/// last score until the next frame completes, and 0.970 and 0.959 for two detectors staggered by 8
/// ms (whose scores are up to 6 ms stale and cost 1.25 frames per call).
///
/// # Latency and look-back
/// The score for a call covers audio up to the end of its (first) 10 ms: no look-ahead and no
/// latency at 16 kHz. Other rates add the resampler's delay, 2.5 ms (40 frames at 16 kHz) for every
/// supported pair (8, 24, 32 and 48 kHz take the FFT path, 44.1 kHz the sinc path; see
/// [`Resampler`]), so the score then covers audio up to 2.5 ms before the end of the first 10 ms.
/// The features of one call look back 36 ms (earshot's Hann taper weighs most the middle of that
/// span, 10-26 ms back); the recurrent state reaches back further, up to the last reset.
///
/// # `reset_period_ms`
/// The parameter mirrors WebRTC's AGC2 VAD wrapper (`agc2/vad_wrapper.h`), which resets its RNN VAD
/// periodically so that its state cannot drift. Here, when `reset_period_ms` is not 0, the earshot
/// state (recurrent state and spectral history) is cleared before a call once `reset_period_ms` of
/// audio has been analyzed since the last reset, counting 10 ms per call: with 1000 ms, calls 0-99
/// share one state, call 100 starts from a fresh one, and so on. The 16 ms sample history and the
/// resampler are not reset (they hold audio, not model state). After a reset the model needs a few
/// tens of ms to settle, which costs accuracy in noise: on the recording above, a 1000 ms period
/// lowers the AUC from 0.964 to 0.943 at 10 dB SNR (0.968 to 0.966 clean). 0 means never reset, the
/// most accurate choice for earshot. Periods must be 0 or at least 20 ms (as daily-python
/// documents); a period that is not a multiple of 10 ms is rounded up to one.
///
/// [`analyze`](Self::analyze) allocates nothing: the detector and the buffers are allocated in
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
    detector: Box<Detector>,
    /// The last 16 ms at 16 kHz mono; each call shifts in 10 ms at the end.
    history: [i16; MODEL_FRAME],
    /// Audio analyzed since the last model reset.
    since_reset_ms: u32,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("reset_period_ms", &self.reset_period_ms)
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("since_reset_ms", &self.since_reset_ms)
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
            detector: Detector::default_boxed(),
            history: [0; MODEL_FRAME],
            since_reset_ms: 0,
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
        self.history.copy_within(CHUNK.., 0);
        resampler.process(chunk, &mut self.history[MODEL_FRAME - CHUNK..])?;

        if self.reset_period_ms != 0 && self.since_reset_ms >= self.reset_period_ms {
            self.detector.reset();
            self.since_reset_ms = 0;
        }
        let p = self.detector.predict_i16(&self.history);
        if self.reset_period_ms != 0 {
            self.since_reset_ms = self.since_reset_ms.saturating_add(10);
        }
        Ok(p.clamp(0.0, 1.0))
    }

    /// Forgets everything heard so far (model state, sample history, resampler), as if newly
    /// constructed; an inferred sample rate is kept.
    pub fn reset(&mut self) {
        self.detector.reset();
        self.history = [0; MODEL_FRAME];
        self.since_reset_ms = 0;
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
        for (i, chunk) in speech.chunks_exact(160).enumerate() {
            tail[..160].copy_from_slice(chunk);
            // b sees a different tail after the same first 10 ms.
            tail[160..].fill(if i % 2 == 0 { 20_000 } else { -7 });
            assert_eq!(a.analyze(chunk).unwrap(), b.analyze(&tail).unwrap());
        }
    }

    #[test]
    fn reset_period_restarts_the_model() {
        let speech = speechlike(16_000, 0.4, 16_000);
        // With a 50 ms period, call 5 starts from a fresh model whose only audio is the 16 ms
        // history: it must score exactly as a new detector given the same history would.
        let mut periodic = Vad::new(50, 16_000, 1).unwrap();
        let mut never = Vad::new(0, 16_000, 1).unwrap();
        let chunks: Vec<&[i16]> = speech.chunks_exact(160).collect();
        for c in &chunks[..5] {
            assert_eq!(periodic.analyze(c).unwrap(), never.analyze(c).unwrap());
        }
        let mut fresh = Vad::new(0, 16_000, 1).unwrap();
        fresh.history = periodic.history;
        fresh.history.copy_within(CHUNK.., 0);
        fresh.history[MODEL_FRAME - CHUNK..].copy_from_slice(chunks[5]);
        let expected = fresh.detector.predict_i16(&fresh.history);
        assert_eq!(periodic.analyze(chunks[5]).unwrap(), expected);

        // reset() forgets everything.
        let mut v = Vad::new(0, 16_000, 1).unwrap();
        let first: Vec<f32> = chunks[..10].iter().map(|c| v.analyze(c).unwrap()).collect();
        v.reset();
        let again: Vec<f32> = chunks[..10].iter().map(|c| v.analyze(c).unwrap()).collect();
        assert_eq!(first, again);
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
