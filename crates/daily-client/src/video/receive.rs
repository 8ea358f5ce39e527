//! The receive half of a remote video track: RTP payloads are assembled into frames on the
//! network task ([`VideoFeed`], RFC 7741), complete frames go to a decoder thread through a
//! small bounded queue, and each decoded picture is converted once per colour format asked for
//! and handed to the renderers.
//!
//! Loss: a frame with a missing packet that NACK/RTX did not repair in time is dropped, delta
//! frames are refused until the next keyframe, and a PLI asks the sender for one (RFC 4585
//! section 6.3.1), at most every [`PLI_INTERVAL`]. A decoder that falls behind finds the queue
//! full: the frame is dropped and a keyframe asked for, so the delay never grows.

use super::source::VideoFrameRef;
use daily_video::rtp::{AssembledFrame, FrameAssembler};
use daily_video::{ColorFormat, I420Buffer, VideoDecoder};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Frames waiting for the decoder (about 130 ms at 30 fps).
const DECODE_QUEUE: usize = 4;
/// How long frames behind a missing packet wait for its retransmission (NACK, answered by the
/// SFU on RTX) before the packet is given up and a keyframe asked for: webrtc-rs's NACK
/// generator runs every 100 ms, so a repair takes up to that plus a round trip.
pub(crate) const REPAIR_WAIT: Duration = Duration::from_millis(200);
/// PLIs are sent at most this often: a keyframe takes about a round trip and an encode to come.
pub(crate) const PLI_INTERVAL: Duration = Duration::from_millis(300);

/// A renderer's callback.
pub(crate) type VideoSink = Arc<dyn Fn(&VideoFrameRef<'_>) + Send + Sync>;

/// A video renderer the application set (`set_video_renderer`).
pub(crate) struct VideoRendererSpec {
    pub participant_id: String,
    pub video_source: String,
    pub format: ColorFormat,
    pub sink: VideoSink,
}

/// Counters of one received video track.
#[derive(Default, Debug)]
pub(crate) struct VideoRecvStats {
    pub packets: AtomicU64,
    /// Packets that arrived after a later one: retransmissions answering our NACKs (RTX,
    /// unwrapped by webrtc-rs), or packets the network reordered.
    pub packets_late: AtomicU64,
    pub frames_assembled: AtomicU64,
    pub frames_decoded: AtomicU64,
    /// Frames dropped because the decoder queue was full.
    pub frames_dropped: AtomicU64,
    pub plis: AtomicU64,
    pub keyframes: AtomicU64,
}

/// The receive pipeline of one remote video track, as the client's `Media` keeps it.
pub(crate) struct VideoRecv {
    renderers: Arc<Mutex<Vec<(ColorFormat, VideoSink)>>>,
    closed: Arc<AtomicBool>,
    pub stats: Arc<VideoRecvStats>,
}

/// The network task's end: the assembler and the queue to the decoder.
pub(crate) struct VideoFeed {
    assembler: FrameAssembler,
    tx: SyncSender<AssembledFrame>,
    /// Set by the decoder thread when it cannot decode (it needs a keyframe).
    need_key: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    last_pli: Option<Instant>,
    /// The highest sequence number seen (for `packets_late`).
    highest: Option<u16>,
    stats: Arc<VideoRecvStats>,
}

impl VideoRecv {
    /// Starts the decoder thread. `None` when the decoder or thread cannot be created.
    pub(crate) fn start() -> Option<(VideoRecv, VideoFeed)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(DECODE_QUEUE);
        let renderers: Arc<Mutex<Vec<(ColorFormat, VideoSink)>>> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let need_key = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(VideoRecvStats::default());
        let decoder = match VideoDecoder::new() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot create a video decoder");
                return None;
            }
        };
        let d = Decoder { rx, decoder, renderers: renderers.clone(), closed: closed.clone(), need_key: need_key.clone(), stats: stats.clone() };
        if let Err(e) = std::thread::Builder::new().name("daily-video-dec".into()).spawn(move || d.run()) {
            tracing::error!(error = %e, "cannot start a video decoder thread");
            return None;
        }
        let repair_wait = (REPAIR_WAIT.as_millis() as u32) * (daily_video::VIDEO_CLOCK_RATE / 1000);
        let feed = VideoFeed { assembler: FrameAssembler::with_repair_wait(repair_wait), tx, need_key, closed: closed.clone(), last_pli: None, highest: None, stats: stats.clone() };
        Some((VideoRecv { renderers, closed, stats }, feed))
    }

    /// Adds a renderer: frames decoded from now on reach it in `format`.
    pub(crate) fn add_renderer(&self, format: ColorFormat, sink: VideoSink) {
        self.renderers.lock().unwrap_or_else(|e| e.into_inner()).push((format, sink));
    }

    /// Stops the decoder thread (within 200 ms) and the feed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

