//! Virtual speaker devices (daily-python's `VirtualSpeakerDevice`): the mix of every remote
//! audio track, as a system speaker would play it, read by the application in real time.
//!
//! Every 10 ms, in the second phase of the media clock's tick, the *selected* speaker takes the
//! speaker bus (the sum of every receive pipeline's 48 kHz output, see [`crate::clock`]),
//! saturates it to 16 bits, resamples it to the device's rate and channel count and pushes it
//! into an SPSC ring. While at least one client of the engine is in a call, the clock feeds it
//! silence when nobody speaks, so reads are paced in real time like a sound card's. Readers
//! drain the ring: a blocking read parks (futex) until the clock has produced enough, a read
//! with a completion is finished by the service thread.
//!
//! Only one speaker is selected per engine, as in daily-python; an unselected speaker, or any
//! speaker while no client is in a call, reads as empty at once.

use crate::ClientError;
use crate::clock::{ClockNode, NodeId, Phase, ServiceJob, Tick};
use crate::engine::AudioFlags;
use daily_media::{FRAME_10MS_48K, Resampler};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Audio the device buffers for a reader that falls behind, in ms. When the ring is full the
/// newest 10 ms are dropped (counted in [`SpeakerDevice::dropped_ms`]).
const SPEAKER_RING_MS: usize = 500;

/// Completion of a read: called once with the interleaved PCM (possibly shorter than asked
/// for when the call ended or the device was deselected).
pub type ReadCompletion = Box<dyn FnOnce(Vec<i16>) + Send>;

struct PendingRead {
    samples: usize,
    got: Vec<i16>,
    completion: ReadCompletion,
}

struct SpeakerShared {
    id: u64,
    sample_rate: u32,
    channels: u16,
    reader: Mutex<Reader>,
    /// Futex word bumped every time the clock writes (or the device stops producing).
    wake: AtomicU32,
    waiters: AtomicU32,
    has_pending: AtomicBool,
    dropped_10ms: AtomicU64,
    closed: AtomicBool,
    flags: Arc<AudioFlags>,
}

struct Reader {
    ring: rtrb::Consumer<i16>,
    pending: VecDeque<PendingRead>,
}

/// A virtual speaker. Cheap to clone; the device stops when the last clone is dropped.
#[derive(Clone)]
pub struct SpeakerDevice {
    shared: Arc<SpeakerShared>,
    _handle: Arc<SpeakerHandle>,
}

/// Stops the clock node when the last [`SpeakerDevice`] clone goes away.
struct SpeakerHandle {
    shared: Arc<SpeakerShared>,
    node: NodeId,
    engine: Weak<crate::engine::EngineInner>,
}

impl Drop for SpeakerHandle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let _ = self.shared.flags.selected_speaker.compare_exchange(self.shared.id, 0, Ordering::AcqRel, Ordering::Acquire);
        if let Some(e) = self.engine.upgrade() {
            e.clock.remove(self.node);
        }
        self.shared.wake.fetch_add(1, Ordering::AcqRel);
        atomic_wait::wake_all(&self.shared.wake);
    }
}

static NEXT_SPEAKER: AtomicU64 = AtomicU64::new(1);

impl SpeakerDevice {
    /// Creates a speaker producing `sample_rate` Hz (8000..=48000, a multiple of 100) with 1 or
    /// 2 channels. It plays nothing until [`crate::Engine::select_speaker`] selects it.
    pub fn new(engine: &crate::Engine, sample_rate: u32, channels: u16) -> Result<SpeakerDevice, ClientError> {
        if !(1..=2).contains(&channels) {
            return Err(ClientError::InvalidArgument(format!("channels must be 1 or 2, got {channels}")));
        }
        let f10 = crate::frames_10ms(sample_rate)?;
        let rs = Resampler::new(48_000, 1, sample_rate, channels).map_err(ClientError::Media)?;
        let inner = engine.inner();
        let (prod, cons) = rtrb::RingBuffer::new(f10 * channels as usize * SPEAKER_RING_MS / 10);
        let shared = Arc::new(SpeakerShared {
            id: NEXT_SPEAKER.fetch_add(1, Ordering::Relaxed),
            sample_rate,
            channels,
            reader: Mutex::new(Reader { ring: cons, pending: VecDeque::new() }),
            wake: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            has_pending: AtomicBool::new(false),
            dropped_10ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            flags: inner.flags.clone(),
        });
        let node = inner.clock.add(SpeakerNode {
            shared: shared.clone(),
            ring: prod,
            rs,
            mono: vec![0; FRAME_10MS_48K],
            out: vec![0; f10 * channels as usize],
            was_live: false,
        });
        let handle = Arc::new(SpeakerHandle { shared: shared.clone(), node, engine: Arc::downgrade(&inner) });
        Ok(SpeakerDevice { shared, _handle: handle })
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.shared.sample_rate
    }

    /// Channel count (1 or 2).
    pub fn channels(&self) -> u16 {
        self.shared.channels
    }

    /// Milliseconds of audio dropped because nobody read them in time.
    pub fn dropped_ms(&self) -> u64 {
        self.shared.dropped_10ms.load(Ordering::Relaxed) * 10
    }

    pub(crate) fn id(&self) -> u64 {
        self.shared.id
    }

    /// Whether reads can return audio now: the device is selected and a client is in a call.
    pub fn is_live(&self) -> bool {
        live(&self.shared)
    }

    /// Reads up to `num_frames` frames that are ready now, without waiting.
    pub fn read_available(&self, num_frames: usize) -> Vec<i16> {
        let mut out = Vec::new();
        if discard_if_idle(&self.shared) {
            return out;
        }
        let want = num_frames * self.shared.channels as usize;
        let mut r = self.shared.reader.lock().unwrap_or_else(|e| e.into_inner());
        drain(&mut r.ring, &mut out, want);
        out
    }

