//! `CallClient` methods for room state: getters, settings updates, app messages,
//! permissions and ejection. Each mutator returns at once and reports through an optional
//! `completion(error)` that fires exactly once on the client's dispatcher, after the
//! `on_*_updated` event the call caused (daily-python's contract, `spec/API.md`).

use crate::client::CallClient;
use crate::convert::{py_to_value, value_to_py};
use crate::dispatch::done_one;
use crate::errors::{Callback, cb, guard, to_py_err};
use daily_client::check;
use daily_proto::{MEDIA_KINDS, PermissionsUpdate};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

/// `Optional[dict]` argument → JSON (`None` → `Null`); other types raise `TypeError`.
fn opt_dict(v: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Value> {
    match v {
        None => Ok(Value::Null),
        Some(x) if x.is_none() => Ok(Value::Null),
        Some(x) if x.is_instance_of::<PyDict>() => py_to_value(x),
        Some(_) => Err(PyTypeError::new_err(format!("{what} must be a dict"))),
    }
}

fn dict(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    if !v.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!("{what} must be a dict")));
    }
    py_to_value(v)
}

/// Daily's media kind names, accepting daily-js's `audio` / `video` aliases.
fn media_kind(k: &str) -> &str {
    match k {
        "audio" => "microphone",
        "video" => "camera",
        other => other,
    }
}

/// A Daily permissions dict (`hasPresence`, `canSend`, `canAdmin`, `canReceive`; `canSend` /
/// `canAdmin` as a list or set of names, or a bool for all / none) → an update.
fn permissions_update(v: &Value) -> Result<PermissionsUpdate, String> {
    let Some(o) = v.as_object() else {
        return Err("permissions must be a dict".into());
    };
    let mut u = PermissionsUpdate::default();
    for (k, x) in o {
        match k.as_str() {
            "hasPresence" => u.has_presence = Some(x.as_bool().ok_or("hasPresence must be a bool")?),
            "canSend" => {
                u.can_send = Some(match x {
                    Value::Bool(true) => MEDIA_KINDS.iter().map(|s| (*s).to_owned()).collect(),
                    Value::Bool(false) => Vec::new(),
                    Value::Array(a) => a
                        .iter()
                        .map(|e| e.as_str().map(|s| media_kind(s).to_owned()).ok_or("canSend entries must be strings"))
                        .collect::<Result<_, _>>()?,
                    _ => return Err("canSend must be a bool, list or set".into()),
                })
            }
            "canAdmin" => {
                u.can_admin = Some(match x {
                    Value::Bool(true) => daily_proto::ADMIN_KINDS.iter().map(|s| (*s).to_owned()).collect(),
                    Value::Bool(false) => Vec::new(),
                    Value::Array(a) => a
                        .iter()
                        .map(|e| e.as_str().map(str::to_owned).ok_or("canAdmin entries must be strings"))
                        .collect::<Result<_, _>>()?,
                    _ => return Err("canAdmin must be a bool, list or set".into()),
                })
            }
            "canReceive" => u.can_receive = Some(x.clone()),
            other => return Err(format!("unknown permission {other:?} (expected hasPresence, canSend, canAdmin, canReceive)")),
        }
    }
    u.validate()?;
    Ok(u)
}

