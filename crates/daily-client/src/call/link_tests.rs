//! Outages in a call, on a virtual clock (`core/link.rs`): the signalling connection resumed
//! or given up, the transports ICE-restarted or given up. Never a silent, stuck call.

use super::core::{ICE_RESTART_AFTER, ICE_RESTART_INTERVAL, MEDIA_LOST_LIMIT, RESUME_LIMIT};
use super::tests::{Harness, Seen, info};
use super::types::{CallState, ClientEvent, Connection};
use crate::ClientError;
use daily_proto::ServerMessage;
use serde_json::json;

fn resumable(others: Vec<daily_proto::ParticipantInfo>) -> (Harness, u64) {
    let mut h = Harness::new();
    h.resume_token = Some("secret".into());
    let g = h.in_call(others);
    h.seen.clear();
    (h, g)
}

fn count(h: &Harness, f: impl Fn(&Seen) -> bool) -> usize {
    h.seen.iter().filter(|s| f(s)).count()
}

fn signalling_events(h: &Harness) -> Vec<bool> {
    h.seen
        .iter()
        .filter_map(|s| match s {
            Seen::Event(ClientEvent::NetworkConnectionStatusUpdated { connection: Connection::Signalling, connected }) => Some(*connected),
            _ => None,
        })
        .collect()
}

