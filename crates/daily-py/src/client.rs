//! The `CallClient` class: joining, leaving, inputs, custom audio tracks and audio renderers
//! (the rest of its methods are in `rooms.rs` and `unsupported.rs`).

use crate::audio::{AudioData, custom_audio_track};
use crate::convert::{py_to_value, value_to_py};
use crate::dispatch::{Completer, call_reporting, done_one};
use crate::errors::to_py_err;
use crate::events::{EventHandler, dispatch_event};
use crate::process::global;
use daily_client::{CallClient as CoreClient, ClientEvent, JoinSettings};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// A participant in a call. Methods return at once and report through completions and
/// `EventHandler` events, in order. Raises `RuntimeError` before `Daily.init()` and after
/// `release()`.
#[pyclass(module = "daily", frozen)]
pub struct CallClient {
    core: Mutex<Option<Arc<CoreClient>>>,
    pub(crate) dispatcher: Arc<Completer>,
}

impl CallClient {
    pub(crate) fn core(&self) -> PyResult<Arc<CoreClient>> {
        self.core
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("this CallClient has been released"))
    }
}

/// Join settings from `client_settings`; the sources it names are resolved by the core's
/// registry (`daily_client::sources`).
fn parse_join_settings(settings: &Value) -> PyResult<JoinSettings> {
    for key in ["inputs", "publishing"] {
        if !settings[key].is_null() && !settings[key].is_object() {
            return Err(PyTypeError::new_err(format!("client_settings[{key:?}] must be a dict")));
        }
    }
    JoinSettings::from_client_settings(settings.clone()).map_err(to_py_err)
}

#[pymethods]
impl CallClient {
    #[new]
    #[pyo3(signature = (event_handler=None))]
    fn new(event_handler: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let g = global()?;
        let handler: Option<Py<PyAny>> = match event_handler {
            None => None,
            Some(h) if h.is_none() => None,
            Some(h) if h.is_instance_of::<EventHandler>() => Some(h.clone().unbind()),
            Some(h) => {
                return Err(PyTypeError::new_err(format!(
                    "event_handler must be an EventHandler instance or None, got {}",
                    h.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                )));
            }
        };
        let dispatcher = Completer::start(g.renderers.clone())?;
        let d2 = Arc::downgrade(&dispatcher);
        let handler = handler.map(Arc::new);
        let sink: daily_client::EventSink = Arc::new(move |ev: ClientEvent| {
            if let (Some(h), Some(d)) = (handler.clone(), d2.upgrade()) {
                d.post_event(move |py| dispatch_event(py, &h, ev));
            }
        });
        let core = CoreClient::new(&g.engine, sink);
        Ok(CallClient { core: Mutex::new(Some(Arc::new(core))), dispatcher })
    }

    /// Joins `meeting_url` (`http://host:port/room`). `completion(join_data, error)` fires once:
    /// at once (before `join` returns) for a malformed URL; within 5 s with an error (and an
    /// `on_error` event) when the server cannot be reached.
    #[pyo3(signature = (meeting_url, meeting_token=None, client_settings=None, completion=None))]
    fn join(
        &self,
        meeting_url: &str,
        meeting_token: Option<String>,
        client_settings: Option<&Bound<'_, PyAny>>,
        completion: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let core = self.core()?;
        let settings = match client_settings {
            Some(s) if !s.is_none() => {
                if !s.is_instance_of::<PyDict>() {
                    return Err(PyTypeError::new_err("client_settings must be a dict"));
                }
                py_to_value(s)?
            }
            _ => Value::Null,
        };
        let js = parse_join_settings(&settings)?;
        let disp = self.dispatcher.clone();
        let from_handler = disp.on_events_thread();
        core.join(
            meeting_url,
            meeting_token,
            js,
            Box::new(move |r| {
                if let Some(cb) = completion {
                    disp.post_completion(from_handler, move |py| {
                        let (data, err) = match r {
                            Ok(v) => (value_to_py(py, &v).unwrap_or_else(|_| py.None()), py.None()),
                            Err(e) => (py.None(), crate::errors::completion_error(py, &e)),
                        };
                        call_reporting(py, &cb, (data, err));
                    });
                }
            }),
        );
        Ok(())
    }

    /// Leaves the call; `completion(error)` fires once (error is None on success).
    #[pyo3(signature = (completion=None))]
    fn leave(&self, completion: Option<Py<PyAny>>) -> PyResult<()> {
        let core = self.core()?;
        let disp = self.dispatcher.clone();
        core.leave(done_one(disp, completion));
        Ok(())
    }

    /// Leaves if needed, stops this client's threads and frees it. Every method raises
    /// `RuntimeError` afterwards. Idempotent.
    fn release(&self, py: Python<'_>) {
        let core = self.core.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(core) = core {
            py.detach(|| core.release());
            drop(core);
        }
        self.dispatcher.stop(py);
    }

