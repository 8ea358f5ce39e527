//! The recorder's rules for one recording, without IO and without a clock: the recorder
//! thread (`mod.rs`) feeds it packets ([`RecordingCore::handle_packet`]) and the time
//! ([`RecordingCore::handle_timeout`]), and writes what [`RecordingCore::poll_output`] yields.
//!
//! Two products:
//! - **Raw tracks.** Each audio track's Opus packets as received, no transcoding, in sequence
//!   order: a packet waits at most [`REORDER_WAIT`] for earlier ones (reordering), a packet
//!   older than one already written is dropped (late or duplicate). Its place on the track's
//!   timeline is its RTP timestamp (48 kHz, RFC 7587) relative to the track's first packet;
//!   a jump past the end of the previous packet (loss, or DTX: an Opus sender stops sending
//!   during silence) is filled with silence ([`Output::TrackSilence`], which the file writer
//!   turns into silence packets of 20, 10, 5 and 2.5 ms), so a player keeps time. The granule of a packet is the 48 kHz sample count at its end (RFC 7845 section
//!   4). Each track starts at its first packet; its offset from the recording's start (the
//!   arrival of that packet) is [`Output::TrackStarted`].
//! - **The mix.** Each track through its own jitter buffer and decoder (`daily_media`), one
//!   10 ms tick at a time on the recording's own timeline (tick `k` is `start + 10k ms`),
//!   summed (saturating) and encoded as mono 20 ms Opus packets. A tick runs [`MIX_LAG`]
//!   after its time so that packets still on their way through the channel from the SFU are
//!   in by then; a packet is given to its jitter buffer only when the ticks reach its arrival
//!   time, with that time, so each buffer sees pushes and pops in the order of the network's
//!   timing, as on a client, not the recorder thread's. All tracks share the
//!   buffers' delay, so they stay aligned with each other in the mix.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daily_media::{
    FRAME_10MS_48K, JitterBuffer, JitterConfig, MAX_PACKET_BYTES, OPUS_FRAME_20MS, OpusApplication,
    OpusEncoder, packet_frames,
};

/// Longest a packet waits for an earlier one that is missing before it is written anyway.
pub const REORDER_WAIT: Duration = Duration::from_millis(60);
/// Most packets of one track held for reordering (past it, the oldest is written).
const REORDER_MAX: usize = 32;
/// How long after its time a 10 ms mix tick runs (see the module docs).
pub const MIX_LAG: Duration = Duration::from_millis(100);
/// The mix's bitrate: mono speech and music at 48 kHz. Encoded with libopus's `AUDIO`
/// application (CELT): waveform-faithful (a mix of one speaker correlates 0.965 with a plain
/// decode of that speaker's packets; `VOIP` gave 0.887, and 0.79 against the sent speech in
/// `tests/test_server_recording.py`), for listeners that are speech recognisers.
const MIX_BITRATE: u32 = 64_000;
const TICK: Duration = Duration::from_millis(10);

/// What the recorder thread writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Track `track`'s first packet arrived `offset_ms` after the recording started.
    TrackStarted { track: u32, offset_ms: u64 },
    /// The next packet of track `track`'s file; `granule` is the 48 kHz sample count at its end.
    TrackPacket {
        track: u32,
        packet: Arc<[u8]>,
        granule: u64,
    },
    /// `frames` (a multiple of 120, 2.5 ms) of silence next in track `track`'s file.
    TrackSilence { track: u32, frames: u64 },
    /// The next packet of the mixed file.
    MixPacket { packet: Vec<u8>, granule: u64 },
}

/// Counters of one track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// Packets written as received.
    pub packets: u64,
    /// Sequence numbers never received (skipped over).
    pub lost: u64,
    /// Packets dropped as duplicates or too late to place.
    pub late: u64,
    /// 48 kHz frames of silence written into gaps.
    pub silence_frames: u64,
    /// 48 kHz frames of the file (its last granule).
    pub frames: u64,
}

struct RawTrack {
    /// Held for reordering: seq → (RTP timestamp, payload, arrival).
    pending: BTreeMap<u64, (u32, Arc<[u8]>, Instant)>,
    /// The sequence number expected next (after the last written).
    next_seq: Option<u64>,
    /// RTP timestamp of the last written packet and its position (48 kHz frames since the
    /// track's first packet), to unwrap the next.
    last_ts: u32,
    last_pos: i64,
    /// Frames written so far (the granule).
    pos: u64,
    stats: TrackStats,
}

