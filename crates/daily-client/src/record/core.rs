//! The IO-free heart of a recording: told the clock's tick numbers, it places every tapped
//! 10 ms frame at the sample position its tick gives, mixes the taps of each track (user: what
//! this client receives, bot: what it sends), resamples, finds speaking turns and cuts
//! `buffer_size` chunks. It reads no clock, spawns nothing, owns no file: the recorder thread
//! (`recorder.rs`) feeds it with [`RecordCore::handle_frame`] and drives it with
//! [`RecordCore::poll`] / [`RecordCore::finish`], then takes [`RecordCore::poll_output`] and
//! [`RecordCore::take_merged`].
//!
//! Alignment is by construction: tick `n` (started at tick `s`) covers output samples
//! `(n - s) × f10 .. (n - s + 1) × f10` of *both* tracks, whatever order or batch sizes the
//! frames arrive in; a tick with no frame of a track is silence in that track. Ticks are
//! finalized (mixed, appended to both tracks at once) [`HORIZON_TICKS`] after the wall clock
//! passed them, so both tracks always have the same length, and a frame that arrives after its
//! tick was finalized is dropped and counted ([`RecordCore::late_frames`]) rather than moved.

use daily_media::{Resampler, Vad};
use std::collections::VecDeque;

/// Ticks (10 ms) a tick stays open for late frames after the wall clock passed it: 500 ms. A
/// lane that falls behind catches up in a burst for at most 200 ms before skipping ticks
/// (`clock.rs`), and the recorder thread wakes every 20 ms, so a tapped frame is in its ring
/// long before this.
pub const HORIZON_TICKS: u64 = 50;

/// A frame further than this ahead of the finalized position (60 s) is refused: no clock
/// produces it, and accepting it would make the core hold a minute of open slots.
const MAX_AHEAD_TICKS: u64 = 6_000;

/// VAD score from which a 10 ms frame counts as speech. pipecat uses 0.7 with Silero; ours is
/// NativeVad, scored differently. A turn opens on [`TURN_START_TICKS`] *consecutive* speech
/// frames, so a frame of real speech scored low restarts the count: on LibriVox speech
/// (`data/librivox_16k.wav`, the clips of `tests/test_audio_buffer.py`) 93-98 % of frames score
/// at least 0.5 but only 82-93 % at least 0.7, while white noise at -40 dBFS scores at least
/// 0.5 in 1.4 % of frames (never 0.7; highest 0.59), far from 20 in a row (measured 2026-12-06).
pub const TURN_CONFIDENCE: f32 = 0.5;
/// Speech needed to open a turn: 200 ms (pipecat's `VADParams.start_secs`).
pub const TURN_START_TICKS: u32 = 20;
/// Non-speech needed to close a turn: 800 ms (pipecat's `VADParams.stop_secs`).
pub const TURN_STOP_TICKS: u32 = 80;
/// Audio kept before a turn's first speech frame (the VAD reacts a frame or two late): 100 ms.
pub const TURN_PREROLL_TICKS: u64 = 10;
/// Audio kept after a turn's last speech frame: 200 ms.
pub const TURN_HANGOVER_TICKS: u64 = 20;
/// How long finalized ticks wait before they are emitted when turns are tracked (user gating
/// or turn audio): the start window plus the pre-roll, so a turn's opening audio is still
/// held when the VAD confirms the turn.
const DELAY_TICKS: usize = (TURN_START_TICKS as u64 + TURN_PREROLL_TICKS + 2) as usize;

/// Which side of the conversation a tap feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    /// Audio this client receives: every remote participant's track, mixed.
    User,
    /// Audio this client sends: its microphone and custom audio tracks, mixed.
    Bot,
}

