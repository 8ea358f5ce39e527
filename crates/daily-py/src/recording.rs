//! `CallClient` server-side recording: `start_recording`, `stop_recording` (the core sends
//! `startRecording` / `stopRecording`, `docs/signalling.md`) and `update_recording`, which has
//! nothing to update in our recordings and says so.

use crate::client::CallClient;
use crate::convert::{py_to_value, value_to_py};
use crate::dispatch::{Pending, call_reporting, done_one};
use crate::errors::{Callback, cb, guard};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

/// `update_recording`'s error: Daily updates only a cloud recording's layout.
const UPDATE: &str = "update_recording is not supported: Daily applies it to the layout of \
                      \"cloud\" recordings only, and this room server records \"raw-tracks\" \
                      audio (one file per track and a mix), which has no layout to update";

#[pymethods]
impl CallClient {
    /// Asks the room server to record the call (server-side, `RoomServer(recordings_dir=...)`
    /// or `daily-server --recordings-dir`): one Ogg/Opus file per audio track (the RTP
    /// payloads as received) and a mixed file, listed by `GET /v1/recordings`.
    /// `completion(stream_id, None)` fires once the server started it, after every
    /// participant's `on_recording_started(status)` (this client's included);
    /// `completion(None, error)` when not in a call, when recording is off on the server,
    /// for a participant who may not record (on a server with an API key: only owners and
    /// `canAdmin: streaming`; without one: everybody), or when `stream_id` is already
    /// recording and `force_new` is not True. `stream_id` (1-256 bytes; default
    /// "00000000-0000-4000-8000-000000000000", our default instance) names the recording
    /// for `stop_recording`; several may run at once. `force_new=True` stops a recording
    /// running under the same `stream_id` and starts a new one. `streaming_settings` (a dict
    /// or None) is accepted and ignored: the recording is audio only, with no video layout
    /// or bitrate to set. Raises `TypeError` for a `streaming_settings` that is not a dict.
    #[pyo3(signature = (streaming_settings=None, stream_id=None, force_new=None, completion=None))]
    fn start_recording(
        &self,
        streaming_settings: Option<&Bound<'_, PyAny>>,
        stream_id: Option<String>,
        force_new: Option<bool>,
        completion: Option<Callback>,
    ) -> PyResult<()> {
        guard(|| {
            let settings = match streaming_settings {
                Some(s) if !s.is_none() => {
                    if !s.is_instance_of::<PyDict>() {
                        return Err(PyTypeError::new_err("streaming_settings must be a dict or None"));
                    }
                    py_to_value(s)?
                }
                _ => Value::Null,
            };
            let core = self.core()?;
            let pending = Pending::new(self.dispatcher.clone(), cb(completion), true);
            core.start_recording(
                &settings,
                stream_id,
                force_new.unwrap_or(false),
                Box::new(move |r| {
                    pending.fire(move |py, cb| {
                        let (id, err) = match r {
                            Ok(v) => (value_to_py(py, &v).unwrap_or_else(|_| py.None()), py.None()),
                            Err(e) => (py.None(), crate::errors::completion_error(py, &e)),
                        };
                        call_reporting(py, cb, (id, err));
                    })
                }),
            );
            Ok(())
        })
    }

    /// Stops the server-side recording `stream_id` (default: the default instance of
    /// `start_recording`). `completion(None)` fires after every participant's
    /// `on_recording_stopped(stream_id)`, once the server closed the files' streams;
    /// `completion(error)` when not in a call, for a participant who may not record, or for
    /// a `stream_id` that is not recording (the error lists those that are).
    #[pyo3(signature = (stream_id=None, completion=None))]
    fn stop_recording(&self, stream_id: Option<String>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let core = self.core()?;
            core.stop_recording(stream_id, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Not supported: `completion(error)` fires once with an error saying why. In Daily,
    /// `update_recording` changes the video layout of a "cloud" recording; this server's
    /// recordings are "raw-tracks" audio (one file per track and a mix), with no layout.
    #[pyo3(signature = (update_settings, stream_id=None, completion=None))]
    fn update_recording(&self, update_settings: &Bound<'_, PyAny>, stream_id: Option<&str>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let _ = (update_settings, stream_id);
            self.complete_one(completion, Some(UPDATE))
        })
    }
}
