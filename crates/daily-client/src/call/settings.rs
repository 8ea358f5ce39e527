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
        let settings = &patch["microphone"]["settings"];
        if settings.get("deviceId").is_some() || settings.get("customTrack").is_some() {
            self.inputs["microphone"]["settings"] = settings.clone();
        }
        Ok(())
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
        shapes::merge(&mut self.publishing, &patch);
        self.mic_send = send;
        self.mic_publishing = publishing;
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

/// Checks a custom track name: not empty and not one of Daily's own input names.
pub fn validate_custom_track_name(name: &str) -> Result<(), ClientError> {
    if name.is_empty() || matches!(name, "microphone" | "camera" | "screenAudio" | "screenVideo" | "customAudio" | "customVideo") {
        return Err(invalid(format!("invalid custom track name {name:?}")));
    }
    Ok(())
}