/// What a recording produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordConfig {
    /// Output rate in Hz (8000..=48000, a multiple of 100).
    pub sample_rate: u32,
    /// 1: user + bot summed; 2: user left, bot right.
    pub num_channels: u16,
    /// Bytes per track (mono i16) that make a chunk; 0 = one chunk when recording stops.
    pub buffer_size: usize,
    /// `false`: the user track keeps only speech turns (with their pre-roll and the 0.8 s that
    /// confirm a turn's end); everything else in it is silence.
    pub user_continuous_stream: bool,
    /// Emit each finished turn's audio ([`RecordOutput::Turn`]).
    pub enable_turn_audio: bool,
}

/// An output of the core, in order.
#[derive(Debug, PartialEq)]
pub enum RecordOutput {
    /// A track reached `buffer_size` bytes, or recording stopped with audio buffered: both
    /// tracks, mono, equal length.
    Chunk { user: Vec<i16>, bot: Vec<i16> },
    /// A speaking turn of `track` ended: its audio, mono.
    Turn { track: Track, audio: Vec<i16> },
}

/// One tick's mix in progress.
struct Slot {
    user: Vec<i32>,
    bot: Vec<i32>,
}

struct TapState {
    id: u64,
    track: Track,
    resampler: Resampler,
    in_len: usize,
}

/// A finalized tick waiting in the delay line.
struct Delayed {
    tick: u64,
    user: Vec<i16>,
    bot: Vec<i16>,
    /// The user track is part of a turn (kept when `user_continuous_stream` is false).
    keep_user: bool,
}

/// Speaking-turn detection for one track.
struct Turns {
    vad: Vad,
    /// Consecutive speech (while quiet) or non-speech (while speaking) frames.
    run: u32,
    speaking: bool,
    last_speech: u64,
    /// First tick of the turn in progress (its pre-roll included).
    start: Option<u64>,
    /// Audio of the turn in progress, from `start` on (turn audio only).
    audio: Vec<i16>,
    /// Next tick whose audio belongs in `audio` (ticks arrive in order from the delay line).
    audio_next: u64,
}

enum TurnEvent {
    /// A turn was confirmed; it starts at this tick.
    Started(u64),
    /// The turn ended: its last tick.
    Ended(u64),
}

impl Turns {
    fn new(rate: u32) -> Turns {
        Turns {
            vad: Vad::new(0, rate, 1).expect("rates are checked by RecordCore::new"),
            run: 0,
            speaking: false,
            last_speech: 0,
            start: None,
            audio: Vec::new(),
            audio_next: 0,
        }
    }

    fn analyze(&mut self, tick: u64, pcm: &[i16]) -> Option<TurnEvent> {
        let speech = self.vad.analyze(pcm).unwrap_or(0.0) >= TURN_CONFIDENCE;
        if speech {
            self.last_speech = tick;
        }
        if !self.speaking {
            self.run = if speech { self.run + 1 } else { 0 };
            if self.run >= TURN_START_TICKS {
                self.speaking = true;
                self.run = 0;
                let onset =
                    (tick + 1 - u64::from(TURN_START_TICKS)).saturating_sub(TURN_PREROLL_TICKS);
                return Some(TurnEvent::Started(onset));
            }
        } else {
            self.run = if speech { 0 } else { self.run + 1 };
            if self.run >= TURN_STOP_TICKS {
                self.speaking = false;
                self.run = 0;
                return Some(TurnEvent::Ended(self.last_speech + TURN_HANGOVER_TICKS));
            }
        }
        None
    }
}

/// The recording core; see the module documentation.
pub struct RecordCore {
    cfg: RecordConfig,
    /// Output frames per 10 ms.
    f10: usize,
    start_tick: u64,
    /// First tick not yet finalized; `open[0]` is its slot.
    next_tick: u64,
    open: VecDeque<Option<Slot>>,
    spare: Vec<Slot>,
    taps: Vec<TapState>,
    scratch: Vec<i16>,
    delay: VecDeque<Delayed>,
    turns: Option<[Turns; 2]>,
    want_chunks: bool,
    chunk_user: Vec<i16>,
    chunk_bot: Vec<i16>,
    merged: Vec<i16>,
    want_merged: bool,
    out: VecDeque<RecordOutput>,
    late: u64,
    refused: u64,
    emitted_ticks: u64,
}

