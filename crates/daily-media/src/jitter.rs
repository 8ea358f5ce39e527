//! Receive-side jitter buffer for one Opus stream.
//!
//! # Model
//! Packets are kept in arrival order in a fixed set of slots and taken out in RTP-timestamp
//! order. The playout point `next_ts` is the RTP timestamp (extended to 64 bits, so 16-bit
//! sequence numbers and 32-bit timestamps may wrap freely) of the next audio to decode. Each
//! 10 ms pop makes sure an internal PCM FIFO holds at least 10 ms, decoding the packet at
//! `next_ts` or concealing what is missing, then hands out the FIFO's first 10 ms.
//!
//! # What a pop does when the packet at the playout point is missing
//! - **A later packet is buffered**: the missing one is lost (or so late that waiting for it
//!   would cost more delay than it is worth). The gap is concealed with libopus PLC in 20 ms
//!   steps, or recovered from the in-band FEC of the following packet when the gap is exactly
//!   one frame long. If the sequence numbers show that nothing was lost (the sender skipped that
//!   stretch, e.g. with DTX), or the gap is longer than `max_delay_ms`, playout jumps instead.
//! - **Nothing is buffered** (an underrun): either the next packet is late (network jitter) or
//!   the sender has stopped. The pop conceals 10 ms *without* advancing the playout point, i.e.
//!   it waits. If the packet then arrives it is played and the buffer has grown by the waiting
//!   time (the reaction to jitter, as in WebRTC's NetEq "expand"); if a later one arrives first,
//!   the concealment already played stands in for the lost packet. After 40 ms of waiting the
//!   buffer goes idle and returns [`Playout::Silence`] until packets arrive again, when it
//!   re-buffers from the first packet it has, whatever its timestamp. If that packet continues
//!   the stream where it stopped, within `max_delay_ms`, the wait was a network stall rather
//!   than a stopped sender: it counts as a late event (below), so playout restarts at a delay
//!   that keeps the packets the stall held back and covers the next such stall.
//!
//! # Delay adaptation
//! The target delay is `max(min_delay_ms, 4 × J, boost)` clamped to `[min_delay_ms,
//! max_delay_ms]`, where `J` is the RFC 3550 section 6.4.1 interarrival jitter estimate and
//! `boost` comes from remembered late-packet events ("peaks", as in WebRTC NetEq's delay peak
//! detector). A peak is recorded whenever a packet turns out to have been late (it arrived
//! while the buffer was waiting for it, or after its slot was concealed), with the delay that
//! would have covered it, and whenever a packet arrives a packet time or more behind the
//! fastest recent one even though the buffer rode it out (then with at most the current
//! target: such a peak keeps a delay, it does not raise it). A single peak is held for 1 s and
//! then decays at 20 ms per second, so an isolated stall (another call joining, a preempted
//! thread) costs seconds of extra delay rather than the rest of the call. Peaks that recur (no
//! more than 10 s apart) are a pattern: the largest is held until twice the longest interval
//! between them has passed without another.
//!
//! The target decides when playout (re)starts (once the buffered audio spans the target, or
//! the oldest packet has waited that long) and when the buffer is shrunk: when the lowest
//! buffer level seen by any pop since the last check is 20 ms above what starting at the
//! target would give, 10 ms are dropped with a 2 ms cross-fade: after 200 ms if those 10 ms are
//! a pause (every sample within about -42 dBFS), after a whole second otherwise. A backlog
//! queued before playout starts (more than one packet beyond the target) is skipped at once,
//! so it never turns into mid-stream shrink steps. Growth only happens through underruns, so
//! on a clean link the delay stays at the initial `min_delay_ms` (one 20 ms packet by
//! default).

use crate::codec::{MAX_PACKET_BYTES, MAX_PACKET_FRAMES, OpusDecoder, packet_frames};
use crate::{FRAME_10MS_48K, MediaError, OPUS_FRAME_20MS, check_channels};

