//! Network statistics: daily-python's `get_network_stats()` and `on_network_stats_updated`.
//!
//! # Shape
//!
//! The dict Daily's SDKs return (daily-js `DailyNetworkStats`, which daily-python passes
//! through):
//!
//! ```text
//! {"quality": 0..=100, "threshold": "good" | "low" | "veryLow",
//!  "stats": {"latest": {"timestamp": ms since the Unix epoch,
//!                       "recvBitsPerSecond", "sendBitsPerSecond", "availableOutgoingBitrate",
//!                       "networkRoundTripTime" (s),
//!                       "audioRecvBitsPerSecond", "audioSendBitsPerSecond",
//!                       "audioRecvPacketLoss", "audioSendPacketLoss" (fractions 0..=1),
//!                       "audioRecvJitter", "audioSendJitter" (s),
//!                       "videoRecvBitsPerSecond", "videoSendBitsPerSecond",
//!                       "videoRecvPacketLoss", "videoSendPacketLoss", "video…Jitter",
//!                       "totalSendPacketLoss", "totalRecvPacketLoss"},
//!            "worstAudioRecvPacketLoss", "worstAudioSendPacketLoss",
//!            "worstVideoRecvPacketLoss", "worstVideoSendPacketLoss",
//!            "worstAudioRecvJitter", "worstAudioSendJitter", "worstVideo…Jitter",
//!            "averageNetworkRoundTripTime" (s)}}
//! ```
//!
//! Before the first interval (and after leaving) it is `{"quality": 100, "threshold": "good",
//! "stats": {"latest": {}}}`, as daily-python returns. A figure that cannot be known for an
//! interval is `null`, as Daily documents: loss when nothing was sent or received, RTT before
//! the first report, `availableOutgoingBitrate` while no video is sent (the send transport's
//! congestion controller estimates only from the transport-wide feedback about video packets;
//! with video it is that estimate, bit/s). Audio and video figures are computed alike, each from
//! its own streams (video jitter on the 90 kHz clock); `total…PacketLoss` and the top-level bit
//! rates cover both.
//!
//! # Sources
//!
//! Every figure comes from the wire, sampled every [`SAMPLE_INTERVAL`] (Daily: "approximately
//! every two seconds"):
//! - **Send loss, send jitter and RTT** come from the RTCP reception report blocks the room
//!   server sends about our streams (RFC 3550 section 6.4.1/6.4.2), read by [`ReportTap`], an
//!   interceptor that only observes. Loss over an interval is Δcumulative-lost / Δextended-
//!   highest-sequence (RFC 3550 appendix A.3); when no new report arrived in the interval, the
//!   report's own "fraction lost" stands in. RTT is `A − LSR − DLSR` (section 6.4.1), with `A`
//!   the report's arrival time; webrtc-rs 0.21's own `remote-inbound-rtp` stats always give an
//!   RTT of 0, which is why we compute it here. Without a published track there is no report,
//!   and the RTT falls back to the ICE candidate pair's STUN round trip, if any. The room server
//!   (str0m) reports on audio every 5 s, so a 2 s interval often has no fresh report.
//! - **Bit rates** are Δbytes (RTP payload, W3C `bytesSent` / `bytesReceived` of the
//!   `outbound-rtp` / `inbound-rtp` stats of webrtc-rs) × 8 / Δt between two samples.
//! - **Receive loss** is Δlost / (Δlost + Δreceived) of `inbound-rtp` (webrtc-rs counts loss as
//!   RFC 3550's cumulative number lost of the receiver reports it generates); receive jitter is
//!   that stream's interarrival jitter.
//!
//! The arithmetic ([`interval`], [`NetStats::update`], [`quality`]) is IO-free and unit-tested;
//! [`collect`] is the thin async part that reads webrtc-rs.
//!
//! # Quality and threshold
//!
//! Daily documents `threshold` as an assessment "calculated from network stats averaged over an
//! approximately 30-second rolling window" and `quality` as a 0-100 score; it does not publish
//! its formula. Ours, over the last [`WINDOW`] intervals (30 s):
//! - `loss` = the mean over intervals of the larger of send and receive loss;
//!   `rtt` = the mean round-trip time. An unknown figure counts as no evidence of trouble.
//! - `quality = min(q_loss, q_rtt)`, each piecewise linear through
//!   - loss: 0 % → 100, 3 % → 70, 10 % → 40, 25 % → 0;
//!   - RTT: ≤ 300 ms → 100, 400 ms → 70, 800 ms → 40, 2 s → 0.
//! - `threshold` = `"good"` above 70, `"low"` above 40, `"veryLow"` otherwise.
//!
//! The breakpoints come from ITU-T G.1010 (end-user QoS categories), which sets, for
//! conversational voice, packet loss < 3 % and one-way delay < 150 ms preferred, < 400 ms
//! limit: 3 % loss or a 400 ms RTT (200 ms one way, past the preferred bound) ends "good"; 10 %
//! loss — several times the target, beyond what Opus in-band FEC (which repairs isolated single
//! losses, RFC 6716 section 2.1.7) and concealment hide — or an 800 ms RTT (the 400 ms one-way
//! limit) is "veryLow".

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::reception_report::ReceptionReport;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the client samples its transports (Daily: "approximately every two seconds").
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);
/// Intervals the worst/average figures and the quality look back over (30 s at 2 s).
pub(crate) const WINDOW: usize = 15;
/// RTP clock rate of Opus, whatever the sampling rate (RFC 7587 section 4.1): converts
/// RTCP jitter from timestamp units to seconds.
const OPUS_CLOCK_RATE: f64 = 48_000.0;
/// RTP clock rate of video (RFC 7741 section 4.1).
const VIDEO_CLOCK_RATE: f64 = 90_000.0;