impl RecordCore {
    /// A core for a recording that starts at tick `start_tick`. `want_chunks`: keep audio for
    /// [`RecordOutput::Chunk`]s (a handler wants them); `want_merged`: keep the merged stream
    /// for [`take_merged`](Self::take_merged) (a file is written).
    pub fn new(
        cfg: RecordConfig,
        start_tick: u64,
        want_chunks: bool,
        want_merged: bool,
    ) -> Result<RecordCore, String> {
        let f10 = daily_media::frames_per_10ms(cfg.sample_rate).map_err(|_| {
            format!(
                "sample_rate must be a multiple of 100 Hz between 8000 and 48000, got {}",
                cfg.sample_rate
            )
        })?;
        if !(1..=2).contains(&cfg.num_channels) {
            return Err(format!(
                "num_channels must be 1 or 2, got {}",
                cfg.num_channels
            ));
        }
        let turns = (cfg.enable_turn_audio || !cfg.user_continuous_stream)
            .then(|| [Turns::new(cfg.sample_rate), Turns::new(cfg.sample_rate)]);
        Ok(RecordCore {
            cfg,
            f10,
            start_tick,
            next_tick: start_tick,
            open: VecDeque::new(),
            spare: Vec::new(),
            taps: Vec::new(),
            scratch: vec![0; f10],
            delay: VecDeque::new(),
            turns,
            want_chunks,
            chunk_user: Vec::new(),
            chunk_bot: Vec::new(),
            merged: Vec::new(),
            want_merged,
            out: VecDeque::new(),
            late: 0,
            refused: 0,
            emitted_ticks: 0,
        })
    }

    /// Output frames per 10 ms tick.
    pub fn frames_per_tick(&self) -> usize {
        self.f10
    }

    /// Starts or stops keeping audio for chunks (handlers were added or removed). Audio
    /// finalized while not wanted is not kept.
    pub fn set_want_chunks(&mut self, want: bool) {
        self.want_chunks = want;
        if !want {
            self.chunk_user.clear();
            self.chunk_bot.clear();
        }
    }

    /// Starts or stops keeping the merged stream for [`take_merged`](Self::take_merged).
    pub fn set_want_merged(&mut self, want: bool) {
        self.want_merged = want;
        if !want {
            self.merged.clear();
        }
    }

    /// A tap was attached: its frames are `in_rate` Hz, `in_channels` interleaved.
    pub fn add_tap(
        &mut self,
        id: u64,
        track: Track,
        in_rate: u32,
        in_channels: u16,
    ) -> Result<(), String> {
        let resampler = Resampler::new(in_rate, in_channels, self.cfg.sample_rate, 1)
            .map_err(|e| e.to_string())?;
        let in_len = resampler.input_frames() * usize::from(in_channels);
        self.taps.retain(|t| t.id != id);
        self.taps.push(TapState {
            id,
            track,
            resampler,
            in_len,
        });
        Ok(())
    }

    /// Forgets a tap (its node went away).
    pub fn remove_tap(&mut self, id: u64) {
        self.taps.retain(|t| t.id != id);
    }

    /// Frames dropped because their tick had already been finalized.
    pub fn late_frames(&self) -> u64 {
        self.late
    }

    /// Frames refused: unknown tap, wrong length, or absurdly far ahead.
    pub fn refused_frames(&self) -> u64 {
        self.refused
    }

    /// Ticks appended to both tracks so far.
    pub fn emitted_ticks(&self) -> u64 {
        self.emitted_ticks
    }

    /// Samples per track appended so far (both tracks have this length).
    pub fn track_frames(&self) -> u64 {
        self.emitted_ticks * self.f10 as u64
    }

