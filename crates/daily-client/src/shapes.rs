//! Daily's dict shapes (camelCase JSON) built from what the server tells us, so native users
//! and the Python binding see the same participant objects daily-python returns.

use daily_proto::{MediaInfo, ParticipantInfo, SubscriptionRules, TrackSource};
use serde_json::{Map, Value, json};

// Initial values of the getters on a fresh client, as daily-python 0.36 returns them
// (measured; `spec/defaults.json`).
const DEFAULT_INPUTS: &str = r#"{"camera": {"isEnabled": false, "settings": {"customConstraints": {}, "facingMode": "user", "frameRate": 30, "height": 720, "processor": {"processor": "none"}, "torch": false, "width": 1280, "zoom": 1.0}}, "customAudio": {}, "customVideo": {}, "microphone": {"isEnabled": false, "settings": {"customConstraints": {}}}, "screenAudio": {"isEnabled": false, "settings": {}}, "screenVideo": {"isEnabled": false, "settings": {}}}"#;
const DEFAULT_PUBLISHING: &str = r#"{"camera": {"isPublishing": true, "sendSettings": {"adaptiveLayerMaxBitrate": null, "allowAdaptiveLayers": true, "encodings": {"high": {"maxBitrate": 680000, "maxFramerate": 30.0, "scaleResolutionDownBy": 1.0}, "low": {"maxBitrate": 90000, "maxFramerate": 15.0, "scaleResolutionDownBy": 4.0}, "medium": {"maxBitrate": 200000, "maxFramerate": 15.0, "scaleResolutionDownBy": 2.0}}, "maxQuality": "high", "preferredCodec": "VP8", "startBitrate": 1000000}}, "customAudio": {}, "customVideo": {}, "microphone": {"isPublishing": true, "sendSettings": {"channelConfig": "mono"}}, "screenVideo": {"isPublishing": true, "sendSettings": {"encodings": {"low": {"maxBitrate": 2000000, "maxFramerate": 30.0, "scaleResolutionDownBy": 1.0}}, "maxQuality": "high", "preferredCodec": "VP8", "startBitrate": 1000000}}}"#;
const DEFAULT_PROFILES: &str = r#"{"base": {"camera": {"receiveSettings": {"maxQuality": "high"}, "subscriptionState": "subscribed"}, "customAudio": {}, "customVideo": {}, "microphone": {"receiveSettings": {}, "subscriptionState": "subscribed"}, "screenAudio": {"receiveSettings": {}, "subscriptionState": "subscribed"}, "screenVideo": {"receiveSettings": {"maxQuality": "high"}, "subscriptionState": "subscribed"}}}"#;

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| json!({}))
}

/// `inputs()` of a fresh client.
pub fn default_inputs() -> Value {
    parse(DEFAULT_INPUTS)
}

/// `publishing()` of a fresh client.
pub fn default_publishing() -> Value {
    parse(DEFAULT_PUBLISHING)
}

/// `subscription_profiles()` of a fresh client.
pub fn default_profiles() -> Value {
    parse(DEFAULT_PROFILES)
}

/// Deep-merges `patch` into `dst`, as Daily merges partial settings: objects merge key by
/// key, anything else replaces.
pub fn merge(dst: &mut Value, patch: &Value) {
    match (dst, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, v) in p {
                match d.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (d, p) => *d = p.clone(),
    }
}

