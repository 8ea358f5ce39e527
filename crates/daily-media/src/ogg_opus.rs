//! Ogg Opus files (RFC 7845), written as a stream: recordings are written while the call runs,
//! so a file is readable up to its last complete page however the recording ends (the process
//! killed, the disk full).
//!
//! The Ogg pages themselves come from the `ogg` crate (the container is not what this project
//! is about); this module adds what RFC 7845 asks of an Opus stream in Ogg: the identification
//! header alone on the first page (section 5.1), the comment header ending the second
//! (section 5.2), granule positions counting 48 kHz samples through the last packet completed on
//! each page (section 4), and the end-of-stream flag on the last page. Packets are written as
//! they are (no transcoding), so RTP payloads of a WebRTC track can go straight to a file.
//!
//! Players keep time by granule positions, and an Opus stream has no notion of a gap: a
//! recording that lost packets, or whose sender stopped sending (DTX, a muted track), fills the
//! missing time with [`OggOpusWriter::write_silence`] so that what follows stays at its place.
//!
//! ```
//! use daily_media::{OggOpusHeader, OggOpusWriter, OpusEncoder, MAX_PACKET_BYTES, OPUS_FRAME_20MS};
//!
//! let mut enc = OpusEncoder::new(1, Some(32_000))?;
//! let mut file = OggOpusWriter::new(Vec::new(), 1, &OggOpusHeader::new(1, 48_000))?;
//! let mut packet = [0u8; MAX_PACKET_BYTES];
//! for _ in 0..50 {
//!     let len = enc.encode(&[0i16; OPUS_FRAME_20MS], &mut packet)?;
//!     file.write_packet(&packet[..len])?; // one second of audio
//! }
//! file.write_silence(48_000)?; // one second that was not sent
//! assert_eq!(file.granule_position(), 96_000);
//! let bytes: Vec<u8> = file.finish()?;
//! assert_eq!(&bytes[..4], b"OggS");
//! # Ok::<(), daily_media::MediaError>(())
//! ```

use crate::codec::packet_frames;
use crate::libopus::{self, Application};
use crate::{MAX_PACKET_BYTES, MediaError, OPUS_RATE};
use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use std::io::Write;

/// Frame sizes (48 kHz) of the silence packets, longest first: 20, 10, 5 and 2.5 ms, the CELT
/// frame sizes (RFC 6716 section 2.1.4), so any gap that is a multiple of 2.5 ms is filled
/// exactly.
const SILENCE_FRAMES: [u64; 4] = [960, 480, 240, 120];

/// What goes into the identification and comment headers (RFC 7845 sections 5.1 and 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggOpusHeader {
    /// Output channels: 1 or 2 (channel mapping family 0).
    pub channels: u8,
    /// The sample rate of the audio before encoding, in Hz. Informational only (players may
    /// resample to it); Opus always decodes at 48 kHz.
    pub input_sample_rate: u32,
    /// Samples (48 kHz) a player discards from the start of the decoded stream: the encoder's
    /// look-ahead when the packets come from our own encoder; 0 for packets recorded from the
    /// network, whose encoder is unknown.
    pub pre_skip: u16,
    /// The comment header's vendor string.
    pub vendor: String,
    /// User comments, `(field, value)`, written as `FIELD=value` (e.g. `("TITLE", "call")`).
    pub comments: Vec<(String, String)>,
}

impl OggOpusHeader {
    /// A header for `channels` of audio that was sampled at `input_sample_rate` Hz, with no
    /// pre-skip, our vendor string and no comments.
    pub fn new(channels: u8, input_sample_rate: u32) -> Self {
        OggOpusHeader {
            channels,
            input_sample_rate,
            pre_skip: 0,
            vendor: format!("open-daily ({})", libopus::version()),
            comments: Vec::new(),
        }
    }