/// Packets the buffer can hold: 1.28 s of 20 ms packets, far beyond the largest
/// `max_delay_ms` we accept, so the slots never run out in normal operation.
const CAPACITY: usize = 64;
/// 48 kHz frames per millisecond.
const FRAMES_PER_MS: f32 = 48.0;
/// Opus frame durations, and so PLC lengths, are multiples of 2.5 ms (RFC 6716 section 2.1.4).
const GRANULE: usize = 120;
/// Concealment is generated in steps of at most one packet time.
const PLC_CHUNK: usize = OPUS_FRAME_20MS;
/// How long an underrun is concealed before the buffer gives up and goes idle.
const MAX_WAIT_FRAMES: usize = 4 * FRAME_10MS_48K;
/// Length of the cross-fade used when dropping 10 ms to shrink the delay.
const XFADE: usize = 96;
/// Frames the FIFO must hold to drop 10 ms and still output 10 ms.
const SHRINK_NEED: usize = 2 * FRAME_10MS_48K + XFADE;
/// FIFO capacity: a refill starts below `SHRINK_NEED` frames and adds at most one packet.
const FIFO_FRAMES: usize = SHRINK_NEED + MAX_PACKET_FRAMES;
/// At most one 10 ms drop per second of loud audio: there a drop is a skip a listener may hear.
const SHRINK_INTERVAL_US: u64 = 1_000_000;
/// Late-packet events remembered (see [`Peaks`]).
const PEAKS: usize = 8;
/// A late event older than this is forgotten.
const PEAK_MEMORY_US: u64 = 20_000_000;
/// Two late events further apart than this are not a pattern: the older ones are forgotten.
const PEAK_MAX_PERIOD_US: u64 = 10_000_000;
/// A packet this much later (ms) than the fastest recent one is remembered as a peak even if
/// the buffer covered it: one packet time.
const PEAK_MIN_MS: f32 = 20.0;
/// How fast the fastest-transit floor forgets, in 48 kHz ticks per packet (1 ms per second of
/// 20 ms packets): far above clock drift, far below a stall.
const MIN_TRANSIT_CREEP: f64 = 0.96;
/// How long a single late event's boost is held before it decays.
const PEAK_HOLD_US: u64 = 1_000_000;
/// Decay of the boost once its hold has ended, in ms per second.
const BOOST_DECAY_MS_PER_S: f32 = 20.0;
/// 10 ms of decoded audio whose samples all stay within this (about -42 dBFS) is a pause that
/// can be dropped to shrink the delay without being heard.
const QUIET_PEAK: i16 = 256;
/// Shortest observation window before a pause is dropped: the window's lowest buffer level
/// must show the spare delay over at least this long.
const QUIET_SHRINK_INTERVAL_US: u64 = 200_000;
/// Multiple of the jitter estimate the target delay covers.
const JITTER_FACTOR: f32 = 4.0;
/// Sequence numbers remembered for duplicate detection.
const SEQ_WINDOW: i64 = 512;

/// Configuration of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Channels to decode to (1 or 2), whatever the packets carry.
    pub channels: u16,
    /// Smallest (and initial) target delay in ms. 20 ms (one packet) by default.
    pub min_delay_ms: u32,
    /// Largest target delay in ms; also the most audio kept queued before packets are skipped,
    /// and the longest gap that is concealed rather than jumped over. 200 ms by default, at most
    /// 1000 ms.
    pub max_delay_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            channels: 1,
            min_delay_ms: 20,
            max_delay_ms: 200,
        }
    }
}

impl JitterConfig {
    /// The default delays for `channels` channels.
    pub fn new(channels: u16) -> Self {
        JitterConfig {
            channels,
            ..Self::default()
        }
    }
}

/// What [`JitterBuffer::pop_10ms`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout {
    /// Decoded audio from received packets.
    Audio,
    /// At least part of the 10 ms is packet-loss concealment (or FEC recovery).
    Concealed,
    /// Zeros: playout has not started, the sender stopped, or the buffer is re-buffering.
    Silence,
}

/// Counters of a [`JitterBuffer`] since construction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Valid packets accepted by `push`, excluding duplicates (but including late ones).
    pub received: u64,
    /// Packets missing at playout: sequence numbers skipped between decoded packets, plus
    /// packets that failed to decode.
    pub lost: u64,
    /// 48 kHz frames (samples per channel) produced by concealment or FEC.
    pub concealed_frames: u64,
    /// Packets that arrived after their playout point had passed.
    pub late_dropped: u64,
    /// Audio buffered (queued packets plus decoded PCM) at the last pop, in ms: the delay the
    /// buffer currently adds.
    pub current_delay_ms: u32,
    /// The delay the buffer is aiming for, in ms.
    pub target_delay_ms: u32,
    /// Packets ignored because the same sequence number had already been received.
    pub duplicates: u64,
    /// Packets skipped to bring an overfull buffer back to its target (after a burst).
    pub discarded: u64,
    /// Payloads that are not valid Opus packets (empty, too long, bad TOC).
    pub invalid: u64,
    /// RFC 3550 interarrival jitter estimate, in ms.
    pub jitter_ms: f32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    used: bool,
    ext_seq: i64,
    ext_ts: i64,
    frames: usize,
    len: usize,
    arrival_us: u64,
}

enum Next {
    Decode(usize),
    Gap(usize, usize),
    Empty,
}

/// Jitter buffer, decoder and concealment for one Opus stream at 48 kHz.
///
/// All memory (64 packet slots of [`MAX_PACKET_BYTES`], a PCM FIFO of 120 ms + 21 ms) is
/// allocated in [`new`](Self::new); [`push`](Self::push) and [`pop_10ms`](Self::pop_10ms)
/// allocate nothing. See the module documentation for the playout rules.
pub struct JitterBuffer {
    channels: usize,
    min_delay_ms: f32,
    max_delay_ms: f32,
    decoder: OpusDecoder,

    slots: [Slot; CAPACITY],
    /// Payload of slot `i` lives at `i * MAX_PACKET_BYTES`.
    payloads: Box<[u8]>,
    buffered: usize,

    highest_seq: Option<i64>,
    /// Bitmap of received sequence numbers in `highest_seq - SEQ_WINDOW + 1 ..= highest_seq`,
    /// indexed by `ext_seq mod SEQ_WINDOW`.
    seen: [u64; (SEQ_WINDOW / 64) as usize],
    /// Highest extended RTP timestamp seen: the reference for unwrapping the next one.
    ts_ref: Option<i64>,