/// What the stats are before the first interval, and after leaving (daily-python's value).
pub fn default_stats() -> Value {
    json!({"quality": 100, "threshold": "good", "stats": {"latest": {}}})
}

/// The latest RTCP reception report block the far end sent about one of our SSRCs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RemoteReport {
    /// Extended highest sequence number received (RFC 3550 section 6.4.1).
    pub ext_highest_seq: u32,
    /// Cumulative number of packets lost (24-bit signed on the wire).
    pub cumulative_lost: i64,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Round-trip time from LSR/DLSR, seconds; `None` before the far end has seen an SR.
    pub rtt: Option<f64>,
    /// Reports received for this SSRC so far (tells a fresh report from a repeated one).
    pub count: u64,
}

/// Reception reports about our SSRCs, filled by [`ReportTap`] and read by the sampler.
pub(crate) type ReportTable = Arc<Mutex<BTreeMap<u32, RemoteReport>>>;

/// RFC 3550 section 6.4.1: `RTT = A − LSR − DLSR`, all in the middle 32 bits of NTP time
/// (1/65536 s), where `A` is the report's arrival time as a 64-bit NTP timestamp. `None` when
/// no SR had reached the far end (LSR 0) or the result is negative (clocks not comparable).
pub(crate) fn rtt_from_report(arrival_ntp: u64, lsr: u32, dlsr: u32) -> Option<f64> {
    if lsr == 0 {
        return None;
    }
    let a = (arrival_ntp >> 16) as u32;
    let rtt = a.wrapping_sub(lsr).wrapping_sub(dlsr);
    // A negative RTT wraps to a huge value; anything past half the range is one.
    if rtt > u32::MAX / 2 {
        return None;
    }
    Some(rtt as f64 / 65_536.0)
}

/// The 24-bit two's-complement "cumulative number of packets lost" (RFC 3550 section 6.4.1:
/// it goes negative when duplicates arrive); webrtc-rs keeps the raw 24 bits in a `u32`.
fn cumulative_lost(raw: u32) -> i64 {
    let v = (raw & 0x00FF_FFFF) as i64;
    if v & 0x0080_0000 != 0 { v - 0x0100_0000 } else { v }
}

