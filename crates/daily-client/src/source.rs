//! Custom audio sources: PCM written by the application, consumed in real time by the media
//! clock, with daily-python's pacing semantics.
//!
//! `write` copies interleaved i16 frames into a lock-free SPSC ring (`rtrb`) that the clock
//! drains 10 ms per tick. A blocking writer parks on a futex until the clock has consumed its
//! last frame; a writer with a completion returns at once and the completion fires, exactly
//! once, from the source service thread when the frames have been consumed. Writes are rounded
//! up to a multiple of 10 ms with silence, as in daily-python.
//!
//! Beyond daily-python, [`AudioSource::clear_queue`] drops everything queued (barge-in: the user
//! interrupts the bot) and [`AudioSource::queued_frames`] says how much is waiting.
//!
//! Positions are counted in frames of the written stream: `written` (accepted by `write`),
//! `consumed` (taken off the ring by the clock, played or discarded). A clear moves
//! `discard_until` to the end of what is in the ring; the clock skips up to there on its next
//! tick, while the writer side releases waiters and fires completions at once.

use crate::ClientError;
use crate::clock::{ClockNode, NodeId, ServiceJob, Tick};
use crate::send::SendPipe;
use daily_media::{FRAME_10MS_48K, Resampler};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Completion of a non-blocking write: called with the number of frames written.
pub type WriteCompletion = Box<dyn FnOnce(usize) + Send>;

/// Capacity of a source's ring, in milliseconds of audio. Anything beyond waits in an
/// overflow queue on the writer's side and is moved into the ring as it drains.
const RING_MS: usize = 500;

struct Producer {
    ring: rtrb::Producer<i16>,
    overflow: VecDeque<i16>,
    /// Frames accepted so far (including padding).
    written: u64,
    pending: VecDeque<Pending>,
}

struct Pending {
    /// Stream position (frames) just past this write's padding.
    end: u64,
    /// Frames the write occupies, padding included.
    padded: usize,
    /// Frames the caller wrote.
    frames: usize,
    completion: WriteCompletion,
}

pub(crate) struct SourceShared {
    sample_rate: u32,
    channels: u16,
    frames_10ms: usize,
    auto_silence: bool,
    producer: Mutex<Producer>,
    /// Frames consumed by the clock (monotonic). Futex word: the low 32 bits of `consumed`
    /// are mirrored in `wake` so blocked writers can wait on it.
    consumed: AtomicU64,
    wake: AtomicU32,
    waiters: AtomicU32,
    /// Set while completions or overflow wait for the clock.
    has_work: AtomicBool,
    closed: AtomicBool,
    /// The clock discards ring contents up to this position (set by `clear_queue`).
    discard_until: AtomicU64,
    /// Bumped by every `clear_queue`; blocking writers from before a clear return.
    clears: AtomicU64,
}

/// A source of PCM audio written by the application (daily-python's `CustomAudioSource`).
/// Cheap to clone; the source closes (its clock node stops, blocked writers return) when the
/// last clone is dropped.
#[derive(Clone)]
pub struct AudioSource {
    shared: Arc<SourceShared>,
    node: NodeId,
    engine: Weak<crate::engine::EngineInner>,
    flags: Arc<crate::engine::AudioFlags>,
    _owner: Arc<SourceOwner>,
}

/// Closes the source when the last [`AudioSource`] clone goes away. Only `AudioSource` clones
/// hold it: the clock node and the service thread (through an upgraded `Weak`) hold the
/// [`SourceShared`] instead, so they cannot keep a source open, whatever the timing.
struct SourceOwner {
    shared: Arc<SourceShared>,
}

impl Drop for SourceOwner {
    fn drop(&mut self) {
        // The clock drops the node at its next tick (`alive` turns false).
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.fetch_add(1, Ordering::AcqRel);
        atomic_wait::wake_all(&self.shared.wake);
    }
}

