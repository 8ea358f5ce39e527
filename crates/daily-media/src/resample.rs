//! Streaming 10 ms resampler over rubato.
//!
//! # Choice of rubato resampler
//! The ratio is fixed, so the synchronous FFT resampler ([`rubato::Fft`]) is the first choice: it
//! is exact (a fixed number of output frames per call), cheap (one small real FFT pair per block)
//! and its only latency is half its FFT block. A 10 ms chunk always holds `gcd(in, out) / 100`
//! whole "minimum blocks" (both rates are multiples of 100 Hz), so the chunk can be split into
//! `d` equal FFT blocks for any divisor `d` of that count. We take the smallest `d >= 2`, giving
//! blocks of at most 5 ms and so at most 2.5 ms of added latency, while keeping the blocks (and
//! with them the anti-aliasing filter, whose cutoff rises with block length) as long as possible.
//! For the common pairs (8/16/24/32/44.1 kHz with 48 kHz) this is 2.5 ms, or 1.67 ms for 44.1 kHz.
//!
//! When the two rates share only 100 Hz (e.g. 44.1 kHz with 16 kHz) a 10 ms chunk is one
//! indivisible block (5 ms latency), and when the smallest divisor is large the blocks become
//! too short to filter well. Those pairs use the asynchronous sinc resampler ([`rubato::Async`])
//! with a filter whose half-length is 2.5 ms at the input rate. Its output count wobbles by a
//! frame between chunks, so a small FIFO, primed with as many zero frames as the largest deficit
//! seen when the resampler is constructed, turns it back into exactly 10 ms per call.
//!
//! Channel conversion happens on the side with fewer channels (down-mix before, up-mix after
//! resampling), so a mono/stereo conversion never resamples more channels than it must.

use crate::{MediaError, check_channels, frames_per_10ms};
use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler as _, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// Largest half-length of the sinc filter, in seconds of input: keeps the added delay of the
/// fallback path at 2.5 ms.
const SINC_HALF_LEN_S: f64 = 0.0025;

/// Shortest FFT block (in seconds) still worth using; shorter blocks push the anti-aliasing
/// cutoff down too far and the sinc path does better.
const MIN_FFT_BLOCK_S: f64 = 0.001;

/// Streaming resampler working in 10 ms chunks of interleaved i16, with channel conversion.
///
/// Mono to stereo duplicates the channel; stereo to mono averages the two. Equal rates copy.
/// [`process`](Self::process) allocates nothing.
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    in_channels: usize,
    out_channels: usize,
    in_frames: usize,
    out_frames: usize,
    backend: Backend,
}

enum Backend {
    /// Same rate: only channel conversion, done on the i16 samples directly.
    Copy,
    /// Exact-ratio FFT resampler.
    Fft(Box<Rubato<Fft<f32>>>),
    /// Sinc resampler plus a FIFO that evens out its per-call output count.
    Sinc(Box<SincPath>),
}

/// Planar f32 buffers around a rubato resampler working on `channels` channels.
struct Rubato<R> {
    rs: R,
    channels: usize,
    /// Input converted to planar f32, `channels` × in_frames.
    input: Vec<Vec<f32>>,
    /// Output of rubato, `channels` × (largest output of one call).
    output: Vec<Vec<f32>>,
}