/// Records a report block in `table` (pure: the caller supplies the arrival time).
fn record(table: &mut BTreeMap<u32, RemoteReport>, block: &ReceptionReport, arrival_ntp: u64) {
    let count = table.get(&block.ssrc).map_or(0, |r| r.count) + 1;
    table.insert(
        block.ssrc,
        RemoteReport {
            ext_highest_seq: block.last_sequence_number,
            cumulative_lost: cumulative_lost(block.total_lost),
            fraction_lost: block.fraction_lost,
            jitter: block.jitter,
            rtt: rtt_from_report(arrival_ntp, block.last_sender_report, block.delay),
            count,
        },
    );
}

/// An interceptor that reads the reception report blocks of inbound RTCP (RR and SR) into a
/// [`ReportTable`] and passes every packet on untouched.
///
/// It sits wire-most on the read path, so the arrival time it sees is the socket's. It emits
/// nothing, so nothing constrains its slot otherwise (rtc-interceptor's `Slot` rules).
pub(crate) struct ReportTap {
    table: ReportTable,
    /// Keyframe requests (PLI, FIR) for our video SSRCs set these flags.
    keyframes: crate::video::KeyframeTable,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl ReportTap {
    /// The slot: below every default interceptor (the lowest is 1000), so it sees inbound
    /// RTCP first.
    pub(crate) const SLOT: usize = 500;

    pub(crate) fn new(table: ReportTable, keyframes: crate::video::KeyframeTable) -> ReportTap {
        ReportTap { table, keyframes, read: VecDeque::new(), write: VecDeque::new() }
    }

    /// Flags a keyframe request for `ssrc` if it is one of our video streams.
    fn keyframe_asked(&self, ssrc: u32) {
        if let Some(flag) = self.keyframes.lock().unwrap_or_else(|e| e.into_inner()).get(&ssrc) {
            flag.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

/// The NTP time of monotonic instant `at`, read off the wall clock now.
///
/// webrtc-rs stamps its SRs from the wall clock when they are sent (`SystemInstant`), so the
/// report's arrival is converted the same way, not through an anchor taken long ago that the
/// system clock's slewing would have drifted from.
fn ntp_at(at: Instant) -> u64 {
    let since = Instant::now().saturating_duration_since(at);
    let wall = SystemTime::now().checked_sub(since).unwrap_or_else(SystemTime::now);
    let unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    rtc::shared::time::SystemInstant::unix2ntp(unix)
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for ReportTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let mut arrival = None;
            for p in packets {
                let any = p.as_any();
                // RFC 4585 section 6.3.1 (PLI) and RFC 5104 section 4.3.1 (FIR): the sender of
                // that SSRC must send a keyframe (`video/send.rs`).
                if let Some(pli) = any.downcast_ref::<rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>() {
                    self.keyframe_asked(pli.media_ssrc);
                    continue;
                }
                if let Some(fir) = any.downcast_ref::<rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>() {
                    for e in &fir.fir {
                        self.keyframe_asked(e.ssrc);
                    }
                    continue;
                }
                let blocks = if let Some(rr) = any.downcast_ref::<rtc::rtcp::receiver_report::ReceiverReport>() {
                    &rr.reports
                } else if let Some(sr) = any.downcast_ref::<rtc::rtcp::sender_report::SenderReport>() {
                    &sr.reports
                } else {
                    continue;
                };
                if blocks.is_empty() {
                    continue;
                }
                let a = *arrival.get_or_insert_with(|| ntp_at(msg.now));
                let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
                for b in blocks {
                    record(&mut table, b, a);
                }
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for ReportTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Reports a peer connection's state changes as daily-python's
/// `on_network_connection_status_updated` events: `{"connection": "sendTransport" |
/// "recvTransport", "event": "connected" | "interrupted"}`, once per change.
pub(crate) struct ConnectionStatus {
    report: Box<dyn Fn(bool) + Send + Sync>,
    last: Mutex<Option<&'static str>>,
}

impl ConnectionStatus {
    /// `report(connected)` is called on every change (`true` = `"connected"`, `false` =
    /// `"interrupted"`).
    pub(crate) fn new(report: Box<dyn Fn(bool) + Send + Sync>) -> ConnectionStatus {
        ConnectionStatus { report, last: Mutex::new(None) }
    }

    /// Called with every state the peer connection enters.
    pub(crate) fn on_state(&self, state: webrtc::peer_connection::RTCPeerConnectionState) {
        let event = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            status_change(&mut last, state)
        };
        if let Some(event) = event {
            (self.report)(event == "connected");
        }
    }
}

/// The status event a state change causes, if any: Connected is `"connected"`; Disconnected
/// (ICE consent lost, may recover) and Failed are `"interrupted"`; the other states (new,
/// connecting, and closed, which only our own leave causes) say nothing. The same event twice
/// in a row is reported once.
fn status_change(
    last: &mut Option<&'static str>,
    state: webrtc::peer_connection::RTCPeerConnectionState,
) -> Option<&'static str> {
    use webrtc::peer_connection::RTCPeerConnectionState as S;
    let event = match state {
        S::Connected => "connected",
        S::Disconnected | S::Failed => "interrupted",
        _ => return None,
    };
    (last.replace(event) != Some(event)).then_some(event)
}

/// Cumulative counters of one sent RTP stream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SentCounters {
    /// RTP payload bytes (W3C `bytesSent`).
    pub bytes: u64,
}

/// Cumulative counters of one received RTP stream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ReceivedCounters {
    /// RTP payload bytes (W3C `bytesReceived`).
    pub bytes: u64,
    pub packets: u64,
    /// RFC 3550 cumulative number lost.
    pub lost: i64,
    /// Interarrival jitter, seconds.
    pub jitter: f64,
}

/// The transports' counters at one instant.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    /// When the sample was taken (monotonic: intervals never see the wall clock jump).
    pub at: Instant,
    /// The same moment as milliseconds since the Unix epoch (the dict's `timestamp`).
    pub epoch_ms: f64,
    /// Audio streams we send, by SSRC.
    pub sent: BTreeMap<u32, SentCounters>,
    /// Audio streams we receive, by SSRC.
    pub received: BTreeMap<u32, ReceivedCounters>,
    /// Video streams we send and receive, by SSRC.
    pub video_sent: BTreeMap<u32, SentCounters>,
    pub video_received: BTreeMap<u32, ReceivedCounters>,
    /// The send transport's bandwidth estimate (bit/s), when it has one.
    pub available_outgoing: Option<f64>,
    /// The far end's latest reports about our streams, by SSRC.
    pub reports: BTreeMap<u32, RemoteReport>,
    /// STUN round-trip time of the selected ICE candidate pair, seconds, if measured.
    pub ice_rtt: Option<f64>,
}

/// The figures of one interval between two samples (`stats.latest`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Interval {
    pub timestamp_ms: f64,
    pub audio: Figures,
    pub video: Figures,
    pub rtt: Option<f64>,
    pub available_outgoing: Option<f64>,
}