    playing: bool,
    next_ts: i64,
    /// End of the last decoded audio; the late threshold while idle.
    played_until: Option<i64>,
    last_decoded_seq: Option<i64>,
    /// Frames concealed while waiting for the packet at `next_ts` (not yet accounted for by
    /// advancing `next_ts`).
    waited: usize,

    pcm: Box<[i16]>,
    concealed: Box<[bool]>,
    pcm_len: usize,

    /// RFC 3550 jitter estimate in 48 kHz ticks.
    jitter: f64,
    /// Extended timestamp and relative transit time of the previous in-order packet.
    last_transit: Option<(i64, f64)>,
    /// Lowest recent relative transit time, in 48 kHz ticks (see `update_jitter`).
    min_transit: Option<f64>,
    /// Late events; the delay they ask for is the `boost` of the target (module docs).
    peaks: Peaks,
    /// Media-clock time of the current pop, in µs.
    now_us: u64,
    /// When the current underrun's wait began, in µs.
    dry_since_us: u64,
    /// Playout went idle after waiting: (when the wait began, the timestamp it waited for).
    stalled: Option<(u64, i64)>,
    target_ms: f32,
    level_ms: f32,
    /// Lowest `level_ms` seen at a pop since `window_start_us`.
    window_min_ms: f32,
    window_start_us: u64,
    packet_frames: usize,

    stats: JitterStats,
}

impl std::fmt::Debug for JitterBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitterBuffer")
            .field("channels", &self.channels)
            .field("playing", &self.playing)
            .field("buffered_packets", &self.buffered)
            .field("pcm_frames", &self.pcm_len)
            .field("target_ms", &self.target_ms)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Extends a 16-bit sequence number to the value nearest `reference` (RFC 3550 appendix A.1).
fn unwrap16(reference: i64, v: u16) -> i64 {
    reference + i64::from(v.wrapping_sub(reference as u16) as i16)
}

/// Extends a 32-bit RTP timestamp to the value nearest `reference`.
fn unwrap32(reference: i64, v: u32) -> i64 {
    reference + i64::from(v.wrapping_sub(reference as u32) as i32)
}

impl JitterBuffer {
    /// A buffer for one stream. Fails for a channel count other than 1 or 2, `min_delay_ms >
    /// max_delay_ms`, or `max_delay_ms > 1000`.
    pub fn new(config: JitterConfig) -> Result<Self, MediaError> {
        check_channels(config.channels)?;
        if config.min_delay_ms > config.max_delay_ms {
            return Err(MediaError::InvalidConfig {
                reason: "min_delay_ms > max_delay_ms",
            });
        }
        if config.max_delay_ms > 1000 {
            return Err(MediaError::InvalidConfig {
                reason: "max_delay_ms > 1000",
            });
        }
        let channels = usize::from(config.channels);
        let min_delay_ms = config.min_delay_ms as f32;
        Ok(JitterBuffer {
            channels,
            min_delay_ms,
            max_delay_ms: config.max_delay_ms as f32,
            decoder: OpusDecoder::new(config.channels)?,
            slots: [Slot::default(); CAPACITY],
            payloads: vec![0; CAPACITY * MAX_PACKET_BYTES].into_boxed_slice(),
            buffered: 0,
            highest_seq: None,
            seen: [0; (SEQ_WINDOW / 64) as usize],
            ts_ref: None,
            playing: false,
            next_ts: 0,
            played_until: None,
            last_decoded_seq: None,
            waited: 0,
            pcm: vec![0; FIFO_FRAMES * channels].into_boxed_slice(),
            concealed: vec![false; FIFO_FRAMES].into_boxed_slice(),
            pcm_len: 0,
            jitter: 0.0,
            last_transit: None,
            min_transit: None,
            peaks: Peaks::default(),
            now_us: 0,
            dry_since_us: 0,
            stalled: None,
            target_ms: min_delay_ms,
            level_ms: 0.0,
            window_min_ms: f32::MAX,
            window_start_us: 0,
            packet_frames: OPUS_FRAME_20MS,
            stats: JitterStats {
                target_delay_ms: config.min_delay_ms,
                ..JitterStats::default()
            },
        })
    }