impl AudioSource {
    /// Creates a source of `sample_rate` Hz (8000..=48000, a multiple of 100) and 1 or 2
    /// channels, registered with the engine's media clock.
    pub fn new(
        engine: &crate::Engine,
        sample_rate: u32,
        channels: u16,
        auto_silence: bool,
    ) -> Result<AudioSource, ClientError> {
        if !(1..=2).contains(&channels) {
            return Err(ClientError::InvalidArgument(format!(
                "channels must be 1 or 2, got {channels}"
            )));
        }
        let frames_10ms = crate::frames_10ms(sample_rate)?;
        let cap = frames_10ms * channels as usize * (RING_MS / 10);
        let (ring, consumer) = rtrb::RingBuffer::new(cap);
        let shared = Arc::new(SourceShared {
            sample_rate,
            channels,
            frames_10ms,
            auto_silence,
            producer: Mutex::new(Producer {
                ring,
                overflow: VecDeque::new(),
                written: 0,
                pending: VecDeque::new(),
            }),
            consumed: AtomicU64::new(0),
            wake: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            has_work: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            discard_until: AtomicU64::new(0),
            clears: AtomicU64::new(0),
        });
        let inner = engine.inner();
        let node = inner.clock.add(SourceNode {
            shared: shared.clone(),
            consumer,
            buf: vec![0; frames_10ms * channels as usize],
            pipes: Vec::with_capacity(4),
        });
        let owner = Arc::new(SourceOwner { shared: shared.clone() });
        Ok(AudioSource { shared, node, engine: Arc::downgrade(&inner), flags: inner.flags.clone(), _owner: owner })
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.shared.sample_rate
    }

    /// Channel count (1 or 2).
    pub fn channels(&self) -> u16 {
        self.shared.channels
    }

    /// Frames consumed by the clock so far.
    pub fn consumed_frames(&self) -> u64 {
        self.shared.consumed.load(Ordering::Acquire)
    }

    fn check_len(&self, bytes: usize) -> Result<usize, ClientError> {
        let frame_bytes = 2 * self.shared.channels as usize;
        if bytes % frame_bytes != 0 {
            return Err(ClientError::InvalidArgument(format!(
                "frames must be a whole number of {}-channel 16-bit frames ({} bytes each), got {} bytes",
                self.shared.channels, frame_bytes, bytes
            )));
        }
        Ok(bytes / frame_bytes)
    }

    /// Frames queued and not yet consumed (padding included).
    pub fn queued_frames(&self) -> u64 {
        let p = self.shared.producer.lock().unwrap_or_else(|e| e.into_inner());
        let s = &self.shared;
        let done = s.consumed.load(Ordering::Acquire).max(s.discard_until.load(Ordering::Acquire));
        p.written.saturating_sub(done)
    }

    /// Drops everything queued. Blocking writers return at once; each pending completion fires
    /// now with the number of its frames that were actually played. Returns the number of
    /// frames dropped (padding included).
    pub fn clear_queue(&self) -> u64 {
        let s = &*self.shared;
        let mut p = s.producer.lock().unwrap_or_else(|e| e.into_inner());
        let ch = s.channels as u64;
        // Overflow never reached the ring: forget it and rewind the write position, so the
        // ring holds exactly the stream up to `written`.
        let overflow_frames = p.overflow.len() as u64 / ch;
        p.overflow.clear();
        p.written -= overflow_frames;
        let consumed = s.consumed.load(Ordering::Acquire);
        let dropped = p.written.saturating_sub(consumed.max(s.discard_until.load(Ordering::Acquire))) + overflow_frames;
        s.discard_until.store(p.written, Ordering::Release);
        s.clears.fetch_add(1, Ordering::AcqRel);
        let ready: Vec<Pending> = p.pending.drain(..).collect();
        s.has_work.store(false, Ordering::Release);
        drop(p);
        s.wake.fetch_add(1, Ordering::AcqRel);
        atomic_wait::wake_all(&s.wake);
        for w in ready {
            let start = w.end - w.padded as u64;
            let played = consumed.saturating_sub(start).min(w.frames as u64) as usize;
            (w.completion)(played);
        }
        dropped
    }

