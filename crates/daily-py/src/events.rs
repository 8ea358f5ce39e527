//! `EventHandler`, the base class of event handlers, and the dispatch of the core's events to
//! its methods. All 39 callbacks of daily-python 0.36 exist as no-op base methods with its
//! parameter names, so subclasses may override any of them and call `super()` safely, and
//! keyword calls work. Events are looked up by name on the handler each time one is
//! dispatched (see `dispatch_event`).
//!
//! Several belong to features our rooms do not offer (telephony, live streaming,
//! transcription): those are never emitted, and say so.

use crate::convert::value_to_py;
use daily_client::ClientEvent;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Base class for event handlers: subclass it, override the `on_*` methods you need and pass
/// an instance to `CallClient(event_handler=...)`.
///
/// The base methods do nothing, and take daily-python 0.36's parameter names (keyword calls
/// and `super()` calls work). A client calls its handler on one thread of its own, in the
/// order the events happened, never on a media or network thread; an exception raised by a
/// handler goes to `sys.unraisablehook` and later events still arrive. Payloads are plain
/// dicts shaped as in daily-python (`daily.types` describes them). Events of features this
/// room server does not offer (telephony, live streaming, transcription) are never emitted, and
/// their docstrings say so.
#[pyclass(subclass, module = "daily")]
pub struct EventHandler;