struct SincPath {
    core: Rubato<Async<f32>>,
    /// Resampled frames waiting to be handed out, per channel.
    fifo: Vec<Vec<f32>>,
    fifo_len: usize,
    /// Zero frames the FIFO is primed with (see the module docs).
    prime: usize,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Copy => "copy",
            Backend::Fft(_) => "fft",
            Backend::Sinc(_) => "sinc",
        };
        f.debug_struct("Resampler")
            .field("in_rate", &self.in_rate)
            .field("in_channels", &self.in_channels)
            .field("out_rate", &self.out_rate)
            .field("out_channels", &self.out_channels)
            .field("kind", &kind)
            .field("latency_frames", &self.latency_frames())
            .finish()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Resampler {
    /// A resampler from `in_rate`/`in_channels` to `out_rate`/`out_channels`. Rates must be
    /// accepted by [`frames_per_10ms`], channel counts be 1 or 2.
    pub fn new(
        in_rate: u32,
        in_channels: u16,
        out_rate: u32,
        out_channels: u16,
    ) -> Result<Self, MediaError> {
        let in_frames = frames_per_10ms(in_rate)?;
        let out_frames = frames_per_10ms(out_rate)?;
        check_channels(in_channels)?;
        check_channels(out_channels)?;
        let channels = usize::from(in_channels.min(out_channels));
        let rerr = |reason: String| MediaError::Resampler {
            in_rate,
            out_rate,
            reason,
        };

        let backend = if in_rate == out_rate {
            Backend::Copy
        } else {
            // Both rates are multiples of 100 Hz, so a 10 ms chunk holds `blocks` minimum FFT
            // blocks of 1/gcd seconds each.
            let blocks = gcd(in_rate, out_rate) / 100;
            let split = (2..=blocks).find(|&d| blocks.is_multiple_of(d));
            match split {
                Some(d) if 0.01 / f64::from(d) >= MIN_FFT_BLOCK_S => {
                    let rs = Fft::<f32>::new_custom(
                        in_rate as usize,
                        out_rate as usize,
                        in_frames,
                        d as usize,
                        channels,
                        WindowFunction::BlackmanHarris2,
                        FixedSync::Input,
                    )
                    .map_err(|e| rerr(e.to_string()))?;
                    if rs.input_frames_next() != in_frames || rs.output_frames_next() != out_frames
                    {
                        return Err(rerr(format!(
                            "FFT resampler chunking {}→{} frames, wanted {in_frames}→{out_frames}",
                            rs.input_frames_next(),
                            rs.output_frames_next()
                        )));
                    }
                    Backend::Fft(Box::new(Rubato::new(rs, channels, in_frames)))
                }
                _ => Backend::Sinc(Box::new(
                    SincPath::new(in_rate, out_rate, channels, in_frames, out_frames)
                        .map_err(rerr)?,
                )),
            }
        };
        Ok(Resampler {
            in_rate,
            out_rate,
            in_channels: usize::from(in_channels),
            out_channels: usize::from(out_channels),
            in_frames,
            out_frames,
            backend,
        })
    }

    /// Frames per 10 ms at the input rate: what [`process`](Self::process) consumes per call.
    pub fn input_frames(&self) -> usize {
        self.in_frames
    }

    /// Frames per 10 ms at the output rate: what [`process`](Self::process) produces per call.
    pub fn output_frames(&self) -> usize {
        self.out_frames
    }

    /// Input sample rate in Hz.
    pub fn input_rate(&self) -> u32 {
        self.in_rate
    }

    /// Output sample rate in Hz.
    pub fn output_rate(&self) -> u32 {
        self.out_rate
    }

    /// Resamples one 10 ms chunk. `input` must hold exactly `input_frames() × in_channels`
    /// samples and `output` exactly `output_frames() × out_channels`.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<(), MediaError> {
        let in_len = self.in_frames * self.in_channels;
        let out_len = self.out_frames * self.out_channels;
        if input.len() != in_len {
            return Err(MediaError::BufferSize {
                what: "resampler input",
                expected: in_len,
                actual: input.len(),
            });
        }
        if output.len() != out_len {
            return Err(MediaError::BufferSize {
                what: "resampler output",
                expected: out_len,
                actual: output.len(),
            });
        }
        let (ic, oc) = (self.in_channels, self.out_channels);
        match &mut self.backend {
            Backend::Copy => copy_channels(input, ic, output, oc),
            Backend::Fft(r) => {
                r.load(input, ic);
                r.run(self.in_rate, self.out_rate)?;
                store(&r.output, 0, self.out_frames, output, oc);
            }
            Backend::Sinc(s) => {
                s.core.load(input, ic);
                let produced = s.core.run(self.in_rate, self.out_rate)?;
                s.push_output(produced);
                store(&s.fifo, 0, self.out_frames, output, oc);
                s.consume(self.out_frames);
            }
        }
        Ok(())
    }

    /// Delay the resampler adds, in output frames: an impulse at input frame `n` (counted from
    /// construction or [`reset`](Self::reset)) peaks at output frame
    /// `n × out_rate / in_rate + latency_frames()`.
    pub fn latency_frames(&self) -> usize {
        match &self.backend {
            Backend::Copy => 0,
            Backend::Fft(r) => r.rs.output_delay(),
            Backend::Sinc(s) => s.core.rs.output_delay() + s.prime,
        }
    }

    /// Forgets all history, as if newly constructed.
    pub fn reset(&mut self) {
        match &mut self.backend {
            Backend::Copy => {}
            Backend::Fft(r) => r.rs.reset(),
            Backend::Sinc(s) => s.reset(),
        }
    }
}