/// One media kind's figures of an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Figures {
    pub send_bps: f64,
    pub recv_bps: f64,
    pub send_loss: Option<f64>,
    pub recv_loss: Option<f64>,
    pub send_jitter: Option<f64>,
    pub recv_jitter: Option<f64>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Bits per second from byte counters that grew between `prev` and `cur` over `secs`. A stream
/// new in `cur` counts from zero; one gone from `cur` no longer counts; counters never go back.
fn bits_per_second<T>(prev: &BTreeMap<u32, T>, cur: &BTreeMap<u32, T>, bytes: impl Fn(&T) -> u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    let delta: u64 = cur
        .iter()
        .map(|(ssrc, c)| bytes(c).saturating_sub(prev.get(ssrc).map_or(0, &bytes)))
        .sum();
    delta as f64 * 8.0 / secs
}

/// The figures of the interval from `prev` to `cur` (pure).
pub(crate) fn interval(prev: &Sample, cur: &Sample) -> Interval {
    let secs = cur.at.saturating_duration_since(prev.at).as_secs_f64();
    let audio = figures(prev, cur, &prev.sent, &cur.sent, &prev.received, &cur.received, OPUS_CLOCK_RATE, secs);
    let video = figures(prev, cur, &prev.video_sent, &cur.video_sent, &prev.video_received, &cur.video_received, VIDEO_CLOCK_RATE, secs);
    // With reports, RTCP decides (null until the far end has seen one of our SRs); without
    // (nothing published), the ICE pair's STUN round trip is the only measurement there is.
    let reports = cur.reports.iter().filter(|(ssrc, _)| cur.sent.contains_key(ssrc) || cur.video_sent.contains_key(ssrc));
    let rtts: Vec<f64> = reports.clone().filter_map(|(_, r)| r.rtt).collect();
    let rtt = if reports.count() == 0 { cur.ice_rtt } else { mean(rtts.into_iter()) };
    Interval {
        timestamp_ms: cur.epoch_ms,
        audio,
        video,
        rtt,
        available_outgoing: cur.available_outgoing,
    }
}

