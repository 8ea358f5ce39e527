//! The `CallClient` class: joining, leaving, inputs, custom audio tracks and audio renderers
//! (the rest of its methods are in `rooms.rs` and `unsupported.rs`).

use crate::audio::{AudioData, custom_audio_track};
use crate::convert::{py_to_value, value_to_py};
use crate::dispatch::{Completer, Pending, call_reporting, done_one};
use crate::errors::{Callback, cb, guard, to_py_err};
use crate::events::{EventHandler, dispatch_event};
use crate::process::{DEINITIALISED, global, register_client};
use daily_client::{CallClient as CoreClient, ClientEvent, JoinSettings};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What `Daily.deinit()` reaches of a client (the process keeps a weak list of them).
pub(crate) struct ClientState {
    core: Mutex<Option<Arc<CoreClient>>>,
    pub(crate) dispatcher: Arc<Completer>,
    /// `core` was taken by `Daily.deinit()` rather than `release()`.
    deinitialised: AtomicBool,
}

impl ClientState {
    /// For `Daily.deinit()`: the core to end, after which every method raises.
    pub(crate) fn take_core_for_deinit(&self) -> Option<Arc<CoreClient>> {
        let mut core = self.core.lock().unwrap_or_else(|e| e.into_inner());
        self.deinitialised.store(true, Ordering::Release);
        core.take()
    }
}

/// A participant in a call: `CallClient(event_handler=None)` with an optional `EventHandler`
/// (`TypeError` for anything else). Methods return at once and report through completions
/// and `EventHandler` events, in order. Every `completion` fires exactly once (also when the
/// client is released or Daily deinitialised first: then with an error) on a completions
/// thread, never on a media or network thread. Every method raises `TypeError` for a
/// `completion` that is not callable, and `RuntimeError` before `Daily.init()`, after
/// `release()` and after `Daily.deinit()`.
#[pyclass(module = "daily", frozen)]
pub struct CallClient {
    state: Arc<ClientState>,
    pub(crate) dispatcher: Arc<Completer>,
}

impl CallClient {
    pub(crate) fn core(&self) -> PyResult<Arc<CoreClient>> {
        let core = self.state.core.lock().unwrap_or_else(|e| e.into_inner());
        match core.as_ref() {
            Some(c) => Ok(c.clone()),
            None if self.state.deinitialised.load(Ordering::Acquire) => Err(PyRuntimeError::new_err(DEINITIALISED)),
            None => Err(PyRuntimeError::new_err("this CallClient has been released")),
        }
    }
}

/// Join settings from `client_settings`; the sources it names are resolved by the core's
/// registry (`daily_client::sources`).
fn parse_join_settings(settings: &Value) -> PyResult<JoinSettings> {
    if !settings.is_null() {
        daily_client::check::client_settings(settings, "client_settings").map_err(to_py_err)?;
    }
    JoinSettings::from_client_settings(settings.clone()).map_err(to_py_err)
}

#[pymethods]
impl CallClient {
    #[new]
    #[pyo3(signature = (event_handler=None))]
    fn new(event_handler: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        guard(|| Self::create(event_handler))
    }

    /// Joins `meeting_url` (`http://host:port/room`, `https://` for a TLS server; see
    /// `daily.server.RoomServer.room_url`). `meeting_token` is a meeting token (a JWT, RFC
    /// 7519, signed with the server's API key, as Daily's; `docs/rest-api.md`): needed for a
    /// private room, it can make this participant an owner; an invalid one fails the join.
    /// `completion(join_data, error)` fires once: with `join_data` shaped as
    /// `daily.types.JoinData` on success; at once (before `join` returns) for a malformed
    /// URL; within 5 s with an error (and an `on_error` event) when the server cannot be
    /// reached; with an error if the client is released or Daily deinitialised first.
    /// Raises `TypeError` / `ValueError` for `client_settings` that are not Daily's shape (an
    /// unknown key, a value of the wrong type; see `update_inputs` and `update_publishing`)
    /// or a `completion` that is not callable.
    #[pyo3(signature = (meeting_url, meeting_token=None, client_settings=None, completion=None))]
    fn join(
        &self,
        meeting_url: &str,
        meeting_token: Option<String>,
        client_settings: Option<&Bound<'_, PyAny>>,
        completion: Option<Callback>,
    ) -> PyResult<()> {
        guard(|| self.join_impl(meeting_url, meeting_token, client_settings, cb(completion)))
    }

