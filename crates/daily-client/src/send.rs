//! The send half of a published track: 10 ms PCM chunks from a source, resampled to 48 kHz,
//! gathered into 20 ms Opus frames (RFC 7587) and handed to the network task as RTP payloads.
//!
//! The hand-off is a wait-free SPSC ring of fixed-size frames (no allocation on the clock
//! thread) plus an `AtomicWaker` that wakes the network task.

use crate::source::To48k;
use daily_media::{MAX_PACKET_BYTES, OPUS_FRAME_20MS, OPUS_INPUT_RATES, OpusApplication, OpusEncoder};
use futures_util::task::AtomicWaker;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// Encoded frames the ring holds (320 ms): the network task normally drains it within a tick.
const OUT_RING: usize = 16;

/// libopus encoder complexity (0..=10, libopus's default is 10 here). Encoding is most of a
/// bot's CPU, and hundreds of bots share a machine. Measured here on real speech at 64 kbit/s
/// (AUDIO), encode per 20 ms frame (ctypes, libopus 1.3.1, four runs per setting) and SNR
/// through the codec (benches/README.md, scale section): 16 kHz input 60.9-66.8 µs / 17.19 dB
/// at 4, 91.6-103.1 µs / 17.30 dB at 5, 138.3-143.2 µs at 10; 48 kHz input 88.5-93.4 µs at 4,
/// 115.4-128.7 µs at 5. Complexity 5 is where libopus turns on CELT's pitch pre-filter search
/// (celt_encoder.c): 37-55 % more encoding time than 4 here, for 0.1 dB on speech.
/// libwebrtc uses 5 on mobile devices. Those figures predate the bundled libopus 1.6.1 (issue
/// 18), which encodes at complexity 4 with 3-10 % more instructions than 1.3.1
/// (benches/README.md, "Opus: bundled libopus 1.6.1 vs Debian's 1.3.1").
pub(crate) const ENCODER_COMPLEXITY: u8 = 4;

/// Reported send loss (%, the worst 2 s interval of the last 30 s, rounded up) from which the
/// encoder carries in-band FEC. Below it, Opus PLC covers the odd lost packet, and FEC would
/// cost about 4 times the encoding CPU (hybrid mode at [`FEC_COMPLEXITY`]). When any reported
/// loss turned FEC on, a few datagrams dropped by an overloaded machine switched it on in the
/// bots sending through it, and their extra CPU kept the machine overloaded (the scale
/// benchmark at 100 pairs, benches/README.md).
const FEC_MIN_LOSS_PCT: u8 = 2;

/// Complexity while in-band FEC is on (the lowest at which libopus 1.3 produced FEC-carrying
/// hybrid packets for speech here; `tests::in_band_fec_follows_the_reported_loss` checks it,
/// and passes with the bundled 1.6.1 too).
const FEC_COMPLEXITY: u8 = 7;

/// One encoded Opus frame, ready to be put in an RTP packet.
pub(crate) struct OutFrame {
    /// RTP timestamp (48 kHz clock) of the first sample.
    pub rtp_timestamp: u32,
    /// First packet after a gap (RFC 3551 section 4.1: marker bit on talkspurt start).
    pub marker: bool,
    /// RFC 6464 audio level of the frame in -dBov (127 = silence).
    pub level: u8,
    pub len: u16,
    pub payload: [u8; MAX_PACKET_BYTES],
}

/// The network task's end of a send pipe.
pub(crate) struct OutQueue {
    pub ring: rtrb::Consumer<OutFrame>,
    pub signal: Arc<OutSignal>,
}

/// Wakes the network task; set `closed` when the pipe goes away.
#[derive(Default)]
pub(crate) struct OutSignal {
    waker: AtomicWaker,
    closed: AtomicBool,
}

