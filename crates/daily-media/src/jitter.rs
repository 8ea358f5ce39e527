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

mod delay;
mod playout;
mod slots;

use self::delay::Peaks;
use self::slots::{Slot, unwrap16, unwrap32};
use crate::codec::{MAX_PACKET_BYTES, MAX_PACKET_FRAMES, OpusDecoder, packet_frames};
use crate::{FRAME_10MS_48K, MediaError, OPUS_FRAME_20MS, check_channels};

/// Packets the buffer can hold: 1.28 s of 20 ms packets, far beyond the largest
/// `max_delay_ms` we accept, so the slots never run out in normal operation.
const CAPACITY: usize = 64;
/// 48 kHz frames per millisecond.
const FRAMES_PER_MS: f32 = 48.0;
/// How long an underrun is concealed before the buffer gives up and goes idle.
const MAX_WAIT_FRAMES: usize = 4 * FRAME_10MS_48K;
/// Length of the cross-fade used when dropping 10 ms to shrink the delay.
const XFADE: usize = 96;
/// Frames the FIFO must hold to drop 10 ms and still output 10 ms.
const SHRINK_NEED: usize = 2 * FRAME_10MS_48K + XFADE;
/// FIFO capacity: a refill starts below `SHRINK_NEED` frames and adds at most one packet.
const FIFO_FRAMES: usize = SHRINK_NEED + MAX_PACKET_FRAMES;
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
}

#[cfg(test)]
mod tests;