    /// Leaves the call; `completion(error)` fires once (error is None on success).
    #[pyo3(signature = (completion=None))]
    fn leave(&self, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let core = self.core()?;
            core.leave(done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Leaves if needed (waiting at most about 5 s), stops this client's threads and frees
    /// it. Completions still pending fire, with an error for calls that did not finish. Every
    /// other method raises `RuntimeError` afterwards. Idempotent, and allowed after
    /// `Daily.deinit()` (it then does nothing).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        guard(|| {
            let core = self.state.core.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(core) = core {
                py.detach(|| core.release());
                drop(core);
            }
            self.dispatcher.stop(py);
            Ok(())
        })
    }
}

impl CallClient {
    fn create(event_handler: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
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
        let state = Arc::new(ClientState {
            core: Mutex::new(Some(Arc::new(core))),
            dispatcher: dispatcher.clone(),
            deinitialised: AtomicBool::new(false),
        });
        register_client(Arc::downgrade(&state));
        Ok(CallClient { state, dispatcher })
    }

    fn join_impl(
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
        let pending = Pending::new(self.dispatcher.clone(), completion, true);
        core.join(
            meeting_url,
            meeting_token,
            js,
            Box::new(move |r| {
                pending.fire(move |py, cb| {
                    let (data, err) = match r {
                        Ok(v) => (value_to_py(py, &v).unwrap_or_else(|_| py.None()), py.None()),
                        Err(e) => (py.None(), crate::errors::completion_error(py, &e)),
                    };
                    call_reporting(py, cb, (data, err));
                })
            }),
        );
        Ok(())
    }
}