    /// `{"local": participant, "<id>": participant, ...}`.
    fn participants(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.core()?.participants())
    }

    /// Sets the display name others see (`info.userName`).
    fn set_user_name(&self, user_name: &str) -> PyResult<()> {
        self.core()?.set_user_name(user_name);
        Ok(())
    }

    /// Publishes `audio_track` as custom audio `track_name`; `completion(error)`.
    #[pyo3(signature = (track_name, audio_track, ignore_audio_level=None, completion=None))]
    fn add_custom_audio_track(
        &self,
        track_name: &str,
        audio_track: &Bound<'_, PyAny>,
        ignore_audio_level: Option<bool>,
        completion: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let (id, source) = custom_audio_track(audio_track)?;
        daily_client::validate_custom_track_name(track_name).map_err(to_py_err)?;
        let core = self.core()?;
        core.add_custom_audio_track(
            track_name,
            id,
            source,
            ignore_audio_level.unwrap_or(false),
            done_one(self.dispatcher.clone(), completion),
        );
        Ok(())
    }

    /// Merges `input_settings` into `inputs()` and emits `on_inputs_updated` before
    /// `completion(error)`. The microphone part is applied: `{"microphone": {"isEnabled":
    /// bool, "settings": {"deviceId": name} or {"customTrack": {"id": track_id}}}}` (or
    /// `"microphone": False`) switches or stops the published microphone, in a call at once,
    /// else at the next join. Camera and screen inputs are recorded but carry nothing (our
    /// rooms are audio only). Raises `TypeError` if `input_settings` is not a dict and
    /// `ValueError` for an unknown input key, device or track.
    #[pyo3(signature = (input_settings, completion=None))]
    fn update_inputs(&self, input_settings: &Bound<'_, PyAny>, completion: Option<Py<PyAny>>) -> PyResult<()> {
        if !input_settings.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err("input_settings must be a dict"));
        }
        let core = self.core()?;
        let v = py_to_value(input_settings)?;
        const INPUTS: [&str; 6] = ["camera", "microphone", "screenVideo", "screenAudio", "customAudio", "customVideo"];
        if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| !INPUTS.contains(&k.as_str()))) {
            return Err(PyValueError::new_err(format!("unknown input {k:?} in input_settings (expected keys: {})", INPUTS.join(", "))));
        }
        let done = done_one(self.dispatcher.clone(), completion);
        if !matches!(v["microphone"], Value::Null | Value::Bool(_) | Value::Object(_)) {
            return Err(PyTypeError::new_err("input_settings[\"microphone\"] must be a bool or a dict"));
        }
        let mic_now = daily_client::sources::microphone_change(&v["microphone"]).map_err(to_py_err)?;
        core.update_inputs(mic_now, &v, done);
        Ok(())
    }

    /// Stops publishing custom audio `track_name`; `completion(error)`.
    #[pyo3(signature = (track_name, completion=None))]
    fn remove_custom_audio_track(&self, track_name: &str, completion: Option<Py<PyAny>>) -> PyResult<()> {
        let core = self.core()?;
        core.remove_custom_audio_track(track_name, done_one(self.dispatcher.clone(), completion));
        Ok(())
    }

    /// Calls `callback(participant_id, AudioData, audio_source)` every `callback_interval_ms`
    /// (a positive multiple of 10) with mono 16-bit PCM at `sample_rate` Hz (8000-48000) of
    /// that participant's `audio_source` ("microphone" or a custom track name). Raises
    /// `ValueError` for a malformed participant id, rate or interval. Callbacks of every
    /// client run on one shared thread, so keep them short (hand the audio on); a client whose
    /// callback runs longer than 100 ms gets a thread of its own from then on.
    #[pyo3(signature = (participant_id, callback, audio_source="microphone", sample_rate=16000, callback_interval_ms=20, logging_interval_ms=10000))]
    fn set_audio_renderer(
        &self,
        participant_id: &str,
        callback: Py<PyAny>,
        audio_source: &str,
        sample_rate: i64,
        callback_interval_ms: i64,
        logging_interval_ms: i64,
    ) -> PyResult<()> {
        let _ = logging_interval_ms;
        if uuid::Uuid::parse_str(participant_id).is_err() {
            return Err(PyValueError::new_err(format!("participant_id must be a participant UUID, got {participant_id:?}")));
        }
        if !(8000..=48000).contains(&sample_rate) {
            return Err(PyValueError::new_err(format!("sample_rate must be between 8000 and 48000 Hz, got {sample_rate}")));
        }
        if callback_interval_ms <= 0 || callback_interval_ms % 10 != 0 || callback_interval_ms > 10_000 {
            return Err(PyValueError::new_err(format!("callback_interval_ms must be a positive multiple of 10, got {callback_interval_ms}")));
        }
        let core = self.core()?;
        let disp = self.dispatcher.clone();
        let cb = Arc::new(callback);
        let pid: Arc<str> = participant_id.into();
        let src: Arc<str> = audio_source.into();
        let rate = sample_rate as u32;
        let sink = Arc::new(move |pcm: &[i16]| {
            let mut bytes = Vec::with_capacity(pcm.len() * 2);
            for s in pcm {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
            let (cb, pid, src, n) = (cb.clone(), pid.clone(), src.clone(), pcm.len());
            disp.post_audio(move |py| {
                let data = AudioData { frames: PyBytes::new(py, &bytes).unbind(), sample_rate: rate, num_channels: 1, num_audio_frames: n };
                match Py::new(py, data) {
                    Ok(d) => call_reporting(py, &cb, (&*pid, d, &*src)),
                    Err(e) => e.write_unraisable(py, None),
                }
            });
        });
        core.set_audio_renderer(participant_id, audio_source, rate, callback_interval_ms as u32, sink).map_err(to_py_err)?;
        Ok(())
    }

    /// Receive-side counters per remote track (packets received, lost, late; jitter-buffer
    /// delay in ms), plus send counters. Not in daily-python: our figures come from here.
    fn media_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let core = self.core()?;
        value_to_py(py, &serde_json::json!({"receive": core.receive_stats(), "send": core.send_stats()}))
    }
}

impl Drop for CallClient {
    fn drop(&mut self) {
        let core = self.core.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(core) = core {
            core.release();
        }
        self.dispatcher.stop_nowait();
    }
}
