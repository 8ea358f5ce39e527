//! Deterministic tests of the recording core: frames fed in random interleavings and batch
//! sizes, stalls and bursts, on virtual ticks (no clock, no thread).

use super::core::{HORIZON_TICKS, RecordConfig, RecordCore, RecordOutput, Track};

const USER: u64 = 1;
const BOT: u64 = 2;

/// xorshift64*: a seeded generator, so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The value every sample of `track`'s frame at `tick` holds: unique per tick (mod 16384) and
/// track, never 0, so a frame found anywhere but at its tick's position is caught.
fn value(track: u64, tick: u64) -> i16 {
    let v = (tick % 16_000) as i16 + 1;
    if track == USER { v } else { -v }
}

/// Whether `track` sends anything at `tick` (gaps: the remote side is quiet, the bot idles).
fn sends(track: u64, tick: u64) -> bool {
    let period = if track == USER { 7_000 } else { 5_300 };
    (tick % period) >= 1_500 || tick < 50
}

fn cfg(buffer_size: usize) -> RecordConfig {
    RecordConfig {
        sample_rate: 16_000,
        num_channels: 1,
        buffer_size,
        user_continuous_stream: true,
        enable_turn_audio: false,
    }
}

/// Runs both tracks' chunks out of `core` into one buffer each; checks equal length per chunk.
fn collect(
    core: &mut RecordCore,
    user: &mut Vec<i16>,
    bot: &mut Vec<i16>,
    chunk_samples: Option<usize>,
) {
    while let Some(o) = core.poll_output() {
        match o {
            RecordOutput::Chunk { user: u, bot: b } => {
                assert_eq!(
                    u.len(),
                    b.len(),
                    "the two tracks have equal length at every chunk"
                );
                if let Some(n) = chunk_samples {
                    assert!(
                        u.len() == n || u.len() < n,
                        "chunk of {} samples, buffer_size says {n}",
                        u.len()
                    );
                }
                user.extend(u);
                bot.extend(b);
            }
            RecordOutput::Turn { .. } => panic!("turns are off"),
        }
    }
}

/// Every frame sits exactly at its tick's position; ticks without a frame are silence.
fn check_positions(
    user: &[i16],
    bot: &[i16],
    start: u64,
    end: u64,
    f10: usize,
    missing: &dyn Fn(u64, u64) -> bool,
) {
    assert_eq!(user.len(), ((end - start) as usize) * f10);
    assert_eq!(bot.len(), user.len());
    for tick in start..end {
        let at = (tick - start) as usize * f10;
        for (track, buf) in [(USER, user), (BOT, bot)] {
            let want = if sends(track, tick) && !missing(track, tick) {
                value(track, tick)
            } else {
                0
            };
            let got = &buf[at..at + f10];
            assert!(
                got.iter().all(|&s| s == want),
                "track {track} tick {tick}: want {want}, got {:?}",
                &got[..4]
            );
        }
    }
}