    /// Queues little-endian i16 PCM; returns the end position (frames), the frame count and
    /// the clear epoch it was queued in.
    fn enqueue(&self, pcm_le: &[u8], completion: Option<WriteCompletion>) -> Result<(u64, usize, u64), ClientError> {
        let frames = self.check_len(pcm_le.len())?;
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::Released);
        }
        if self.flags.stopped.load(Ordering::Acquire) {
            return Err(ClientError::NotInitialized);
        }
        if frames == 0 {
            if let Some(c) = completion {
                c(0);
            }
            return Ok((self.consumed_frames(), 0, self.shared.clears.load(Ordering::Acquire)));
        }
        // daily-python pads every write to a whole number of 10 ms.
        let padded = frames.div_ceil(self.shared.frames_10ms) * self.shared.frames_10ms;
        let ch = self.shared.channels as usize;
        let mut p = self.shared.producer.lock().unwrap_or_else(|e| e.into_inner());
        let samples = pcm_le
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .chain(std::iter::repeat_n(0i16, (padded - frames) * ch));
        if p.overflow.is_empty() {
            let mut it = samples;
            let free = p.ring.slots();
            let n = free.min(padded * ch);
            if let Ok(chunk) = p.ring.write_chunk_uninit(n) {
                chunk.fill_from_iter(&mut it);
            }
            p.overflow.extend(it);
        } else {
            p.overflow.extend(samples);
        }
        p.written += padded as u64;
        let end = p.written;
        if let Some(c) = completion {
            p.pending.push_back(Pending { end, padded, frames, completion: c });
        }
        if !p.overflow.is_empty() || !p.pending.is_empty() {
            self.shared.has_work.store(true, Ordering::Release);
        }
        Ok((end, frames, self.shared.clears.load(Ordering::Acquire)))
    }

    /// Non-blocking write: queues the frames and returns their count at once; `completion`
    /// fires once with that count when the clock has consumed them.
    pub fn write_with_completion(&self, pcm_le: &[u8], completion: WriteCompletion) -> Result<usize, ClientError> {
        Ok(self.enqueue(pcm_le, Some(completion))?.1)
    }

    /// Blocking write: returns once the clock has consumed every frame (real-time pacing).
    /// Call it without holding the GIL.
    pub fn write_blocking(&self, pcm_le: &[u8]) -> Result<usize, ClientError> {
        let (end, frames, epoch) = self.enqueue(pcm_le, None)?;
        let s = &self.shared;
        s.waiters.fetch_add(1, Ordering::AcqRel);
        loop {
            // Feed the overflow ourselves while we wait; the service thread does it too.
            refill(s);
            let seen = s.wake.load(Ordering::Acquire);
            if s.consumed.load(Ordering::Acquire) >= end
                || s.closed.load(Ordering::Acquire)
                || s.clears.load(Ordering::Acquire) != epoch
            {
                break;
            }
            if self.engine.upgrade().is_none_or(|e| e.clock.is_stopped() || e.flags.stopped.load(Ordering::Acquire)) {
                s.waiters.fetch_sub(1, Ordering::AcqRel);
                return Err(ClientError::NotInitialized);
            }
            atomic_wait::wait(&s.wake, seen);
        }
        s.waiters.fetch_sub(1, Ordering::AcqRel);
        Ok(frames)
    }

    pub(crate) fn attach(&self, pipe: SendPipe) {
        if let Some(e) = self.engine.upgrade() {
            e.clock.with_node::<SourceNode>(self.node, move |n| n.pipes.push(pipe));
        }
    }

    /// Gives send pipe `pipe_id` of this source a recording tap (on the clock thread).
    pub(crate) fn add_tap(&self, pipe_id: u64, tap: crate::record::Tap) {
        if let Some(e) = self.engine.upgrade() {
            e.clock.with_node::<SourceNode>(self.node, move |n| {
                if let Some(p) = n.pipes.iter_mut().find(|p| p.id == pipe_id) {
                    p.taps.add(tap);
                }
            });
        }
    }

    pub(crate) fn detach(&self, pipe_id: u64) {
        if let Some(e) = self.engine.upgrade() {
            e.clock.with_node::<SourceNode>(self.node, move |n| n.pipes.retain(|p| p.id != pipe_id));
        }
    }

    pub(crate) fn ptr_eq(&self, other: &AudioSource) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Drop for SourceShared {
    fn drop(&mut self) {
        // Completions fire exactly once, even for frames that were never played.
        let p = self.producer.get_mut().unwrap_or_else(|e| e.into_inner());
        for w in p.pending.drain(..) {
            (w.completion)(w.frames);
        }
    }
}

fn refill(s: &SourceShared) {
    let mut guard = s.producer.lock().unwrap_or_else(|e| e.into_inner());
    let p = &mut *guard;
    let n = p.ring.slots().min(p.overflow.len());
    if n == 0 {
        return;
    }
    if let Ok(chunk) = p.ring.write_chunk_uninit(n) {
        chunk.fill_from_iter(p.overflow.drain(..n));
    }
}

impl ServiceJob for SourceShared {
    /// Refills the ring from the overflow and fires the completions of consumed writes.
    fn service(&self) {
        refill(self);
        let consumed = self.consumed.load(Ordering::Acquire);
        let mut ready = Vec::new();
        {
            let mut p = self.producer.lock().unwrap_or_else(|e| e.into_inner());
            while p.pending.front().is_some_and(|w| w.end <= consumed) {
                ready.push(p.pending.pop_front().expect("front checked"));
            }
            if p.pending.is_empty() && p.overflow.is_empty() {
                self.has_work.store(false, Ordering::Release);
            }
        }
        for w in ready {
            (w.completion)(w.frames);
        }
    }
}

/// The clock-side half of a source.
pub(crate) struct SourceNode {
    shared: Arc<SourceShared>,
    consumer: rtrb::Consumer<i16>,
    buf: Vec<i16>,
    pipes: Vec<SendPipe>,
}