impl VideoFeed {
    /// One RTP packet of the track. Returns `true` when a PLI should be sent now.
    pub(crate) fn push(&mut self, now: Instant, seq: u16, rtp_ts: u32, marker: bool, payload: &[u8]) -> bool {
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        match self.highest {
            Some(h) if seq.wrapping_sub(h) >= 0x8000 => {
                self.stats.packets_late.fetch_add(1, Ordering::Relaxed);
            }
            _ => self.highest = Some(seq),
        }
        let mut next = self.assembler.push(seq, rtp_ts, marker, payload);
        // One packet can complete several frames (a retransmission filling a gap).
        while let Some(frame) = next.take() {
            next = self.assembler.poll();
            self.stats.frames_assembled.fetch_add(1, Ordering::Relaxed);
            if frame.keyframe {
                self.stats.keyframes.fetch_add(1, Ordering::Relaxed);
            }
            match self.tx.try_send(frame) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    self.need_key.store(true, Ordering::Release);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        let wanted = self.assembler.needs_keyframe() || self.need_key.load(Ordering::Acquire);
        if wanted && self.last_pli.is_none_or(|t| now.duration_since(t) >= PLI_INTERVAL) {
            self.last_pli = Some(now);
            self.need_key.store(false, Ordering::Release);
            self.stats.plis.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Whether the pipeline was closed (the track is no longer rendered).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether this feed is the network end of `recv`.
    pub(crate) fn belongs_to(&self, recv: &VideoRecv) -> bool {
        Arc::ptr_eq(&self.closed, &recv.closed)
    }
}

struct Decoder {
    rx: Receiver<AssembledFrame>,
    decoder: VideoDecoder,
    renderers: Arc<Mutex<Vec<(ColorFormat, VideoSink)>>>,
    closed: Arc<AtomicBool>,
    need_key: Arc<AtomicBool>,
    stats: Arc<VideoRecvStats>,
}

impl Decoder {
    fn run(mut self) {
        let mut picture = I420Buffer::new(2, 2);
        // One conversion buffer per colour format in use.
        let mut converted: Vec<(ColorFormat, Vec<u8>)> = Vec::new();
        let mut sinks: Vec<(ColorFormat, VideoSink)> = Vec::new();
        let mut unwrap = TimestampUnwrap::default();
        loop {
            let frame = match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => {
                    if self.closed.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            match self.decoder.decode(&frame.data, &mut picture) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "video frame not decodable; asking for a keyframe");
                    self.need_key.store(true, Ordering::Release);
                    continue;
                }
            }
            self.stats.frames_decoded.fetch_add(1, Ordering::Relaxed);
            let timestamp_us = unwrap.micros(frame.rtp_timestamp);
            sinks.clear();
            sinks.extend(self.renderers.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
            for (format, sink) in &sinks {
                let buf = match converted.iter().position(|(f, _)| f == format) {
                    Some(i) => &mut converted[i].1,
                    None => {
                        converted.push((*format, Vec::new()));
                        &mut converted.last_mut().expect("just pushed").1
                    }
                };
                if let Err(e) = daily_video::from_i420(&picture, *format, buf) {
                    tracing::warn!(error = %e, "colour conversion failed");
                    continue;
                }
                sink(&VideoFrameRef { data: buf, width: picture.width(), height: picture.height(), timestamp_us, color_format: *format });
            }
            // Conversions are redone for every frame; buffers of formats no longer asked for go.
            converted.retain(|(f, _)| sinks.iter().any(|(g, _)| g == f));
        }
    }
}

/// RTP timestamps (32-bit, 90 kHz) as microseconds since the first frame, unwrapped.
#[derive(Default)]
struct TimestampUnwrap {
    first: Option<u32>,
    last: u32,
    cycles: i64,
}

impl TimestampUnwrap {
    fn micros(&mut self, ts: u32) -> i64 {
        let first = *self.first.get_or_insert(ts);
        if ts < self.last && self.last - ts > u32::MAX / 2 {
            self.cycles += 1;
        } else if ts > self.last && ts - self.last > u32::MAX / 2 && self.cycles > 0 {
            self.cycles -= 1;
        }
        self.last = ts;
        let ext = self.cycles * (1i64 << 32) + i64::from(ts) - i64::from(first);
        ext * 1_000_000 / i64::from(daily_video::VIDEO_CLOCK_RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::TimestampUnwrap;

    #[test]
    fn timestamps_unwrap_across_the_32_bit_boundary() {
        let mut u = TimestampUnwrap::default();
        assert_eq!(u.micros(u32::MAX - 2999), 0);
        assert_eq!(u.micros(u32::MAX), 2999 * 1_000_000 / 90_000);
        assert_eq!(u.micros(2999), 5999 * 1_000_000 / 90_000); // wrapped
    }
}