impl<R: rubato::Resampler<f32>> Rubato<R> {
    fn new(rs: R, channels: usize, in_frames: usize) -> Self {
        let out_max = rs.output_frames_max();
        Rubato {
            rs,
            channels,
            input: vec![vec![0.0; in_frames]; channels],
            output: vec![vec![0.0; out_max]; channels],
        }
    }

    /// Deinterleaves (and down-mixes stereo to mono when `self.channels` is 1) into `self.input`.
    fn load(&mut self, input: &[i16], in_channels: usize) {
        const SCALE: f32 = 1.0 / 32768.0;
        if in_channels == self.channels {
            for (c, plane) in self.input.iter_mut().enumerate() {
                for (dst, frame) in plane.iter_mut().zip(input.chunks_exact(in_channels)) {
                    *dst = f32::from(frame[c]) * SCALE;
                }
            }
        } else {
            // Stereo in, mono resampling.
            for (dst, frame) in self.input[0].iter_mut().zip(input.chunks_exact(2)) {
                *dst = (f32::from(frame[0]) + f32::from(frame[1])) * (0.5 * SCALE);
            }
        }
    }

    /// Resamples `self.input` into `self.output`; returns the number of frames produced.
    fn run(&mut self, in_rate: u32, out_rate: u32) -> Result<usize, MediaError> {
        let frames_in = self.input[0].len();
        let frames_out = self.output[0].len();
        let err = |reason: String| MediaError::Resampler {
            in_rate,
            out_rate,
            reason,
        };
        // Building the adapters only borrows the planes; nothing is allocated.
        let src = SequentialSliceOfVecs::new(&self.input, self.channels, frames_in)
            .map_err(|e| err(e.to_string()))?;
        let mut dst = SequentialSliceOfVecs::new_mut(&mut self.output, self.channels, frames_out)
            .map_err(|e| err(e.to_string()))?;
        let (_, produced) = self
            .rs
            .process_into_buffer(&src, &mut dst, None)
            .map_err(|e| err(e.to_string()))?;
        Ok(produced)
    }
}