/// Daily's ICE config dict (`{"iceServers": [{"urls": str | [str], "username", "credential"}],
/// "iceTransportPolicy": "all" | "relay", "placement": ...}`) → the core's config.
fn parse_ice_config(v: &Value) -> Result<daily_client::IceConfig, String> {
    let mut cfg = daily_client::IceConfig::default();
    let Some(o) = v.as_object() else {
        return Err("ice_config must be a dict".into());
    };
    for (k, x) in o {
        match k.as_str() {
            "iceServers" => {
                let list = x.as_array().ok_or("iceServers must be a list")?;
                for srv in list {
                    let urls = match &srv["urls"] {
                        Value::String(u) => vec![u.clone()],
                        Value::Array(a) => a.iter().map(|u| u.as_str().map(str::to_owned).ok_or("ICE server urls must be strings")).collect::<Result<_, _>>()?,
                        _ => return Err("each ICE server needs \"urls\" (a string or a list of strings)".into()),
                    };
                    let text = |key: &str| -> Result<String, String> {
                        match &srv[key] {
                            Value::Null => Ok(String::new()),
                            Value::String(s) => Ok(s.clone()),
                            _ => Err(format!("ICE server {key} must be a string")),
                        }
                    };
                    cfg.servers.push(daily_client::IceServer { urls, username: text("username")?, credential: text("credential")? });
                }
            }
            "iceTransportPolicy" => {
                cfg.relay_only = match x.as_str() {
                    Some("all") => false,
                    Some("relay") => true,
                    _ => return Err("iceTransportPolicy must be \"all\" or \"relay\"".into()),
                }
            }
            // Where Daily puts these servers relative to its own; this server has none of its own.
            "placement" => match x.as_str() {
                Some("front" | "back" | "replace") => {}
                _ => return Err("placement must be \"front\", \"back\" or \"replace\"".into()),
            },
            other => return Err(format!("unknown ice_config key {other:?}")),
        }
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[pymethods]
impl CallClient {
    /// Sets the STUN/TURN servers (`{"iceServers": [{"urls", "username", "credential"}],
    /// "iceTransportPolicy": "all" | "relay"}`; `None` clears them) used from the next `join`
    /// on. `placement` is accepted; this room server has no ICE servers of its own to place
    /// them against. Bad values complete with an error.
    #[pyo3(signature = (ice_config=None, completion=None))]
    fn set_ice_config(&self, ice_config: Option<&Bound<'_, PyAny>>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let v = opt_dict(ice_config, "ice_config")?;
            let core = self.core()?;
            let done = done_one(self.dispatcher.clone(), cb(completion));
            let cfg = if v.is_null() { Ok(daily_client::IceConfig::default()) } else { parse_ice_config(&v) };
            match cfg {
                Ok(c) => core.set_ice_config(c, done),
                Err(e) => done(Err(daily_client::ClientError::InvalidArgument(e))),
            }
            Ok(())
        })
    }

    /// `{"present": n, "hidden": n}`: participants in the call, this one included, as of the
    /// last `on_participant_counts_updated` (zeros when not in a call). Hidden participants
    /// have `hasPresence: False`.
    fn participant_counts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            value_to_py(py, &self.core()?.participant_counts())
        })
    }

    /// The active speaker's participant dict, or `None` before anybody spoke. The room server
    /// chooses it from the RFC 6464 audio levels of the tracks it forwards (tracks added
    /// with `ignore_audio_level=True` never count) and keeps it through silence.
    fn active_speaker(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            value_to_py(py, &self.core()?.active_speaker())
        })
    }

    /// Daily's NetworkStats dict as of the last `on_network_stats_updated` (every 2 s in a
    /// call): `{"quality": 0-100, "threshold": "good" | "low" | "veryLow", "stats": {"latest":
    /// {...}, "worst*": ..., ...}}`, with bit rates in bit/s, loss as a fraction 0-1, RTT and
    /// jitter in seconds, measured from RTCP receiver reports (RFC 3550 section 6.4), audio and
    /// video apart (`audio*`, `video*`) and together (`total*`, the top-level bit rates);
    /// `availableOutgoingBitrate` is the send transport's bandwidth estimate while video is
    /// sent. Before the first sample and after leaving:
    /// `{"quality": 100, "threshold": "good", "stats": {"latest": {}}}`.
    fn get_network_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            value_to_py(py, &self.core()?.network_stats())
        })
    }

    /// The input settings (Daily's shape, see `spec/defaults.json`) as of the last
    /// `on_inputs_updated`.
    fn inputs(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            value_to_py(py, &self.core()?.inputs())
        })
    }

    /// The publishing settings as of the last `on_publishing_updated`.
    fn publishing(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            value_to_py(py, &self.core()?.publishing())
        })
    }

    /// Per-participant subscription settings (`{participant_id: {"profile", "media"}}`) as of
    /// the last `on_subscriptions_updated`.
    fn subscriptions(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            value_to_py(py, &self.core()?.subscriptions())
        })
    }

    /// The subscription profiles as of the last `on_subscription_profiles_updated`.
    fn subscription_profiles(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            value_to_py(py, &self.core()?.subscription_profiles())
        })
    }

    /// Merges `publishing_settings` into `publishing()` and emits `on_publishing_updated`
    /// before `completion(error)`. `{"microphone": {"isPublishing": False}}` (or
    /// `"microphone": False`) stops sending the microphone: remote participants see its
    /// state go `off`. `sendSettings` (`"speech"`, `"music"` or `{"channelConfig": "mono" |
    /// "stereo", "bitrate": bit/s}`) re-tunes the Opus encoder. Daily's shape: each of
    /// `camera`, `microphone`, `screenVideo`, `screenAudio` is a bool or `{"isPublishing":
    /// bool, "sendSettings": str | dict}`, `customAudio` / `customVideo` map track names to
    /// the same; an audio `sendSettings` dict takes `channelConfig` and `bitrate` only.
    /// Raises `TypeError` if the argument is not a dict or a value has the wrong type,
    /// `ValueError` for an unknown key; values of the right type the encoder refuses (an
    /// unknown preset) complete with an error.
    #[pyo3(signature = (publishing_settings, completion=None))]
    fn update_publishing(&self, publishing_settings: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let v = dict(publishing_settings, "publishing_settings")?;
            check::publishing_settings(&v, "publishing_settings").map_err(to_py_err)?;
            self.core()?.update_publishing(&v, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Merges `participant_settings` (`{participant_id: {"profile": name, "media":
    /// {"microphone": "subscribed" | "unsubscribed" | "staged", "customAudio": {name: ...}}}}`)
    /// into `subscriptions()` and `profile_settings` into the profiles. The room server
    /// forwards only subscribed audio, so unsubscribing stops the packets. Emits the
    /// `on_*_updated` events, then `completion(error)` once the server applied it. Keys of
    /// `participant_settings` must be participant ids (UUIDs); a media entry is
    /// `"subscribed"`, `"unsubscribed"`, `"staged"` or `{"subscriptionState": ...,
    /// "receiveSettings": dict}`, and `customAudio` / `customVideo` also take `{name | "*":
    /// state}`. Raises `TypeError` for a value of the wrong type and `ValueError` for an
    /// unknown key or state.
    #[pyo3(signature = (participant_settings=None, profile_settings=None, completion=None))]
    fn update_subscriptions(
        &self,
        participant_settings: Option<&Bound<'_, PyAny>>,
        profile_settings: Option<&Bound<'_, PyAny>>,
        completion: Option<Callback>,
    ) -> PyResult<()> {
        guard(|| {
            let p = opt_dict(participant_settings, "participant_settings")?;
            let q = opt_dict(profile_settings, "profile_settings")?;
            if !p.is_null() {
                check::participant_settings(&p, "participant_settings").map_err(to_py_err)?;
            }
            if !q.is_null() {
                check::subscription_profiles(&q, "profile_settings").map_err(to_py_err)?;
            }
            self.core()?.update_subscriptions(&p, &q, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Merges `profile_settings` (`{"base": {"microphone": "subscribed", "camera":
    /// "unsubscribed", ...}, "<name>": {...}}`) into `subscription_profiles()`; emits
    /// `on_subscription_profiles_updated`, then `completion(error)`. Each profile is checked
    /// as a media entry of `update_subscriptions` (`TypeError` / `ValueError` at the call).
    #[pyo3(signature = (profile_settings, completion=None))]
    fn update_subscription_profiles(&self, profile_settings: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let v = dict(profile_settings, "profile_settings")?;
            check::subscription_profiles(&v, "profile_settings").map_err(to_py_err)?;
            self.core()?.update_subscription_profiles(&v, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Sends `message` (any JSON-serialisable value, at most 4096 bytes as JSON, Daily's
    /// limit) to every other participant, or to `participant_id` only; they get
    /// `on_app_message(message, sender_id)`. `completion(error)` fires once the server routed
    /// it; errors: not in a call, too large, no such participant. Raises `TypeError` for a
    /// value JSON cannot carry and `ValueError` for a `participant_id` that is not a
    /// participant id (a UUID) or `"*"`.
    #[pyo3(signature = (message, participant_id=None, completion=None))]
    fn send_app_message(&self, message: &Bound<'_, PyAny>, participant_id: Option<String>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            if let Some(id) = participant_id.as_deref().filter(|id| *id != "*") {
                check::participant_id(id, "participant_id").map_err(to_py_err)?;
            }
            let v = py_to_value(message)?;
            self.core()?.send_app_message(v, participant_id, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Sends a chat message to the room's call page (served by the room server at
    /// `GET /{room}`, our counterpart of Daily Prebuilt): an app message to everybody shaped as
    /// Prebuilt's, `{"event": "chat-msg", "message": message, "name": user_name, "room":
    /// "main-room"}`, so SDK clients get it in `on_app_message` too. `user_name` defaults to the
    /// local participant's name. `completion(error)` as for `send_app_message`; `TypeError` when
    /// `message` is not a `str`.
    #[pyo3(signature = (message, user_name=None, completion=None))]
    fn send_prebuilt_chat_message(&self, message: &Bound<'_, PyAny>, user_name: Option<String>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let message: String = message
                .extract()
                .map_err(|_| PyTypeError::new_err("message must be a str"))?;
            let core = self.core()?;
            let name = match user_name {
                Some(n) => n,
                None => core.participants()["local"]["info"]["userName"].as_str().unwrap_or("").to_owned(),
            };
            let data = serde_json::json!({ "event": "chat-msg", "message": message, "name": name, "room": "main-room" });
            core.send_app_message(data, None, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Changes the local participant's permissions (`{"hasPresence", "canSend", "canAdmin",
    /// "canReceive"}`; `canSend` / `canAdmin` as a list, set or bool). Without owner or
    /// `canAdmin: participants` rights a participant may only give rights up; the server
    /// refuses more with an error in `completion(error)`. Remote participants see the change
    /// in `on_participant_updated` (or leave with reason `hidden` when `hasPresence` goes
    /// False). Raises `ValueError` for an unknown key and `TypeError` for a value of the
    /// wrong type; a kind this server does not know (`canSend: ["teleport"]`) completes with
    /// an error.
    #[pyo3(signature = (permissions, completion=None))]
    fn update_permissions(&self, permissions: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let v = dict(permissions, "permissions")?;
            check::permissions(&v, "permissions").map_err(to_py_err)?;
            let core = self.core()?;
            let done = done_one(self.dispatcher.clone(), cb(completion));
            match permissions_update(&v) {
                Ok(u) => core.update_permissions(u, done),
                Err(e) => done(Err(daily_client::ClientError::InvalidArgument(e))),
            }
            Ok(())
        })
    }

    /// `{participant_id: {"permissions": {...}}}`: owners and `participants` admins change
    /// other participants' permissions (`canSend` is enforced by the server: a track it no
    /// longer allows stops being forwarded). Other update keys (`inputsEnabled`, ...) are not
    /// supported by this room server and complete with an error. `completion(error)` fires
    /// once, after every participant's update was answered. Raises `ValueError` for a key
    /// that is not a participant id or an update key Daily does not have, `TypeError` for a
    /// value of the wrong type.
    #[pyo3(signature = (remote_participants, completion=None))]
    fn update_remote_participants(&self, remote_participants: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let v = dict(remote_participants, "remote_participants")?;
            check::remote_participants(&v, "remote_participants").map_err(to_py_err)?;
            let core = self.core()?;
            let done = done_one(self.dispatcher.clone(), cb(completion));
            let mut updates = Vec::new();
            for (pid, upd) in v.as_object().into_iter().flatten() {
                let Some(o) = upd.as_object() else {
                    done(Err(daily_client::ClientError::InvalidArgument(format!("the update for {pid:?} must be a dict"))));
                    return Ok(());
                };
                if let Some(k) = o.keys().find(|k| *k != "permissions") {
                    done(Err(daily_client::ClientError::InvalidArgument(format!("{k:?} in update_remote_participants is not supported by this room server (only \"permissions\" is)"))));
                    return Ok(());
                }
                match o.get("permissions").map(permissions_update) {
                    None => {}
                    Some(Ok(u)) => updates.push((pid.clone(), u)),
                    Some(Err(e)) => {
                        done(Err(daily_client::ClientError::InvalidArgument(e)));
                        return Ok(());
                    }
                }
            }
            core.update_remote_permissions(updates, done);
            Ok(())
        })
    }

    /// Removes participants from the call (owners and `canAdmin: participants` only). Each
    /// ejected client gets `on_error` and its call state goes `left`. `completion(error)`
    /// names ids that were not in the call. Raises `ValueError` for an id longer than 64
    /// bytes (participant ids are 36-character UUIDs; a huge one would make the server drop
    /// this client).
    #[pyo3(signature = (ids, completion=None))]
    fn eject_remote_participants(&self, ids: Vec<String>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            if let Some(id) = ids.iter().find(|id| id.len() > 64) {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "participant ids are at most 64 bytes, got one of {} bytes",
                    id.len()
                )));
            }
            self.core()?.eject(ids, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Replaces the track published as custom audio `track_name` with `audio_track`;
    /// `completion(error)` (an error when no such track was added). `ValueError` for a name
    /// `add_custom_audio_track` would refuse (empty, over 256 bytes, a Daily input name).
    #[pyo3(signature = (track_name, audio_track, ignore_audio_level=None, completion=None))]
    fn update_custom_audio_track(
        &self,
        track_name: &str,
        audio_track: &Bound<'_, PyAny>,
        ignore_audio_level: Option<bool>,
        completion: Option<Callback>,
    ) -> PyResult<()> {
        self.custom_track(
            track_name,
            audio_track,
            ignore_audio_level,
            completion,
            daily_client::CallClient::update_custom_audio_track,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_dicts_convert() {
        let u = permissions_update(&serde_json::json!({"canSend": ["audio", "customAudio"], "hasPresence": false})).unwrap();
        assert_eq!(u.can_send, Some(vec!["microphone".to_owned(), "customAudio".to_owned()]));
        assert_eq!(u.has_presence, Some(false));
        assert_eq!(permissions_update(&serde_json::json!({"canSend": true})).unwrap().can_send.unwrap().len(), 6);
        assert!(permissions_update(&serde_json::json!({"canSend": ["teleport"]})).is_err());
        assert!(permissions_update(&serde_json::json!({"bogus": 1})).is_err());
    }
}
