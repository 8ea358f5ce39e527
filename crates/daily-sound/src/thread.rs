//! The thread that owns a cpal stream.
//!
//! A `cpal::Stream` may not leave the thread that built it on every platform (it is `!Send`),
//! while our devices must be (a Python object is used from any thread). So each system device
//! has one thread that builds and starts its stream, then runs the device's *pump* (the
//! non-real-time half: between the stream's ring and the client's source or speaker) until told
//! to stop, and drops the stream on its way out.

use crate::{Direction, SoundError};
use cpal::traits::StreamTrait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest [`StreamThread::stop`] waits for the thread. A sound server can leave a stream's
/// teardown blocked inside ALSA; closing a device must not hang the caller (or `daily-call`'s
/// exit) on it, so past this the thread is left to finish on its own, with a warning.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A running stream and its pump; stopping (or dropping) it closes the device.
pub(crate) struct StreamThread {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends (its sender is dropped on the way out).
    ended: Receiver<()>,
}

impl StreamThread {
    /// Starts a thread named `name` that calls `build`, plays the stream and then calls `pump`
    /// until [`stop`](Self::stop) (each call should wait ~10 ms or less, so stopping is
    /// prompt). Returns once the stream plays, or with `build`'s or `play`'s error.
    pub fn spawn<B, P>(
        name: &str,
        device: &str,
        direction: Direction,
        build: B,
        mut pump: P,
    ) -> Result<StreamThread, SoundError>
    where
        B: FnOnce() -> Result<cpal::Stream, SoundError> + Send + 'static,
        P: FnMut() + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(), SoundError>>(1);
        let stop2 = stop.clone();
        let (ended_tx, ended) = std::sync::mpsc::sync_channel::<()>(0);
        let dev = device.to_owned();
        let join = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _ended = ended_tx;
                let stream = match build() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = stream.play() {
                    let _ = tx.send(Err(SoundError::Stream {
                        device: dev,
                        direction: direction.as_str(),
                        reason: e.to_string(),
                    }));
                    return;
                }
                let _ = tx.send(Ok(()));
                while !stop2.load(Ordering::Acquire) {
                    pump();
                }
                drop(stream);
            })
            .map_err(|e| SoundError::Stream {
                device: device.to_owned(),
                direction: direction.as_str(),
                reason: format!("cannot start a thread: {e}"),
            })?;
        let mut t = StreamThread {
            stop,
            join: Some(join),
            ended,
        };
        match rx.recv() {
            Ok(Ok(())) => Ok(t),
            Ok(Err(e)) => {
                t.stop();
                Err(e)
            }
            Err(_) => {
                t.stop();
                Err(SoundError::Stream {
                    device: device.to_owned(),
                    direction: direction.as_str(),
                    reason: "the stream thread ended while opening".into(),
                })
            }
        }
    }

    /// Stops the pump and closes the stream; waits for the thread, at most [`STOP_WAIT`].
    /// Idempotent.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(j) = self.join.take() {
            match self.ended.recv_timeout(STOP_WAIT) {
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!(thread = ?j.thread().name(), "a sound device's thread did not stop within 2 s; left to finish on its own");
                }
                _ => {
                    let _ = j.join();
                }
            }
        }
    }
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        self.stop();
    }
}