#[test]
fn lost_signalling_is_resumed_and_the_room_resynced() {
    let (mut h, g) = resumable(vec![info("a", "alice"), info("b", "bob")]);
    let d = h.done_id();
    h.core.handle_send_app_message(json!({"x": 1}), None, d);
    h.core.handle_signalling_closed(h.now, g);
    h.drain();
    // Interrupted, not left; the request that may be lost completes with an error.
    assert_eq!(signalling_events(&h), [false]);
    assert_eq!(count(&h, |s| matches!(s, Seen::Reconnect(x) if *x == g)), 1);
    assert!(matches!(h.completions(d)[..], [Err(ClientError::Signalling(_))]), "{:?}", h.completions(d));
    assert_eq!(h.core.call_state(), CallState::Joined);
    // The first attempt fails; the next comes after the reconnect interval.
    h.core.handle_reconnect_failed(h.now, g, ClientError::Io("timed out".into()), false);
    h.drain();
    h.advance(999);
    assert_eq!(count(&h, |s| matches!(s, Seen::Reconnect(_))), 1);
    h.advance(1);
    assert_eq!(count(&h, |s| matches!(s, Seen::Reconnect(_))), 2);
    h.core.handle_signalling_reopened(h.now, g);
    // Bob left and Carol joined while we were away; Alice renamed herself.
    let mut alice = info("a", "alice");
    alice.user_name = "alice2".into();
    h.server(
        g,
        ServerMessage::Resumed { participant: info("me", "bot"), participants: vec![alice, info("c", "carol")], active_speaker: None },
    );
    assert_eq!(signalling_events(&h), [false, true]);
    let names: Vec<(&str, String)> = h
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::Event(ClientEvent::ParticipantJoined(p)) => Some(("joined", p.info.id.clone())),
            Seen::Event(ClientEvent::ParticipantUpdated(p)) => Some(("updated", p.info.id.clone())),
            Seen::Event(ClientEvent::ParticipantLeft(p, _)) => Some(("left", p.info.id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(names, [("left", "b".to_string()), ("updated", "a".into()), ("joined", "c".into())]);
    assert_eq!(h.core.call_state(), CallState::Joined);
    assert!(h.core.poll_timeout().is_none(), "nothing left to time");
    assert!(!h.seen.iter().any(|s| matches!(s, Seen::Event(ClientEvent::Error(_)))));
}

#[test]
fn an_outage_past_the_resume_limit_ends_the_call_with_an_error() {
    let (mut h, g) = resumable(vec![info("a", "alice")]);
    h.core.handle_signalling_closed(h.now, g);
    h.drain();
    let start = h.now;
    let mut attempts = 0;
    while h.now < start + RESUME_LIMIT + std::time::Duration::from_secs(1) && attempts < 200 {
        if matches!(h.seen.last(), Some(Seen::Reconnect(_))) {
            h.core.handle_reconnect_failed(h.now, g, ClientError::Io("unreachable".into()), false);
            h.drain();
            attempts += 1;
        }
        h.advance(250);
    }
    assert!(attempts as u64 >= RESUME_LIMIT.as_secs() - 5, "about one attempt per second: {attempts}");
    let errors = count(&h, |s| matches!(s, Seen::Event(ClientEvent::Error(m)) if m.contains("lost the connection")));
    assert_eq!(errors, 1);
    assert_eq!(count(&h, |s| matches!(s, Seen::Teardown(x) if *x == g)), 1);
    h.core.handle_teardown_done(h.now, g);
    h.drain();
    assert_eq!(h.core.call_state(), CallState::Left);
}

#[test]
fn a_refused_resume_ends_the_call_with_an_error() {
    let (mut h, g) = resumable(vec![]);
    h.core.handle_signalling_closed(h.now, g);
    h.core.handle_signalling_reopened(h.now, g);
    h.server(g, ServerMessage::Error { message: "cannot resume: unknown session".into(), fatal: true });
    assert_eq!(count(&h, |s| matches!(s, Seen::Event(ClientEvent::Error(m)) if m.contains("cannot resume"))), 1);
    assert_eq!(count(&h, |s| matches!(s, Seen::Teardown(_))), 1);
    h.core.handle_teardown_done(h.now, g);
    h.drain();
    assert_eq!(h.core.call_state(), CallState::Left);
}

#[test]
fn without_a_resume_token_lost_signalling_ends_the_call_at_once() {
    let mut h = Harness::new();
    let g = h.in_call(vec![]);
    h.seen.clear();
    h.core.handle_signalling_closed(h.now, g);
    h.drain();
    assert_eq!(count(&h, |s| matches!(s, Seen::Reconnect(_))), 0);
    assert_eq!(count(&h, |s| matches!(s, Seen::Teardown(_))), 1);
}

#[test]
fn a_transport_that_stays_interrupted_is_ice_restarted_then_given_up() {
    let (mut h, g) = resumable(vec![info("a", "alice")]);
    h.core.handle_connection_status(h.now, g, Connection::RecvTransport, false);
    h.core.handle_connection_status(h.now, g, Connection::SendTransport, false);
    h.drain();
    let restarts = |h: &Harness| {
        (count(h, |s| matches!(s, Seen::RestartIce(_))), count(h, |s| matches!(s, Seen::Signal(_, m) if m.contains("restartIce"))))
    };
    h.advance(ICE_RESTART_AFTER.as_millis() as u64 - 1);
    assert_eq!(restarts(&h), (0, 0), "a short outage is left to ICE consent");
    h.advance(1);
    assert_eq!(restarts(&h), (1, 1));
    h.advance(ICE_RESTART_INTERVAL.as_millis() as u64);
    assert_eq!(restarts(&h), (2, 2));
    // The receive transport comes back; the send transport stays down until the limit.
    h.core.handle_connection_status(h.now, g, Connection::RecvTransport, true);
    h.drain();
    let mut guard = 0;
    while h.core.call_state() == CallState::Joined && !h.seen.iter().any(|s| matches!(s, Seen::Teardown(_))) && guard < 100 {
        h.advance(1000);
        guard += 1;
    }
    let (send, recv) = restarts(&h);
    assert_eq!(recv, 2, "the receive transport recovered: no more restarts");
    assert!(send >= 8, "restarts every {ICE_RESTART_INTERVAL:?} until the limit: {send}");
    assert_eq!(count(&h, |s| matches!(s, Seen::Event(ClientEvent::Error(m)) if m.contains("media connection"))), 1);
    assert!(guard as u64 <= MEDIA_LOST_LIMIT.as_secs(), "given up at the limit, after {guard} s");
}

#[test]
fn a_transport_that_recovers_by_itself_is_not_restarted() {
    let (mut h, g) = resumable(vec![]);
    h.core.handle_connection_status(h.now, g, Connection::SendTransport, false);
    h.drain();
    h.advance(2000);
    h.core.handle_connection_status(h.now, g, Connection::SendTransport, true);
    h.drain();
    h.advance(10_000);
    assert_eq!(count(&h, |s| matches!(s, Seen::RestartIce(_))), 0);
    assert!(h.core.poll_timeout().is_none());
}

#[test]
fn a_refused_reconnection_means_the_server_is_gone_and_ends_the_call_at_once() {
    let (mut h, g) = resumable(vec![info("a", "alice")]);
    h.core.handle_signalling_closed(h.now, g);
    h.core.handle_reconnect_failed(h.now, g, ClientError::Io("connection refused".into()), true);
    h.drain();
    assert_eq!(count(&h, |s| matches!(s, Seen::Event(ClientEvent::Error(m)) if m.contains("server is gone"))), 1);
    assert_eq!(count(&h, |s| matches!(s, Seen::Teardown(x) if *x == g)), 1);
    assert_eq!(count(&h, |s| matches!(s, Seen::Reconnect(_))), 1, "no second attempt");
}