struct Track {
    raw: RawTrack,
    jb: JitterBuffer,
    /// Packets for the jitter buffer not yet reached by the ticks: (arrival µs, seq, RTP
    /// timestamp, payload), in arrival order.
    mix_queue: VecDeque<(u64, u16, u32, Arc<[u8]>)>,
}

/// One recording's raw tracks and mix.
pub struct RecordingCore {
    start: Instant,
    tracks: Vec<Option<Track>>,
    /// Mix ticks done.
    ticks: u64,
    enc: OpusEncoder,
    /// 20 ms of mono mix being filled, 10 ms per tick.
    frame: Vec<i16>,
    pcm: Vec<i16>,
    acc: Vec<i32>,
    packet: Vec<u8>,
    out: VecDeque<Output>,
    finished: bool,
}

impl RecordingCore {
    /// A recording that starts at `start`.
    pub fn new(start: Instant) -> Result<Self, daily_media::MediaError> {
        Ok(RecordingCore {
            start,
            tracks: Vec::new(),
            ticks: 0,
            enc: OpusEncoder::with_application(1, Some(MIX_BITRATE), OpusApplication::Audio)?,
            frame: vec![0; OPUS_FRAME_20MS],
            pcm: vec![0; FRAME_10MS_48K],
            acc: vec![0; FRAME_10MS_48K],
            packet: vec![0; MAX_PACKET_BYTES],
            out: VecDeque::new(),
            finished: false,
        })
    }

    /// Counters of track `track`, if it had a packet.
    pub fn track_stats(&self, track: u32) -> Option<TrackStats> {
        self.tracks
            .get(track as usize)?
            .as_ref()
            .map(|t| t.raw.stats)
    }

    /// The jitter buffer counters of track `track` in the mix, if it had a packet.
    pub fn mix_stats(&self, track: u32) -> Option<daily_media::JitterStats> {
        self.tracks
            .get(track as usize)?
            .as_ref()
            .map(|t| t.jb.stats())
    }

    /// 48 kHz frames of the mix so far.
    pub fn mix_frames(&self) -> u64 {
        self.ticks * FRAME_10MS_48K as u64
    }

