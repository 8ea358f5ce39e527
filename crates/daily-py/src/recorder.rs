//! `_AudioRecorder`: the thin binding of `daily_client::record::Recorder` under
//! `daily.AudioBufferProcessor` (python/daily/audio_buffer.py), which owns the event handlers
//! and their dispatcher thread. The recorder thread puts its events in a channel; the
//! processor's dispatcher takes them with `next_event` (GIL released while it waits).

use crate::client::CallClient;
use crate::errors::{guard, to_py_err};
use daily_client::record::{RecordConfig, RecordEvent, Recorder, Track, merge_into};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

/// One recording of a `CallClient`'s call (internal: use `daily.AudioBufferProcessor`).
///
/// Records from construction until `stop()`: the user track (every remote audio track the
/// client receives, mixed) and the bot track (what it sends), placed by the media clock's
/// 10 ms ticks, at `sample_rate` Hz, mixed into `num_channels` channels (1 or 2). Events come
/// out of `next_event(timeout_ms)` as tuples: `("audio", merged: bytes, user: bytes, bot:
/// bytes)` (each track `buffer_size` bytes of mono 16-bit PCM, or what was left at stop;
/// `merged` their sum, or user left and bot right interleaved), `("turn", "user" |
/// "bot", audio: bytes)`, `("error", message)` and `("stopped",)` last. `path`: stream the
/// merged audio to a `.wav` or `.ogg` file. Raises `ValueError` for a bad rate, channel count
/// or path, `OSError`-like `RuntimeError` when the file cannot be created.
#[pyclass(module = "daily", frozen)]
pub struct _AudioRecorder {
    rec: Recorder,
    events: Mutex<mpsc::Receiver<RecordEvent>>,
}

fn bytes_of<'py>(py: Python<'py>, pcm: &[i16]) -> Bound<'py, PyBytes> {
    PyBytes::new_with(py, pcm.len() * 2, |b| {
        for (d, s) in b.chunks_exact_mut(2).zip(pcm) {
            d.copy_from_slice(&s.to_le_bytes());
        }
        Ok(())
    })
    .expect("filling bytes cannot fail")
}

#[pymethods]
impl _AudioRecorder {
    /// Starts recording `client`'s call now. `sample_rate` in Hz (8000..=48000, a multiple of
    /// 100), `num_channels` 1 or 2 channels, `buffer_size` in bytes per track (0: one chunk at
    /// stop), `want_chunks`: keep audio for `"audio"` events.
    #[new]
    #[pyo3(signature = (client, sample_rate, num_channels, buffer_size, user_continuous_stream, enable_turn_audio, path=None, want_chunks=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        client: PyRef<'_, CallClient>,
        sample_rate: u32,
        num_channels: u16,
        buffer_size: usize,
        user_continuous_stream: bool,
        enable_turn_audio: bool,
        path: Option<PathBuf>,
        want_chunks: bool,
    ) -> PyResult<Self> {
        guard(|| {
            let core = client.core()?;
            let cfg = RecordConfig {
                sample_rate,
                num_channels,
                buffer_size,
                user_continuous_stream,
                enable_turn_audio,
            };
            let (tx, rx) = mpsc::channel();
            let sink = Box::new(move |e: RecordEvent| {
                let _ = tx.send(e);
            });
            let rec = py
                .detach(|| Recorder::start(&core, cfg, path, want_chunks, sink))
                .map_err(to_py_err)?;
            Ok(_AudioRecorder {
                rec,
                events: Mutex::new(rx),
            })
        })
    }

    /// The next event, waiting at most `timeout_ms` ms (GIL released); `None` if none came.
    /// After `("stopped",)` it returns `None` at once.
    #[pyo3(signature = (timeout_ms))]
    fn next_event<'py>(
        &self,
        py: Python<'py>,
        timeout_ms: u64,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        guard(|| {
            let ev = py.detach(|| {
                let rx = self.events.lock().unwrap_or_else(|e| e.into_inner());
                rx.recv_timeout(Duration::from_millis(timeout_ms)).ok()
            });
            let Some(ev) = ev else { return Ok(None) };
            let t = match ev {
                RecordEvent::Audio { user, bot } => {
                    let mut merged = Vec::with_capacity(user.len() * 2);
                    merge_into(&user, &bot, self.rec.config().num_channels, &mut merged);
                    PyTuple::new(
                        py,
                        [
                            "audio".into_pyobject(py)?.into_any(),
                            bytes_of(py, &merged).into_any(),
                            bytes_of(py, &user).into_any(),
                            bytes_of(py, &bot).into_any(),
                        ],
                    )?
                }
                RecordEvent::Turn { track, audio } => {
                    let who = if track == Track::User { "user" } else { "bot" };
                    PyTuple::new(
                        py,
                        [
                            "turn".into_pyobject(py)?.into_any(),
                            who.into_pyobject(py)?.into_any(),
                            bytes_of(py, &audio).into_any(),
                        ],
                    )?
                }
                RecordEvent::Error(m) => PyTuple::new(
                    py,
                    [
                        "error".into_pyobject(py)?.into_any(),
                        m.into_pyobject(py)?.into_any(),
                    ],
                )?,
                RecordEvent::Stopped => {
                    PyTuple::new(py, ["stopped".into_pyobject(py)?.into_any()])?
                }
            };
            Ok(Some(t))
        })
    }

    /// Keeps (`True`) or stops keeping audio for `"audio"` events.
    fn set_want_chunks(&self, want: bool) {
        self.rec.set_want_chunks(want);
    }

    /// Streams the merged audio to `path` (`.wav`, `.ogg` or `.opus`) from now on; `None`
    /// closes the current file. `ValueError` for another extension, `RuntimeError` if the
    /// file cannot be created.
    #[pyo3(signature = (path))]
    fn record_to(&self, py: Python<'_>, path: Option<PathBuf>) -> PyResult<()> {
        guard(|| py.detach(|| self.rec.record_to(path)).map_err(to_py_err))
    }

    /// Stops: the last chunk and turn, then `("stopped",)`, are queued and the file is closed
    /// before this returns (GIL released). Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| {
            py.detach(|| self.rec.stop());
            Ok(())
        })
    }

    /// The last file error (message), or `None`.
    #[getter]
    fn error(&self) -> Option<String> {
        self.rec.error()
    }

    /// Frames per track recorded so far (at `sample_rate` Hz).
    #[getter]
    fn recorded_frames(&self) -> u64 {
        self.rec.recorded_frames()
    }

    /// Tapped 10 ms frames that came after their tick was final (dropped, never moved).
    #[getter]
    fn late_frames(&self) -> u64 {
        self.rec.late_frames()
    }

    /// Tapped 10 ms frames lost because the recorder thread stalled for over 5 seconds.
    #[getter]
    fn dropped_frames(&self) -> u64 {
        self.rec.dropped_frames()
    }
}