    /// One tapped 10 ms frame of tap `tap`, produced at clock tick `tick`.
    pub fn handle_frame(&mut self, tap: u64, tick: u64, pcm: &[i16]) {
        let Some(t) = self.taps.iter_mut().find(|t| t.id == tap) else {
            self.refused += 1;
            return;
        };
        if tick < self.start_tick {
            return; // before the recording started: not part of it
        }
        if tick < self.next_tick {
            self.late += 1;
            return;
        }
        let ahead = tick - self.next_tick;
        if ahead >= MAX_AHEAD_TICKS || pcm.len() != t.in_len {
            self.refused += 1;
            return;
        }
        if t.resampler.process(pcm, &mut self.scratch).is_err() {
            self.refused += 1;
            return;
        }
        let track = t.track;
        let ahead = ahead as usize;
        while self.open.len() <= ahead {
            self.open.push_back(None);
        }
        let f10 = self.f10;
        let spare = &mut self.spare;
        let slot = self.open[ahead].get_or_insert_with(|| {
            spare.pop().unwrap_or_else(|| Slot {
                user: vec![0; f10],
                bot: vec![0; f10],
            })
        });
        let acc = match track {
            Track::User => &mut slot.user,
            Track::Bot => &mut slot.bot,
        };
        for (a, s) in acc.iter_mut().zip(&self.scratch) {
            *a += i32::from(*s);
        }
    }

    /// The wall clock is in tick `now_tick`: finalizes every tick older than
    /// [`HORIZON_TICKS`].
    pub fn poll(&mut self, now_tick: u64) {
        let until = now_tick.saturating_sub(HORIZON_TICKS);
        self.finalize_until(until);
    }

