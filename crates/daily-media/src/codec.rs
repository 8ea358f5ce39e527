//! Thin wrappers over libopus (built from source and linked statically, [`crate::libopus`])
//! fixed to what WebRTC audio uses: 48 kHz, mono or stereo, 20 ms packets.

use crate::libopus::{self, Application};
use crate::{MediaError, OPUS_RATE, check_channels};

/// Largest RTP payload this crate accepts or produces, in bytes. An Ethernet MTU leaves a
/// little less than this for the payload; libopus never needs more than 1275 bytes per frame
/// (RFC 6716 section 3.2.1), so 1500 is a safe upper bound for any single-frame packet.
pub const MAX_PACKET_BYTES: usize = 1500;

/// Longest audio an Opus packet can carry: 120 ms at 48 kHz (RFC 6716 section 3.2.5).
pub const MAX_PACKET_FRAMES: usize = 5760;

/// Opus encoder for one outgoing track: 48 kHz, VOIP application, 20 ms frames.
///
/// The VOIP application favours speech intelligibility and enables the speech-oriented
/// pre-processing in libopus, which is what a call wants. In-band FEC is on with an expected loss
/// of 5 %: libopus then embeds a low-bitrate copy of each frame in the next packet (LBRR, RFC 6716
/// section 2.1.7), which the receiving [`JitterBuffer`](crate::JitterBuffer) uses to repair a
/// single lost packet. Both can be changed with the setters.
pub struct OpusEncoder {
    inner: libopus::Encoder,
    channels: u16,
    /// Frames per channel in 20 ms at the input rate.
    frame: usize,
}

/// Input rates libopus encodes directly (RFC 6716 section 2).
pub const OPUS_INPUT_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// What the Opus encoder optimises for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpusApplication {
    /// Speech intelligibility (libopus `VOIP`: SILK/hybrid with speech processing). Daily's
    /// `"speech"` send settings. Output is intelligible but not waveform-faithful: the median
    /// 250 ms-window correlation of LibriVox speech through it is about 0.82 at 64 kbit/s.
    Voip,
    /// Fidelity to the input waveform (libopus `AUDIO`: CELT at these bitrates). Daily's
    /// `"music"` send settings and our default for custom tracks: the same measure gives 0.99
    /// at 64 kbit/s, which matters to bots whose listeners are speech recognisers.
    #[default]
    Audio,
}

impl OpusEncoder {
    /// A new encoder. `bitrate_bps` of `None` leaves the choice to libopus (about 32 kbit/s
    /// for mono speech at 48 kHz).
    pub fn new(channels: u16, bitrate_bps: Option<u32>) -> Result<Self, MediaError> {
        Self::with_application(channels, bitrate_bps, OpusApplication::Voip)
    }

    /// A new encoder tuned for `application` (RFC 6716 leaves the choice to the encoder;
    /// libopus's `OPUS_APPLICATION_*`).
    pub fn with_application(
        channels: u16,
        bitrate_bps: Option<u32>,
        application: OpusApplication,
    ) -> Result<Self, MediaError> {
        Self::with_rate(OPUS_RATE, channels, bitrate_bps, application)
    }

    /// Like [`with_application`](Self::with_application) for input at `sample_rate`, one of the
    /// rates libopus takes directly (8, 12, 16, 24 or 48 kHz; RFC 6716 section 2). Encoding a
    /// 16 kHz source at 16 kHz spares a resampler and about a fifth of libopus's work; the
    /// packets are the same kind (the RTP clock stays 48 kHz, RFC 7587 section 4.1).
    pub fn with_rate(
        sample_rate: u32,
        channels: u16,
        bitrate_bps: Option<u32>,
        application: OpusApplication,
    ) -> Result<Self, MediaError> {
        check_channels(channels)?;
        if !OPUS_INPUT_RATES.contains(&sample_rate) {
            return Err(MediaError::OpusInputRate { rate: sample_rate });
        }
        let app = match application {
            OpusApplication::Voip => Application::Voip,
            OpusApplication::Audio => Application::Audio,
        };
        let inner = libopus::Encoder::new(sample_rate, channels, app)?;
        let mut enc = OpusEncoder { inner, channels, frame: sample_rate as usize / 50 };
        if let Some(b) = bitrate_bps {
            enc.set_bitrate(b)?;
        }
        // In-band FEC off until loss is reported (`set_fec`): with FEC on and an expected loss
        // above zero, libopus at complexity >= 7 codes speech in hybrid mode (SILK + CELT) so
        // that it can carry LBRR data, which made encoding 4-5x dearer here (real speech at
        // 64 kbit/s AUDIO: 603 vs 120 µs per 20 ms frame), for no gain on a clean path.
        enc.inner.set_inband_fec(false)?;
        enc.inner.set_packet_loss_perc(0)?;
        Ok(enc)
    }

