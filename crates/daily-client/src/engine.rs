//! The process-wide engine: one tokio runtime for network work (sized by
//! `Daily.init(worker_threads=...)`), one media clock (a lane thread per core, or
//! `DAILY_MEDIA_THREADS`) and one service thread, shared by every client in the process.

use crate::ClientError;
use crate::clock::MediaClock;
use crate::speaker::SpeakerDevice;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Process-wide audio state the clock reads every tick (atomics only).
#[derive(Default)]
pub(crate) struct AudioFlags {
    /// Id of the selected speaker device (0 = none).
    pub(crate) selected_speaker: AtomicU64,
    /// Clients currently in a call (state `joined`).
    pub(crate) calls: AtomicUsize,
    /// The engine has shut down.
    pub(crate) stopped: AtomicBool,
}

impl AudioFlags {
    pub(crate) fn speaker_live(&self, id: u64) -> bool {
        self.selected_speaker.load(Ordering::Acquire) == id
            && self.calls.load(Ordering::Acquire) > 0
            && !self.stopped.load(Ordering::Acquire)
    }
}

pub(crate) struct EngineInner {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) clock: Arc<MediaClock>,
    pub(crate) flags: Arc<AudioFlags>,
}

/// Handle to the shared engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine(Arc<EngineInner>);

impl Engine {
    /// Starts an engine with `worker_threads` network threads (at least 1).
    pub fn start(worker_threads: usize) -> Result<Engine, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("daily-net")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let clock = Arc::new(MediaClock::start().map_err(|e| ClientError::Io(e.to_string()))?);
        tracing::debug!(worker_threads, media_lanes = clock.lanes(), "engine started");
        Ok(Engine(Arc::new(EngineInner { runtime, clock, flags: Arc::new(AudioFlags::default()) })))
    }

    /// Makes `speaker` the engine's speaker: from the next tick on it receives the mix of every
    /// remote audio track of every client (daily-python's `select_speaker_device`).
    pub fn select_speaker(&self, speaker: &SpeakerDevice) {
        self.0.flags.selected_speaker.store(speaker.id(), Ordering::Release);
    }

    /// Clients of this engine currently in a call.
    pub fn calls(&self) -> usize {
        self.0.flags.calls.load(Ordering::Acquire)
    }

    pub(crate) fn inner(&self) -> Arc<EngineInner> {
        self.0.clone()
    }

    /// Microseconds on the media clock's timeline.
    pub fn now_us(&self) -> u64 {
        self.0.clock.now_us()
    }

    /// Stops the clock and the service thread; blocked reads and writes return. Network tasks
    /// end when the runtime drops (after the last handle goes away).
    pub fn shutdown(&self) {
        self.0.flags.stopped.store(true, Ordering::Release);
        self.0.clock.stop();
    }
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.flags.stopped.store(true, Ordering::Release);
        self.clock.stop();
    }
}