impl Drop for SourceNode {
    fn drop(&mut self) {
        // The source or the clock is going away (`Daily.deinit()` stops the clock while the
        // application may still hold the source): release blocked writers and fire pending
        // completions now, with the frames actually played, as `clear_queue` does. Nothing
        // will consume the rest, and the completions thread is still running only until the
        // engine has shut down.
        self.shared.wake.fetch_add(1, Ordering::AcqRel);
        atomic_wait::wake_all(&self.shared.wake);
        let consumed = self.shared.consumed.load(Ordering::Acquire);
        let ready: Vec<Pending> = {
            let mut p = self.shared.producer.lock().unwrap_or_else(|e| e.into_inner());
            p.pending.drain(..).collect()
        };
        for w in ready {
            let start = w.end - w.padded as u64;
            (w.completion)(consumed.saturating_sub(start).min(w.frames as u64) as usize);
        }
    }
}

impl ClockNode for SourceNode {
    fn tick(&mut self, tick: &mut Tick<'_>) {
        let s = &*self.shared;
        let ch = s.channels as usize;
        // Skip what a clear_queue dropped.
        let consumed = s.consumed.load(Ordering::Acquire);
        let discard = s.discard_until.load(Ordering::Acquire).saturating_sub(consumed) as usize;
        if discard > 0 {
            let n = (discard * ch).min(self.consumer.slots());
            if let Ok(chunk) = self.consumer.read_chunk(n) {
                chunk.commit_all();
            }
            s.consumed.fetch_add((n / ch) as u64, Ordering::AcqRel);
        }
        let want = self.buf.len();
        let have = self.consumer.slots().min(want);
        let mut got_audio = false;
        if have > 0 {
            if let Ok(chunk) = self.consumer.read_chunk(have) {
                let (a, b) = chunk.as_slices();
                self.buf[..a.len()].copy_from_slice(a);
                self.buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                chunk.commit_all();
            }
            self.buf[have..].fill(0);
            got_audio = true;
            let frames = (have / s.channels as usize) as u64;
            s.consumed.fetch_add(frames, Ordering::AcqRel);
            s.wake.fetch_add(1, Ordering::AcqRel);
            if s.waiters.load(Ordering::Acquire) > 0 {
                atomic_wait::wake_all(&s.wake);
            }
        }
        if s.has_work.load(Ordering::Acquire) {
            let job: Weak<dyn ServiceJob> = Arc::downgrade(&self.shared) as Weak<dyn ServiceJob>;
            tick.service(job);
        }
        if !got_audio {
            if !s.auto_silence {
                for p in self.pipes.iter_mut() {
                    p.idle();
                }
                return;
            }
            self.buf.fill(0);
        }
        for p in self.pipes.iter_mut() {
            p.taps.push(tick.number, &self.buf);
            p.push_10ms(&self.buf);
        }
    }

    fn alive(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
    }
}

/// Resamples a source's 10 ms chunks to 48 kHz at the track's channel count.
pub(crate) struct To48k {
    rs: Resampler,
    pub(crate) out: Vec<i16>,
}

impl To48k {
    pub(crate) fn new(in_rate: u32, in_ch: u16, out_ch: u16) -> Result<Self, ClientError> {
        let rs = Resampler::new(in_rate, in_ch, 48_000, out_ch).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        Ok(To48k { rs, out: vec![0; FRAME_10MS_48K * out_ch as usize] })
    }
    pub(crate) fn process(&mut self, input: &[i16]) -> &[i16] {
        if self.rs.process(input, &mut self.out).is_err() {
            self.out.fill(0);
        }
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The service thread upgrades its `Weak` of a source's shared state to run a job: while it
    /// does, the shared state has one more strong reference. Dropping the last handle then must
    /// still close the source (a strong-count test saw 3 references and left the clock node
    /// ticking for the rest of the process).
    #[test]
    fn last_handle_closes_the_source_while_the_service_thread_holds_it() {
        let engine = crate::Engine::start(1).unwrap();
        let src = AudioSource::new(&engine, 16_000, 1, true).unwrap();
        let copy = src.clone();
        let service: Weak<SourceShared> = Arc::downgrade(&src.shared);
        let held = service.upgrade().expect("the source is alive");

        drop(src);
        assert!(!held.closed.load(Ordering::Acquire), "a clone still uses the source");
        drop(copy);
        assert!(held.closed.load(Ordering::Acquire), "the last handle closed the source");

        // The lane drops the node once it is closed: only the service thread's reference is left.
        let t0 = Instant::now();
        while Arc::strong_count(&held) > 1 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(Arc::strong_count(&held), 1, "the clock node was dropped");
        drop(held);
        assert!(service.upgrade().is_none());
        engine.shutdown();
    }
}
