//! Daily's settings dicts as the getters return them (`inputs()`, `publishing()`,
//! `subscriptions()`, `subscription_profiles()`) and the rules for merging the patches the
//! `update_*` calls take. Pure data: no IO, no clock.

use crate::{ClientError, shapes};
use daily_media::OpusApplication;
use daily_proto::SubscriptionRules;
use serde_json::{Value, json};

/// How the microphone track is encoded (from `publishing.microphone.sendSettings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendSettings {
    /// Opus bitrate in bit/s; `None` = encoder default.
    pub bitrate: Option<u32>,
    /// 1 (`mono`) or 2 (`stereo`).
    pub channels: u16,
    /// `Voip` for `"speech"`, `Audio` otherwise.
    pub application: OpusApplication,
}

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings { bitrate: None, channels: 1, application: OpusApplication::Audio }
    }
}

/// What a video track's `sendSettings` ask of its encoder. Daily describes a simulcast of up to
/// three layers (`encodings.low/medium/high`, each with `maxBitrate` and `maxFramerate`) of
/// which `maxQuality` is the best one sent. We send one layer at the source's size, and give it
/// the upload the layers would have had together: the sum of the `maxBitrate`s of the layers up
/// to `maxQuality` (Daily's camera default: 90 + 200 + 680 = 970 kbit/s), at the frame rate of
/// the best of them. A single layer spends that budget better than three copies of the picture
/// would: at 640x360 and 970-1000 kbit/s, 35.5 dB luma PSNR on the benchmark's pattern against
/// 32.9 dB at the top layer's 680 kbit/s alone (`benches/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoSendSettings {
    /// Highest bitrate in bit/s.
    pub max_bitrate: u32,
    /// Highest frame rate in frames/s.
    pub max_fps: u32,
}

impl Default for VideoSendSettings {
    /// Daily's camera default: layers of 90, 200 and 680 kbit/s, the best at 30 frames/s.
    fn default() -> Self {
        VideoSendSettings { max_bitrate: 970_000, max_fps: 30 }
    }
}

/// Limits of a video input's `sendSettings` in a merged publishing dict (see
/// [`VideoSendSettings`]).
fn video_send(send: &Value, input: &str) -> Result<VideoSendSettings, ClientError> {
    let quality = match &send["maxQuality"] {
        Value::Null => "high",
        Value::String(q) if matches!(q.as_str(), "low" | "medium" | "high") => q.as_str(),
        other => return Err(invalid(format!("publishing.{input}.sendSettings.maxQuality must be \"low\", \"medium\" or \"high\", got {other}"))),
    };
    let order = ["low", "medium", "high"];
    let top = order.iter().position(|q| *q == quality).unwrap_or(2);
    let (mut total, mut fps, mut layers) = (0u64, None, 0);
    for q in &order[..=top] {
        let layer = &send["encodings"][*q];
        if !layer.is_object() {
            continue; // the screen's default lists only `low`
        }
        layers += 1;
        match &layer["maxBitrate"] {
            Value::Null => total += u64::from(VideoSendSettings::default().max_bitrate),
            b => match b.as_u64().filter(|b| *b > 0) {
                Some(b) => total += b,
                None => return Err(invalid(format!("publishing.{input}.sendSettings.encodings.{q}.maxBitrate must be a positive integer in bit/s, got {b}"))),
            },
        }
        match &layer["maxFramerate"] {
            Value::Null => {}
            f => match f.as_f64().filter(|f| *f > 0.0) {
                Some(f) => fps = Some((f.round() as u32).clamp(1, 60)),
                None => return Err(invalid(format!("publishing.{input}.sendSettings.encodings.{q}.maxFramerate must be a positive number, got {f}"))),
            },
        }
    }
    let mut out = VideoSendSettings::default();
    if layers > 0 {
        out.max_bitrate = total.clamp(30_000, 20_000_000) as u32;
    }
    if let Some(f) = fps {
        out.max_fps = f;
    }
    Ok(out)
}