/// A 10-minute call (60,000 ticks per track), frames produced tick by tick into each tap's
/// queue and drained in random interleavings and batch sizes, with random polls and drain
/// stalls of up to 2 s: every frame lands exactly at its tick, the tracks have equal length at
/// every chunk, and nothing is late.
#[test]
fn ten_minutes_in_random_interleavings_land_exactly() {
    for seed in [1u64, 0x9E37_79B9, 42] {
        let mut rng = Rng(seed);
        let start = 1_000u64;
        let ticks = 60_000u64;
        let end = start + ticks;
        let buffer_size = 3_200 + 2 * rng.below(500) as usize; // about 100 ms at 16 kHz
        let mut core = RecordCore::new(cfg(buffer_size), start, true, true).unwrap();
        core.add_tap(USER, Track::User, 16_000, 1).unwrap();
        core.add_tap(BOT, Track::Bot, 16_000, 1).unwrap();
        let f10 = core.frames_per_tick();
        let (mut user, mut bot) = (Vec::new(), Vec::new());
        let mut queues: [std::collections::VecDeque<u64>; 2] = Default::default();
        let mut merged_len = 0usize;
        let mut now = start;
        let mut frame = vec![0i16; f10];
        while now < end + HORIZON_TICKS + 5 {
            // The clock: one tick per step, each track queues its frame if it sends one.
            if now < end {
                for (q, track) in queues.iter_mut().zip([USER, BOT]) {
                    if sends(track, now) {
                        q.push_back(now);
                    }
                }
            }
            now += 1;
            // The recorder: sometimes stalls (up to 2 s), then drains random batches.
            if rng.below(100) == 0 {
                now += 0; // a stall is simply not draining for a while:
                let stall = rng.below(200);
                for _ in 0..stall {
                    if now < end {
                        for (q, track) in queues.iter_mut().zip([USER, BOT]) {
                            if sends(track, now) {
                                q.push_back(now);
                            }
                        }
                    }
                    now += 1;
                }
            }
            let mut budget = rng.below(8);
            while budget > 0 && queues.iter().any(|q| !q.is_empty()) {
                let i = rng.below(2) as usize;
                let n = 1 + rng.below(5);
                for _ in 0..n {
                    if let Some(t) = queues[i].pop_front() {
                        let track = if i == 0 { USER } else { BOT };
                        frame.fill(value(track, t));
                        core.handle_frame(track, t, &frame);
                    }
                }
                budget -= 1;
            }
            // Poll only with what has been drained: a frame still queued is older than
            // `now - HORIZON` only after a long stall, and then it is all drained first.
            if queues
                .iter()
                .all(|q| q.front().is_none_or(|&t| t + HORIZON_TICKS >= now))
            {
                core.poll(now.min(end + HORIZON_TICKS));
            }
            merged_len += core.take_merged().len();
            core.take_merged().clear();
            collect(&mut core, &mut user, &mut bot, Some(buffer_size / 2));
        }
        for (i, q) in queues.iter_mut().enumerate() {
            let track = if i == 0 { USER } else { BOT };
            while let Some(t) = q.pop_front() {
                frame.fill(value(track, t));
                core.handle_frame(track, t, &frame);
            }
        }
        core.finish(end);
        merged_len += core.take_merged().len();
        collect(&mut core, &mut user, &mut bot, None);
        assert_eq!(core.late_frames(), 0);
        assert_eq!(core.refused_frames(), 0);
        check_positions(&user, &bot, start, end, f10, &|_, _| false);
        assert_eq!(
            merged_len,
            user.len(),
            "mono: one merged sample per track sample"
        );
    }
}

/// The recorder stalls for 2 s and then drains everything at once; a source stalls (its lane
/// fell behind) and then bursts the frames of the ticks it missed, 400 ms late: all land at
/// their ticks. Frames later than the horizon are dropped and counted, never moved.
#[test]
fn stall_then_burst_lands_exactly_and_late_frames_are_dropped_not_moved() {
    let start = 0u64;
    let end = 1_000u64;
    let mut core = RecordCore::new(cfg(0), start, true, false).unwrap();
    core.add_tap(USER, Track::User, 16_000, 1).unwrap();
    core.add_tap(BOT, Track::Bot, 16_000, 1).unwrap();
    let f10 = core.frames_per_tick();
    let feed = |core: &mut RecordCore, track: u64, t: u64| {
        if sends(track, t) {
            core.handle_frame(track, t, &vec![value(track, t); f10]);
        }
    };
    // Ticks 0..300 run normally, drained every tick.
    for t in 0..300 {
        feed(&mut core, USER, t);
        feed(&mut core, BOT, t);
        core.poll(t + 1);
    }
    // The recorder stalls from tick 300 to 500 (2 s): nothing drained, nothing polled.
    // Meanwhile the bot's lane stalls 300..340 and bursts those ticks' frames at 340.
    let mut user_q: Vec<u64> = (300..500).collect();
    let mut bot_q: Vec<u64> = (300..500).collect();
    // At 500 everything is drained at once (user first, then bot), then polled.
    for t in user_q.drain(..) {
        feed(&mut core, USER, t);
    }
    for t in bot_q.drain(..) {
        feed(&mut core, BOT, t);
    }
    core.poll(500);
    // From 500 on the user's frames arrive 40 ticks late (a burst within the horizon).
    for t in 500..end {
        feed(&mut core, BOT, t);
        if t >= 540 {
            feed(&mut core, USER, t - 40);
        }
        core.poll(t + 1);
    }
    for t in end - 40..end {
        feed(&mut core, USER, t);
    }
    // Two frames far too late (the horizon passed): dropped, counted.
    core.handle_frame(USER, 100, &vec![123; f10]);
    core.handle_frame(BOT, 200, &vec![123; f10]);
    core.finish(end);
    assert_eq!(core.late_frames(), 2);
    let (mut user, mut bot) = (Vec::new(), Vec::new());
    collect(&mut core, &mut user, &mut bot, None);
    check_positions(&user, &bot, start, end, f10, &|_, _| false);
}