/// One kind's figures: `sent` / `received` are that kind's streams of each sample.
#[allow(clippy::too_many_arguments)]
fn figures(
    prev: &Sample,
    cur: &Sample,
    prev_sent: &BTreeMap<u32, SentCounters>,
    cur_sent: &BTreeMap<u32, SentCounters>,
    prev_received: &BTreeMap<u32, ReceivedCounters>,
    cur_received: &BTreeMap<u32, ReceivedCounters>,
    clock_rate: f64,
    secs: f64,
) -> Figures {
    // Send side: reports about the streams we still send.
    let reports: Vec<(&u32, &RemoteReport)> = cur.reports.iter().filter(|(ssrc, _)| cur_sent.contains_key(ssrc)).collect();
    let (mut expected, mut lost) = (0u64, 0i64);
    for (ssrc, r) in &reports {
        if let Some(p) = prev.reports.get(ssrc)
            && r.count != p.count
        {
            expected += r.ext_highest_seq.wrapping_sub(p.ext_highest_seq) as u64;
            lost += r.cumulative_lost - p.cumulative_lost;
        }
    }
    let send_loss = if expected > 0 {
        Some((lost.max(0) as f64 / expected as f64).clamp(0.0, 1.0))
    } else {
        // No fresh report this interval: the latest report's own fraction (RFC 3550 6.4.1).
        mean(reports.iter().map(|(_, r)| r.fraction_lost as f64 / 256.0))
    };
    let send_jitter = mean(reports.iter().map(|(_, r)| r.jitter as f64 / clock_rate));

    // Receive side.
    let (mut received, mut recv_lost) = (0u64, 0i64);
    for (ssrc, c) in cur_received {
        let p = prev_received.get(ssrc).copied().unwrap_or_default();
        received += c.packets.saturating_sub(p.packets);
        recv_lost += (c.lost - p.lost).max(0);
    }
    let recv_total = received + recv_lost as u64;
    let recv_loss = (recv_total > 0).then(|| recv_lost as f64 / recv_total as f64);
    let recv_jitter = mean(cur_received.values().map(|c| c.jitter));
    Figures {
        send_bps: bits_per_second(prev_sent, cur_sent, |c| c.bytes, secs),
        recv_bps: bits_per_second(prev_received, cur_received, |c| c.bytes, secs),
        send_loss,
        recv_loss,
        send_jitter,
        recv_jitter,
    }
}

/// Piecewise-linear interpolation through `points` (x ascending), flat outside them.
fn piecewise(x: f64, points: &[(f64, f64)]) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    last.1
}

/// Loss (fraction) → score; see the module docs for the breakpoints' sources.
const LOSS_SCORE: [(f64, f64); 4] = [(0.0, 100.0), (0.03, 70.0), (0.10, 40.0), (0.25, 0.0)];
/// Round-trip time (s) → score.
const RTT_SCORE: [(f64, f64); 4] = [(0.3, 100.0), (0.4, 70.0), (0.8, 40.0), (2.0, 0.0)];