#[pymethods]
impl CallClient {
    /// `{"local": participant, "<id>": participant, ...}`: this client and every remote
    /// participant, as dicts shaped as `daily.types.Participant`.
    fn participants(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| value_to_py(py, &self.core()?.participants()))
    }

    /// Sets the display name others see (`info.userName`): at most 1024 bytes of UTF-8, the
    /// room server's limit (`ValueError` beyond it; the server would drop the client).
    fn set_user_name(&self, user_name: &str) -> PyResult<()> {
        guard(|| {
            daily_client::validate_user_name(user_name).map_err(to_py_err)?;
            self.core()?.set_user_name(user_name);
            Ok(())
        })
    }

    /// Publishes `audio_track` as custom audio `track_name` (1 to 256 bytes of UTF-8, not a
    /// Daily input name such as "microphone"); `completion(error)`. Raises `ValueError` for
    /// a bad name, `TypeError` for an `audio_track` that is not a `CustomAudioTrack` or a
    /// `completion` that is not callable.
    #[pyo3(signature = (track_name, audio_track, ignore_audio_level=None, completion=None))]
    fn add_custom_audio_track(
        &self,
        track_name: &str,
        audio_track: &Bound<'_, PyAny>,
        ignore_audio_level: Option<bool>,
        completion: Option<Callback>,
    ) -> PyResult<()> {
        self.custom_track(track_name, audio_track, ignore_audio_level, completion, CoreClient::add_custom_audio_track)
    }

    /// Merges `input_settings` into `inputs()` and emits `on_inputs_updated` before
    /// `completion(error)`. The microphone part is applied: `{"microphone": {"isEnabled":
    /// bool, "settings": {"deviceId": name} or {"customTrack": {"id": track_id}}}}` (or
    /// `"microphone": False`) switches or stops the published microphone, in a call at once,
    /// else at the next join; `camera` and `screenVideo` do the same for video, naming a
    /// `CustomVideoTrack` (`customTrack`) or a virtual camera (`deviceId`). Daily's shape: each of `camera`, `microphone`, `screenVideo`,
    /// `screenAudio` is a bool or `{"isEnabled": bool, "settings": dict}` (settings keys:
    /// `deviceId`, `customTrack`, `customConstraints`, `processor`, and for video `width`,
    /// `height`, `frameRate`, `facingMode`, `torch`, `zoom`); `customAudio` / `customVideo`
    /// map track names to the same. Raises `TypeError` if `input_settings` is not a dict or
    /// a value has the wrong type, and `ValueError` for an unknown key, device or track.
    #[pyo3(signature = (input_settings, completion=None))]
    fn update_inputs(&self, input_settings: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            if !input_settings.is_instance_of::<PyDict>() {
                return Err(PyTypeError::new_err("input_settings must be a dict"));
            }
            let core = self.core()?;
            let v = py_to_value(input_settings)?;
            const INPUTS: [&str; 6] = ["camera", "microphone", "screenVideo", "screenAudio", "customAudio", "customVideo"];
            if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| !INPUTS.contains(&k.as_str()))) {
                return Err(PyValueError::new_err(format!("unknown input {k:?} in input_settings (expected keys: {})", INPUTS.join(", "))));
            }
            daily_client::check::input_settings(&v, "input_settings").map_err(to_py_err)?;
            let change = daily_client::sources::input_change(&v).map_err(to_py_err)?;
            core.update_inputs(change, &v, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Stops publishing custom audio `track_name`; `completion(error)`.
    #[pyo3(signature = (track_name, completion=None))]
    fn remove_custom_audio_track(&self, track_name: &str, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let core = self.core()?;
            core.remove_custom_audio_track(track_name, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Calls `callback(participant_id, AudioData, audio_source)` every `callback_interval_ms`
    /// (a positive multiple of 10) with mono 16-bit PCM at `sample_rate` Hz (8000-48000) of
    /// that participant's `audio_source` ("microphone" or a custom track name). Raises
    /// `ValueError` for a malformed participant id, rate or interval and `TypeError` when
    /// `callback` is not callable (it is checked here, not on every call). Callbacks of every
    /// client run on one shared thread, so keep them short (hand the audio on); a client whose
    /// callback runs longer than 100 ms gets a thread of its own from then on.
    /// `logging_interval_ms` (ms) is accepted for daily-python compatibility and not used.
    #[pyo3(signature = (participant_id, callback, audio_source="microphone", sample_rate=16000, callback_interval_ms=20, logging_interval_ms=10000))]
    fn set_audio_renderer(
        &self,
        participant_id: &str,
        callback: Callback,
        audio_source: &str,
        sample_rate: i64,
        callback_interval_ms: i64,
        logging_interval_ms: i64,
    ) -> PyResult<()> {
        guard(|| self.set_audio_renderer_impl(participant_id, callback.0, audio_source, sample_rate, callback_interval_ms, logging_interval_ms))
    }

    /// Receive-side counters per remote track (packets received, lost, late; jitter-buffer
    /// delay in ms), plus send counters. Not in daily-python: our figures come from here.
    fn media_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let core = self.core()?;
            value_to_py(py, &serde_json::json!({"receive": core.receive_stats(), "send": core.send_stats()}))
        })
    }
}

/// `CoreClient::add_custom_audio_track` or `update_custom_audio_track`.
type CustomTrackCall = fn(&CoreClient, &str, String, daily_client::AudioSource, bool, daily_client::Done);

impl CallClient {
    /// `add_custom_audio_track` / `update_custom_audio_track`: the same checks (the track, the
    /// name), then `call` on the core.
    pub(crate) fn custom_track(
        &self,
        track_name: &str,
        audio_track: &Bound<'_, PyAny>,
        ignore_audio_level: Option<bool>,
        completion: Option<Callback>,
        call: CustomTrackCall,
    ) -> PyResult<()> {
        guard(|| {
            let (id, source) = custom_audio_track(audio_track)?;
            daily_client::validate_custom_track_name(track_name).map_err(to_py_err)?;
            let core = self.core()?;
            let done = done_one(self.dispatcher.clone(), cb(completion));
            call(&core, track_name, id, source, ignore_audio_level.unwrap_or(false), done);
            Ok(())
        })
    }

    fn set_audio_renderer_impl(
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
}

impl Drop for CallClient {
    fn drop(&mut self) {
        let core = self.state.core.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(core) = core {
            core.release();
        }
        self.dispatcher.stop_nowait();
    }
}