impl SincPath {
    fn new(
        in_rate: u32,
        out_rate: u32,
        channels: usize,
        in_frames: usize,
        out_frames: usize,
    ) -> Result<Self, String> {
        // rubato rounds sinc_len up to a multiple of 8; round down first so the delay stays
        // within SINC_HALF_LEN_S.
        let sinc_len =
            (((2.0 * SINC_HALF_LEN_S * f64::from(in_rate)) as usize) / 8 * 8).clamp(32, 256);
        let params = SincInterpolationParameters {
            sinc_len,
            f_cutoff: None,
            oversampling_factor: 64,
            interpolation: SincInterpolationType::Cubic,
            window: WindowFunction::BlackmanHarris2,
        };
        let ratio = f64::from(out_rate) / f64::from(in_rate);
        let rs =
            Async::<f32>::new_sinc(ratio, 1.0, &params, in_frames, channels, FixedAsync::Input)
                .map_err(|e| e.to_string())?;
        let mut core = Rubato::new(rs, channels, in_frames);

        // Find the largest shortfall of produced frames against 10 ms per call over two seconds
        // of (silent) input; the output pattern is periodic and settles well within that.
        let mut produced_total = 0usize;
        let mut deficit = 0usize;
        for k in 1..=200usize {
            produced_total += core.run(in_rate, out_rate).map_err(|e| e.to_string())?;
            deficit = deficit.max((k * out_frames).saturating_sub(produced_total));
        }
        core.rs.reset();
        let cap = deficit + out_frames + core.output[0].len() + 8;
        let mut path = SincPath {
            core,
            fifo: vec![vec![0.0; cap]; channels],
            fifo_len: 0,
            prime: deficit,
        };
        path.reset();
        Ok(path)
    }

    fn reset(&mut self) {
        self.core.rs.reset();
        for plane in &mut self.fifo {
            plane.fill(0.0);
        }
        self.fifo_len = self.prime;
    }

    fn push_output(&mut self, produced: usize) {
        let room = self.fifo[0].len() - self.fifo_len;
        // The capacity covers the worst case measured at construction; should the pattern ever
        // drift, dropping the excess keeps us running (it would only be a one-frame glitch).
        let n = produced.min(room);
        for (fifo, out) in self.fifo.iter_mut().zip(&self.core.output) {
            fifo[self.fifo_len..self.fifo_len + n].copy_from_slice(&out[..n]);
        }
        self.fifo_len += n;
    }

    fn consume(&mut self, frames: usize) {
        let n = frames.min(self.fifo_len);
        for fifo in &mut self.fifo {
            fifo.copy_within(n..self.fifo_len, 0);
            // Zero what was vacated, so a (theoretical) shortfall reads as silence rather than
            // as repeated audio.
            fifo[self.fifo_len - n..self.fifo_len].fill(0.0);
        }
        self.fifo_len -= n;
    }
}

/// Converts `frames` frames of planar f32 starting at `offset` to interleaved i16 in `out`
/// (duplicating mono into stereo when `out_channels` is larger than the number of planes).
fn store(planes: &[Vec<f32>], offset: usize, frames: usize, out: &mut [i16], out_channels: usize) {
    #[inline]
    fn to_i16(x: f32) -> i16 {
        // Float-to-int `as` saturates in Rust, so this clips rather than wraps.
        (x * 32768.0).round() as i16
    }
    let planes_n = planes.len();
    if planes_n == out_channels {
        for (c, plane) in planes.iter().enumerate() {
            for (frame, &x) in out
                .chunks_exact_mut(out_channels)
                .zip(&plane[offset..offset + frames])
            {
                frame[c] = to_i16(x);
            }
        }
    } else {
        // Mono resampled, stereo out.
        for (frame, &x) in out
            .chunks_exact_mut(2)
            .zip(&planes[0][offset..offset + frames])
        {
            let s = to_i16(x);
            frame[0] = s;
            frame[1] = s;
        }
    }
}

/// Same-rate channel conversion on i16.
fn copy_channels(input: &[i16], in_channels: usize, output: &mut [i16], out_channels: usize) {
    match (in_channels, out_channels) {
        (a, b) if a == b => output.copy_from_slice(input),
        (1, 2) => {
            for (frame, &s) in output.chunks_exact_mut(2).zip(input) {
                frame[0] = s;
                frame[1] = s;
            }
        }
        _ => {
            for (o, frame) in output.iter_mut().zip(input.chunks_exact(2)) {
                // The average of two i16 always fits in i16.
                *o = ((i32::from(frame[0]) + i32::from(frame[1])) / 2) as i16;
            }
        }
    }
}

#[cfg(test)]
mod tests;
