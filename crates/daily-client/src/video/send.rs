//! The send half of a published video track: an encoder thread that takes the newest frame of
//! its [`VideoSource`], encodes it (VP8, RFC 7741 payload format) at the bitrate the send
//! transport's bandwidth estimate allows, and hands the RTP packets to a network task.
//!
//! Rate and loss rules:
//! - frames come from a one-frame mailbox, so a writer faster than the encoder loses frames
//!   (counted in `frames_skipped`), never memory or latency;
//! - `maxFramerate` (Daily's `sendSettings`) caps the encoded rate;
//! - the packet queue to the network task is bounded; a frame that does not fit is dropped
//!   whole and the next frame is a keyframe, so the receiver never waits on a frame that will
//!   not come;
//! - a source that stops writing has its last frame encoded again every [`KEEPALIVE`], so the
//!   track stays alive for the SFU and receivers (and a keyframe request is still answered);
//! - a keyframe is sent first, and whenever the server asks with PLI or FIR (RFC 4585 section
//!   6.3.1, RFC 5104 section 4.3.1), which it does for each new subscriber; but not again
//!   before the previous one has had time to arrive ([`keyframe_spacing`]): a receiver repeats
//!   its PLI every 300 ms until a keyframe comes, and behind a slow link a keyframe takes
//!   longer than that to cross it, so each repeat made another keyframe, whose packets filled
//!   the bottleneck, were lost and asked for yet another (measured at a 400 kbit/s uplink: 28
//!   keyframes in 14 s, 39 % of frames delivered, 3.4 s behind).

use super::MAX_VIDEO_PAYLOAD;
use super::source::VideoSource;
use crate::ClientError;
use daily_video::rtp::Packetizer;
use daily_video::{EncodedFrame, EncoderConfig, I420Buffer, VIDEO_CLOCK_RATE, VideoEncoder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

/// A source silent this long has its last frame sent again.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(1);
/// Packets waiting for the network task (about a second of 640x360 at Daily's default bitrate).
const PACKET_QUEUE: usize = 256;
/// How long a keyframe request waits for the source's next frame before the last one is
/// encoded again as the keyframe (a source writing at 10 fps or more never waits this long).
const KEYFRAME_WAIT: Duration = Duration::from_millis(100);
/// Frames the frame-rate cap lets through at once after a pause (see `Worker::run`).
const RATE_BURST: f64 = 3.0;
/// Keyframe requests closer together than this are answered by one keyframe (the SFU merges
/// its subscribers' requests over the same span, `KEYFRAME_REQUEST_INTERVAL`).
const KEYFRAME_MIN_SPACING: Duration = Duration::from_millis(300);
/// Lowest bitrate the bandwidth estimate may push the encoder to (bit/s).
pub(crate) const MIN_VIDEO_BITRATE: u32 = 50_000;

/// Keyframe requests by the SSRC they name, set by the transport's RTCP tap
/// (`netstats::ReportTap`) and taken by the encoder thread of that SSRC.
pub(crate) type KeyframeTable = Arc<Mutex<HashMap<u32, Arc<AtomicBool>>>>;

/// What Daily's `publishing.camera.sendSettings` asks of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoSenderConfig {
    /// Highest bitrate (bit/s) of the chosen quality layer (`maxQuality`'s `maxBitrate`).
    pub max_bitrate: u32,
    /// Highest frame rate (frames/s) of that layer.
    pub max_fps: u32,
}

/// Counters of one video sender.
#[derive(Default, Debug)]
pub(crate) struct VideoSendStats {
    pub frames_encoded: AtomicU64,
    pub keyframes: AtomicU64,
    /// Frames written that the encoder never saw (a newer one replaced them) or skipped for
    /// the frame-rate cap.
    pub frames_skipped: AtomicU64,
    /// Encoded frames dropped because the packet queue was full.
    pub frames_dropped: AtomicU64,
    pub bytes: AtomicU64,
    /// The bitrate the encoder is set to (bit/s).
    pub bitrate: AtomicU32,
}

/// The encoder thread and network task of one published video track.
pub(crate) struct VideoSender {
    stop: Arc<AtomicBool>,
    source: VideoSource,
    task: tokio::task::JoinHandle<()>,
    pub stats: Arc<VideoSendStats>,
}

/// The RTP side of the m-line a sender writes to.
pub(crate) struct RtpOut {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub seq: Arc<AtomicU16>,
    pub pt: Arc<AtomicU8>,
    pub connected: watch::Receiver<bool>,
    pub keyframe: Arc<AtomicBool>,
    /// The send transport's bandwidth estimate (bit/s, 0 = none yet).
    pub estimate: Arc<AtomicU32>,
}