/// The 0-100 quality score from mean loss (fraction) and mean RTT (seconds); unknown inputs
/// count as perfect.
pub(crate) fn quality(loss: Option<f64>, rtt: Option<f64>) -> u32 {
    let q_loss = loss.map_or(100.0, |l| piecewise(l, &LOSS_SCORE));
    let q_rtt = rtt.map_or(100.0, |r| piecewise(r, &RTT_SCORE));
    q_loss.min(q_rtt).round().clamp(0.0, 100.0) as u32
}

/// Daily's threshold for a quality score.
pub(crate) fn threshold(quality: u32) -> &'static str {
    match quality {
        71.. => "good",
        41..=70 => "low",
        _ => "veryLow",
    }
}

/// `null` for an unknown figure.
fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!(x))
}

/// The stats dict for `latest` and the window of intervals it closes (`window` includes it).
pub(crate) fn to_value(latest: &Interval, window: &VecDeque<Interval>) -> Value {
    let worst = |f: fn(&Interval) -> Option<f64>| window.iter().filter_map(f).fold(0.0f64, f64::max);
    let either = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(s), Some(r)) => Some(s.max(r)),
        (a, b) => a.or(b),
    };
    let loss = mean(window.iter().filter_map(|i| {
        either(either(i.audio.send_loss, i.audio.recv_loss), either(i.video.send_loss, i.video.recv_loss))
    }));
    let v = &latest.video;
    let avg_rtt = mean(window.iter().filter_map(|i| i.rtt));
    let q = quality(loss, avg_rtt);
    json!({
        "quality": q,
        "threshold": threshold(q),
        "stats": {
            "latest": {
                "timestamp": latest.timestamp_ms.round(),
                "recvBitsPerSecond": latest.audio.recv_bps + v.recv_bps,
                "sendBitsPerSecond": latest.audio.send_bps + v.send_bps,
                "availableOutgoingBitrate": opt(latest.available_outgoing),
                "networkRoundTripTime": opt(latest.rtt),
                "videoRecvBitsPerSecond": v.recv_bps,
                "videoSendBitsPerSecond": v.send_bps,
                "audioRecvBitsPerSecond": latest.audio.recv_bps,
                "audioSendBitsPerSecond": latest.audio.send_bps,
                "videoRecvPacketLoss": opt(v.recv_loss),
                "videoSendPacketLoss": opt(v.send_loss),
                "audioRecvPacketLoss": opt(latest.audio.recv_loss),
                "audioSendPacketLoss": opt(latest.audio.send_loss),
                "totalSendPacketLoss": opt(either(latest.audio.send_loss, v.send_loss)),
                "totalRecvPacketLoss": opt(either(latest.audio.recv_loss, v.recv_loss)),
                "videoRecvJitter": opt(v.recv_jitter),
                "videoSendJitter": opt(v.send_jitter),
                "audioRecvJitter": opt(latest.audio.recv_jitter),
                "audioSendJitter": opt(latest.audio.send_jitter),
            },
            "worstVideoRecvPacketLoss": worst(|i| i.video.recv_loss),
            "worstVideoSendPacketLoss": worst(|i| i.video.send_loss),
            "worstAudioRecvPacketLoss": worst(|i| i.audio.recv_loss),
            "worstAudioSendPacketLoss": worst(|i| i.audio.send_loss),
            "worstVideoRecvJitter": worst(|i| i.video.recv_jitter),
            "worstVideoSendJitter": worst(|i| i.video.send_jitter),
            "worstAudioRecvJitter": worst(|i| i.audio.recv_jitter),
            "worstAudioSendJitter": worst(|i| i.audio.send_jitter),
            "averageNetworkRoundTripTime": opt(avg_rtt),
        }
    })
}