/// The four settings dicts plus what the microphone's publishing settings mean.
#[derive(Debug)]
pub(crate) struct Settings {
    pub inputs: Value,
    pub publishing: Value,
    pub profiles: Value,
    pub subscriptions: Value,
    /// `publishing.microphone.isPublishing`.
    pub mic_publishing: bool,
    pub mic_send: SendSettings,
    /// `publishing.camera.isPublishing` and its encoder limits.
    pub camera_publishing: bool,
    pub camera_send: VideoSendSettings,
    /// `publishing.screenVideo.isPublishing` and its encoder limits.
    pub screen_publishing: bool,
    pub screen_send: VideoSendSettings,
}

fn invalid(m: impl Into<String>) -> ClientError {
    ClientError::InvalidArgument(m.into())
}

impl Settings {
    /// A fresh client's settings (daily-python 0.36's initial values).
    pub fn new() -> Settings {
        Settings {
            inputs: shapes::default_inputs(),
            publishing: shapes::default_publishing(),
            profiles: shapes::default_profiles(),
            subscriptions: json!({}),
            mic_publishing: true,
            mic_send: SendSettings::default(),
            camera_publishing: true,
            camera_send: VideoSendSettings::default(),
            screen_publishing: true,
            screen_send: VideoSendSettings { max_bitrate: 2_000_000, max_fps: 30 },
        }
    }

    /// The forwarding rules the server needs for the current profiles and subscriptions.
    pub fn rules(&self) -> SubscriptionRules {
        shapes::subscription_rules(&self.profiles, &self.subscriptions)
    }

    /// `Ok` for a dict or nothing (`null`), else the error naming `what`.
    pub fn check_dict(patch: &Value, what: &str) -> Result<(), ClientError> {
        if patch.is_null() || patch.is_object() { Ok(()) } else { Err(invalid(format!("{what} must be a dict"))) }
    }

    /// Merges an inputs patch. A microphone `settings` naming a device or a custom track
    /// replaces the old settings instead of merging with them. Fails (changing nothing) only
    /// when `patch` is not a dict.
    pub fn apply_inputs(&mut self, patch: &Value) -> Result<(), ClientError> {
        Self::check_dict(patch, "input settings")?;
        if patch.is_null() {
            return Ok(());
        }
        let patch = shapes::expand_shorthand(patch, "isEnabled");
        shapes::merge(&mut self.inputs, &patch);
        for input in ["microphone", "camera", "screenVideo"] {
            let settings = &patch[input]["settings"];
            if settings.get("deviceId").is_some() || settings.get("customTrack").is_some() {
                self.inputs[input]["settings"] = settings.clone();
            }
        }
        Ok(())
    }

    /// `inputs.<input>.isEnabled` follows whether a source is set for a camera or screen input.
    pub fn sync_enabled(&mut self, input: &str, enabled: bool) {
        self.inputs[input]["isEnabled"] = json!(enabled);
    }

    /// `inputs.microphone.isEnabled` follows whether a microphone source is set.
    pub fn sync_mic_enabled(&mut self, enabled: bool) {
        self.inputs["microphone"]["isEnabled"] = json!(enabled);
    }