    /// The `OpusHead` packet (RFC 7845 section 5.1): version 1, no output gain, mapping family 0.
    fn id_packet(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(19);
        p.extend_from_slice(b"OpusHead");
        p.push(1);
        p.push(self.channels);
        p.extend_from_slice(&self.pre_skip.to_le_bytes());
        p.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        p.extend_from_slice(&0i16.to_le_bytes());
        p.push(0);
        p
    }

    /// The `OpusTags` packet (RFC 7845 section 5.2).
    fn comment_packet(&self) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(b"OpusTags");
        push_string(&mut p, self.vendor.as_bytes());
        p.extend_from_slice(&(self.comments.len() as u32).to_le_bytes());
        for (field, value) in &self.comments {
            push_string(&mut p, format!("{field}={value}").as_bytes());
        }
        p
    }
}

fn push_string(p: &mut Vec<u8>, s: &[u8]) {
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s);
}

/// A packet held back until the next one arrives, so that the last packet of the stream can be
/// written with the end-of-stream flag when the writer finishes.
struct Pending {
    data: Vec<u8>,
    granule: u64,
    end_page: bool,
}

/// Writes one Opus stream into an Ogg file as packets arrive. See the [module](self) docs.
///
/// Memory is bounded: at most one page (about a second of audio, [`set_page_duration`]) is
/// held before it is written to `W`. Any error from `W` (e.g. the disk full) fails the call that
/// met it and every later one; the pages written before it stay readable.
///
/// [`set_page_duration`]: OggOpusWriter::set_page_duration
pub struct OggOpusWriter<W: Write> {
    pages: PacketWriter<'static, W>,
    serial: u32,
    channels: u16,
    /// 48 kHz samples through the last packet handed in.
    granule: u64,
    /// Granule position at the end of the last page written.
    page_start: u64,
    /// A page is ended once it holds this many 48 kHz samples.
    page_frames: u64,
    pending: Option<Pending>,
    /// Silence packets for each of [`SILENCE_FRAMES`], made on first use.
    silence: Option<[Vec<u8>; 4]>,
    failed: bool,
}

