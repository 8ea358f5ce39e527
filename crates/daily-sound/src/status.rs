//! What a running stream reports, shared between its cpal callbacks, its pump thread and the
//! application: counters only (atomics, so the real-time callbacks never lock), plus the last
//! stream error, which cpal reports on its error callback (not the data callback).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters and the last error of one system stream.
#[derive(Default)]
pub(crate) struct Status {
    /// Frames the device gave (input) or took (output).
    pub frames: AtomicU64,
    /// Frames lost: input the ring had no room for, or output the ring could not supply once
    /// playing (silence was played instead).
    pub lost_frames: AtomicU64,
    /// Frames dropped by the pump to keep the latency bounded (clock drift).
    pub dropped_frames: AtomicU64,
    /// Device callbacks so far, and the most frames one of them carried (the device period as
    /// the backend really runs it).
    pub callbacks: AtomicU64,
    pub largest_callback: AtomicU64,
    /// Set by a speaker's pump while audio flows (a client is in a call and the speaker is
    /// selected): only then do output underruns count as lost.
    pub live: AtomicBool,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Status {
    /// Counts one device callback of `frames` frames (real-time safe: atomics only).
    pub fn callback(&self, frames: usize) {
        self.frames.fetch_add(frames as u64, Ordering::Relaxed);
        self.callbacks.fetch_add(1, Ordering::Relaxed);
        self.largest_callback
            .fetch_max(frames as u64, Ordering::Relaxed);
    }

    /// Records a stream error (device unplugged, backend failure). Called from cpal's error
    /// callback, never its data callback.
    pub fn fail(&self, err: String) {
        tracing::warn!(error = %err, "sound device stream error");
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
        self.failed.store(true, Ordering::Release);
    }

    /// The last stream error, if any.
    pub fn error(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A snapshot of a stream's counters, as [`crate::SystemMicrophone::stats`] and
/// [`crate::SystemSpeaker::stats`] return it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Frames the device gave (microphone) or played (speaker), at the device's rate.
    pub frames: u64,
    /// Frames lost: captured audio with no room left to queue it, or output the device wanted
    /// while playing when none was ready (silence was played instead).
    pub lost_frames: u64,
    /// Frames dropped on purpose to keep the latency bounded (more than 200 ms waiting: the
    /// device's clock and the media clock drift apart).
    pub dropped_frames: u64,
    /// Device callbacks so far.
    pub callbacks: u64,
    /// The most frames one callback carried: the period the device really runs at.
    pub largest_callback_frames: u64,
    /// The last stream error (for example the device was unplugged); the stream has stopped.
    pub error: Option<String>,
}

impl Status {
    pub fn snapshot(&self) -> StreamStats {
        StreamStats {
            frames: self.frames.load(Ordering::Relaxed),
            lost_frames: self.lost_frames.load(Ordering::Relaxed),
            dropped_frames: self.dropped_frames.load(Ordering::Relaxed),
            callbacks: self.callbacks.load(Ordering::Relaxed),
            largest_callback_frames: self.largest_callback.load(Ordering::Relaxed),
            error: self.error(),
        }
    }
}