    /// Merges a publishing patch and applies the microphone's `isPublishing` and
    /// `sendSettings`. Everything is checked before anything changes: nothing changes on error.
    pub fn apply_publishing(&mut self, patch: &Value) -> Result<(), ClientError> {
        if patch.is_null() {
            return Ok(());
        }
        if !patch.is_object() {
            return Err(invalid("publishing settings must be a dict"));
        }
        let patch = shapes::expand_shorthand(patch, "isPublishing");
        let mic = &patch["microphone"];
        let mut send = self.mic_send;
        match &mic["sendSettings"] {
            Value::Null => {}
            Value::String(s) if s == "speech" => send.application = OpusApplication::Voip,
            Value::String(s) if s == "music" => send.application = OpusApplication::Audio,
            Value::String(s) => {
                return Err(invalid(format!("unknown microphone sendSettings preset {s:?} (expected \"speech\" or \"music\")")));
            }
            Value::Object(o) => {
                match o.get("channelConfig").and_then(Value::as_str) {
                    None => {}
                    Some("mono") => send.channels = 1,
                    Some("stereo") => send.channels = 2,
                    Some(c) => return Err(invalid(format!("channelConfig must be \"mono\" or \"stereo\", got {c:?}"))),
                }
                match o.get("bitrate") {
                    None | Some(Value::Null) => {}
                    Some(b) => match b.as_u64() {
                        Some(b) => send.bitrate = Some(b.clamp(6000, 510_000) as u32),
                        None => return Err(invalid(format!("bitrate must be a positive integer in bit/s, got {b}"))),
                    },
                }
            }
            other => return Err(invalid(format!("microphone sendSettings must be a preset name or a dict, got {other}"))),
        }
        let publishing = match &mic["isPublishing"] {
            Value::Null => self.mic_publishing,
            Value::Bool(b) => *b,
            other => return Err(invalid(format!("isPublishing must be a bool, got {other}"))),
        };
        let mut merged = self.publishing.clone();
        shapes::merge(&mut merged, &patch);
        let video_publishing = |input: &str, now: bool| match &patch[input]["isPublishing"] {
            Value::Null => Ok(now),
            Value::Bool(b) => Ok(*b),
            other => Err(invalid(format!("publishing.{input}.isPublishing must be a bool, got {other}"))),
        };
        let camera_publishing = video_publishing("camera", self.camera_publishing)?;
        let screen_publishing = video_publishing("screenVideo", self.screen_publishing)?;
        let camera_send = video_send(&merged["camera"]["sendSettings"], "camera")?;
        let screen_send = video_send(&merged["screenVideo"]["sendSettings"], "screenVideo")?;
        self.publishing = merged;
        self.mic_send = send;
        self.mic_publishing = publishing;
        self.camera_publishing = camera_publishing;
        self.camera_send = camera_send;
        self.screen_publishing = screen_publishing;
        self.screen_send = screen_send;
        Ok(())
    }

    /// `update_subscriptions`: per-participant settings merge into `subscriptions()`,
    /// profile settings into the profiles. Returns which of the two changed.
    pub fn apply_subscriptions(&mut self, participant_settings: &Value, profile_settings: &Value) -> Result<(bool, bool), ClientError> {
        for (v, what) in [(participant_settings, "participant_settings"), (profile_settings, "profile_settings")] {
            if !v.is_null() && !v.is_object() {
                return Err(invalid(format!("{what} must be a dict")));
            }
        }
        if let Some(o) = participant_settings.as_object() {
            for (pid, settings) in o {
                if let Some(m) = self.subscriptions.as_object_mut() {
                    let e = m.entry(pid.clone()).or_insert_with(|| json!({"profile": "base", "media": {}}));
                    shapes::merge(e, settings);
                }
            }
        }
        if profile_settings.is_object() {
            shapes::merge(&mut self.profiles, profile_settings);
        }
        Ok((participant_settings.is_object(), profile_settings.is_object()))
    }

    /// `update_subscription_profiles`.
    pub fn apply_profiles(&mut self, patch: &Value) -> Result<(), ClientError> {
        if !patch.is_object() {
            return Err(invalid("subscription profiles must be a dict"));
        }
        shapes::merge(&mut self.profiles, patch);
        Ok(())
    }
}

/// Checks a custom track name: not empty, not one of Daily's own input names, and at most
/// [`daily_proto::MAX_TRACK_NAME_BYTES`] (the server drops a client that sends a longer one).
pub fn validate_custom_track_name(name: &str) -> Result<(), ClientError> {
    if name.len() > daily_proto::MAX_TRACK_NAME_BYTES {
        return Err(invalid(format!(
            "track_name is {} bytes long; the limit is {} bytes (UTF-8)",
            name.len(),
            daily_proto::MAX_TRACK_NAME_BYTES
        )));
    }
    if name.is_empty() || matches!(name, "microphone" | "camera" | "screenAudio" | "screenVideo" | "customAudio" | "customVideo") {
        return Err(invalid(format!("invalid custom track name {name:?}")));
    }
    Ok(())
}