impl VideoSender {
    /// Starts encoding `source` onto `out`.
    pub(crate) fn start(rt: &tokio::runtime::Handle, source: VideoSource, cfg: VideoSenderConfig, out: RtpOut) -> Result<VideoSender, ClientError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(VideoSendStats::default());
        let (tx, mut rx) = mpsc::channel::<rtc::rtp::Packet>(PACKET_QUEUE);
        let track = out.track.clone();
        let task = rt.spawn(async move {
            while let Some(p) = rx.recv().await {
                let _ = track.write_rtp(p).await;
            }
        });
        let worker = Worker { source: source.clone(), cfg, out, stop: stop.clone(), stats: stats.clone(), tx };
        std::thread::Builder::new()
            .name("daily-video-enc".into())
            .spawn(move || worker.run())
            .map_err(|e| ClientError::Io(format!("cannot start a video encoder thread: {e}")))?;
        Ok(VideoSender { stop, source, task, stats })
    }

    /// Stops the encoder thread (at its next wake-up, within 100 ms) and the network task.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.source.shared.written.notify_all();
        self.task.abort();
    }
}

impl Drop for VideoSender {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    source: VideoSource,
    cfg: VideoSenderConfig,
    out: RtpOut,
    stop: Arc<AtomicBool>,
    stats: Arc<VideoSendStats>,
    tx: mpsc::Sender<rtc::rtp::Packet>,
}

impl Worker {
    fn run(self) {
        let (w, h) = (self.source.width(), self.source.height());
        let start_bitrate = self.cfg.max_bitrate;
        let mut enc = match VideoEncoder::new(EncoderConfig { width: w, height: h, fps: self.cfg.max_fps.max(1), bitrate_bps: start_bitrate, threads: encoder_threads(w, h) }) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot create the video encoder; the track sends nothing");
                return;
            }
        };
        self.stats.bitrate.store(start_bitrate, Ordering::Relaxed);
        let mut bitrate = start_bitrate;
        let mut frame = I420Buffer::new(w, h);
        let mut encoded = EncodedFrame::default();
        let mut packetizer = Packetizer::new();
        let base = Instant::now();
        let ts_offset = crate::send::rand_u32();
        // The frame-rate cap is a token bucket (`max_fps` tokens a second, at most
        // RATE_BURST saved), not a minimum gap between frames: a writer at exactly the cap
        // whose frames arrive unevenly (a Python thread waiting for the GIL, then writing two
        // at once) keeps every frame, while a faster writer is held to the cap on average.
        let fps = f64::from(self.cfg.max_fps.max(1));
        let (mut credit, mut credit_at) = (RATE_BURST, Instant::now());
        let (mut seen, mut need_key) = (0u64, true);
        // The last keyframe (when, bytes): a request is answered once `keyframe_spacing` at the
        // current bitrate has passed since.
        let mut last_key: Option<(Instant, usize)> = None;
        let key_allowed = |last_key: Option<(Instant, usize)>, bitrate: u32, now: Instant| {
            last_key.is_none_or(|(at, bytes)| now.saturating_duration_since(at) >= keyframe_spacing(bytes, bitrate))
        };
        let shared = self.source.shared.clone();
        loop {
            // The newest frame, or the last one again once the source has been silent for
            // KEEPALIVE, or at once on a keyframe request.
            let captured = {
                let mut g = shared.lock();
                let waited_from = Instant::now();
                loop {
                    if self.stop.load(Ordering::Acquire) {
                        return;
                    }
                    // A keyframe request is answered with the next frame written; only a source
                    // that wrote nothing for KEYFRAME_WAIT has its last frame sent again for it.
                    let asked = self.out.keyframe.load(Ordering::Acquire)
                        && g.at.elapsed() >= KEYFRAME_WAIT
                        && key_allowed(last_key, bitrate, Instant::now());
                    if g.seq != 0 && (g.seq != seen || asked || waited_from.elapsed() >= KEEPALIVE) {
                        break;
                    }
                    g = shared.written.wait_timeout(g, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
                }
                if g.seq > seen + 1 && seen != 0 {
                    self.stats.frames_skipped.fetch_add(g.seq - seen - 1, Ordering::Relaxed);
                }
                // A frame sent again (keep-alive, or a keyframe asked for before a new frame
                // came) is a new RTP frame: it gets the time it is sent, not its capture time
                // (two frames with one RTP timestamp would be one frame to a receiver).
                let at = if g.seq == seen { Instant::now() } else { g.at };
                seen = g.seq;
                frame.as_bytes_mut().copy_from_slice(g.frame.as_bytes());
                at
            };
            let now = Instant::now();
            credit = (credit + now.duration_since(credit_at).as_secs_f64() * fps).min(RATE_BURST);
            credit_at = now;
            // A request made too soon stays pending: it is answered once the spacing has passed.
            let asked = self.out.keyframe.load(Ordering::Acquire) && key_allowed(last_key, bitrate, now);
            if !asked && credit < 1.0 {
                self.stats.frames_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            credit = (credit - 1.0).max(0.0);
            if self.out.pt.load(Ordering::Acquire) == 0 || !*self.out.connected.borrow() {
                need_key = true; // the first frame a receiver gets must be a keyframe
                continue;
            }
            let estimate = self.out.estimate.load(Ordering::Relaxed);
            let target = if estimate == 0 { self.cfg.max_bitrate } else { estimate.clamp(MIN_VIDEO_BITRATE, self.cfg.max_bitrate) };
            // Re-tune on changes over 5 %: libvpx applies a new target at the next frame.
            if target.abs_diff(bitrate) > bitrate / 20 {
                match enc.set_bitrate(target) {
                    Ok(()) => {
                        bitrate = target;
                        self.stats.bitrate.store(target, Ordering::Relaxed);
                    }
                    Err(e) => tracing::debug!(error = %e, target, "the encoder refused a new bitrate"),
                }
            }
            let force = need_key || (asked && self.out.keyframe.swap(false, Ordering::AcqRel));
            let micros = captured.saturating_duration_since(base).as_micros() as u64;
            let pts = ts_offset.wrapping_add((micros * u64::from(VIDEO_CLOCK_RATE) / 1_000_000) as u32);
            match enc.encode(&frame, pts, force, &mut encoded) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "video encode failed");
                    continue;
                }
            }
            need_key = false;
            if !self.send(&mut packetizer, &encoded, pts) {
                self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                need_key = true;
                continue;
            }
            self.stats.frames_encoded.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes.fetch_add(encoded.data.len() as u64, Ordering::Relaxed);
            if encoded.keyframe {
                self.stats.keyframes.fetch_add(1, Ordering::Relaxed);
                last_key = Some((now, encoded.data.len()));
            }
        }
    }

    /// Packetizes one frame onto the network queue; `false` (nothing queued) when it does not
    /// fit whole.
    fn send(&self, packetizer: &mut Packetizer, f: &EncodedFrame, pts: u32) -> bool {
        let mut packets = Vec::with_capacity(f.data.len() / MAX_VIDEO_PAYLOAD + 1);
        packetizer.packetize(&f.data, f.keyframe, MAX_VIDEO_PAYLOAD, |payload, marker| {
            packets.push((bytes::Bytes::copy_from_slice(payload), marker));
        });
        if self.tx.capacity() < packets.len() {
            return false;
        }
        let pt = self.out.pt.load(Ordering::Acquire);
        for (payload, marker) in packets {
            let p = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker,
                    payload_type: pt,
                    sequence_number: self.out.seq.fetch_add(1, Ordering::Relaxed),
                    timestamp: pts,
                    ssrc: self.out.ssrc,
                    ..Default::default()
                },
                payload,
            };
            if self.tx.try_send(p).is_err() {
                return false;
            }
        }
        true
    }
}

