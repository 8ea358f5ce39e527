//! IO-free audio core of the open Daily SDK.
//!
//! Everything here is plain computation on buffers the caller owns: no threads, no sockets, no
//! clock. Functions that need the time ([`JitterBuffer::push`], [`JitterBuffer::pop_10ms`]) are
//! told it by the caller, so tests can drive them with a virtual clock and the client crate can
//! drive them from its single 10 ms media clock.
//!
//! # Conventions
//! - PCM is interleaved signed 16-bit. A *frame* is one sample per channel; lengths of PCM
//!   buffers are in samples (frames × channels) unless a name says `frames`.
//! - The unit of work is 10 ms, the tick of the media clock. Opus packets carry 20 ms
//!   ([`OPUS_FRAME_20MS`]), the packet time every WebRTC implementation uses for audio.
//! - Only 1 or 2 channels, and sample rates that are multiples of 100 Hz in 8–48 kHz
//!   ([`frames_per_10ms`]), so that every 10 ms chunk is a whole number of frames.
//! - Nothing on the audio path ([`Resampler::process`], [`OpusEncoder::encode`],
//!   [`JitterBuffer::push`], [`JitterBuffer::pop_10ms`], [`mix_into`], [`Vad::analyze`]) allocates: buffers are sized
//!   at construction. `tests/no_alloc.rs` checks this with a counting allocator.
//!
//! # Parts
//! - [`OpusEncoder`] / [`OpusDecoder`]: libopus at 48 kHz, built from the sources `opusic-sys`
//!   ships and linked statically ([`libopus_version`]).
//! - [`Resampler`]: rubato behind a 10 ms, interleaved-i16 interface, with channel up/down-mix.
//! - [`JitterBuffer`]: per-stream receive buffer with its own decoder, PLC and FEC.
//! - [`mix_into`]: saturating mix of two PCM buffers.
//! - [`Vad`]: voice activity detection (earshot) with daily-python's `NativeVad` semantics.
//! - [`OggOpusWriter`]: Opus packets into an Ogg file as they come (RFC 7845), with silence to
//!   fill gaps; for recordings.
//! - [`rtrb`] is re-exported so users share its version for the SPSC rings between threads.
//!
//! # Example: a 16 kHz source sent as Opus and played back through a jitter buffer
//! ```
//! use daily_media::*;
//!
//! let mut up = Resampler::new(16_000, 1, OPUS_RATE, 1)?;
//! let mut enc = OpusEncoder::new(1, Some(32_000))?;
//! let mut jb = JitterBuffer::new(JitterConfig { channels: 1, min_delay_ms: 20, max_delay_ms: 200 })?;
//!
//! let mic = vec![0i16; up.input_frames()]; // 10 ms at 16 kHz
//! let mut frame = vec![0i16; OPUS_FRAME_20MS];
//! let mut packet = [0u8; MAX_PACKET_BYTES];
//! let mut speaker = [0i16; FRAME_10MS_48K];
//! let (mut seq, mut ts) = (0u16, 0u32);
//! for tick in 0..100u64 {
//!     let now_us = tick * 10_000; // the media clock
//!     let half = (tick % 2) as usize * FRAME_10MS_48K;
//!     up.process(&mic, &mut frame[half..half + FRAME_10MS_48K])?;
//!     if tick % 2 == 1 {
//!         let len = enc.encode(&frame, &mut packet)?;
//!         // ... RTP over the network, then on the receiving side:
//!         jb.push(seq, ts, &packet[..len], now_us);
//!         seq = seq.wrapping_add(1);
//!         ts = ts.wrapping_add(OPUS_FRAME_20MS as u32);
//!     }
//!     let _what: Playout = jb.pop_10ms(now_us, &mut speaker);
//! }
//! assert_eq!(jb.stats().received, 50);
//! # Ok::<(), MediaError>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod error;
mod jitter;
#[allow(unsafe_code)] // the libopus FFI; every block has a SAFETY comment
mod libopus;
mod ogg_opus;
mod resample;
mod vad;

pub use codec::{
    MAX_PACKET_BYTES, MAX_PACKET_FRAMES, OPUS_INPUT_RATES, OpusApplication, OpusDecoder, OpusEncoder,
    packet_frames,
};
pub use error::MediaError;
pub use jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
pub use libopus::version as libopus_version;
pub use ogg_opus::{OggOpusHeader, OggOpusWriter};
pub use resample::Resampler;
pub use rtrb;
pub use vad::Vad;

/// The Opus RTP clock rate: always 48 kHz, whatever the codec's internal bandwidth
/// (RFC 7587 section 4.1).
pub const OPUS_RATE: u32 = 48_000;