    /// Blocks until `num_frames` frames have been read, in real time. Returns fewer (possibly
    /// none) at once when the device is not live, or when it stops being live while waiting.
    /// Call it without holding the GIL.
    pub fn read_blocking(&self, num_frames: usize) -> Vec<i16> {
        let s = &*self.shared;
        if discard_if_idle(s) {
            return Vec::new();
        }
        let want = num_frames * s.channels as usize;
        let mut out = Vec::with_capacity(want);
        s.waiters.fetch_add(1, Ordering::AcqRel);
        loop {
            let seen = s.wake.load(Ordering::Acquire);
            {
                let mut r = s.reader.lock().unwrap_or_else(|e| e.into_inner());
                drain(&mut r.ring, &mut out, want);
            }
            if out.len() >= want || !live(s) || s.closed.load(Ordering::Acquire) {
                break;
            }
            atomic_wait::wait(&s.wake, seen);
        }
        s.waiters.fetch_sub(1, Ordering::AcqRel);
        out
    }

    /// Reads `num_frames` frames and calls `completion` with them once they are ready (from the
    /// service thread), or at once with what there is when the device is not live.
    pub fn read_with_completion(&self, num_frames: usize, completion: ReadCompletion) {
        let s = &*self.shared;
        if discard_if_idle(s) {
            return completion(Vec::new());
        }
        let want = num_frames * s.channels as usize;
        let mut r = s.reader.lock().unwrap_or_else(|e| e.into_inner());
        if r.pending.is_empty() {
            let mut got = Vec::with_capacity(want);
            drain(&mut r.ring, &mut got, want);
            if got.len() >= want || !live(s) {
                drop(r);
                return completion(got);
            }
            r.pending.push_back(PendingRead { samples: want, got, completion });
        } else {
            r.pending.push_back(PendingRead { samples: want, got: Vec::with_capacity(want), completion });
        }
        s.has_pending.store(true, Ordering::Release);
    }
}

fn live(s: &SpeakerShared) -> bool {
    s.flags.speaker_live(s.id)
}

/// When the device is not live (not selected, or no call), what it still buffers is stale:
/// drop it so a read returns empty at once. Returns whether the device is idle.
fn discard_if_idle(s: &SpeakerShared) -> bool {
    if live(s) {
        return false;
    }
    let mut r = s.reader.lock().unwrap_or_else(|e| e.into_inner());
    let n = r.ring.slots();
    if let Ok(c) = r.ring.read_chunk(n) {
        c.commit_all();
    }
    true
}

fn drain(ring: &mut rtrb::Consumer<i16>, out: &mut Vec<i16>, want: usize) {
    let n = ring.slots().min(want.saturating_sub(out.len()));
    if n == 0 {
        return;
    }
    if let Ok(c) = ring.read_chunk(n) {
        let (a, b) = c.as_slices();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        c.commit_all();
    }
}

impl ServiceJob for SpeakerShared {
    /// Finishes pending reads with what the clock produced.
    fn service(&self) {
        let mut done = Vec::new();
        {
            let mut g = self.reader.lock().unwrap_or_else(|e| e.into_inner());
            let r = &mut *g;
            let is_live = live(self);
            while let Some(p) = r.pending.front_mut() {
                drain(&mut r.ring, &mut p.got, p.samples);
                if p.got.len() < p.samples && is_live {
                    break;
                }
                done.push(r.pending.pop_front().expect("front exists"));
            }
            if r.pending.is_empty() {
                self.has_pending.store(false, Ordering::Release);
            }
        }
        for p in done {
            (p.completion)(p.got);
        }
    }
}

impl Drop for SpeakerShared {
    fn drop(&mut self) {
        // Completions fire exactly once, even when the device goes away first.
        let r = self.reader.get_mut().unwrap_or_else(|e| e.into_inner());
        for p in r.pending.drain(..) {
            (p.completion)(p.got);
        }
    }
}

struct SpeakerNode {
    shared: Arc<SpeakerShared>,
    ring: rtrb::Producer<i16>,
    rs: Resampler,
    mono: Vec<i16>,
    out: Vec<i16>,
    was_live: bool,
}

impl Drop for SpeakerNode {
    fn drop(&mut self) {
        // The clock is stopping or the device is gone: release blocked readers.
        self.shared.wake.fetch_add(1, Ordering::AcqRel);
        atomic_wait::wake_all(&self.shared.wake);
    }
}

impl ClockNode for SpeakerNode {
    fn phase(&self) -> Phase {
        Phase::Consume
    }

    fn tick(&mut self, tick: &mut Tick<'_>) {
        let s = &*self.shared;
        let is_live = s.flags.speaker_live(s.id);
        if is_live {
            for (m, b) in self.mono.iter_mut().zip(tick.bus.iter()) {
                *m = (*b).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
            }
            if self.rs.process(&self.mono, &mut self.out).is_err() {
                self.out.fill(0);
            }
            if !crate::clock::push_all(&mut self.ring, &self.out) {
                s.dropped_10ms.fetch_add(1, Ordering::Relaxed);
            }
        }
        if is_live || self.was_live {
            // Wake blocked readers: new audio, or the device stopped being live.
            s.wake.fetch_add(1, Ordering::AcqRel);
            if s.waiters.load(Ordering::Acquire) > 0 {
                atomic_wait::wake_all(&s.wake);
            }
            if s.has_pending.load(Ordering::Acquire) {
                let job: Weak<dyn ServiceJob> = Arc::downgrade(&self.shared) as Weak<dyn ServiceJob>;
                tick.service(job);
            }
        }
        self.was_live = is_live;
    }

    fn alive(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
    }
}
