//! Server-side recording in [`CallCore`] on the virtual clock: the request, the completion with
//! the stream id after the room's `recordingStarted`, recordings announced to a joiner only
//! once it is joined, stops and errors, and every completion exactly once.

use super::tests::{Harness, Seen};
use super::types::ClientEvent;
use crate::ClientError;
use daily_proto::{DEFAULT_STREAM_ID, RecordingStatus, ServerMessage};
use serde_json::{Value, json};

fn status(stream: &str) -> RecordingStatus {
    RecordingStatus {
        stream_id: stream.into(),
        instance_id: stream.into(),
        recording_id: format!("rec-{stream}"),
        started_by: "me".into(),
        kind: "raw-tracks".into(),
        layout: json!({"preset": "audio-only"}),
        start_ts: 1,
    }
}

/// The request ids of the `startRecording` / `stopRecording` messages sent so far, in order.
fn requests(h: &Harness, kind: &str) -> Vec<(u64, Value)> {
    h.seen
        .iter()
        .filter_map(|s| match s {
            Seen::Signal(_, t) => serde_json::from_str::<Value>(t).ok().filter(|v| v["type"] == kind),
            _ => None,
        })
        .map(|v| (v["requestId"].as_u64().unwrap(), v))
        .collect()
}

#[test]
fn start_completes_with_the_stream_id_after_the_started_event() {
    let mut h = Harness::new();
    let g = h.in_call(vec![]);
    let d = h.done_id();
    h.core.handle_start_recording(&Value::Null, None, false, d);
    h.drain();
    let sent = requests(&h, "startRecording");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1["streamId"], Value::Null);
    assert_eq!(sent[0].1["forceNew"], false);
    assert!(h.completions(d).is_empty(), "waits for the server");
    h.server(g, ServerMessage::RecordingStarted { status: status(DEFAULT_STREAM_ID) });
    h.server(g, ServerMessage::Reply { request_id: sent[0].0, error: None });
    assert!(matches!(h.completions(d)[..], [Ok(Value::String(s))] if s == DEFAULT_STREAM_ID));
    let ev = h.position(|s| matches!(s, Seen::Event(ClientEvent::RecordingStarted(v)) if v["recordingId"] == "rec-00000000-0000-4000-8000-000000000000")).unwrap();
    assert!(ev < h.done_at(d).unwrap());

    // Stop: the server's refusal is the completion's error; then a real stop.
    let d2 = h.done_id();
    h.core.handle_stop_recording(Some("other".into()), d2);
    h.drain();
    let id = requests(&h, "stopRecording")[0].0;
    h.server(g, ServerMessage::Reply { request_id: id, error: Some("no recording with stream id \"other\"".into()) });
    assert!(matches!(h.completions(d2)[..], [Err(ClientError::Refused(m))] if m.contains("other")));
    let d3 = h.done_id();
    h.core.handle_stop_recording(None, d3);
    h.drain();
    let id = requests(&h, "stopRecording")[1].0;
    h.server(g, ServerMessage::RecordingStopped { stream_id: DEFAULT_STREAM_ID.into() });
    h.server(g, ServerMessage::Reply { request_id: id, error: None });
    assert!(matches!(h.completions(d3)[..], [Ok(_)]));
    let stopped = h.position(|s| matches!(s, Seen::Event(ClientEvent::RecordingStopped(id)) if id == DEFAULT_STREAM_ID)).unwrap();
    assert!(stopped < h.done_at(d3).unwrap());

    // An error from the server's recorder: both events, in order.
    h.server(g, ServerMessage::RecordingError { stream_id: "s".into(), message: "disk full".into() });
    h.server(g, ServerMessage::RecordingStopped { stream_id: "s".into() });
    let e = h.position(|s| matches!(s, Seen::Event(ClientEvent::RecordingError { message, .. }) if message == "disk full")).unwrap();
    let st = h.position(|s| matches!(s, Seen::Event(ClientEvent::RecordingStopped(id)) if id == "s")).unwrap();
    assert!(e < st);
}

#[test]
fn bad_arguments_and_no_call_fail_at_once_and_a_pending_start_fails_when_the_call_ends() {
    let mut h = Harness::new();
    let d = h.done_id();
    h.core.handle_start_recording(&Value::Null, None, false, d);
    h.drain();
    assert!(matches!(h.completions(d)[..], [Err(ClientError::NotInCall { .. })]));
    let g = h.in_call(vec![]);
    let d = h.done_id();
    h.core.handle_start_recording(&json!(42), None, false, d);
    h.core.handle_start_recording(&Value::Null, Some(String::new()), false, d + 100);
    h.core.handle_start_recording(&Value::Null, Some("x".repeat(300)), false, d + 200);
    h.drain();
    for id in [d, d + 100, d + 200] {
        assert!(matches!(h.completions(id)[..], [Err(ClientError::InvalidArgument(_))]), "{id}");
    }
    assert!(requests(&h, "startRecording").is_empty());
    // In flight when the server ends the call: fails once, with CallEnded.
    let d = h.done_id();
    h.core.handle_start_recording(&json!({"layout": {}}), Some("s1".into()), true, d);
    h.drain();
    assert_eq!(requests(&h, "startRecording")[0].1["forceNew"], true);
    h.server(g, ServerMessage::CallEnded { reason: "bye".into() });
    assert!(matches!(h.completions(d)[..], [Err(ClientError::CallEnded)]));
}

#[test]
fn a_joiner_hears_of_running_recordings_once_joined() {
    let mut h = Harness::new();
    let (done, g) = h.join_open();
    h.joined(g, vec![super::tests::info("a", "alice")]);
    // Right after `joined`, while our transports start.
    h.server(g, ServerMessage::RecordingStarted { status: status("s1") });
    h.server(g, ServerMessage::RecordingStarted { status: status("s2") });
    h.server(g, ServerMessage::RecordingStopped { stream_id: "s2".into() });
    assert!(!h.seen.iter().any(|s| matches!(s, Seen::Event(ClientEvent::RecordingStarted(_) | ClientEvent::RecordingStopped(_)))));
    h.core.handle_media_ready(h.now, g);
    h.drain();
    let started: Vec<usize> = h
        .seen
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Seen::Event(ClientEvent::RecordingStarted(_))))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(started.len(), 1, "s2 stopped before we were joined");
    let joined = h.position(|s| matches!(s, Seen::Event(ClientEvent::ParticipantJoined(_)))).unwrap();
    assert!(h.done_at(done).unwrap() < joined && joined < started[0]);
}