/// Expands Daily's shorthands in an inputs or publishing patch: `"camera": false` means
/// `{"camera": {flag: false}}`, also inside `customAudio` / `customVideo` (`flag` is
/// `isEnabled` for inputs, `isPublishing` for publishing).
pub fn expand_shorthand(patch: &Value, flag: &str) -> Value {
    let Some(o) = patch.as_object() else {
        return patch.clone();
    };
    let mut out = Map::new();
    for (k, v) in o {
        let v = match v {
            Value::Bool(b) => json!({ flag: b }),
            Value::Object(inner) if k == "customAudio" || k == "customVideo" => {
                let mut m = Map::new();
                for (name, x) in inner {
                    m.insert(name.clone(), if let Value::Bool(b) = x { json!({ flag: b }) } else { x.clone() });
                }
                Value::Object(m)
            }
            other => other.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// A subscription state value (`"subscribed"`, `"unsubscribed"`, `"staged"`, or
/// `{"subscriptionState": ...}`) as "forward it or not"; `None` when it says nothing.
fn state_wants(v: &Value) -> Option<bool> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("subscriptionState")?.as_str()?,
        Value::Bool(b) => return Some(*b),
        _ => return None,
    };
    match s {
        "subscribed" => Some(true),
        // "staged" sets up the track without sending media: nothing to forward.
        "unsubscribed" | "staged" => Some(false),
        _ => None,
    }
}

/// Rules of one profile or media settings object (`{"microphone": ..., "camera": ...,
/// "screenVideo": ..., "customAudio": {name | "*": ...}, "customVideo": {...}}`) into `out`.
/// Custom tracks are keyed by name (audio and video share the names: a name rule applies to
/// both kinds), the kind-wide rules by the kind (`customAudio`, `customVideo`).
fn media_rules(media: &Value, out: &mut std::collections::BTreeMap<String, bool>) {
    for kind in ["microphone", "camera", "screenVideo"] {
        if let Some(w) = media.get(kind).and_then(state_wants) {
            out.insert(kind.into(), w);
        }
    }
    for kind in ["customAudio", "customVideo"] {
        let Some(custom) = media.get(kind) else { continue };
        if let Some(w) = state_wants(custom) {
            out.insert(kind.into(), w);
        } else if let Some(o) = custom.as_object() {
            for (name, v) in o {
                if let Some(w) = state_wants(v) {
                    out.insert(if name == "*" { kind.into() } else { name.clone() }, w);
                }
            }
        }
    }
}

/// The forwarding rules the server needs, from `subscription_profiles()` and
/// `subscriptions()` (`{pid: {"profile": name, "media": {...}}}`): a participant gets its
/// profile (default `base`) overridden by its own `media` entries.
pub fn subscription_rules(profiles: &Value, subscriptions: &Value) -> SubscriptionRules {
    let mut rules = SubscriptionRules::default();
    media_rules(&profiles["base"], &mut rules.base);
    if let Some(subs) = subscriptions.as_object() {
        for (pid, s) in subs {
            let mut m = std::collections::BTreeMap::new();
            if let Some(name) = s["profile"].as_str().filter(|n| *n != "base") {
                media_rules(&profiles[name], &mut m);
            }
            media_rules(&s["media"], &mut m);
            if !m.is_empty() {
                rules.participants.insert(pid.clone(), m);
            }
        }
    }
    rules
}

fn off() -> Value {
    json!({"state": "off", "subscribed": "unsubscribed", "offReasons": ["user"]})
}

fn media_entry(m: &MediaInfo, subscribed: bool) -> Value {
    if !m.publishing {
        let mut v = off();
        v["subscribed"] = json!(if subscribed { "subscribed" } else { "unsubscribed" });
        return v;
    }
    let mut v = json!({
        "state": if subscribed { "playable" } else { "receivable" },
        "subscribed": if subscribed { "subscribed" } else { "unsubscribed" },
    });
    if let Some(t) = &m.track_id {
        v["track"] = json!({"id": t});
    }
    v
}

/// A participant dict (`participants()` values, event payloads). Remote media show as
/// subscribed unless `rules` say otherwise; local media are never subscribed.
pub fn participant(p: &ParticipantInfo, is_local: bool) -> Value {
    participant_with(p, is_local, None)
}

/// [`participant`], with the local client's subscription rules for remote participants.
pub fn participant_with(p: &ParticipantInfo, is_local: bool, rules: Option<&SubscriptionRules>) -> Value {
    participant_dict(p, is_local, &|src: &TrackSource| rules.is_none_or(|r| r.wants(&p.id, src)))
}

/// A participant dict where `wants(source)` says whether the local client subscribes to that
/// track of a remote participant (local media are never subscribed).
pub fn participant_dict(p: &ParticipantInfo, is_local: bool, wants: &dyn Fn(&TrackSource) -> bool) -> Value {
    let subscribed = |src: &TrackSource| !is_local && wants(src);
    let mut custom = Map::new();
    for (name, m) in &p.custom_audio {
        custom.insert(name.clone(), media_entry(m, subscribed(&TrackSource::CustomAudio { track_name: name.clone() })));
    }
    let mut custom_video = Map::new();
    for (name, m) in &p.custom_video {
        custom_video.insert(name.clone(), media_entry(m, subscribed(&TrackSource::CustomVideo { track_name: name.clone() })));
    }
    let with_reason = |m: &MediaInfo, source: TrackSource| {
        let mut v = media_entry(m, subscribed(&source));
        if !m.publishing && !p.permissions.may_send(&source) {
            v["offReasons"] = json!(["sendPermission"]);
        }
        v
    };
    let mut off_reasons_mic = None;
    if !p.permissions.may_send(&TrackSource::Microphone) {
        off_reasons_mic = Some(json!(["sendPermission"]));
    }
    let mut info = json!({
        "isLocal": is_local,
        "isOwner": p.is_owner,
        "joinedAt": p.joined_at,
        "userId": p.user_id,
        "permissions": {
            "hasPresence": p.permissions.has_presence,
            "canSend": p.permissions.can_send,
            "canAdmin": p.permissions.can_admin,
            "canReceive": p.permissions.can_receive,
        },
    });
    if !p.user_name.is_empty() {
        info["userName"] = json!(p.user_name);
    }
    let mut mic = media_entry(&p.microphone, subscribed(&TrackSource::Microphone));
    if let Some(r) = off_reasons_mic.filter(|_| !p.microphone.publishing) {
        mic["offReasons"] = r;
    }
    json!({
        "id": p.id,
        "info": info,
        "media": {
            "camera": with_reason(&p.camera, TrackSource::Camera),
            "microphone": mic,
            "screenVideo": with_reason(&p.screen_video, TrackSource::ScreenVideo),
            "screenAudio": off(),
            "customAudio": Value::Object(custom),
            "customVideo": Value::Object(custom_video),
        },
    })
}