    /// An RTP packet arrived: its sequence number, RTP timestamp (48 kHz clock), Opus payload,
    /// and arrival time in µs on the caller's monotonic clock (the same clock as
    /// [`pop_10ms`](Self::pop_10ms)). Duplicates, late packets and invalid payloads are counted
    /// and ignored.
    pub fn push(&mut self, seq: u16, rtp_timestamp: u32, payload: &[u8], now_us: u64) {
        let frames = match payload.len() <= MAX_PACKET_BYTES {
            true => packet_frames(payload),
            false => None,
        };
        let Some(frames) = frames else {
            self.stats.invalid += 1;
            return;
        };
        let ext_seq = self
            .highest_seq
            .map_or(i64::from(seq), |h| unwrap16(h, seq));
        let ext_ts = self
            .ts_ref
            .map_or(i64::from(rtp_timestamp), |r| unwrap32(r, rtp_timestamp));

        let mut next_in_sequence = false;
        let forward = self.highest_seq.is_none_or(|h| ext_seq > h);
        if let Some(h) = self.highest_seq {
            if ext_seq <= h - SEQ_WINDOW {
                // Too old to know whether it is a duplicate; certainly past its playout point.
                self.stats.late_dropped += 1;
                return;
            }
            if self.is_seen(ext_seq) {
                self.stats.duplicates += 1;
                return;
            }
            next_in_sequence = ext_seq == h + 1;
        }
        self.mark_seen(ext_seq);
        self.stats.received += 1;
        self.ts_ref = Some(self.ts_ref.map_or(ext_ts, |r| r.max(ext_ts)));
        if forward {
            self.update_jitter(ext_ts, now_us);
        }
        self.packet_frames = frames;

        if let Some(point) = self.playout_point()
            && ext_ts < point
        {
            // The playout point only ever moves past packets that were received (or concealed
            // because a later one was), so the next packet in sequence can only be behind it if
            // the sender's timestamps went backwards: follow the new timeline. A packet that is
            // merely late has a lower sequence number than one already received.
            if next_in_sequence {
                self.restart_timeline(ext_ts);
            } else {
                self.stats.late_dropped += 1;
                if self.playing {
                    // The buffer was too short for this packet: aim for more delay.
                    let late_ms = (point - ext_ts) as f32 / FRAMES_PER_MS;
                    self.peaks
                        .record(now_us, self.target_ms + late_ms.min(self.max_delay_ms));
                }
                return;
            }
        }

        if let Some((since, awaited)) = self.stalled.take()
            && !self.playing
        {
            // Playout gave up waiting for `awaited`; this packet continues the stream within
            // `max_delay_ms` of it, arriving within `max_delay_ms` of the wait's start: a
            // stall, not a sender that stopped. Aim for a delay that would have ridden it out,
            // so playout restarts with the packets the stall held back (instead of skipping
            // them down to the old target) and the next such stall is covered.
            let gap_ms = (ext_ts - awaited) as f32 / FRAMES_PER_MS;
            let stall_ms = now_us.saturating_sub(since) as f32 / 1000.0;
            if (0.0..=self.max_delay_ms).contains(&gap_ms) && stall_ms <= self.max_delay_ms {
                self.peaks.record(
                    now_us,
                    (self.target_ms + stall_ms).min(self.max_delay_ms),
                );
            }
        }

        if self.buffered == CAPACITY {
            // Only reachable if pops stopped while packets kept coming: make room by dropping
            // the oldest packet, which is the least likely to still be useful.
            if let Some(i) = self.earliest_slot() {
                self.free(i);
                self.stats.discarded += 1;
            }
        }
        let Some(i) = self.slots.iter().position(|s| !s.used) else {
            return;
        };
        self.payloads[i * MAX_PACKET_BYTES..i * MAX_PACKET_BYTES + payload.len()]
            .copy_from_slice(payload);
        self.slots[i] = Slot {
            used: true,
            ext_seq,
            ext_ts,
            frames,
            len: payload.len(),
            arrival_us: now_us,
        };
        self.buffered += 1;
    }

    /// Produces the next 10 ms: writes [`FRAME_10MS_48K`] × channels samples to `out` and says
    /// what they are. Call it every 10 ms from the media clock with that clock's time in µs.
    ///
    /// `out` should be exactly `FRAME_10MS_48K * channels` long; if it is not, the common prefix
    /// is written and any excess zeroed (the stream still advances by 10 ms).
    pub fn pop_10ms(&mut self, now_us: u64, out: &mut [i16]) -> Playout {
        self.now_us = now_us;
        self.update_target();
        if !self.playing && !self.try_start(now_us) {
            self.level_ms = self.queued_span() as f32 / FRAMES_PER_MS;
            self.update_delay_stats();
            out.fill(0);
            return Playout::Silence;
        }

        self.trim_overflow();
        self.level_ms = self.level_frames() as f32 / FRAMES_PER_MS;
        self.window_min_ms = self.window_min_ms.min(self.level_ms);
        self.update_delay_stats();

        if !self.fill(FRAME_10MS_48K, true) {
            let short = FRAME_10MS_48K - self.pcm_len;
            if self.waited + short > MAX_WAIT_FRAMES {
                // Nothing arrived for a while: the sender has stopped (muted, DTX, left), or
                // the network stalls. `push` tells them apart when packets come again.
                let had_audio = self.pcm_len > 0;
                let playout = self.emit(out);
                self.stalled = Some((self.dry_since_us, self.next_ts));
                self.go_idle();
                return if had_audio { playout } else { Playout::Silence };
            }
            if self.waited == 0 {
                self.dry_since_us = now_us;
            }
            self.conceal(short);
            self.waited += short;
        }
        self.maybe_shrink(now_us);
        self.emit(out)
    }

    /// Counters and the current delay.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Number of channels produced by [`pop_10ms`](Self::pop_10ms).
    pub fn channels(&self) -> u16 {
        self.channels as u16
    }