#[pymethods]
impl EventHandler {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, pyo3::types::PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        EventHandler
    }
    // Base versions are no-ops; parameter names match daily-python's (keyword calls work).
    /// The call state changed: `state` is `"joining"`, `"joined"`, `"leaving"` or `"left"`
    /// (`"left"` also after a failed join, an ejection or a lost connection).
    #[allow(unused_variables)]
    fn on_call_state_updated(&self, state: &Bound<'_, PyAny>) {}
    /// A remote participant joined: `participant` is a Participant dict (`daily.types`).
    #[allow(unused_variables)]
    fn on_participant_joined(&self, participant: &Bound<'_, PyAny>) {}
    /// A remote participant left: `participant` is its last Participant dict, `reason`
    /// `"leftCall"` or `"hidden"` (its `hasPresence` permission was taken away).
    #[allow(unused_variables)]
    fn on_participant_left(&self, participant: &Bound<'_, PyAny>, reason: &Bound<'_, PyAny>) {}
    /// A participant changed (name, tracks, permissions): `participant` is its new
    /// Participant dict; the local participant's updates come here too.
    #[allow(unused_variables)]
    fn on_participant_updated(&self, participant: &Bound<'_, PyAny>) {}
    /// A call-level error: `message` (a str) says what happened, e.g. the room server could
    /// not be reached, the signalling connection was lost or this client was ejected. A fatal
    /// one is followed by `on_call_state_updated("left")`.
    #[allow(unused_variables)]
    fn on_error(&self, message: &Bound<'_, PyAny>) {}
}

pub(crate) fn dispatch_event(py: Python<'_>, handler: &Py<PyAny>, ev: ClientEvent) {
    // The typed event becomes Daily's dict shapes here, at the edge.
    let name = ev.handler_name();
    let args: Vec<Py<PyAny>> = ev.into_args().iter().map(|v| value_to_py(py, v).unwrap_or_else(|_| py.None())).collect();
    let h = handler.bind(py);
    match h.getattr(name) {
        Ok(f) => {
            let args = pyo3::types::PyTuple::new(py, args);
            if let Ok(args) = args {
                if let Err(e) = f.call1(args) {
                    e.write_unraisable(py, Some(&f));
                }
            }
        }
        Err(e) => e.write_unraisable(py, Some(h)),
    }
}


#[pymethods]
impl EventHandler {
    /// The active speaker changed: `participant` is a Participant dict.
    #[allow(unused_variables)]
    fn on_active_speaker_changed(&self, participant: &Bound<'_, PyAny>) {}

    /// `message` (any JSON value) sent with `send_app_message` by `sender` (a participant id).
    #[allow(unused_variables)]
    fn on_app_message(&self, message: &Bound<'_, PyAny>, sender: &Bound<'_, PyAny>) {}

    /// The available devices changed: `available_devices` is a dict of device lists.
    #[allow(unused_variables)]
    fn on_available_devices_updated(&self, available_devices: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialin_connected(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialin_error(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialin_ready(&self, sip_endpoint: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialin_stopped(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialin_warning(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialout_answered(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialout_connected(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialout_error(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialout_stopped(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dialout_warning(&self, data: &Bound<'_, PyAny>) {}

    /// Telephony (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_dtmf_event(&self, data: &Bound<'_, PyAny>) {}

    /// The input settings changed: `input_settings` as returned by `inputs()`.
    #[allow(unused_variables)]
    fn on_inputs_updated(&self, input_settings: &Bound<'_, PyAny>) {}

    /// Live streaming (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_live_stream_error(&self, stream_id: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) {}

    /// Live streaming (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_live_stream_started(&self, status: &Bound<'_, PyAny>) {}

    /// Live streaming (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_live_stream_stopped(&self, stream_id: &Bound<'_, PyAny>) {}

    /// Live streaming (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_live_stream_updated(&self, update: &Bound<'_, PyAny>) {}

    /// Live streaming (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_live_stream_warning(&self, stream_id: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) {}

    /// `status` is `{"connection": "signalling"|"sendTransport"|"recvTransport", "event": "connected"|"interrupted"}`.
    #[allow(unused_variables)]
    fn on_network_connection_status_updated(&self, status: &Bound<'_, PyAny>) {}

    /// `stats` as returned by `get_network_stats()`.
    #[allow(unused_variables)]
    fn on_network_stats_updated(&self, stats: &Bound<'_, PyAny>) {}

    /// `counts` is `{"hidden": n, "present": n}`.
    #[allow(unused_variables)]
    fn on_participant_counts_updated(&self, counts: &Bound<'_, PyAny>) {}

    /// The publishing settings changed: as returned by `publishing()`.
    #[allow(unused_variables)]
    fn on_publishing_updated(&self, publishing_settings: &Bound<'_, PyAny>) {}

    /// A server-side recording failed (e.g. the server's disk filled): `stream_id` (str) and
    /// `message` (str). Its files end at the last complete Ogg page; `on_recording_stopped`
    /// follows. Sent to everybody in the call.
    #[allow(unused_variables)]
    fn on_recording_error(&self, stream_id: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) {}

    /// A server-side recording of the call started (`start_recording` by anybody), or was
    /// running when this client joined (then right after the participants are announced).
    /// `status` is daily-python's RecordingStatus: `{"streamId", "instanceId", "recordingId",
    /// "startedBy", "type": "raw-tracks", "layout": {"preset": "audio-only"}, "startTs"}`
    /// (`startTs` in Unix seconds; `recordingId` names it in `GET /v1/recordings/{id}`).
    #[allow(unused_variables)]
    fn on_recording_started(&self, status: &Bound<'_, PyAny>) {}

    /// A server-side recording stopped (`stop_recording`, the call ending, an error):
    /// `stream_id` (str).
    #[allow(unused_variables)]
    fn on_recording_stopped(&self, stream_id: &Bound<'_, PyAny>) {}

    /// The subscription profiles changed: as returned by `subscription_profiles()`.
    #[allow(unused_variables)]
    fn on_subscription_profiles_updated(&self, subscription_profiles: &Bound<'_, PyAny>) {}

    /// The subscriptions changed: as returned by `subscriptions()`.
    #[allow(unused_variables)]
    fn on_subscriptions_updated(&self, subscriptions: &Bound<'_, PyAny>) {}

    /// Transcription (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_transcription_error(&self, message: &Bound<'_, PyAny>) {}

    /// Transcription (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_transcription_message(&self, message: &Bound<'_, PyAny>) {}

    /// Transcription (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_transcription_started(&self, status: &Bound<'_, PyAny>) {}

    /// Transcription (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_transcription_stopped(&self, stopped_by: &Bound<'_, PyAny>, stopped_by_error: &Bound<'_, PyAny>) {}

    /// Transcription (not offered by our rooms: never emitted).
    #[allow(unused_variables)]
    fn on_transcription_updated(&self, update: &Bound<'_, PyAny>) {}
}