/// How long after a keyframe of `bytes` another may be sent when the bitrate is `bitrate_bps`
/// (now: the estimate may have fallen since): twice the time the keyframe takes to leave at
/// that rate, at least [`KEYFRAME_MIN_SPACING`]. Keyframes then take at most half the rate
/// however often they are asked for.
fn keyframe_spacing(bytes: usize, bitrate_bps: u32) -> Duration {
    let send_time = Duration::from_secs_f64(bytes as f64 * 8.0 / f64::from(bitrate_bps.max(1)));
    (send_time * 2).max(KEYFRAME_MIN_SPACING)
}

/// Encoder threads: one at every size. libvpx's VP8 worker threads busy-wait for each other
/// (they never yield on Linux), so on a loaded 2-core machine two threads cost 29-58 ms of CPU
/// per 1280x720 frame against 5.3 ms with one (`benches/CODEC_CHOICE.md`); on an idle one they
/// were only 29 % faster in wall time.
fn encoder_threads(_width: u32, _height: u32) -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use super::{KEYFRAME_MIN_SPACING, keyframe_spacing};
    use std::time::Duration;

    #[test]
    fn keyframes_are_spaced_by_twice_their_send_time() {
        // 20 KB at 680 kbit/s leaves in 235 ms: the floor applies below 150 ms.
        assert_eq!(keyframe_spacing(5_000, 680_000), KEYFRAME_MIN_SPACING);
        assert_eq!(keyframe_spacing(20_000, 680_000).as_millis(), 470);
        // The same keyframe once the estimate has fallen to 150 kbit/s: over 2 s.
        assert!(keyframe_spacing(20_000, 150_000) > Duration::from_secs(2));
        assert_eq!(keyframe_spacing(20_000, 0).as_secs(), 320_000);
    }
}