    /// Number of channels this encoder takes.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Frames (per channel) in 20 ms at this encoder's input rate ([`OPUS_FRAME_20MS`](crate::OPUS_FRAME_20MS) at 48 kHz).
    pub fn frame_20ms(&self) -> usize {
        self.frame
    }

    /// Encodes one 20 ms frame. `pcm` must hold exactly [`frame_20ms`](Self::frame_20ms) ×
    /// channels interleaved samples; the packet is written to the start of `out` and its length
    /// returned. `out` of [`MAX_PACKET_BYTES`] is always large enough.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, MediaError> {
        let expected = self.frame * usize::from(self.channels);
        if pcm.len() != expected {
            return Err(MediaError::BufferSize {
                what: "Opus encoder input",
                expected,
                actual: pcm.len(),
            });
        }
        self.inner.encode(pcm, out)
    }

    /// Target bitrate in bit/s (500..=512000).
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), MediaError> {
        if !(500..=512_000).contains(&bitrate_bps) {
            return Err(MediaError::BitrateOutOfRange { bitrate_bps });
        }
        // The range check above makes the cast lossless.
        self.inner.set_bitrate(bitrate_bps as i32)?;
        Ok(())
    }

    /// Turns in-band FEC on or off and sets the loss rate (0..=100 %) the encoder should expect;
    /// libopus adds FEC data only when the expected loss is above zero.
    pub fn set_fec(&mut self, enabled: bool, expected_loss_percent: u8) -> Result<(), MediaError> {
        self.inner.set_inband_fec(enabled)?;
        self.inner
            .set_packet_loss_perc(i32::from(expected_loss_percent.min(100)))?;
        Ok(())
    }

    /// Encoder complexity, 0 (cheapest) ..= 10 (best). Hundreds of bots in one process may want
    /// less than the libopus default of 9.
    pub fn set_complexity(&mut self, complexity: u8) -> Result<(), MediaError> {
        self.inner.set_complexity(i32::from(complexity.min(10)))?;
        Ok(())
    }

    /// Discontinuous transmission: during silence libopus emits one packet every 400 ms.
    pub fn set_dtx(&mut self, enabled: bool) -> Result<(), MediaError> {
        self.inner.set_dtx(enabled)?;
        Ok(())
    }

    /// The encoder's algorithmic delay (look-ahead) in 48 kHz frames; a decoded signal lags the
    /// input by this much.
    pub fn lookahead_frames(&mut self) -> Result<usize, MediaError> {
        Ok(usize::try_from(self.inner.lookahead()?).unwrap_or(0))
    }

    /// Resets the encoder to its freshly constructed state (keeps the settings).
    pub fn reset(&mut self) -> Result<(), MediaError> {
        self.inner.reset()?;
        Ok(())
    }
}

/// Opus decoder at 48 kHz. The [`JitterBuffer`](crate::JitterBuffer) owns one; this wrapper is
/// public for callers that do their own buffering (and for tests and benches).
pub struct OpusDecoder {
    inner: libopus::Decoder,
    channels: u16,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder producing `channels` (1 or 2) interleaved channels, whatever the packets carry
    /// (libopus up- or down-mixes).
    pub fn new(channels: u16) -> Result<Self, MediaError> {
        check_channels(channels)?;
        Ok(OpusDecoder {
            inner: libopus::Decoder::new(OPUS_RATE, channels)?,
            channels,
        })
    }

    /// Number of channels this decoder produces.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Decodes one packet into `out` and returns the number of frames written. `out` must have
    /// room for the packet's duration ([`MAX_PACKET_FRAMES`] × channels always suffices).
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, MediaError> {
        if packet.is_empty() {
            return Err(MediaError::BufferSize {
                what: "Opus packet",
                expected: 1,
                actual: 0,
            });
        }
        self.inner.decode(packet, out, false)
    }