    /// Recording stops at tick `end_tick`: finalizes every tick before it, empties the delay
    /// line, ends an open turn and emits what is buffered as a last chunk.
    pub fn finish(&mut self, end_tick: u64) {
        self.finalize_until(end_tick);
        while let Some(d) = self.delay.pop_front() {
            self.emit(d);
        }
        if let Some(turns) = self.turns.as_mut() {
            for (i, t) in turns.iter_mut().enumerate() {
                if t.start.take().is_some() && self.cfg.enable_turn_audio && !t.audio.is_empty() {
                    let track = if i == 0 { Track::User } else { Track::Bot };
                    self.out.push_back(RecordOutput::Turn {
                        track,
                        audio: std::mem::take(&mut t.audio),
                    });
                }
            }
        }
        if !self.chunk_user.is_empty() {
            let user = std::mem::take(&mut self.chunk_user);
            let bot = std::mem::take(&mut self.chunk_bot);
            self.out.push_back(RecordOutput::Chunk { user, bot });
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<RecordOutput> {
        self.out.pop_front()
    }

    /// The merged stream (mono sum or stereo interleaved) produced since the last call.
    pub fn take_merged(&mut self) -> &mut Vec<i16> {
        &mut self.merged
    }

    fn finalize_until(&mut self, until: u64) {
        while self.next_tick < until {
            let tick = self.next_tick;
            let slot = self.open.pop_front().flatten();
            self.next_tick += 1;
            let mut user = vec![0i16; self.f10];
            let mut bot = vec![0i16; self.f10];
            if let Some(s) = slot {
                clip_into(&s.user, &mut user);
                clip_into(&s.bot, &mut bot);
                self.recycle(s);
            }
            self.finalized(tick, user, bot);
        }
    }

    fn recycle(&mut self, mut s: Slot) {
        if self.spare.len() < 64 {
            s.user.fill(0);
            s.bot.fill(0);
            self.spare.push(s);
        }
    }

    /// A tick is final: track turns on it, then emit it (through the delay line if turns are
    /// tracked).
    fn finalized(&mut self, tick: u64, user: Vec<i16>, bot: Vec<i16>) {
        let Some(turns) = self.turns.as_mut() else {
            self.emit(Delayed {
                tick,
                user,
                bot,
                keep_user: true,
            });
            return;
        };
        let mut events: [Option<TurnEvent>; 2] = [None, None];
        events[0] = turns[0].analyze(tick, &user);
        events[1] = turns[1].analyze(tick, &bot);
        let keep_user = turns[0].speaking || turns[0].start.is_some();
        self.delay.push_back(Delayed {
            tick,
            user,
            bot,
            keep_user,
        });
        for (i, ev) in events.into_iter().enumerate() {
            match ev {
                Some(TurnEvent::Started(from)) => {
                    let t = &mut self.turns.as_mut().expect("turns are tracked")[i];
                    // The turn's opening is still in the delay line (DELAY_TICKS > start + pre-roll).
                    let from = from
                        .max(self.delay.front().map_or(tick, |d| d.tick))
                        .max(self.start_tick);
                    t.start = Some(from);
                    t.audio.clear();
                    t.audio_next = from;
                    if i == 0 {
                        for d in self.delay.iter_mut().filter(|d| d.tick >= from) {
                            d.keep_user = true;
                        }
                    }
                }
                Some(TurnEvent::Ended(last)) => {
                    let t = &mut self.turns.as_mut().expect("turns are tracked")[i];
                    if let Some(start) = t.start.take() {
                        // `last` was emitted already (the stop window is longer than the delay).
                        let n = (last + 1).saturating_sub(start) as usize * self.f10;
                        t.audio.truncate(n);
                        if self.cfg.enable_turn_audio && !t.audio.is_empty() {
                            let track = if i == 0 { Track::User } else { Track::Bot };
                            self.out.push_back(RecordOutput::Turn {
                                track,
                                audio: std::mem::take(&mut t.audio),
                            });
                        }
                        t.audio.clear();
                    }
                }
                None => {}
            }
        }
        while self.delay.len() > DELAY_TICKS {
            let d = self.delay.pop_front().expect("non-empty");
            self.emit(d);
        }
    }

    /// Appends one tick to both tracks (and the turns, chunks and merged stream).
    fn emit(&mut self, mut d: Delayed) {
        if !self.cfg.user_continuous_stream && !d.keep_user {
            d.user.fill(0);
        }
        if let Some(turns) = self.turns.as_mut()
            && self.cfg.enable_turn_audio
        {
            for (t, pcm) in turns.iter_mut().zip([&d.user, &d.bot]) {
                if t.start.is_some_and(|s| d.tick >= s) && d.tick >= t.audio_next {
                    t.audio.extend_from_slice(pcm);
                    t.audio_next = d.tick + 1;
                }
            }
        }
        self.emitted_ticks += 1;
        if self.want_merged {
            merge_into(&d.user, &d.bot, self.cfg.num_channels, &mut self.merged);
        }
        if self.want_chunks {
            self.chunk_user.extend_from_slice(&d.user);
            self.chunk_bot.extend_from_slice(&d.bot);
            let per_chunk = (self.cfg.buffer_size / 2).max(1);
            if self.cfg.buffer_size > 0 {
                while self.chunk_user.len() >= per_chunk {
                    let user: Vec<i16> = self.chunk_user.drain(..per_chunk).collect();
                    let bot: Vec<i16> = self.chunk_bot.drain(..per_chunk).collect();
                    self.out.push_back(RecordOutput::Chunk { user, bot });
                }
            }
        }
    }
}

fn clip_into(acc: &[i32], out: &mut [i16]) {
    for (o, a) in out.iter_mut().zip(acc) {
        *o = (*a).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    }
}

/// The merged stream of two equal-length mono tracks: their sum clipped to i16 (`channels`
/// 1), or user left and bot right, interleaved (2).
pub fn merge_into(user: &[i16], bot: &[i16], channels: u16, out: &mut Vec<i16>) {
    if channels == 2 {
        out.reserve(2 * user.len());
        for (u, b) in user.iter().zip(bot) {
            out.push(*u);
            out.push(*b);
        }
    } else {
        out.extend(
            user.iter()
                .zip(bot)
                .map(|(u, b)| (i32::from(*u) + i32::from(*b)).clamp(-32768, 32767) as i16),
        );
    }
}