/// Checks a display name against the server's limit ([`daily_proto::MAX_USER_NAME_BYTES`]):
/// a longer name makes the server drop the client from the call, so it is refused before
/// anything is sent.
pub fn validate_user_name(name: &str) -> Result<(), ClientError> {
    if name.len() > daily_proto::MAX_USER_NAME_BYTES {
        return Err(invalid(format!(
            "user_name is {} bytes long; the limit is {} bytes (UTF-8)",
            name.len(),
            daily_proto::MAX_USER_NAME_BYTES
        )));
    }
    Ok(())
}

/// Shape checks of the dicts the API takes, against Daily's shapes (`spec/API.md`,
/// daily-python's `types`): an unknown key is [`ClientError::InvalidArgument`] naming it, a
/// value of the wrong type [`ClientError::WrongType`] naming its path. They run before a call
/// changes anything, so a careless dict fails at the call instead of being reported as applied.
/// Values of the right type that only the core or the server can judge (an unknown
/// `sendSettings` preset, a `canSend` kind) are left to them and fail in the completion.
pub mod check {
    use crate::ClientError;
    use serde_json::{Map, Value};

    /// Daily's built-in media kinds.
    const MEDIA: [&str; 4] = ["camera", "microphone", "screenVideo", "screenAudio"];
    /// Named custom tracks.
    const CUSTOM: [&str; 2] = ["customAudio", "customVideo"];
    const TOP: [&str; 6] = ["camera", "microphone", "screenVideo", "screenAudio", "customAudio", "customVideo"];
    const AUDIO_INPUT_SETTINGS: [&str; 4] = ["deviceId", "customTrack", "customConstraints", "processor"];
    const VIDEO_INPUT_SETTINGS: [&str; 10] =
        ["deviceId", "customTrack", "customConstraints", "processor", "width", "height", "frameRate", "facingMode", "torch", "zoom"];
    const SUBSCRIPTION_STATES: [&str; 3] = ["subscribed", "unsubscribed", "staged"];

    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "None",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "int",
            Value::String(_) => "str",
            Value::Array(_) => "list",
            Value::Object(_) => "dict",
        }
    }

    fn wrong(path: &str, expected: &str, got: &Value) -> ClientError {
        ClientError::WrongType(format!("{path} must be {expected}, got {}", kind(got)))
    }

    fn at(path: &str, key: &str) -> String {
        format!("{path}[{key:?}]")
    }

    fn dict<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ClientError> {
        v.as_object().ok_or_else(|| wrong(path, "a dict", v))
    }

    /// `v` is a dict whose keys are all in `allowed`.
    fn keys<'a>(v: &'a Value, path: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>, ClientError> {
        let o = dict(v, path)?;
        if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ClientError::InvalidArgument(format!("unknown key {k:?} in {path} (expected: {})", allowed.join(", "))));
        }
        Ok(o)
    }

    fn boolean(v: &Value, path: &str) -> Result<(), ClientError> {
        if v.is_boolean() { Ok(()) } else { Err(wrong(path, "a bool", v)) }
    }

    fn string(v: &Value, path: &str) -> Result<(), ClientError> {
        if v.is_string() { Ok(()) } else { Err(wrong(path, "a str", v)) }
    }

    fn number(v: &Value, path: &str) -> Result<(), ClientError> {
        if v.is_number() { Ok(()) } else { Err(wrong(path, "a number", v)) }
    }

    /// A custom track name as a dict key: what the server takes.
    fn track_name(name: &str, path: &str) -> Result<(), ClientError> {
        if name.is_empty() || name.len() > daily_proto::MAX_TRACK_NAME_BYTES {
            return Err(ClientError::InvalidArgument(format!(
                "custom track name in {path} must be 1 to {} bytes (UTF-8), got {} bytes",
                daily_proto::MAX_TRACK_NAME_BYTES,
                name.len()
            )));
        }
        Ok(())
    }

    /// A participant id: a UUID, as the server assigns them.
    pub fn participant_id(id: &str, what: &str) -> Result<(), ClientError> {
        if uuid::Uuid::parse_str(id).is_err() {
            let shown: String = id.chars().take(64).collect();
            let more = if shown.len() < id.len() { "..." } else { "" };
            return Err(ClientError::InvalidArgument(format!("{what} must be a participant id (a UUID), got {shown:?}{more}")));
        }
        Ok(())
    }

    /// Checks every key of `o` with `f(key, value, path)`.
    fn each(o: &Map<String, Value>, path: &str, mut f: impl FnMut(&str, &Value, &str) -> Result<(), ClientError>) -> Result<(), ClientError> {
        for (k, v) in o {
            f(k, v, &at(path, k))?;
        }
        Ok(())
    }

    // ---- inputs ----

    fn input_settings_dict(v: &Value, path: &str, video: bool) -> Result<(), ClientError> {
        let allowed: &[&str] = if video { &VIDEO_INPUT_SETTINGS } else { &AUDIO_INPUT_SETTINGS };
        let o = keys(v, path, allowed)?;
        each(o, path, |k, x, p| match k {
            "deviceId" | "facingMode" => string(x, p),
            "customTrack" => {
                let t = keys(x, p, &["id"])?;
                t.get("id").map_or(Ok(()), |id| string(id, &at(p, "id")))
            }
            "customConstraints" | "processor" => dict(x, p).map(|_| ()),
            "torch" => boolean(x, p),
            _ => number(x, p),
        })
    }

    /// One input: `bool` or `{"isEnabled": bool, "settings": {...}}`.
    fn input(v: &Value, path: &str, video: bool) -> Result<(), ClientError> {
        if v.is_boolean() {
            return Ok(());
        }
        if !v.is_object() {
            return Err(wrong(path, "a bool or a dict", v));
        }
        let o = keys(v, path, &["isEnabled", "settings"])?;
        each(o, path, |k, x, p| if k == "isEnabled" { boolean(x, p) } else { input_settings_dict(x, p, video) })
    }

    /// `update_inputs(input_settings)` and `client_settings["inputs"]`: `{"camera" |
    /// "microphone" | "screenVideo" | "screenAudio": bool | {"isEnabled", "settings"},
    /// "customAudio" | "customVideo": {name: bool | {...}}}`.
    pub fn input_settings(v: &Value, path: &str) -> Result<(), ClientError> {
        let o = keys(v, path, &TOP)?;
        each(o, path, |k, x, p| {
            let video = matches!(k, "camera" | "screenVideo" | "customVideo");
            if CUSTOM.contains(&k) {
                each(dict(x, p)?, p, |name, t, q| {
                    track_name(name, p)?;
                    input(t, q, video)
                })
            } else {
                input(x, p, video)
            }
        })
    }

    // ---- publishing ----

    fn send_settings(v: &Value, path: &str, audio: bool) -> Result<(), ClientError> {
        match v {
            Value::String(_) => Ok(()),
            Value::Object(_) if audio => {
                let o = keys(v, path, &["channelConfig", "bitrate"])?;
                each(o, path, |k, x, p| match (k, x) {
                    ("channelConfig", x) => string(x, p),
                    (_, Value::Null) => Ok(()),
                    (_, x) if x.is_i64() || x.is_u64() => Ok(()),
                    (_, x) => Err(wrong(p, "an int (bit/s) or None", x)),
                })
            }
            // Video send settings are Daily's rich encoder dicts; this SDK carries no video.
            Value::Object(_) => Ok(()),
            other => Err(wrong(path, "a preset name (str) or a dict", other)),
        }
    }

    /// One published track: `bool` or `{"isPublishing": bool, "sendSettings": ...}`.
    fn publish(v: &Value, path: &str, audio: bool) -> Result<(), ClientError> {
        if v.is_boolean() {
            return Ok(());
        }
        if !v.is_object() {
            return Err(wrong(path, "a bool or a dict", v));
        }
        let o = keys(v, path, &["isPublishing", "sendSettings"])?;
        each(o, path, |k, x, p| if k == "isPublishing" { boolean(x, p) } else { send_settings(x, p, audio) })
    }

    /// `update_publishing(publishing_settings)` and `client_settings["publishing"]`.
    pub fn publishing_settings(v: &Value, path: &str) -> Result<(), ClientError> {
        let o = keys(v, path, &TOP)?;
        each(o, path, |k, x, p| {
            let audio = matches!(k, "microphone" | "screenAudio" | "customAudio");
            if CUSTOM.contains(&k) {
                each(dict(x, p)?, p, |name, t, q| {
                    track_name(name, p)?;
                    publish(t, q, audio)
                })
            } else {
                publish(x, p, audio)
            }
        })
    }

    /// `join(client_settings=...)`: `{"inputs": ..., "publishing": ...}`.
    pub fn client_settings(v: &Value, path: &str) -> Result<(), ClientError> {
        let o = keys(v, path, &["inputs", "publishing"])?;
        each(o, path, |k, x, p| if k == "inputs" { input_settings(x, p) } else { publishing_settings(x, p) })
    }

    // ---- subscriptions ----

    fn state(v: &Value, path: &str) -> Result<(), ClientError> {
        match v {
            Value::Bool(_) => Ok(()),
            Value::String(s) if SUBSCRIPTION_STATES.contains(&s.as_str()) => Ok(()),
            Value::String(s) => Err(ClientError::InvalidArgument(format!(
                "{path} must be \"subscribed\", \"unsubscribed\" or \"staged\", got {:?}",
                s.chars().take(64).collect::<String>()
            ))),
            Value::Object(_) => {
                let o = keys(v, path, &["subscriptionState", "receiveSettings"])?;
                each(o, path, |k, x, p| if k == "receiveSettings" { dict(x, p).map(|_| ()) } else { state(x, p) })
            }
            other => Err(wrong(path, "a subscription state (str) or a dict", other)),
        }
    }

    /// `{"camera" | "microphone" | ...: state, "customAudio" | "customVideo": state | {name |
    /// "*": state}}`: a profile, or a participant's `media`.
    fn media_settings(v: &Value, path: &str) -> Result<(), ClientError> {
        let o = keys(v, path, &TOP)?;
        each(o, path, |k, x, p| {
            if CUSTOM.contains(&k) && x.is_object() && x.get("subscriptionState").is_none() && x.get("receiveSettings").is_none() {
                each(dict(x, p)?, p, |name, s, q| {
                    if name != "*" {
                        track_name(name, p)?;
                    }
                    state(s, q)
                })
            } else {
                state(x, p)
            }
        })
    }

    /// `update_subscription_profiles(profile_settings)` and `update_subscriptions(...,
    /// profile_settings)`: `{profile_name: media settings}`.
    pub fn subscription_profiles(v: &Value, path: &str) -> Result<(), ClientError> {
        each(dict(v, path)?, path, |name, x, p| {
            if name.is_empty() || name.len() > 256 {
                return Err(ClientError::InvalidArgument(format!("profile names in {path} must be 1 to 256 bytes")));
            }
            media_settings(x, p)
        })
    }

    /// `update_subscriptions(participant_settings)`: `{participant_id: {"profile": name,
    /// "media": media settings}}`.
    pub fn participant_settings(v: &Value, path: &str) -> Result<(), ClientError> {
        each(dict(v, path)?, path, |pid, x, p| {
            participant_id(pid, &format!("each key of {path}"))?;
            let o = keys(x, p, &["profile", "media"])?;
            each(o, p, |k, y, q| if k == "profile" { string(y, q) } else { media_settings(y, q) })
        })
    }

    // ---- permissions ----

    /// `update_permissions(permissions)` and a remote update's `permissions`: `{"hasPresence":
    /// bool, "canSend": bool | [str], "canAdmin": bool | [str], "canReceive": dict}`.
    pub fn permissions(v: &Value, path: &str) -> Result<(), ClientError> {
        let o = keys(v, path, &["hasPresence", "canSend", "canAdmin", "canReceive"])?;
        each(o, path, |k, x, p| match k {
            "hasPresence" => boolean(x, p),
            "canReceive" => dict(x, p).map(|_| ()),
            _ => match x {
                Value::Bool(_) => Ok(()),
                Value::Array(a) => a.iter().try_for_each(|e| string(e, &format!("each entry of {p}"))),
                other => Err(wrong(p, "a bool or a list / set of str", other)),
            },
        })
    }

    /// `update_remote_participants(remote_participants)`: `{participant_id: {"permissions":
    /// ..., "inputsEnabled": {"camera" | "microphone" | "screenVideo" | "screenAudio": bool}}}`.
    pub fn remote_participants(v: &Value, path: &str) -> Result<(), ClientError> {
        each(dict(v, path)?, path, |pid, x, p| {
            participant_id(pid, &format!("each key of {path}"))?;
            let o = keys(x, p, &["permissions", "inputsEnabled"])?;
            each(o, p, |k, y, q| {
                if k == "permissions" {
                    permissions(y, q)
                } else {
                    each(keys(y, q, &MEDIA)?, q, |_, b, r| boolean(b, r))
                }
            })
        })
    }
}