    /// Forgets the stream (buffered packets, playout position, decoder state, delay estimate),
    /// e.g. when the sender's SSRC changes. Counters are kept.
    pub fn reset(&mut self) {
        for s in &mut self.slots {
            s.used = false;
        }
        self.buffered = 0;
        self.highest_seq = None;
        self.seen = [0; (SEQ_WINDOW / 64) as usize];
        self.ts_ref = None;
        self.playing = false;
        self.played_until = None;
        self.last_decoded_seq = None;
        self.waited = 0;
        self.pcm_len = 0;
        self.jitter = 0.0;
        self.last_transit = None;
        self.min_transit = None;
        self.peaks = Peaks::default();
        self.stalled = None;
        self.target_ms = self.min_delay_ms;
        // A decoder reset cannot fail for a valid decoder; if it did, the old state only costs
        // a few ms of odd audio.
        let _ = self.decoder.reset();
    }

    // ---- packet slots -------------------------------------------------------------------

    fn earliest_slot(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.used)
            .min_by_key(|(_, s)| s.ext_ts)
            .map(|(i, _)| i)
    }

    fn free(&mut self, i: usize) {
        self.slots[i].used = false;
        self.buffered -= 1;
    }

    /// End (timestamp + duration) of the latest queued packet at or after the playout point.
    fn queue_end(&self, from: i64) -> Option<i64> {
        self.slots
            .iter()
            .filter(|s| s.used && s.ext_ts >= from)
            .map(|s| s.ext_ts + s.frames as i64)
            .max()
    }

    /// Span of the queued packets in frames, from the earliest start to the latest end.
    fn queued_span(&self) -> usize {
        match self.earliest_slot() {
            Some(i) => {
                let start = self.slots[i].ext_ts;
                self.queue_end(start)
                    .map_or(0, |end| (end - start) as usize)
            }
            None => 0,
        }
    }

    /// Audio between the playout point and the end of the queue (holes included, since they
    /// will be concealed), plus what is already decoded.
    fn level_frames(&self) -> usize {
        let queued = self
            .queue_end(self.next_ts)
            .map_or(0, |end| (end - self.next_ts).max(0) as usize);
        self.pcm_len + queued
    }

    fn is_seen(&self, ext_seq: i64) -> bool {
        // Above the highest sequence number, the bit still belongs to a number that has slid out
        // of the window.
        if self.highest_seq.is_none_or(|h| ext_seq > h) {
            return false;
        }
        let bit = ext_seq.rem_euclid(SEQ_WINDOW) as usize;
        self.seen[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn mark_seen(&mut self, ext_seq: i64) {
        match self.highest_seq {
            Some(h) if ext_seq > h => {
                // Forget the sequence numbers that slide out of the window.
                if ext_seq - h >= SEQ_WINDOW {
                    self.seen = [0; (SEQ_WINDOW / 64) as usize];
                } else {
                    for s in h + 1..=ext_seq {
                        let bit = s.rem_euclid(SEQ_WINDOW) as usize;
                        self.seen[bit / 64] &= !(1 << (bit % 64));
                    }
                }
                self.highest_seq = Some(ext_seq);
            }
            Some(_) => {}
            None => self.highest_seq = Some(ext_seq),
        }
        let bit = ext_seq.rem_euclid(SEQ_WINDOW) as usize;
        self.seen[bit / 64] |= 1 << (bit % 64);
    }

    fn playout_point(&self) -> Option<i64> {
        if self.playing {
            Some(self.next_ts)
        } else {
            self.played_until
        }
    }

    /// The sender's timestamps jumped backwards: drop everything queued and start over from
    /// this packet.
    fn restart_timeline(&mut self, ext_ts: i64) {
        for s in &mut self.slots {
            s.used = false;
        }
        self.buffered = 0;
        self.go_idle();
        self.played_until = None;
        self.last_decoded_seq = None;
        self.ts_ref = Some(ext_ts);
        self.last_transit = None;
        self.min_transit = None;
        self.stalled = None;
    }

    // ---- delay estimation -----------------------------------------------------------------

    /// RFC 3550 section 6.4.1 / appendix A.8: J += (|D| - J) / 16, with D the change in relative
    /// transit time between consecutive packets, in timestamp units.
    ///
    /// Two departures from the RFC, both to measure network jitter rather than sender
    /// behaviour: only packets that advance the sequence are used (a reordered packet's lateness
    /// is handled by the late-packet boost instead of inflating J for every packet around it),
    /// and D is not taken across a timestamp gap longer than one maximal packet, where the
    /// sender paused (DTX, mute) or jumped its timestamps and the transit change means nothing.
    fn update_jitter(&mut self, ext_ts: i64, now_us: u64) {
        let arrival = now_us as f64 * 0.048; // µs to 48 kHz ticks
        let transit = arrival - ext_ts as f64;
        let mut continuous = false;
        if let Some((last_ts, last_transit)) = self.last_transit {
            let dts = ext_ts - last_ts;
            if dts > 0 && dts <= MAX_PACKET_FRAMES as i64 {
                continuous = true;
                let d = (transit - last_transit).abs();
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some((ext_ts, transit));
        self.stats.jitter_ms = (self.jitter / 48.0) as f32;

        // Delay relative to the fastest recent packet (NetEq's "relative arrival delay"): a
        // stall shows here even when the buffer was deep enough to ride it out, so a pattern
        // of stalls keeps being remembered while it is covered. The floor creeps up slowly so
        // that a lasting route change or clock drift does not read as delay forever.
        let floor = match self.min_transit {
            Some(m) if continuous => (m + MIN_TRANSIT_CREEP).min(transit),
            _ => transit,
        };
        self.min_transit = Some(floor);
        let relative_ms = ((transit - floor) / 48.0) as f32;
        if relative_ms >= PEAK_MIN_MS {
            self.peaks.record(
                now_us,
                (self.min_delay_ms + relative_ms).min(self.target_ms),
            );
        }
    }

    fn update_target(&mut self) {
        let boost_ms = self.peaks.boost(self.now_us);
        let jitter_ms = (self.jitter / 48.0) as f32;
        self.target_ms = self
            .min_delay_ms
            .max(JITTER_FACTOR * jitter_ms)
            .max(boost_ms)
            .min(self.max_delay_ms);
    }

    fn update_delay_stats(&mut self) {
        self.stats.current_delay_ms = self.level_ms.round() as u32;
        self.stats.target_delay_ms = self.target_ms.round() as u32;
    }

    // ---- playout ------------------------------------------------------------------------------

    fn try_start(&mut self, now_us: u64) -> bool {
        let Some(first) = self.earliest_slot() else {
            return false;
        };
        let s = self.slots[first];
        let span_ms = self.queued_span() as f32 / FRAMES_PER_MS;
        let waited_ms = now_us.saturating_sub(s.arrival_us) as f32 / 1000.0;
        if span_ms < self.target_ms && waited_ms < self.target_ms {
            return false;
        }
        self.playing = true;
        self.next_ts = s.ext_ts;
        self.waited = 0;
        self.pcm_len = 0;
        self.window_min_ms = f32::MAX;
        self.window_start_us = now_us;
        // Audio queued before playout starts (packets that arrived together while the
        // transport came up) is a backlog, not jitter: start at the target instead of
        // shrinking it away 10 ms per second later, which would shift the stream mid-speech.
        // More than one packet beyond the target cannot be arrival jitter of a single packet
        // (pairs arriving together are); skip down to the target, the level the steady state
        // returns to anyway.
        let target = ((self.target_ms * FRAMES_PER_MS) as usize).max(self.packet_frames);
        if self.level_frames() > target + self.packet_frames {
            self.skip_to(target);
        }
        true
    }

    fn go_idle(&mut self) {
        if self.playing {
            self.played_until = Some(self.next_ts);
        }
        self.playing = false;
        self.pcm_len = 0;
        self.waited = 0;
    }

    fn next_packet(&mut self) -> Next {
        loop {
            let Some(i) = self.earliest_slot() else {
                return Next::Empty;
            };
            let s = self.slots[i];
            if s.ext_ts < self.next_ts {
                // Overlaps audio already played (a retransmission with a new sequence number, or
                // overtaken by concealment).
                self.free(i);
                self.stats.late_dropped += 1;
                continue;
            }
            let gap = (s.ext_ts - self.next_ts) as usize;
            if gap < GRANULE {
                // Less than the smallest Opus frame: timestamp rounding, not a missing packet.
                self.next_ts = s.ext_ts;
                return Next::Decode(i);
            }
            return Next::Gap(i, gap);
        }
    }

    /// Decodes (and, if `conceal_gaps`, conceals) until the FIFO holds `need` frames. Returns
    /// false if it ran out of packets first.
    fn fill(&mut self, need: usize, conceal_gaps: bool) -> bool {
        while self.pcm_len < need {
            match self.next_packet() {
                Next::Empty => return false,
                Next::Decode(i) => self.decode_slot(i),
                Next::Gap(i, gap) => {
                    if !conceal_gaps {
                        return false;
                    }
                    self.handle_gap(i, gap);
                }
            }
        }
        true
    }

    fn decode_slot(&mut self, i: usize) {
        let s = self.slots[i];
        self.free(i);
        if let Some(last) = self.last_decoded_seq
            && s.ext_seq > last + 1
        {
            self.stats.lost += (s.ext_seq - last - 1) as u64;
        }
        self.last_decoded_seq = Some(
            self.last_decoded_seq
                .map_or(s.ext_seq, |l| l.max(s.ext_seq)),
        );
        if self.waited > 0 {
            // We concealed while waiting for this very packet: it was late, not lost. The
            // buffer has grown by the wait; keep the target from shrinking it straight back.
            let h = self.target_ms + self.waited as f32 / FRAMES_PER_MS;
            self.peaks.record(self.now_us, h);
            self.waited = 0;
        }
        let ch = self.channels;
        let start = self.pcm_len * ch;
        let payload = &self.payloads[i * MAX_PACKET_BYTES..i * MAX_PACKET_BYTES + s.len];
        match self
            .decoder
            .decode(payload, &mut self.pcm[start..start + s.frames * ch])
        {
            Ok(n) if n > 0 => {
                let n = n.min(s.frames);
                self.concealed[self.pcm_len..self.pcm_len + n].fill(false);
                self.pcm_len += n;
            }
            _ => {
                // Corrupt payload: treat the packet as lost.
                self.stats.lost += 1;
                self.conceal(s.frames);
            }
        }
        self.next_ts = s.ext_ts + s.frames as i64;
        self.played_until = Some(self.next_ts);
    }

    fn handle_gap(&mut self, i: usize, gap: usize) {
        let s = self.slots[i];
        let seq_gap = self.last_decoded_seq.map_or(1, |last| s.ext_seq - last - 1);
        if seq_gap <= 0 || gap as f32 > self.max_delay_ms * FRAMES_PER_MS {
            // Either no packet is missing (the sender skipped this stretch: DTX, a timestamp
            // jump) or the gap is too long to conceal usefully: continue at the next packet.
            self.next_ts = s.ext_ts;
            self.waited = 0;
            return;
        }
        // Concealment already played while waiting stands in for the missing audio.
        let credit = self.waited.min(gap);
        self.next_ts += credit as i64;
        self.waited -= credit;
        let gap = gap - credit;
        if gap < GRANULE {
            self.next_ts = s.ext_ts;
            return;
        }
        let n = gap.min(PLC_CHUNK) / GRANULE * GRANULE;
        if n == gap && n == s.frames {
            // Exactly one frame is missing, and the next packet is here: libopus can rebuild it
            // from that packet's in-band FEC (LBRR) data, or falls back to PLC if there is none.
            let ch = self.channels;
            let start = self.pcm_len * ch;
            let payload = &self.payloads[i * MAX_PACKET_BYTES..i * MAX_PACKET_BYTES + s.len];
            let ok = matches!(self.decoder.decode_fec(payload, &mut self.pcm[start..start + n * ch]), Ok(m) if m == n);
            if ok {
                self.concealed[self.pcm_len..self.pcm_len + n].fill(true);
                self.pcm_len += n;
                self.stats.concealed_frames += n as u64;
            } else {
                self.conceal(n);
            }
        } else {
            self.conceal(n);
        }
        self.next_ts += n as i64;
    }

    /// Appends `frames` (rounded up to 2.5 ms) of libopus packet-loss concealment to the FIFO.
    fn conceal(&mut self, frames: usize) {
        let ch = self.channels;
        let mut left = frames.div_ceil(GRANULE) * GRANULE;
        while left > 0 {
            let n = left.min(PLC_CHUNK);
            let range = self.pcm_len * ch..(self.pcm_len + n) * ch;
            let got = self
                .decoder
                .conceal(&mut self.pcm[range.clone()])
                .unwrap_or(0)
                .min(n);
            // libopus always fills the whole request; should it not, pad with silence.
            self.pcm[range.start + got * ch..range.end].fill(0);
            self.concealed[self.pcm_len..self.pcm_len + n].fill(true);
            self.pcm_len += n;
            self.stats.concealed_frames += n as u64;
            left -= n;
        }
    }

    /// Moves the first 10 ms of the FIFO to `out`.
    fn emit(&mut self, out: &mut [i16]) -> Playout {
        let ch = self.channels;
        let n = FRAME_10MS_48K.min(self.pcm_len);
        let any_concealed = self.concealed[..n].iter().any(|&c| c);
        let samples = (n * ch).min(out.len());
        out[..samples].copy_from_slice(&self.pcm[..samples]);
        out[samples..].fill(0);
        self.pcm.copy_within(n * ch..self.pcm_len * ch, 0);
        self.concealed.copy_within(n..self.pcm_len, 0);
        self.pcm_len -= n;
        if any_concealed {
            Playout::Concealed
        } else {
            Playout::Audio
        }
    }

    /// After a burst (e.g. a network stall flushing at once) more than `max_delay_ms` may be
    /// queued; skip whole packets to get back to the target rather than play it all late.
    fn trim_overflow(&mut self) {
        let max =
            ((self.max_delay_ms * FRAMES_PER_MS) as usize).max(FRAME_10MS_48K) + self.packet_frames;
        if self.level_frames() <= max {
            return;
        }
        self.skip_to((self.target_ms * FRAMES_PER_MS) as usize + self.packet_frames);
    }

    /// Skips the oldest whole packets until at most `keep` frames are buffered.
    fn skip_to(&mut self, keep: usize) {
        while self.level_frames() > keep {
            let Some(i) = self.earliest_slot() else { break };
            let s = self.slots[i];
            self.free(i);
            self.stats.discarded += 1;
            self.next_ts = self.next_ts.max(s.ext_ts + s.frames as i64);
            self.last_decoded_seq = Some(
                self.last_decoded_seq
                    .map_or(s.ext_seq, |l| l.max(s.ext_seq)),
            );
        }
    }

    /// Drops 10 ms, cross-faded, when the buffer has held clearly more than the target: after a
    /// whole second of loud audio, or after 200 ms when the 10 ms to drop are a pause.
    fn maybe_shrink(&mut self, now_us: u64) {
        let elapsed = now_us.saturating_sub(self.window_start_us);
        if elapsed < QUIET_SHRINK_INTERVAL_US {
            return;
        }
        let full_window = elapsed >= SHRINK_INTERVAL_US;
        // The lowest level a pop saw is the margin that protected us from an underrun (a pop
        // needs 10 ms). Starting at the target T with packets of P ms, it is about T - P + 10 ms
        // (for T = P = 20: the level alternates 20 and 10 ms). If it stayed 10 ms above that
        // for the whole window, 10 ms can go without leaving less margin than at the start.
        // Using the minimum rather than an average keeps bursty arrivals (e.g. packets coming
        // in pairs) from looking like excess delay.
        // We only shrink when 20 ms (not 10) are spare: a buffer that started one packet
        // above the target (two packets arriving together) holds steady instead of losing
        // 10 ms mid-stream, which a listener hears as a skip and a recorder as a time shift.
        let packet_ms = self.packet_frames as f32 / FRAMES_PER_MS;
        let threshold = self.target_ms - packet_ms + 30.0;
        let excess = self.window_min_ms >= threshold;
        if !excess || !self.fill(SHRINK_NEED, false) {
            if full_window {
                self.window_min_ms = f32::MAX;
                self.window_start_us = now_us;
            }
            return;
        }
        // In a pause (speech has one every few seconds) 10 ms go unheard, so the delay can
        // follow a falling target within seconds; in loud audio a drop is a skip a listener
        // may hear, so at most one a second (as NetEq, which accelerates freely only in
        // low-energy signal).
        let ch = self.channels;
        let quiet = self.pcm[..(FRAME_10MS_48K + XFADE) * ch]
            .iter()
            .all(|&x| x.unsigned_abs() <= QUIET_PEAK as u16);
        if !quiet && !full_window {
            return;
        }
        self.window_min_ms = f32::MAX;
        self.window_start_us = now_us;
        let ch = self.channels;
        for j in 0..XFADE {
            let w = (j + 1) as f32 / (XFADE + 1) as f32;
            for c in 0..ch {
                let a = f32::from(self.pcm[j * ch + c]);
                let b = f32::from(self.pcm[(FRAME_10MS_48K + j) * ch + c]);
                self.pcm[j * ch + c] = (a * (1.0 - w) + b * w).round() as i16;
            }
            self.concealed[j] |= self.concealed[FRAME_10MS_48K + j];
        }
        self.pcm
            .copy_within((FRAME_10MS_48K + XFADE) * ch..self.pcm_len * ch, XFADE * ch);
        self.concealed
            .copy_within(FRAME_10MS_48K + XFADE..self.pcm_len, XFADE);
        self.pcm_len -= FRAME_10MS_48K;
    }
}

/// Remembered late-packet events ("peaks", as in WebRTC NetEq's delay peak detector): each is
/// the delay that would have covered a packet that came late, and when it came.
///
/// A single late event (a stall while another call joined, one preempted thread) holds its
/// delay for [`PEAK_HOLD_US`] and then decays at [`BOOST_DECAY_MS_PER_S`]: an isolated spike
/// costs seconds of extra delay, not the rest of the call. Late events that recur (two or more,
/// no more than [`PEAK_MAX_PERIOD_US`] apart) are a pattern: the largest is held until twice
/// the longest interval between them has passed without another, so a link (or a machine)
/// that stalls every few seconds keeps the delay that covers it. Fixed size, no allocation.
#[derive(Debug, Clone, Copy, Default)]
struct Peaks {
    /// (time µs, delay ms), oldest first; `len` valid entries.
    at: [(u64, f32); PEAKS],
    len: usize,
}

impl Peaks {
    fn record(&mut self, now_us: u64, height_ms: f32) {
        if let Some(&(last, h)) = self.at[..self.len].last()
            && now_us.saturating_sub(last) < 100_000
        {
            // The same stall (packets of one burst, or its concealment and then its late
            // arrival): one event, at its largest.
            self.at[self.len - 1] = (last, h.max(height_ms));
            return;
        }
        if self.len > 0 && now_us.saturating_sub(self.at[self.len - 1].0) > PEAK_MAX_PERIOD_US {
            self.len = 0;
        }
        if self.len == PEAKS {
            self.at.copy_within(1.., 0);
            self.len -= 1;
        }
        self.at[self.len] = (now_us, height_ms);
        self.len += 1;
    }

    /// The delay the remembered events ask for now, in ms (0 when none).
    fn boost(&mut self, now_us: u64) -> f32 {
        let keep_from = self.at[..self.len]
            .iter()
            .position(|&(t, _)| now_us.saturating_sub(t) <= PEAK_MEMORY_US)
            .unwrap_or(self.len);
        if keep_from > 0 {
            self.at.copy_within(keep_from..self.len, 0);
            self.len -= keep_from;
        }
        let Some(&(last, _)) = self.at[..self.len].last() else {
            return 0.0;
        };
        let peaks = &self.at[..self.len];
        let height = peaks.iter().map(|p| p.1).fold(0.0, f32::max);
        let period = peaks
            .windows(2)
            .map(|w| w[1].0.saturating_sub(w[0].0))
            .max()
            .unwrap_or(0);
        let hold = PEAK_HOLD_US.max(2 * period);
        let since = now_us.saturating_sub(last);
        if since <= hold {
            return height;
        }
        let decay = (since - hold) as f32 / 1e6 * BOOST_DECAY_MS_PER_S;
        (height - decay).max(0.0)
    }
}

#[cfg(test)]
mod tests;