/// Turns successive samples into stats dicts, keeping the previous sample and the window.
#[derive(Default)]
pub(crate) struct NetStats {
    prev: Option<Sample>,
    window: VecDeque<Interval>,
}

impl NetStats {
    /// Takes a sample; returns the dict of the interval it closes (`None` for the first).
    pub(crate) fn update(&mut self, sample: Sample) -> Option<Value> {
        let prev = self.prev.replace(sample);
        let (prev, cur) = (prev?, self.prev.as_ref()?);
        let latest = interval(&prev, cur);
        if self.window.len() == WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(latest);
        Some(to_value(&latest, &self.window))
    }
}

/// Reads the counters of both transports now (the only part that touches webrtc-rs).
pub(crate) async fn collect(
    send_pc: &Arc<dyn webrtc::peer_connection::PeerConnection>,
    recv_pc: &Arc<dyn webrtc::peer_connection::PeerConnection>,
    reports: &ReportTable,
) -> Sample {
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
    use rtc::statistics::StatsSelector;
    let at = Instant::now();
    let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
    let send = send_pc.get_stats(at, StatsSelector::None).await;
    let recv = recv_pc.get_stats(at, StatsSelector::None).await;
    let sent_of = |kind: RtpCodecKind| {
        send.outbound_rtp_streams()
            .filter(|s| s.sent_rtp_stream_stats.rtp_stream_stats.kind == kind)
            .map(|s| (s.sent_rtp_stream_stats.rtp_stream_stats.ssrc, SentCounters { bytes: s.sent_rtp_stream_stats.bytes_sent }))
            .collect::<BTreeMap<_, _>>()
    };
    let received_of = |kind: RtpCodecKind, clock_rate: f64| {
        recv.inbound_rtp_streams()
            .filter(|s| s.received_rtp_stream_stats.rtp_stream_stats.kind == kind)
            .map(|s| {
                let r = &s.received_rtp_stream_stats;
                (
                    r.rtp_stream_stats.ssrc,
                    ReceivedCounters { bytes: s.bytes_received, packets: r.packets_received, lost: r.packets_lost, jitter: r.jitter / clock_rate },
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let (sent, video_sent) = (sent_of(RtpCodecKind::Audio), sent_of(RtpCodecKind::Video));
    let (received, video_received) = (received_of(RtpCodecKind::Audio, OPUS_CLOCK_RATE), received_of(RtpCodecKind::Video, VIDEO_CLOCK_RATE));
    // The congestion controller's estimate, reported on every outbound stream; 0 until it has
    // feedback, and only a transport that sends video runs one.
    let available_outgoing = send
        .outbound_rtp_streams()
        .filter(|s| s.sent_rtp_stream_stats.rtp_stream_stats.kind == RtpCodecKind::Video)
        .map(|s| s.target_bitrate)
        .fold(0.0f64, f64::max);
    let ice_rtt = send
        .candidate_pairs()
        .chain(recv.candidate_pairs())
        .filter(|p| p.nominated && p.current_round_trip_time > 0.0)
        .map(|p| p.current_round_trip_time)
        .next();
    let reports = reports.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Sample {
        at,
        epoch_ms,
        sent,
        received,
        video_sent,
        video_received,
        available_outgoing: (available_outgoing > 0.0).then_some(available_outgoing),
        reports,
        ice_rtt,
    }
}

/// Samples both transports every [`SAMPLE_INTERVAL`] (the first sample at once, as the
/// baseline) and hands each interval's dict to `publish` until it returns `false`. Runs until
/// aborted otherwise.
pub(crate) async fn sample_every(
    send_pc: Arc<dyn webrtc::peer_connection::PeerConnection>,
    recv_pc: Arc<dyn webrtc::peer_connection::PeerConnection>,
    reports: ReportTable,
    mut publish: impl FnMut(Value) -> bool,
) {
    let mut stats = NetStats::default();
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sample = collect(&send_pc, &recv_pc, &reports).await;
        if let Some(v) = stats.update(sample)
            && !publish(v)
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
