//! The process-wide names of audio sources, as daily-python has them: a `CustomAudioTrack` is
//! found by its track id and a virtual microphone by its device name when input settings name
//! them (`{"customTrack": {"id": ...}}`, `{"deviceId": ...}`). Every client of the process
//! resolves against the same registry, as every tab of a browser sees the same devices.

use crate::call::JoinSettings;
use crate::{AudioSource, ClientError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

#[derive(Default)]
struct Registry {
    /// Custom tracks by id.
    tracks: HashMap<String, AudioSource>,
    /// Virtual microphones by device name: (track id, source).
    microphones: HashMap<String, (String, AudioSource)>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Names `source` as custom track `track_id` (a `CustomAudioTrack` was created).
pub fn register_track(track_id: &str, source: &AudioSource) {
    registry().tracks.insert(track_id.to_owned(), source.clone());
}

/// Forgets custom track `track_id` (its `CustomAudioTrack` is gone).
pub fn unregister_track(track_id: &str) {
    registry().tracks.remove(track_id);
}

/// Names `source` as virtual microphone `device_name`, published with `track_id`; a later
/// device of the same name replaces it (daily-python's `create_microphone_device`).
pub fn register_microphone(device_name: &str, track_id: &str, source: &AudioSource) {
    registry().microphones.insert(device_name.to_owned(), (track_id.to_owned(), source.clone()));
}

/// Forgets every virtual microphone (`Daily.deinit`).
pub fn clear_microphones() {
    registry().microphones.clear();
}

/// The microphone named by input `settings` (`{"customTrack": {"id"}}` or `{"deviceId"}`),
/// as (track id, source); `None` when neither is given; `InvalidArgument` for an unknown
/// track or device.
pub fn resolve_microphone(settings: &Value) -> Result<Option<(String, AudioSource)>, ClientError> {
    if let Some(id) = settings["customTrack"]["id"].as_str() {
        return match registry().tracks.get(id) {
            Some(s) => Ok(Some((id.to_owned(), s.clone()))),
            None => Err(ClientError::InvalidArgument(format!("the microphone settings name custom track {:?}, which does not exist", shown(id)))),
        };
    }
    if let Some(name) = settings["deviceId"].as_str() {
        return match registry().microphones.get(name) {
            Some(m) => Ok(Some(m.clone())),
            None => Err(ClientError::InvalidArgument(format!(
                "the microphone settings name device {:?}, which does not exist (create it with Daily.create_microphone_device)",
                shown(name)
            ))),
        };
    }
    Ok(None)
}

/// A name as error messages show it: at most 64 characters (a careless caller's 300,000-character
/// id should not become a 300,000-character message).
fn shown(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &name[..i]),
        None => name.to_owned(),
    }
}

/// What an `update_inputs` patch's `microphone` entry asks: `None` = leave the microphone
/// as it is, `Some(None)` = stop it, `Some(Some(..))` = switch to that source (Daily's
/// shorthands: `true` keeps, `false` stops; enabled without naming a source keeps).
pub fn microphone_change(mic: &Value) -> Result<Option<Option<(String, AudioSource)>>, ClientError> {
    match mic {
        Value::Null | Value::Bool(true) => Ok(None),
        Value::Bool(false) => Ok(Some(None)),
        Value::Object(_) if mic["isEnabled"].as_bool() == Some(false) => Ok(Some(None)),
        Value::Object(_) => Ok(resolve_microphone(&mic["settings"])?.map(Some)),
        _ => Err(ClientError::InvalidArgument("input_settings[\"microphone\"] must be a bool or a dict".into())),
    }
}

impl JoinSettings<AudioSource> {
    /// Join settings from Daily's `client_settings`: the microphone source named by
    /// `inputs.microphone` when it is enabled (`true`, or a dict without `isEnabled: false`),
    /// and the whole dict for the call core to merge into `inputs()` / `publishing()`.
    pub fn from_client_settings(client_settings: Value) -> Result<Self, ClientError> {
        let mic = &client_settings["inputs"]["microphone"];
        let enabled = match mic {
            Value::Bool(b) => *b,
            Value::Object(_) => mic["isEnabled"].as_bool().unwrap_or(true),
            _ => false,
        };
        let microphone = if enabled { resolve_microphone(&mic["settings"])? } else { None };
        Ok(JoinSettings { microphone, client_settings })
    }
}