/// Taps at other rates are resampled into place: a 48 kHz click at tick `k` (the user's
/// receive pipeline) and a 24 kHz stereo click at the same tick (the bot's source) come out
/// within one 10 ms frame of `k × 160` samples at 16 kHz, in both tracks.
#[test]
fn resampled_taps_land_within_one_frame() {
    let mut core = RecordCore::new(cfg(0), 10, true, false).unwrap();
    core.add_tap(USER, Track::User, 48_000, 1).unwrap();
    core.add_tap(BOT, Track::Bot, 24_000, 2).unwrap();
    let click = 123u64;
    for t in 10..400 {
        let mut u = vec![0i16; 480];
        let mut b = vec![0i16; 480];
        if t == click {
            u[..48].fill(20_000);
            b[..48].fill(20_000);
        }
        core.handle_frame(USER, t, &u);
        core.handle_frame(BOT, t, &b);
        core.poll(t + 1);
    }
    core.finish(400);
    let (mut user, mut bot) = (Vec::new(), Vec::new());
    collect(&mut core, &mut user, &mut bot, None);
    let want = ((click - 10) * 160) as i64;
    for (name, track) in [("user", &user), ("bot", &bot)] {
        let peak = track
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.unsigned_abs())
            .unwrap()
            .0 as i64;
        assert!(
            (peak - want).abs() < 160,
            "{name}: click at sample {peak}, its tick says {want}"
        );
    }
}

/// Stereo: user left, bot right; mono: the clipped sum.
#[test]
fn merged_stream_is_the_sum_or_user_left_bot_right() {
    for channels in [1u16, 2] {
        let mut c = cfg(0);
        c.num_channels = channels;
        let mut core = RecordCore::new(c, 0, false, true).unwrap();
        core.add_tap(USER, Track::User, 16_000, 1).unwrap();
        core.add_tap(BOT, Track::Bot, 16_000, 1).unwrap();
        core.handle_frame(USER, 0, &[30_000; 160]);
        core.handle_frame(BOT, 0, &[10_000; 160]);
        core.handle_frame(USER, 1, &[-5; 160]);
        core.finish(3);
        let m = core.take_merged().clone();
        if channels == 1 {
            assert_eq!(m.len(), 480);
            assert!(m[..160].iter().all(|&s| s == 32_767), "clipped sum");
            assert!(m[160..320].iter().all(|&s| s == -5));
            assert!(m[320..].iter().all(|&s| s == 0));
        } else {
            assert_eq!(m.len(), 960);
            assert!(m[..320].chunks(2).all(|f| f == [30_000, 10_000]));
            assert!(m[320..640].chunks(2).all(|f| f == [-5, 0]));
        }
        assert!(core.poll_output().is_none(), "no chunks kept unless wanted");
    }
}

fn speech_gaps() -> Vec<i16> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/speech_gaps_16k.wav"
    );
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// Turns on real speech with pauses: the bot speaks the clip, the user is silent. Each turn's
/// audio starts at most 100 ms (pre-roll) + 100 ms before speech and is the clip's own audio;
/// with `user_continuous_stream=False` a noise-only user track is gated to silence.
#[test]
fn turns_of_real_speech_carry_their_audio() {
    let speech = speech_gaps();
    let mut c = cfg(0);
    c.enable_turn_audio = true;
    c.user_continuous_stream = false;
    let mut core = RecordCore::new(c, 0, true, false).unwrap();
    core.add_tap(USER, Track::User, 16_000, 1).unwrap();
    core.add_tap(BOT, Track::Bot, 16_000, 1).unwrap();
    let mut rng = Rng(7);
    let n = speech.len() / 160;
    for t in 0..n as u64 {
        let noise: Vec<i16> = (0..160).map(|_| (rng.below(201) as i16) - 100).collect();
        core.handle_frame(USER, t, &noise);
        core.handle_frame(BOT, t, &speech[t as usize * 160..(t as usize + 1) * 160]);
        core.poll(t + 1);
    }
    core.finish(n as u64 + 100);
    let mut turns = Vec::new();
    let mut user = Vec::new();
    while let Some(o) = core.poll_output() {
        match o {
            RecordOutput::Turn { track, audio } => turns.push((track, audio)),
            RecordOutput::Chunk { user: u, .. } => user.extend(u),
        }
    }
    assert!(
        turns.iter().all(|(t, _)| *t == Track::Bot),
        "noise is no user turn"
    );
    assert!(
        turns.len() >= 2,
        "the clip has several utterances: {} turns",
        turns.len()
    );
    for (_, audio) in &turns {
        assert!(
            audio.len() >= 16_000 / 5,
            "a turn holds at least its 200 ms start window"
        );
        // The turn's audio is a contiguous piece of the clip.
        let first_loud = audio.iter().position(|s| s.unsigned_abs() > 300).unwrap();
        let probe = &audio[first_loud..first_loud + 160];
        assert!(
            speech.windows(160).any(|w| w == probe),
            "turn audio comes from the clip"
        );
    }
    assert!(
        user.iter().all(|&s| s == 0),
        "user_continuous_stream=False gates noise to silence"
    );
}
