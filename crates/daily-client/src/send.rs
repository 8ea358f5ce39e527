//! The send half of a published track: 10 ms PCM chunks from a source, resampled to 48 kHz,
//! gathered into 20 ms Opus frames (RFC 7587) and handed to the network task as RTP payloads.

use crate::source::To48k;
use daily_media::{OPUS_FRAME_20MS, OpusApplication, OpusEncoder};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One encoded Opus frame, ready to be put in an RTP packet.
#[derive(Debug)]
pub(crate) struct OutFrame {
    /// RTP timestamp (48 kHz clock) of the first sample.
    pub rtp_timestamp: u32,
    /// First packet after a gap (RFC 3551 section 4.1: marker bit on talkspurt start).
    pub marker: bool,
    pub payload: bytes::Bytes,
}

/// Counters shared with the client for stats.
#[derive(Default)]
pub(crate) struct SendStats {
    pub frames_sent: AtomicU64,
    pub frames_dropped: AtomicU64,
}

pub(crate) struct SendPipe {
    pub id: u64,
    to48k: To48k,
    acc: Vec<i16>,
    acc_len: usize,
    encoder: OpusEncoder,
    packet: Vec<u8>,
    rtp_ts: u32,
    gap: bool,
    tx: tokio::sync::mpsc::Sender<OutFrame>,
    stats: Arc<SendStats>,
}

impl SendPipe {
    pub(crate) fn new(
        id: u64,
        source_rate: u32,
        source_channels: u16,
        track_channels: u16,
        bitrate: Option<u32>,
        application: OpusApplication,
        tx: tokio::sync::mpsc::Sender<OutFrame>,
        stats: Arc<SendStats>,
    ) -> Result<SendPipe, crate::ClientError> {
        let encoder = OpusEncoder::with_application(track_channels, bitrate, application)
            .map_err(|e| crate::ClientError::Media(e.to_string()))?;
        Ok(SendPipe {
            id,
            to48k: To48k::new(source_rate, source_channels, track_channels)?,
            acc: vec![0; OPUS_FRAME_20MS * track_channels as usize],
            acc_len: 0,
            encoder,
            packet: vec![0; 1500],
            rtp_ts: rand_u32(),
            gap: true,
            tx,
            stats,
        })
    }

    /// 10 ms of source audio (interleaved at the source's rate and channel count).
    pub(crate) fn push_10ms(&mut self, pcm: &[i16], _now_us: u64) {
        let out = self.to48k.process(pcm);
        let n = out.len();
        self.acc[self.acc_len..self.acc_len + n].copy_from_slice(out);
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
        match self.encoder.encode(&self.acc, &mut self.packet) {
            Ok(len) => {
                let frame = OutFrame {
                    rtp_timestamp: ts,
                    marker: std::mem::take(&mut self.gap),
                    payload: bytes::Bytes::copy_from_slice(&self.packet[..len]),
                };
                if self.tx.try_send(frame).is_ok() {
                    self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub(crate) fn rand_u32() -> u32 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