impl OutQueue {
    /// Waits for the next frame; `None` once the pipe is dropped.
    pub(crate) async fn next(&mut self) -> Option<OutFrame> {
        std::future::poll_fn(|cx| {
            if let Ok(f) = self.ring.pop() {
                return std::task::Poll::Ready(Some(f));
            }
            self.signal.waker.register(cx.waker());
            if let Ok(f) = self.ring.pop() {
                return std::task::Poll::Ready(Some(f));
            }
            if self.signal.closed.load(Ordering::Acquire) {
                return std::task::Poll::Ready(None);
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// A pipe's frame ring: the producer for the clock, the queue for the network task.
pub(crate) fn out_queue() -> (rtrb::Producer<OutFrame>, OutQueue) {
    let (p, c) = rtrb::RingBuffer::new(OUT_RING);
    (p, OutQueue { ring: c, signal: Arc::new(OutSignal::default()) })
}

/// Counters shared with the client for stats.
#[derive(Default)]
pub(crate) struct SendStats {
    pub frames_sent: AtomicU64,
    pub frames_dropped: AtomicU64,
    /// Packet loss (%) the remote end reported for this send transport (RTCP receiver reports,
    /// worst 2 s interval of the last 30 s), set by the network-stats sampler. The encoder turns
    /// in-band FEC on, tuned to it, while it is at least [`FEC_MIN_LOSS_PCT`] (RFC 7587
    /// section 3.3).
    pub expected_loss_pct: AtomicU8,
}

pub(crate) struct SendPipe {
    pub id: u64,
    /// Recordings listening to what this pipe sends (`record/tap.rs`).
    pub taps: crate::record::Taps,
    /// Resampler to 48 kHz, or `None` when the encoder takes the source's rate and channel
    /// count as they are (8/12/16/24/48 kHz).
    to48k: Option<To48k>,
    acc: Vec<i16>,
    acc_len: usize,
    encoder: OpusEncoder,
    /// The loss (%) the encoder's FEC is tuned for (0: FEC off).
    fec_loss: u8,
    packet: Vec<u8>,
    rtp_ts: u32,
    gap: bool,
    tx: rtrb::Producer<OutFrame>,
    signal: Arc<OutSignal>,
    stats: Arc<SendStats>,
}

impl Drop for SendPipe {
    fn drop(&mut self) {
        self.signal.closed.store(true, Ordering::Release);
        self.signal.waker.wake();
    }
}

impl SendPipe {
    pub(crate) fn new(
        id: u64,
        source_rate: u32,
        source_channels: u16,
        track_channels: u16,
        bitrate: Option<u32>,
        application: OpusApplication,
        tx: rtrb::Producer<OutFrame>,
        signal: Arc<OutSignal>,
        stats: Arc<SendStats>,
    ) -> Result<SendPipe, crate::ClientError> {
        // Encode at the source's own rate when libopus takes it: no resampler, and libopus does
        // less work (a 16 kHz source: 91 instead of 115 µs per 20 ms frame here).
        let direct = OPUS_INPUT_RATES.contains(&source_rate) && source_channels == track_channels;
        let enc_rate = if direct { source_rate } else { daily_media::OPUS_RATE };
        let mut encoder = OpusEncoder::with_rate(enc_rate, track_channels, bitrate, application)
            .map_err(crate::ClientError::Media)?;
        encoder
            .set_complexity(ENCODER_COMPLEXITY)
            .map_err(crate::ClientError::Media)?;
        Ok(SendPipe {
            id,
            taps: Default::default(),
            to48k: if direct { None } else { Some(To48k::new(source_rate, source_channels, track_channels)?) },
            acc: vec![0; encoder.frame_20ms() * track_channels as usize],
            acc_len: 0,
            encoder,
            fec_loss: 0,
            packet: vec![0; MAX_PACKET_BYTES],
            rtp_ts: rand_u32(),
            gap: true,
            tx,
            signal,
            stats,
        })
    }

    /// 10 ms of source audio (interleaved at the source's rate and channel count).
    pub(crate) fn push_10ms(&mut self, pcm: &[i16]) {
        let out = match self.to48k.as_mut() {
            Some(r) => r.process(pcm),
            None => pcm,
        };
        let n = out.len().min(self.acc.len() - self.acc_len);
        self.acc[self.acc_len..self.acc_len + n].copy_from_slice(&out[..n]);
        self.acc_len += n;
        if self.acc_len == self.acc.len() {
            self.flush();
        }
    }

    /// No audio this tick (a source without auto-silence ran dry): the RTP clock still runs.
    pub(crate) fn idle(&mut self) {
        if self.acc_len > 0 {
            self.acc[self.acc_len..].fill(0);
            self.acc_len = self.acc.len();
            self.flush();
            return;
        }
        self.rtp_ts = self.rtp_ts.wrapping_add((OPUS_FRAME_20MS / 2) as u32);
        self.gap = true;
    }

    fn flush(&mut self) {
        self.acc_len = 0;
        let ts = self.rtp_ts;
        self.rtp_ts = self.rtp_ts.wrapping_add(OPUS_FRAME_20MS as u32);
        let level = daily_media::audio_level_dbov(&self.acc);
        let loss = self.stats.expected_loss_pct.load(Ordering::Relaxed);
        if loss != self.fec_loss {
            // libopus carries in-band FEC only in hybrid mode, which it picks for speech only
            // from complexity 7 (below, FEC is silently not produced): spend that CPU only
            // while loss is reported.
            let fec = loss >= FEC_MIN_LOSS_PCT;
            let complexity = if fec { FEC_COMPLEXITY } else { ENCODER_COMPLEXITY };
            if self.encoder.set_fec(fec, if fec { loss } else { 0 }).is_ok() && self.encoder.set_complexity(complexity).is_ok() {
                self.fec_loss = loss;
            }
        }
        let len = match self.encoder.encode(&self.acc, &mut self.packet) {
            Ok(len) => len,
            Err(_) => {
                self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Ok(mut slot) = self.tx.write_chunk_uninit(1) else {
            // The network task is behind by OUT_RING frames: drop this one.
            self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (a, _) = slot.as_mut_slices();
        let cell = a[0].as_mut_ptr();
        // SAFETY: `cell` is one uninitialised slot we own until commit; every field (the whole
        // payload array: `len` bytes of packet, zeros after) is written before `commit_all`
        // publishes it.
        unsafe {
            std::ptr::addr_of_mut!((*cell).rtp_timestamp).write(ts);
            std::ptr::addr_of_mut!((*cell).marker).write(std::mem::take(&mut self.gap));
            std::ptr::addr_of_mut!((*cell).level).write(level);
            std::ptr::addr_of_mut!((*cell).len).write(len as u16);
            let data = std::ptr::addr_of_mut!((*cell).payload) as *mut u8;
            std::ptr::copy_nonoverlapping(self.packet.as_ptr(), data, len);
            std::ptr::write_bytes(data.add(len), 0, MAX_PACKET_BYTES - len);
            slot.commit_all();
        }
        self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.signal.waker.wake();
    }
}

pub(crate) fn rand_u32() -> u32 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opus TOC configuration numbers (RFC 6716 section 3.1): 12-15 hybrid (SILK + CELT, what
    /// libopus uses to carry in-band FEC for speech at this rate), 16-31 CELT only.
    fn modes(stats: &Arc<SendStats>, loss: u8) -> (usize, usize) {
        let (tx, mut q) = out_queue();
        let mut pipe = SendPipe::new(1, 48_000, 1, 1, Some(64_000), OpusApplication::Audio, tx, q.signal.clone(), stats.clone()).unwrap();
        stats.expected_loss_pct.store(loss, Ordering::Relaxed);
        let speech = speech_48k(480 * 100);
        let (mut hybrid, mut celt) = (0, 0);
        for chunk in speech.chunks_exact(480) {
            pipe.push_10ms(chunk);
            while let Ok(f) = q.ring.pop() {
                match f.payload[0] >> 3 {
                    12..=15 => hybrid += 1,
                    16..=31 => celt += 1,
                    _ => {}
                }
            }
        }
        (hybrid, celt)
    }

    /// The first `n` samples of data/librivox_48k.wav (canonical 44-byte header, mono 16-bit):
    /// real speech, on which libopus's mode choice depends.
    fn speech_48k(n: usize) -> Vec<i16> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/librivox_48k.wav");
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[36..40], b"data");
        bytes[44..].chunks_exact(2).skip(48_000).take(n).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
    }

    #[test]
    fn in_band_fec_follows_the_reported_loss() {
        let stats = Arc::new(SendStats::default());
        let (hybrid, celt) = modes(&stats, 0);
        assert_eq!((hybrid, celt), (0, 50), "no loss reported: CELT only, no FEC");
        let (hybrid, celt) = modes(&stats, 1);
        assert_eq!((hybrid, celt), (0, 50), "1 % loss reported: below the threshold, no FEC");
        let (hybrid, _) = modes(&stats, 5);
        assert!(hybrid >= 45, "5 % loss reported: FEC-carrying hybrid packets, got {hybrid}");
        let (hybrid, celt) = modes(&stats, 0);
        assert_eq!((hybrid, celt), (0, 50), "loss gone: back to CELT");
    }
}