/// Frames in 10 ms at 48 kHz: one tick of the media clock.
pub const FRAME_10MS_48K: usize = 480;

/// Frames in one 20 ms Opus packet at 48 kHz.
pub const OPUS_FRAME_20MS: usize = 960;

/// Frames per 10 ms at `sample_rate`.
///
/// Rates must be multiples of 100 Hz in 8000..=48000: anything else cannot be cut into whole
/// 10 ms chunks (44.1 kHz is fine, 22.05 kHz and 11.025 kHz are not).
pub fn frames_per_10ms(sample_rate: u32) -> Result<usize, MediaError> {
    if (8_000..=48_000).contains(&sample_rate) && sample_rate.is_multiple_of(100) {
        Ok((sample_rate / 100) as usize)
    } else {
        Err(MediaError::UnsupportedSampleRate { rate: sample_rate })
    }
}

/// Adds `src` into `dst` sample by sample, saturating at the i16 range instead of wrapping (a
/// wrapped sum is a full-scale click; a clipped one is merely loud). Only the common prefix of
/// the two slices is mixed.
pub fn mix_into(dst: &mut [i16], src: &[i16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = d.saturating_add(*s);
    }
}

pub(crate) fn check_channels(channels: u16) -> Result<(), MediaError> {
    if channels == 1 || channels == 2 {
        Ok(())
    } else {
        Err(MediaError::UnsupportedChannels { channels })
    }
}

#[cfg(test)]
pub(crate) mod testutil;

/// RFC 6464 audio level of `pcm`: the RMS in -dBov, 0 (a full-scale square wave) to 127
/// (digital silence and anything quieter than -127 dBov), as carried in the
/// `urn:ietf:params:rtp-hdrext:ssrc-audio-level` header extension (RFC 6464 section 3, which
/// defines dBov against the overload point of the codec input: here `i16::MAX`).
/// Allocation-free; an empty slice is silence.
pub fn audio_level_dbov(pcm: &[i16]) -> u8 {
    if pcm.is_empty() {
        return 127;
    }
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / pcm.len() as f64).sqrt() / f64::from(i16::MAX);
    if rms <= 0.0 {
        return 127;
    }
    (-20.0 * rms.log10()).round().clamp(0.0, 127.0) as u8
}

#[cfg(test)]
mod tests {
    #[test]
    fn audio_level_follows_rfc6464() {
        use super::audio_level_dbov;
        assert_eq!(audio_level_dbov(&[]), 127);
        assert_eq!(audio_level_dbov(&[0; 960]), 127);
        // A full-scale square wave is 0 dBov.
        let square: Vec<i16> = (0..960).map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX }).collect();
        assert_eq!(audio_level_dbov(&square), 0);
        // A full-scale sine has RMS 1/sqrt(2): 3 dB below.
        let sine: Vec<i16> = (0..960).map(|i| (f64::from(i16::MAX) * (i as f64 * 0.1).sin()) as i16).collect();
        assert_eq!(audio_level_dbov(&sine), 3);
        // -40 dBov: amplitude 1 % of full scale (square).
        let quiet: Vec<i16> = (0..960).map(|i| if i % 2 == 0 { 328 } else { -328 }).collect();
        assert_eq!(audio_level_dbov(&quiet), 40);
    }

    use super::*;

    #[test]
    fn frames_per_10ms_accepts_multiples_of_100() {
        assert_eq!(frames_per_10ms(8_000).unwrap(), 80);
        assert_eq!(frames_per_10ms(16_000).unwrap(), 160);
        assert_eq!(frames_per_10ms(44_100).unwrap(), 441);
        assert_eq!(frames_per_10ms(48_000).unwrap(), 480);
        for bad in [0, 7_900, 11_025, 22_050, 48_100, 96_000] {
            assert_eq!(
                frames_per_10ms(bad),
                Err(MediaError::UnsupportedSampleRate { rate: bad })
            );
        }
    }

    #[test]
    fn audio_types_can_move_to_the_media_thread() {
        fn send<T: Send>() {}
        send::<OpusEncoder>();
        send::<OpusDecoder>();
        send::<Resampler>();
        send::<JitterBuffer>();
        send::<Vad>();
        send::<MediaError>();
    }

    #[test]
    fn mix_saturates() {
        let mut dst = [1, 30_000, -30_000, 5, 7];
        mix_into(&mut dst, &[2, 10_000, -10_000, -5]);
        assert_eq!(dst, [3, i16::MAX, i16::MIN, 0, 7]);
    }
}