    /// Packet-loss concealment: fills all of `out` (a multiple of 2.5 ms, i.e. of 120 frames, up
    /// to 120 ms) with audio extrapolated from what was decoded before. Returns frames written.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, MediaError> {
        // An empty input is libopus' way of saying "this packet is lost" (opus_decode with
        // data == NULL).
        self.inner.decode(&[], out, false)
    }

    /// Recovers the frame *before* `next_packet` from the in-band FEC data it carries, filling
    /// all of `out` (which must be exactly the missing duration). Without FEC data in the packet
    /// libopus falls back to plain concealment, so this is never worse than [`conceal`](Self::conceal).
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<usize, MediaError> {
        self.inner.decode(next_packet, out, true)
    }

    /// Resets the decoder to its freshly constructed state.
    pub fn reset(&mut self) -> Result<(), MediaError> {
        self.inner.reset()?;
        Ok(())
    }
}

/// Number of 48 kHz frames in an Opus packet, parsed from its TOC byte and frame count
/// (RFC 6716 section 3.1). `None` for a malformed packet or one longer than 120 ms.
pub fn packet_frames(packet: &[u8]) -> Option<usize> {
    if packet.is_empty() {
        return None;
    }
    match libopus::packet_nb_samples(packet, OPUS_RATE) {
        Ok(n) if n > 0 && n <= MAX_PACKET_FRAMES => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OPUS_FRAME_20MS;
    use crate::testutil::*;

    fn roundtrip(channels: u16, bitrate: Option<u32>) -> (Vec<i16>, Vec<i16>, usize) {
        let ch = usize::from(channels);
        let mut enc = OpusEncoder::new(channels, bitrate).unwrap();
        let mut dec = OpusDecoder::new(channels).unwrap();
        let lookahead = enc.lookahead_frames().unwrap();
        let mono = chirp(OPUS_RATE, 200.0, 3000.0, 0.5, OPUS_FRAME_20MS * 50);
        let input: Vec<i16> = mono
            .iter()
            .flat_map(|&s| std::iter::repeat_n(s, ch))
            .collect();
        let mut output = vec![0i16; input.len()];
        let mut packet = [0u8; MAX_PACKET_BYTES];
        for (i, o) in input
            .chunks_exact(OPUS_FRAME_20MS * ch)
            .zip(output.chunks_exact_mut(OPUS_FRAME_20MS * ch))
        {
            let len = enc.encode(i, &mut packet).unwrap();
            assert!(len > 0 && len <= 1275);
            assert_eq!(packet_frames(&packet[..len]), Some(OPUS_FRAME_20MS));
            assert_eq!(dec.decode(&packet[..len], o).unwrap(), OPUS_FRAME_20MS);
        }
        (input, output, lookahead)
    }

    #[test]
    fn opus_roundtrip_keeps_a_sine() {
        for (channels, bitrate) in [(1, None), (1, Some(16_000)), (2, Some(64_000))] {
            let (input, output, lookahead) = roundtrip(channels, bitrate);
            let ch = usize::from(channels);
            let (input, output) = if ch == 2 {
                (split_stereo(&input).0, split_stereo(&output).0)
            } else {
                (input, output)
            };
            // Skip the first 100 ms (encoder start-up), align by cross-correlation.
            let skip = 4800;
            let (lag, corr) = best_lag(&input[skip..input.len() - 2000], &output[skip..], 1000);
            assert!(
                corr > 0.9,
                "channels {channels} bitrate {bitrate:?}: correlation {corr} at lag {lag}"
            );
            // The delay is the encoder look-ahead (libopus' decoder adds none).
            assert!(
                lag.abs_diff(lookahead) <= 8,
                "lag {lag}, lookahead {lookahead}"
            );
            let a = rms(&output[skip..]) / rms(&input[skip..]);
            assert!((0.8..1.2).contains(&a), "level ratio {a}");
        }
    }

    #[test]
    fn libopus_is_the_bundled_build() {
        // opusic-sys 0.7.7 ships libopus 1.6.1; Debian's system libopus (1.3.1 on bookworm)
        // must not be what got linked.
        assert_eq!(crate::libopus_version(), "libopus 1.6.1");
    }

    #[test]
    fn opus_errors() {
        assert!(matches!(
            OpusEncoder::new(3, None),
            Err(MediaError::UnsupportedChannels { channels: 3 })
        ));
        assert!(matches!(
            OpusEncoder::new(1, Some(100)),
            Err(MediaError::BitrateOutOfRange { bitrate_bps: 100 })
        ));
        let mut enc = OpusEncoder::new(2, Some(32_000)).unwrap();
        let mut out = [0u8; MAX_PACKET_BYTES];
        assert!(matches!(
            enc.encode(&[0; 960], &mut out),
            Err(MediaError::BufferSize {
                expected: 1920,
                actual: 960,
                ..
            })
        ));
        // An unusable output buffer is reported by libopus, not a panic.
        assert!(matches!(
            enc.encode(&[1000; 1920], &mut out[..0]),
            Err(MediaError::Opus { .. })
        ));
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut pcm = [0i16; 960];
        assert!(dec.decode(&[], &mut pcm).is_err());
        assert!(dec.decode(&[0xff, 0xff, 0xff], &mut pcm).is_err());
        assert_eq!(packet_frames(&[]), None);
        assert_eq!(packet_frames(&[0x03]), None); // code 3 without the frame-count byte
        // Concealment fills the whole request.
        assert_eq!(dec.conceal(&mut pcm[..480]).unwrap(), 480);
    }

    #[test]
    fn fec_recovers_a_lost_frame_better_than_plc() {
        let source = speechlike(OPUS_RATE, 0.4, OPUS_FRAME_20MS * 40);
        let mut enc = OpusEncoder::new(1, Some(32_000)).unwrap();
        enc.set_fec(true, 5).unwrap(); // off by default: the client turns it on when loss is reported
        let mut buf = [0u8; MAX_PACKET_BYTES];
        let packets: Vec<Vec<u8>> = source
            .chunks_exact(OPUS_FRAME_20MS)
            .map(|f| {
                let n = enc.encode(f, &mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect();
        // Packet 22 (440..460 ms) is in the middle of a voiced "syllable".
        let lost = 22;
        let decode_with = |repair: &dyn Fn(&mut OpusDecoder, &mut [i16])| {
            let mut dec = OpusDecoder::new(1).unwrap();
            let mut out = vec![0i16; OPUS_FRAME_20MS];
            for p in &packets[..lost] {
                dec.decode(p, &mut out).unwrap();
            }
            repair(&mut dec, &mut out);
            out
        };
        let clean = decode_with(&|d, o| {
            d.decode(&packets[lost], o).unwrap();
        });
        let fec = decode_with(&|d, o| {
            assert_eq!(
                d.decode_fec(&packets[lost + 1], o).unwrap(),
                OPUS_FRAME_20MS
            );
        });
        let plc = decode_with(&|d, o| {
            assert_eq!(d.conceal(o).unwrap(), OPUS_FRAME_20MS);
        });
        let (c_fec, c_plc) = (correlation(&fec, &clean), correlation(&plc, &clean));
        assert!(c_fec > 0.8 && c_fec > c_plc, "FEC {c_fec}, PLC {c_plc}");
    }

    #[test]
    fn encodes_16k_input_directly_and_refuses_other_rates() {
        let mut enc = OpusEncoder::with_rate(16_000, 1, Some(64_000), OpusApplication::Audio).unwrap();
        assert_eq!(enc.frame_20ms(), 320);
        let input = chirp(16_000, 200.0, 3000.0, 0.5, 320 * 50);
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut packet = [0u8; MAX_PACKET_BYTES];
        let mut out = vec![0i16; OPUS_FRAME_20MS];
        for f in input.chunks_exact(320) {
            let n = enc.encode(f, &mut packet).unwrap();
            // 20 ms per packet whatever the input rate: 960 frames at the 48 kHz decoder.
            assert_eq!(dec.decode(&packet[..n], &mut out).unwrap(), OPUS_FRAME_20MS);
        }
        assert!(enc.encode(&input[..960], &mut packet).is_err(), "a 48 kHz-sized frame is refused");
        for rate in [11_025, 44_100, 32_000] {
            assert!(matches!(
                OpusEncoder::with_rate(rate, 1, None, OpusApplication::Audio),
                Err(MediaError::OpusInputRate { .. })
            ));
        }
    }
}
