//! Checks run on one input by the `client_message`, `server_message` and `room_url` fuzz
//! targets and by the corpus tests (`crates/daily-proto/tests/corpus.rs`), which include this
//! file by path so both run the same assertions. Depends only on `daily_proto` and `serde_json`.
//!
//! Every function takes raw bytes (what arrives on the wire), must not panic for any input, and
//! asserts the invariants that hold for inputs that parse.

use daily_proto::{ClientMessage, MAX_MESSAGE_BYTES, ProtoError, RoomUrl, ServerMessage};

/// `ClientMessage::parse` (what the server runs on every text frame), then: the error renders;
/// an accepted message re-serialises, and that JSON parses back to the same message.
pub fn client_message(data: &[u8]) {
    // WebSocket text frames are UTF-8 (tungstenite checks before we see them).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::parse(text) {
        Ok(m) => {
            let json = m.to_json();
            check_reparse(&json, ClientMessage::parse(&json), &m);
        }
        Err(e) => check_error(text, &e),
    }
}

/// `ServerMessage::parse` (what the client runs on every text frame), same invariants.
pub fn server_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ServerMessage::parse(text) {
        Ok(m) => {
            let json = m.to_json();
            check_reparse(&json, ServerMessage::parse(&json), &m);
        }
        Err(e) => check_error(text, &e),
    }
}

fn check_error(text: &str, e: &ProtoError) {
    let shown = e.to_string();
    assert!(!shown.is_empty());
    if text.len() > MAX_MESSAGE_BYTES {
        assert!(matches!(e, ProtoError::TooLarge { .. }), "{shown}");
    }
}

fn check_reparse<T: PartialEq + std::fmt::Debug>(
    json: &str,
    again: Result<T, ProtoError>,
    original: &T,
) {
    match again {
        Ok(again) => assert_eq!(&again, original, "re-parsed message differs; JSON: {json}"),
        // Re-serialising may lengthen a message (`1e2` becomes `100.0`, `\u00e9` stays `é`
        // but `1E400`-style numbers do not parse at all), so only the size limit may refuse it.
        Err(ProtoError::TooLarge { .. }) => assert!(json.len() > MAX_MESSAGE_BYTES),
        Err(e) => panic!("a serialised message does not parse: {e}; JSON: {json}"),
    }
}

/// `RoomUrl::parse` (what `CallClient.join(meeting_url)` runs), then `ws_url`. An accepted URL
/// has a valid room and a non-zero port, and the `http(s)` URL rebuilt from its parts parses
/// to the same value.
pub fn room_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let u = match RoomUrl::parse(text) {
        Ok(u) => u,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(daily_proto::is_valid_room_name(&u.room), "{u:?}");
    assert!(u.port != 0 && !u.host.is_empty(), "{u:?}");
    let ws = u.ws_url();
    assert!(ws.starts_with(u.ws_scheme) && ws.ends_with(&u.room), "{ws}");
    let http = if u.ws_scheme == "wss" {
        "https"
    } else {
        "http"
    };
    let host = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host.clone()
    };
    let rebuilt = format!("{http}://{host}:{}/{}", u.port, u.room);
    assert_eq!(
        RoomUrl::parse(&rebuilt).as_ref(),
        Ok(&u),
        "{text:?} -> {rebuilt:?}"
    );
}
