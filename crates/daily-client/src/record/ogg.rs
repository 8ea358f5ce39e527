//! Ogg/Opus recording files: the merged audio encoded by libopus (`daily_media::OpusEncoder`,
//! AUDIO application, 32 kbit/s per channel) in 20 ms frames, written page by page by
//! `daily_media::OggOpusWriter`. A recording at a rate libopus takes (8, 12, 16, 24 or 48 kHz)
//! is encoded as it is; any other rate is resampled to 48 kHz first. The header's pre-skip is
//! the encoder's look-ahead, so decoders trim it and the file starts where the recording did.

use super::file::FileSink;
use daily_media::{
    MAX_PACKET_BYTES, OPUS_INPUT_RATES, OggOpusHeader, OggOpusWriter, OpusApplication, OpusEncoder,
    Resampler,
};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Encoder bit rate per channel, in bit/s (a recording is for listening back, not for
/// archiving bit-exact): `tests/test_audio_buffer.py` checks the decoded file against the
/// recording with the speech-similarity measure the other tests use (at least 0.8).
const BITRATE_PER_CHANNEL: u32 = 32_000;

/// An Ogg/Opus recording file.
pub(crate) struct OggFile {
    writer: OggOpusWriter<BufWriter<std::fs::File>>,
    encoder: OpusEncoder,
    /// To 48 kHz, for rates libopus does not take (10 ms chunks).
    resampler: Option<(Resampler, Vec<i16>)>,
    /// Samples waiting for a whole 20 ms frame.
    frame: Vec<i16>,
    frame_len: usize,
    /// Input samples waiting for a whole 10 ms chunk (resampled path only).
    chunk: Vec<i16>,
    chunk_len: usize,
    packet: Vec<u8>,
    path: PathBuf,
}

impl OggFile {
    pub(crate) fn create(path: &Path, rate: u32, channels: u16) -> Result<OggFile, String> {
        let direct = OPUS_INPUT_RATES.contains(&rate);
        let enc_rate = if direct { rate } else { 48_000 };
        let bitrate = BITRATE_PER_CHANNEL * u32::from(channels);
        let mut encoder =
            OpusEncoder::with_rate(enc_rate, channels, Some(bitrate), OpusApplication::Audio)
                .map_err(|e| e.to_string())?;
        let mut header = OggOpusHeader::new(channels as u8, rate);
        header.pre_skip = encoder.lookahead_frames().map_err(|e| e.to_string())? as u16;
        let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        let writer =
            OggOpusWriter::new(BufWriter::new(file), serial, &header).map_err(|e| e.to_string())?;
        let resampler = if direct {
            None
        } else {
            let rs = Resampler::new(rate, channels, 48_000, channels).map_err(|e| e.to_string())?;
            let out = vec![0; rs.output_frames() * usize::from(channels)];
            Some((rs, out))
        };
        let chunk_len =
            daily_media::frames_per_10ms(rate).map_err(|e| e.to_string())? * usize::from(channels);
        let frame_len = encoder.frame_20ms() * usize::from(channels);
        Ok(OggFile {
            writer,
            encoder,
            resampler,
            frame: Vec::with_capacity(frame_len),
            frame_len,
            chunk: Vec::with_capacity(chunk_len),
            chunk_len,
            packet: vec![0; MAX_PACKET_BYTES],
            path: path.to_owned(),
        })
    }

    /// Adds samples at the encoder's rate; encodes each completed 20 ms frame.
    fn encode(&mut self, mut pcm: &[i16]) -> Result<(), String> {
        while !pcm.is_empty() {
            let n = (self.frame_len - self.frame.len()).min(pcm.len());
            self.frame.extend_from_slice(&pcm[..n]);
            pcm = &pcm[n..];
            if self.frame.len() == self.frame_len {
                let len = self
                    .encoder
                    .encode(&self.frame, &mut self.packet)
                    .map_err(|e| e.to_string())?;
                self.writer
                    .write_packet(&self.packet[..len])
                    .map_err(|e| e.to_string())?;
                self.frame.clear();
            }
        }
        Ok(())
    }

    fn push(&mut self, mut pcm: &[i16]) -> Result<(), String> {
        if self.resampler.is_none() {
            return self.encode(pcm);
        }
        while !pcm.is_empty() {
            let n = (self.chunk_len - self.chunk.len()).min(pcm.len());
            self.chunk.extend_from_slice(&pcm[..n]);
            pcm = &pcm[n..];
            if self.chunk.len() == self.chunk_len {
                let (rs, out) = self.resampler.as_mut().expect("checked above");
                rs.process(&self.chunk, out).map_err(|e| e.to_string())?;
                let out = std::mem::take(out);
                let r = self.encode(&out);
                if let Some((_, o)) = self.resampler.as_mut() {
                    *o = out;
                }
                r?;
                self.chunk.clear();
            }
        }
        Ok(())
    }
}

impl FileSink for OggFile {
    fn write(&mut self, pcm: &[i16]) -> Result<(), String> {
        self.push(pcm)
    }

    /// The writer puts a page on disk every second by itself; nothing to do.
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), String> {
        // The last partial 20 ms frame, padded with silence.
        if !self.frame.is_empty() {
            let pad = vec![0i16; self.frame_len - self.frame.len()];
            self.encode(&pad)?;
        }
        let mut out = self.writer.finish().map_err(|e| e.to_string())?;
        std::io::Write::flush(&mut out).map_err(|e| e.to_string())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