    /// Next thing to write.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Instant {
        let tick = self.tick_time(self.ticks + 1) + MIX_LAG;
        self.tracks
            .iter()
            .flatten()
            .filter_map(|t| t.raw.pending.values().map(|(_, _, at)| *at).min())
            .map(|at| at + REORDER_WAIT)
            .fold(tick, Instant::min)
    }

    fn tick_time(&self, k: u64) -> Instant {
        self.start + TICK * k as u32
    }

    fn us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_micros() as u64
    }

    /// A packet of track `track` (numbered from 0 by the caller) arrived at `at`.
    pub fn handle_packet(
        &mut self,
        track: u32,
        at: Instant,
        seq: u64,
        rtp_ts: u32,
        payload: Arc<[u8]>,
    ) {
        if self.finished || payload.is_empty() {
            return;
        }
        self.run_ticks(at);
        let i = track as usize;
        if self.tracks.len() <= i {
            self.tracks.resize_with(i + 1, || None);
        }
        if self.tracks[i].is_none() {
            let Ok(jb) = JitterBuffer::new(JitterConfig::new(1)) else {
                return;
            };
            let offset_ms = at.saturating_duration_since(self.start).as_millis() as u64;
            self.out
                .push_back(Output::TrackStarted { track, offset_ms });
            self.tracks[i] = Some(Track {
                raw: RawTrack {
                    pending: BTreeMap::new(),
                    next_seq: None,
                    last_ts: rtp_ts,
                    last_pos: 0,
                    pos: 0,
                    stats: TrackStats::default(),
                },
                jb,
                mix_queue: VecDeque::new(),
            });
        }
        // The mix: the jitter buffer's clock is the tick clock; a packet later than the last
        // tick run counts as arriving at that tick.
        let now_us = self.us(at).max(self.ticks * 10_000);
        let t = self.tracks[i].as_mut().expect("made above");
        t.mix_queue
            .push_back((now_us, seq as u16, rtp_ts, payload.clone()));
        // The raw track.
        if t.raw.next_seq.is_some_and(|n| seq < n) {
            t.raw.stats.late += 1;
            return;
        }
        t.raw.pending.insert(seq, (rtp_ts, payload, at));
        release(&mut t.raw, track, at, false, &mut self.out);
    }

    /// Runs the mix ticks and reorder deadlines due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if let Some(t) = now.checked_sub(MIX_LAG) {
            self.run_ticks(t);
        }
        for (i, t) in self.tracks.iter_mut().enumerate() {
            if let Some(t) = t {
                release(&mut t.raw, i as u32, now, false, &mut self.out);
            }
        }
    }

    /// The recording ends at `now`: everything held is written, the mix runs to `now` and
    /// its last 10 ms (if any) is padded to a whole packet. Nothing is accepted afterwards.
    pub fn finish(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        self.run_ticks(now);
        for (i, t) in self.tracks.iter_mut().enumerate() {
            if let Some(t) = t {
                release(&mut t.raw, i as u32, now, true, &mut self.out);
            }
        }
        if self.ticks % 2 == 1 {
            self.frame[FRAME_10MS_48K..].fill(0);
            self.ticks += 1;
            self.encode();
        }
        self.finished = true;
    }

    /// Runs every tick whose 10 ms ended at or before `until`.
    fn run_ticks(&mut self, until: Instant) {
        while self.tick_time(self.ticks + 1) <= until {
            let now_us = (self.ticks + 1) * 10_000;
            self.acc.fill(0);
            for t in self.tracks.iter_mut().flatten() {
                while let Some((at, seq, ts, p)) = t.mix_queue.front() {
                    if *at > now_us {
                        break;
                    }
                    t.jb.push(*seq, *ts, p, *at);
                    t.mix_queue.pop_front();
                }
                t.jb.pop_10ms(now_us, &mut self.pcm);
                for (a, s) in self.acc.iter_mut().zip(&self.pcm) {
                    *a += i32::from(*s);
                }
            }
            let half = (self.ticks % 2) as usize * FRAME_10MS_48K;
            for (d, a) in self.frame[half..half + FRAME_10MS_48K]
                .iter_mut()
                .zip(&self.acc)
            {
                *d = (*a).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
            self.ticks += 1;
            if self.ticks.is_multiple_of(2) {
                self.encode();
            }
        }
    }

    fn encode(&mut self) {
        match self.enc.encode(&self.frame, &mut self.packet) {
            Ok(n) => self.out.push_back(Output::MixPacket {
                packet: self.packet[..n].to_vec(),
                granule: self.mix_frames(),
            }),
            Err(e) => tracing::warn!(error = %e, "mix encoding failed"),
        }
    }
}

/// Writes the packets of `raw` that are in order, or waited long enough (`all`: everything).
fn release(raw: &mut RawTrack, track: u32, now: Instant, all: bool, out: &mut VecDeque<Output>) {
    while let Some((&seq, &(_, _, at))) = raw.pending.first_key_value() {
        let in_order = raw.next_seq.is_none_or(|n| seq == n);
        let waited = now.saturating_duration_since(at) >= REORDER_WAIT;
        if !(in_order || waited || all || raw.pending.len() > REORDER_MAX) {
            break;
        }
        let (seq, (ts, payload, _)) = raw.pending.pop_first().expect("peeked");
        if let Some(n) = raw.next_seq {
            raw.stats.lost += seq.saturating_sub(n);
        }
        raw.next_seq = Some(seq + 1);
        let Some(frames) = packet_frames(&payload) else {
            raw.stats.late += 1; // Malformed: not Opus we can place.
            continue;
        };
        // Unwrap the 32-bit timestamp against the last written packet's.
        let pos = if raw.stats.packets == 0 {
            0
        } else {
            raw.last_pos + i64::from(ts.wrapping_sub(raw.last_ts) as i32)
        };
        raw.last_ts = ts;
        raw.last_pos = pos;
        // Fill a gap with silence in whole 2.5 ms (the shortest Opus frame); a remainder is
        // left (the next packet's timestamp corrects the position, so it never accumulates).
        let gap = pos - raw.pos as i64;
        if gap >= 120 {
            let frames = gap as u64 / 120 * 120;
            raw.pos += frames;
            raw.stats.silence_frames += frames;
            out.push_back(Output::TrackSilence { track, frames });
        }
        raw.pos += frames as u64;
        raw.stats.packets += 1;
        raw.stats.frames = raw.pos;
        out.push_back(Output::TrackPacket {
            track,
            packet: payload,
            granule: raw.pos,
        });
    }
    raw.stats.frames = raw.pos;
}
