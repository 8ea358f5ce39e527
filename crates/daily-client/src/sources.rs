//! The process-wide names of audio sources, as daily-python has them: a `CustomAudioTrack` is
//! found by its track id and a virtual microphone by its device name when input settings name
//! them (`{"customTrack": {"id": ...}}`, `{"deviceId": ...}`). Every client of the process
//! resolves against the same registry, as every tab of a browser sees the same devices.

use crate::call::JoinSettings;
use crate::{AudioSource, ClientError, MediaSource, VideoSource};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

#[derive(Default)]
struct Registry {
    /// Custom tracks by id.
    tracks: HashMap<String, AudioSource>,
    /// Virtual microphones by device name: (track id, source).
    microphones: HashMap<String, (String, AudioSource)>,
    /// Custom video tracks by id.
    video_tracks: HashMap<String, VideoSource>,
    /// Virtual cameras by device name: (track id, source).
    cameras: HashMap<String, (String, VideoSource)>,
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

/// Forgets every virtual microphone and camera (`Daily.deinit`).
pub fn clear_microphones() {
    let mut r = registry();
    r.microphones.clear();
    r.cameras.clear();
}

/// Names `source` as custom video track `track_id` (a `CustomVideoTrack` was created).
pub fn register_video_track(track_id: &str, source: &VideoSource) {
    registry().video_tracks.insert(track_id.to_owned(), source.clone());
}

/// Forgets custom video track `track_id`.
pub fn unregister_video_track(track_id: &str) {
    registry().video_tracks.remove(track_id);
}

/// Names `source` as virtual camera `device_name`, published with `track_id`; a later device
/// of the same name replaces it (daily-python's `create_camera_device`).
pub fn register_camera(device_name: &str, track_id: &str, source: &VideoSource) {
    registry().cameras.insert(device_name.to_owned(), (track_id.to_owned(), source.clone()));
}

/// The video source named by a camera or screen input's `settings` (`{"customTrack": {"id"}}`
/// or `{"deviceId"}`), as (track id, source); `None` when neither is given or the id is a
/// placeholder no track has (pipecat passes `"no-camera-track"` with `isEnabled: False`);
/// `InvalidArgument` for an unknown device.
pub fn resolve_video(input: &str, settings: &Value) -> Result<Option<(String, VideoSource)>, ClientError> {
    if let Some(id) = settings["customTrack"]["id"].as_str() {
        return match registry().video_tracks.get(id) {
            Some(s) => Ok(Some((id.to_owned(), s.clone()))),
            None => Err(ClientError::InvalidArgument(format!("the {input} settings name custom video track {:?}, which does not exist", shown(id)))),
        };
    }
    if let Some(name) = settings["deviceId"].as_str() {
        return match registry().cameras.get(name) {
            Some(m) => Ok(Some(m.clone())),
            None => Err(ClientError::InvalidArgument(format!(
                "the {input} settings name device {:?}, which does not exist (create it with Daily.create_camera_device)",
                shown(name)
            ))),
        };
    }
    Ok(None)
}

/// What an `update_inputs` patch's `camera` or `screenVideo` entry asks, as
/// [`microphone_change`] does for the microphone.
pub fn video_change(input: &str, v: &Value) -> Result<Option<Option<(String, MediaSource)>>, ClientError> {
    match v {
        Value::Null | Value::Bool(true) => Ok(None),
        Value::Bool(false) => Ok(Some(None)),
        Value::Object(_) if v["isEnabled"].as_bool() == Some(false) => Ok(Some(None)),
        Value::Object(_) => Ok(resolve_video(input, &v["settings"])?.map(|(id, s)| Some((id, s.into())))),
        _ => Err(ClientError::InvalidArgument(format!("input_settings[{input:?}] must be a bool or a dict"))),
    }
}

/// The sources an `update_inputs` patch switches (microphone, camera, screen).
pub fn input_change(patch: &Value) -> Result<crate::InputChange, ClientError> {
    Ok(crate::InputChange {
        microphone: microphone_change(&patch["microphone"])?.map(|m| m.map(|(id, s)| (id, s.into()))),
        camera: video_change("camera", &patch["camera"])?,
        screen_video: video_change("screenVideo", &patch["screenVideo"])?,
    })
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

impl JoinSettings<MediaSource> {
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
        // A disabled camera may name a placeholder track (pipecat's "no-camera-track").
        let video = |input: &str| -> Result<Option<(String, MediaSource)>, ClientError> {
            let v = &client_settings["inputs"][input];
            let enabled = match v {
                Value::Bool(b) => *b,
                Value::Object(_) => v["isEnabled"].as_bool().unwrap_or(true),
                _ => false,
            };
            if !enabled {
                return Ok(None);
            }
            Ok(resolve_video(input, &v["settings"])?.map(|(id, s)| (id, s.into())))
        };
        let camera = video("camera")?;
        let screen_video = video("screenVideo")?;
        Ok(JoinSettings { microphone: microphone.map(|(id, s)| (id, s.into())), camera, screen_video, client_settings })
    }
}