impl<W: Write> std::fmt::Debug for OggOpusWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusWriter")
            .field("serial", &self.serial)
            .field("granule", &self.granule)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream with Ogg serial number `serial` (any value; unique per stream of a
    /// file) and writes its identification header page to `out`.
    ///
    /// Errors: [`MediaError::UnsupportedChannels`] unless `header.channels` is 1 or 2;
    /// [`MediaError::Io`] if `out` fails.
    pub fn new(out: W, serial: u32, header: &OggOpusHeader) -> Result<Self, MediaError> {
        crate::check_channels(u16::from(header.channels))?;
        let mut w = OggOpusWriter {
            pages: PacketWriter::new(out),
            serial,
            channels: u16::from(header.channels),
            granule: 0,
            page_start: 0,
            page_frames: u64::from(OPUS_RATE),
            pending: None,
            silence: None,
            failed: false,
        };
        w.put(header.id_packet(), 0, PacketWriteEndInfo::EndPage)?;
        w.pending = Some(Pending {
            data: header.comment_packet(),
            granule: 0,
            end_page: true,
        });
        Ok(w)
    }

    /// Ends pages once they hold `ms` of audio (default 1000 ms, at least 20 ms): the most a
    /// crash can lose, and the memory the writer holds.
    pub fn set_page_duration(&mut self, ms: u32) {
        self.page_frames = u64::from(ms.max(20)) * u64::from(OPUS_RATE) / 1000;
    }

    /// The stream's position: 48 kHz samples through the last packet written (including any
    /// pre-skip), which is the granule position its page will carry.
    pub fn granule_position(&self) -> u64 {
        self.granule
    }

    /// Appends one Opus packet (RFC 6716; e.g. an RTP payload, RFC 7587) and returns its
    /// duration in 48 kHz samples.
    ///
    /// Errors: [`MediaError::InvalidOpusPacket`] for a packet whose TOC does not parse or that
    /// is empty or longer than [`MAX_PACKET_BYTES`] (nothing is written); [`MediaError::Io`]
    /// if the output fails, and for every call after such a failure.
    pub fn write_packet(&mut self, packet: &[u8]) -> Result<u64, MediaError> {
        let frames = match packet_frames(packet) {
            Some(n) if packet.len() <= MAX_PACKET_BYTES => n as u64,
            _ => return Err(MediaError::InvalidOpusPacket { len: packet.len() }),
        };
        self.append(packet.to_vec(), frames)?;
        Ok(frames)
    }

    /// Appends `frames` samples (48 kHz) of silence as Opus packets of 20, 10, 5 and 2.5 ms,
    /// so the audio written next plays at its own time. Returns the samples written: `frames`
    /// rounded down to a multiple of 120 (2.5 ms); callers that track time keep the remainder.
    ///
    /// Errors: as [`write_packet`](Self::write_packet).
    pub fn write_silence(&mut self, frames: u64) -> Result<u64, MediaError> {
        if self.silence.is_none() {
            self.silence = Some(silence_packets(self.channels)?);
        }
        let mut left = frames;
        for (i, &size) in SILENCE_FRAMES.iter().enumerate() {
            while left >= size {
                let data = self
                    .silence
                    .as_ref()
                    .map(|s| s[i].clone())
                    .unwrap_or_default();
                self.append(data, size)?;
                left -= size;
            }
        }
        Ok(frames - left)
    }

    /// Ends the current page now and hands it to the output (e.g. before a pause, so what was
    /// recorded is on disk), then flushes the output.
    ///
    /// Errors: [`MediaError::Io`].
    pub fn flush(&mut self) -> Result<(), MediaError> {
        self.check()?;
        if let Some(p) = self.pending.take() {
            self.page_start = p.granule;
            self.put(p.data, p.granule, PacketWriteEndInfo::EndPage)?;
        }
        let r = self.pages.inner_mut().flush();
        self.io(r)
    }

    /// Writes the last page with the end-of-stream flag, flushes and returns the output.
    ///
    /// Errors: [`MediaError::Io`] (the output is lost with the writer; what reached it before
    /// stays readable).
    pub fn finish(mut self) -> Result<W, MediaError> {
        self.check()?;
        if self.pending.is_none() {
            // Everything was flushed, and the flag needs a packet to ride on: 2.5 ms of
            // silence (a zero-length packet would be read as a lost one).
            self.write_silence(SILENCE_FRAMES[3])?;
        }
        if let Some(p) = self.pending.take() {
            self.put(p.data, p.granule, PacketWriteEndInfo::EndStream)?;
        }
        let r = self.pages.inner_mut().flush();
        self.io(r)?;
        Ok(self.pages.into_inner())
    }

    /// The output, as far as it was written (e.g. to close a file after an error).
    pub fn into_inner(self) -> W {
        self.pages.into_inner()
    }

    fn append(&mut self, data: Vec<u8>, frames: u64) -> Result<(), MediaError> {
        self.check()?;
        if let Some(p) = self.pending.take() {
            let end = if p.end_page || p.granule - self.page_start >= self.page_frames {
                self.page_start = p.granule;
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.put(p.data, p.granule, end)?;
        }
        self.granule += frames;
        self.pending = Some(Pending {
            data,
            granule: self.granule,
            end_page: false,
        });
        Ok(())
    }

    fn put(
        &mut self,
        data: Vec<u8>,
        granule: u64,
        end: PacketWriteEndInfo,
    ) -> Result<(), MediaError> {
        let r = self.pages.write_packet(data, self.serial, end, granule);
        self.io(r)
    }

    fn io(&mut self, r: std::io::Result<()>) -> Result<(), MediaError> {
        r.map_err(|e| {
            self.failed = true;
            MediaError::Io {
                kind: e.kind(),
                message: e.to_string(),
            }
        })
    }

    fn check(&self) -> Result<(), MediaError> {
        if self.failed {
            return Err(MediaError::Io {
                kind: std::io::ErrorKind::Other,
                message: "an earlier write failed".into(),
            });
        }
        Ok(())
    }
}

/// Opus packets of digital silence for each of [`SILENCE_FRAMES`], from libopus itself (a
/// fresh encoder per size, CELT at these sizes), so they are valid for every decoder.
fn silence_packets(channels: u16) -> Result<[Vec<u8>; 4], MediaError> {
    let mut out: [Vec<u8>; 4] = Default::default();
    let zeros = [0i16; 960 * 2];
    let mut buf = [0u8; MAX_PACKET_BYTES];
    for (slot, &size) in out.iter_mut().zip(SILENCE_FRAMES.iter()) {
        let mut enc = libopus::Encoder::new(OPUS_RATE, channels, Application::Audio)?;
        enc.set_bitrate(32_000)?;
        let n = enc.encode(&zeros[..size as usize * usize::from(channels)], &mut buf)?;
        *slot = buf[..n].to_vec();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OPUS_FRAME_20MS, OpusDecoder, OpusEncoder};
    use ogg::reading::PacketReader;
    use std::io::Cursor;

    fn speechlike(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((i as f32 * 0.031).sin() * 8000.0 + (i as f32 * 0.0071).sin() * 4000.0) as i16
            })
            .collect()
    }

    fn encoded(frames20: usize) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(1, Some(32_000)).unwrap();
        let pcm = speechlike(frames20 * OPUS_FRAME_20MS);
        let mut buf = [0u8; MAX_PACKET_BYTES];
        pcm.chunks(OPUS_FRAME_20MS)
            .map(|c| {
                let n = enc.encode(c, &mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect()
    }

    /// (packet, granule position of its page, last packet of its page, last page of the stream)
    fn read_all(bytes: &[u8]) -> Vec<(Vec<u8>, u64, bool, bool)> {
        let mut r = PacketReader::new(Cursor::new(bytes));
        let mut v = Vec::new();
        while let Ok(Some(p)) = r.read_packet() {
            v.push((
                p.data.clone(),
                p.absgp_page(),
                p.last_in_page(),
                p.last_in_stream(),
            ));
        }
        v
    }

    #[test]
    fn headers_packets_and_granules_follow_rfc_7845() {
        let packets = encoded(150);
        let mut h = OggOpusHeader::new(1, 16_000);
        h.pre_skip = 312;
        h.comments.push(("TITLE".into(), "call".into()));
        let mut w = OggOpusWriter::new(Vec::new(), 7, &h).unwrap();
        for p in &packets {
            assert_eq!(w.write_packet(p).unwrap(), 960);
        }
        let bytes = w.finish().unwrap();
        let got = read_all(&bytes);
        assert_eq!(got.len(), 2 + packets.len());
        // Identification header alone on page 0, comment header ending page 1, both granule 0.
        assert_eq!(&got[0].0[..8], b"OpusHead");
        assert_eq!(got[0].0[9], 1);
        assert_eq!(u16::from_le_bytes([got[0].0[10], got[0].0[11]]), 312);
        assert_eq!(
            u32::from_le_bytes(got[0].0[12..16].try_into().unwrap()),
            16_000
        );
        assert!(got[0].2 && got[0].1 == 0);
        assert_eq!(&got[1].0[..8], b"OpusTags");
        assert!(got[1].2 && got[1].1 == 0);
        assert!(got[1].0.windows(10).any(|w| w == b"TITLE=call"));
        // The audio packets come back unchanged; each page's granule position is the samples
        // through its last packet; pages hold about a second; only the last page ends the stream.
        let mut through = 0u64;
        let mut pages = 0;
        for (i, (data, gp, last_in_page, eos)) in got[2..].iter().enumerate() {
            assert_eq!(data, &packets[i]);
            through += 960;
            if *last_in_page {
                pages += 1;
                assert_eq!(*gp, through);
            }
            assert_eq!(*eos, i + 1 == packets.len());
        }
        assert_eq!(pages, 3);
    }

    #[test]
    fn silence_fills_a_gap_exactly_and_decodes_to_silence() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, &OggOpusHeader::new(1, 48_000)).unwrap();
        // 1 s + 17.5 ms + a remainder below 2.5 ms that cannot be written.
        assert_eq!(w.write_silence(48_000 + 840 + 50).unwrap(), 48_840);
        assert_eq!(w.granule_position(), 48_840);
        let bytes = w.finish().unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut out = [0i16; 5760];
        let mut total = 0;
        for (data, ..) in &read_all(&bytes)[2..] {
            let n = dec.decode(data, &mut out).unwrap();
            assert!(
                out[..n].iter().all(|s| s.abs() <= 2),
                "silence decodes to silence"
            );
            total += n;
        }
        assert_eq!(total, 48_840);
    }

    #[test]
    fn stereo_silence_is_stereo() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, &OggOpusHeader::new(2, 48_000)).unwrap();
        w.write_silence(960).unwrap();
        let bytes = w.finish().unwrap();
        let pkt = &read_all(&bytes)[2].0;
        assert_eq!(pkt[0] & 0x04, 0x04, "TOC stereo flag");
    }

    #[test]
    fn bad_packets_are_refused_and_nothing_is_written() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, &OggOpusHeader::new(1, 48_000)).unwrap();
        assert!(matches!(
            w.write_packet(&[]),
            Err(MediaError::InvalidOpusPacket { len: 0 })
        ));
        // Code 3 (arbitrary frame count) with a count byte of 0 frames is malformed.
        assert!(w.write_packet(&[0xfb, 0x00]).is_err());
        assert!(w.write_packet(&vec![0xf8; MAX_PACKET_BYTES + 1]).is_err());
        assert_eq!(w.granule_position(), 0);
        assert!(OggOpusWriter::new(Vec::new(), 1, &OggOpusHeader::new(3, 48_000)).is_err());
    }

    /// A writer that accepts `room` bytes, then fails as a full disk does.
    struct Full {
        data: Vec<u8>,
        room: usize,
    }
    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.data.len() >= self.room {
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = buf.len().min(self.room - self.data.len());
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_fails_every_later_call_and_leaves_the_pages_before_it_readable() {
        let packets = encoded(300);
        let out = Full {
            data: Vec::new(),
            room: 20_000,
        };
        let mut w = OggOpusWriter::new(out, 1, &OggOpusHeader::new(1, 48_000)).unwrap();
        let mut failed_at = None;
        for (i, p) in packets.iter().enumerate() {
            if let Err(e) = w.write_packet(p) {
                assert!(matches!(e, MediaError::Io { .. }), "{e}");
                failed_at = Some(i);
                break;
            }
        }
        let failed_at = failed_at.expect("the disk filled");
        assert!(w.write_packet(&packets[0]).is_err());
        assert!(w.flush().is_err());
        let bytes = w.into_inner().data;
        let got = read_all(&bytes);
        assert!(
            got.len() > 2 + 50,
            "at least the first second is readable: {}",
            got.len()
        );
        assert!(got.len() - 2 <= failed_at);
        for (i, (data, ..)) in got[2..].iter().enumerate() {
            assert_eq!(data, &packets[i]);
        }
    }

    #[test]
    fn flush_ends_a_page_and_finish_after_flush_still_marks_the_end() {
        let packets = encoded(10);
        let mut w = OggOpusWriter::new(Vec::new(), 1, &OggOpusHeader::new(1, 48_000)).unwrap();
        for p in &packets {
            w.write_packet(p).unwrap();
        }
        w.flush().unwrap();
        let bytes = w.finish().unwrap();
        let got = read_all(&bytes);
        // The flushed page ends at the tenth packet; the flag rides on 2.5 ms of silence.
        assert_eq!(got.len(), 2 + 11);
        assert!(got[11].2 && got[11].1 == 9600 && !got[11].3);
        assert!(got[12].3 && got[12].1 == 9720);
    }
}
