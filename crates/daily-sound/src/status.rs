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
    /// Frames lost: input the ring had no room for, output the ring could not supply (silence
    /// was played instead), or audio dropped to keep the latency bounded.
    pub lost_frames: AtomicU64,
    /// Set by a speaker's pump while audio flows (a client is in a call and the speaker is
    /// selected): only then do output underruns count as lost.
    pub live: AtomicBool,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Status {
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
    /// Frames lost: captured audio with no room left to queue it, output the device wanted
    /// before any was ready (silence was played), or audio dropped to keep the latency bounded.
    pub lost_frames: u64,
    /// The last stream error (for example the device was unplugged); the stream has stopped.
    pub error: Option<String>,
}

impl Status {
    pub fn snapshot(&self) -> StreamStats {
        StreamStats {
            frames: self.frames.load(Ordering::Relaxed),
            lost_frames: self.lost_frames.load(Ordering::Relaxed),
            error: self.error(),
        }
    }
}