#[cfg(test)]
mod check_tests {
    use super::check;
    use crate::ClientError;
    use serde_json::json;

    fn kind(r: Result<(), ClientError>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(ClientError::WrongType(_)) => "type",
            Err(ClientError::InvalidArgument(_)) => "value",
            Err(_) => "other",
        }
    }

    #[test]
    fn publishing_shapes() {
        let p = |v| kind(check::publishing_settings(&v, "p"));
        assert_eq!(p(json!({"microphone": {"isPublishing": true, "sendSettings": {"channelConfig": "mono", "bitrate": 96000}}})), "ok");
        assert_eq!(p(json!({"camera": {"isPublishing": false, "sendSettings": {}}, "screenAudio": true, "customAudio": {"m": true}})), "ok");
        assert_eq!(p(json!({"customVideo": {"c": {"sendSettings": {"maxQuality": "low"}}}, "microphone": {"sendSettings": "speech"}})), "ok");
        assert_eq!(p(crate::shapes::default_publishing()), "ok");
        assert_eq!(p(json!({"microphone": "x"})), "type");
        assert_eq!(p(json!({"microphone": {"sendSettings": {"bitrate": "high"}}})), "type");
        assert_eq!(p(json!({"microphone": {"sendSettings": {"gain": 2}}})), "value");
        assert_eq!(p(json!({"speaker": true})), "value");
        assert_eq!(p(json!({"customAudio": {"": true}})), "value");
        assert_eq!(p(json!({"customAudio": {"x".repeat(257): true}})), "value");
    }

    #[test]
    fn input_shapes() {
        let i = |v| kind(check::input_settings(&v, "i"));
        assert_eq!(i(crate::shapes::default_inputs()), "ok");
        assert_eq!(i(json!({"camera": {"isEnabled": false, "settings": {"customTrack": {"id": "no-camera-track"}}}})), "ok");
        assert_eq!(i(json!({"microphone": {"isEnabled": true, "settings": {"deviceId": "mic"}}})), "ok");
        assert_eq!(i(json!({"microphone": {"settings": {"width": 3}}})), "value");
        assert_eq!(i(json!({"microphone": {"settings": {"customTrack": {"id": 3}}}})), "type");
        assert_eq!(i(json!({"camera": 1})), "type");
    }

    #[test]
    fn subscription_shapes() {
        let pid = "7f1b9b1e-6a55-4e8d-9d7e-4b0d8e7f1a11";
        let s = |v| kind(check::participant_settings(&v, "s"));
        let prof = |v| kind(check::subscription_profiles(&v, "p"));
        assert_eq!(prof(crate::shapes::default_profiles()), "ok");
        assert_eq!(prof(json!({"base": {"camera": "unsubscribed", "screenVideo": "unsubscribed"}})), "ok");
        assert_eq!(prof(json!({"base": {"customAudio": "subscribed"}, "q": {"customAudio": {"*": "staged"}}})), "ok");
        assert_eq!(prof(json!({"base": {"camera": "maybe"}})), "value");
        assert_eq!(prof(json!({"base": []})), "type");
        assert_eq!(s(json!({pid: {"media": {"microphone": "subscribed"}}})), "ok");
        assert_eq!(s(json!({pid: {"profile": "base", "media": {"customAudio": {"music": {"subscriptionState": "subscribed"}}}}})), "ok");
        assert_eq!(s(json!({"someone": {}})), "value");
        assert_eq!(s(json!({pid: {"media": {"microphone": 1}}})), "type");
        assert_eq!(s(json!({pid: {"mediaa": {}}})), "value");
    }

    #[test]
    fn permission_and_remote_shapes() {
        let pid = "7f1b9b1e-6a55-4e8d-9d7e-4b0d8e7f1a11";
        let p = |v| kind(check::permissions(&v, "p"));
        let r = |v| kind(check::remote_participants(&v, "r"));
        assert_eq!(p(json!({"hasPresence": true, "canSend": ["microphone"], "canAdmin": false, "canReceive": {"base": true}})), "ok");
        assert_eq!(p(json!({"canSend": 1})), "type");
        assert_eq!(p(json!({"canFly": true})), "value");
        assert_eq!(r(json!({pid: {"permissions": {"canSend": true}, "inputsEnabled": {"microphone": false}}})), "ok");
        assert_eq!(r(json!({pid: {"inputsEnabled": {"microphone": "no"}}})), "type");
        assert_eq!(r(json!({pid: {"eject": true}})), "value");
    }

    #[test]
    fn names_against_the_server_limits() {
        assert!(super::validate_user_name(&"x".repeat(daily_proto::MAX_USER_NAME_BYTES)).is_ok());
        assert!(super::validate_user_name(&"x".repeat(daily_proto::MAX_USER_NAME_BYTES + 1)).is_err());
        assert!(super::validate_user_name(&"é".repeat(513)).is_err());
        assert!(super::validate_custom_track_name(&"t".repeat(daily_proto::MAX_TRACK_NAME_BYTES)).is_ok());
        assert!(super::validate_custom_track_name(&"t".repeat(daily_proto::MAX_TRACK_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn video_send_settings_budget_the_layers_up_to_max_quality() {
        use super::{Settings, VideoSendSettings};
        let mut s = Settings::new();
        assert_eq!(s.camera_send, VideoSendSettings { max_bitrate: 970_000, max_fps: 30 });
        assert_eq!(s.screen_send, VideoSendSettings { max_bitrate: 2_000_000, max_fps: 30 });
        s.apply_publishing(&json!({"camera": {"sendSettings": {"maxQuality": "medium"}}})).unwrap();
        assert_eq!(s.camera_send, VideoSendSettings { max_bitrate: 290_000, max_fps: 15 });
        // pipecat's: one layer named `low` with its own caps.
        s.apply_publishing(&json!({"camera": {"sendSettings": {"maxQuality": "low", "encodings": {"low": {"maxBitrate": 800_000, "maxFramerate": 30}}}}}))
            .unwrap();
        assert_eq!(s.camera_send, VideoSendSettings { max_bitrate: 800_000, max_fps: 30 });
        assert!(s.apply_publishing(&json!({"camera": {"sendSettings": {"maxQuality": "best"}}})).is_err());
        assert!(s.apply_publishing(&json!({"camera": {"sendSettings": {"maxQuality": "high", "encodings": {"high": {"maxBitrate": -1}}}}})).is_err());
        assert_eq!(s.camera_send.max_bitrate, 800_000, "a refused patch changes nothing");
    }
}
