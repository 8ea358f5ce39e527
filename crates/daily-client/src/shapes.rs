//! Daily's dict shapes (camelCase JSON) built from what the server tells us, so native users
//! and the Python binding see the same participant objects daily-python returns.

use daily_proto::{MediaInfo, ParticipantInfo};
use serde_json::{Map, Value, json};

fn off() -> Value {
    json!({"state": "off", "subscribed": "unsubscribed", "offReasons": ["user"]})
}

fn media_entry(m: &MediaInfo, subscribed: bool) -> Value {
    if !m.publishing {
        return off();
    }
    let mut v = json!({
        "state": "playable",
        "subscribed": if subscribed { "subscribed" } else { "unsubscribed" },
    });
    if let Some(t) = &m.track_id {
        v["track"] = json!({"id": t});
    }
    v
}

/// A participant dict (`participants()` values, event payloads).
pub fn participant(p: &ParticipantInfo, is_local: bool) -> Value {
    let mut custom = Map::new();
    for (name, m) in &p.custom_audio {
        custom.insert(name.clone(), media_entry(m, !is_local));
    }
    let mut info = json!({
        "isLocal": is_local,
        "isOwner": p.is_owner,
        "joinedAt": p.joined_at,
        "userId": p.user_id,
        "permissions": {
            "hasPresence": true,
            "canSend": ["camera", "microphone", "screenVideo", "screenAudio", "customVideo", "customAudio"],
            "canAdmin": [],
            "canReceive": {"base": {"camera": true, "microphone": true, "screenVideo": true, "screenAudio": true, "customVideo": {"*": true}, "customAudio": {"*": true}}},
        },
    });
    if !p.user_name.is_empty() {
        info["userName"] = json!(p.user_name);
    }
    json!({
        "id": p.id,
        "info": info,
        "media": {
            "camera": off(),
            "microphone": media_entry(&p.microphone, !is_local),
            "screenVideo": off(),
            "screenAudio": off(),
            "customAudio": Value::Object(custom),
            "customVideo": {},
        },
    })
}
