//! Signalling outages (`resume.rs`), ICE restarts and the rate limits, on the virtual clock.

use std::time::Duration;

use daily_proto::{ClientMessage, PublishedTrack, ServerMessage, TrackSource};

use super::frames;
use super::harness::World;
use crate::sfu::SfuConfig;

fn left(w: &World, c: usize, id: &str) -> bool {
    w.clients[c].inbox.iter().any(
        |m| matches!(m, ServerMessage::ParticipantLeft { participant, .. } if participant.id == id),
    )
}

/// Client `c` sends an app message to everybody.
fn app_message(w: &mut World, c: usize, request_id: u64, data: serde_json::Value) {
    w.send(c, ClientMessage::AppMessage { request_id, data, to: None });
}

/// Client `c` got a successful reply to `request_id`.
fn replied_ok(w: &World, c: usize, request_id: u64) -> bool {
    w.clients[c]
        .inbox
        .iter()
        .any(|m| matches!(m, ServerMessage::Reply { request_id: r, error: None } if *r == request_id))
}

fn ufrag(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("an ice-ufrag")
        .trim()
        .to_owned()
}

/// A talks, B listens.
fn talker_and_listener(config: SfuConfig) -> (World, usize, usize) {
    let mut w = World::with_config(config);
    let a = w.join("room", "alice");
    w.publish_mic(a);
    w.talk(a, Some(-30));
    let b = w.join("room", "bob");
    w.run_for(Duration::from_secs(2));
    assert!(frames(&w, b).len() > 50);
    (w, a, b)
}

#[test]
fn a_lost_connection_is_kept_and_resumed_with_its_token() {
    let (mut w, a, b) = talker_and_listener(SfuConfig::default());
    let b_id = w.clients[b].id.clone();
    assert_eq!(
        w.clients[b].resume_token.len(),
        32,
        "joined carries a token"
    );

    // B's signalling is lost: nobody is told, B's media keeps flowing.
    w.disconnect(b, false);
    let before = frames(&w, b).len();
    w.send(
        a,
        ClientMessage::SetUserName {
            user_name: "Alice".into(),
        },
    );
    w.run_for(Duration::from_secs(10));
    assert!(!left(&w, a, &b_id), "{:?}", w.clients[a].inbox);
    assert_eq!(w.sfu.participant_count("room"), 2);
    assert!(
        frames(&w, b).len() > before + 400,
        "media flows while detached"
    );

    // A wrong token, a wrong session: refused, nothing changes.
    assert!(w.resume(b, Some(&"0".repeat(32))).is_err());
    let real = std::mem::replace(&mut w.clients[b].session_id, "other".into());
    assert!(w.resume(b, None).is_err());
    w.clients[b].session_id = real;

    // The right one: same participant, `resumed` with the room as it is now.
    let conn = w.resume(b, None).expect("resumed");
    assert_eq!(
        conn, w.clients[b].conn,
        "the participant keeps its connection id"
    );
    let resumed = w.clients[b].inbox.iter().rev().find_map(|m| match m {
        ServerMessage::Resumed {
            participant,
            participants,
            active_speaker,
        } => Some((
            participant.clone(),
            participants.clone(),
            active_speaker.clone(),
        )),
        _ => None,
    });
    let (me, others, speaker) = resumed.expect("resumed");
    assert_eq!(me.id, b_id);
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].user_name, "Alice", "the rename B missed");
    assert!(others[0].microphone.publishing);
    assert_eq!(speaker.as_deref(), Some(w.clients[a].id.as_str()));

    // Requests work again; B was never gone for A.
    app_message(&mut w, b, 5, serde_json::json!("back"));
    assert!(replied_ok(&w, b, 5));
    assert!(!left(&w, a, &b_id));
}

#[test]
fn an_unresumed_participant_leaves_after_the_grace() {
    let config = SfuConfig {
        resume_grace: Duration::from_secs(20),
        ..SfuConfig::default()
    };
    let (mut w, a, b) = talker_and_listener(config);
    let b_id = w.clients[b].id.clone();
    w.disconnect(b, false);
    w.run_for(Duration::from_secs(19));
    assert!(!left(&w, a, &b_id));
    w.run_for(Duration::from_secs(2));
    assert!(left(&w, a, &b_id), "{:?}", w.clients[a].inbox);
    assert_eq!(w.sfu.participant_count("room"), 1);
    assert!(w.resume(b, None).is_err(), "too late");
}

#[test]
fn a_detached_participant_with_dead_transports_leaves_sooner() {
    // Grace 60 s, but B's network is cut too: gone DEAD_MEDIA_GRACE (35 s) after the last
    // datagram from it.
    let (mut w, a, b) = talker_and_listener(SfuConfig::default());
    let b_id = w.clients[b].id.clone();
    w.cut(b, true);
    w.run_for(Duration::from_secs(15)); // The ping timeout.
    w.disconnect(b, false);
    w.run_for(Duration::from_secs(19));
    assert!(!left(&w, a, &b_id), "a 30 s outage can still be resumed");
    w.run_for(Duration::from_secs(2));
    assert!(left(&w, a, &b_id), "{:?}", w.clients[a].inbox);
}

#[test]
fn a_clean_close_leaves_at_once() {
    let (mut w, a, b) = talker_and_listener(SfuConfig::default());
    let b_id = w.clients[b].id.clone();
    w.disconnect(b, true);
    assert!(left(&w, a, &b_id));
    assert!(w.resume(b, None).is_err());
}

#[test]
fn restart_ice_renews_the_receive_transport_and_media_flows_on() {
    let (mut w, _a, b) = talker_and_listener(SfuConfig::default());
    let offers = w.clients[b].subscribe_offers;
    let old = ufrag(&w.clients[b].last_offer);
    w.send(b, ClientMessage::RestartIce);
    assert_eq!(
        w.clients[b].subscribe_offers,
        offers + 1,
        "a new subscribeOffer"
    );
    let new = ufrag(&w.clients[b].last_offer);
    assert_ne!(old, new, "new ICE credentials");
    let before = frames(&w, b).len();
    w.run_for(Duration::from_secs(2));
    assert!(
        frames(&w, b).len() > before + 80,
        "media flows after the restart"
    );
}

#[test]
fn a_publish_offer_with_new_ice_credentials_restarts_the_send_transport() {
    let (mut w, a, b) = talker_and_listener(SfuConfig::default());
    let ufrag = w.restart_send_ice(a);
    assert!(
        w.clients[a]
            .inbox
            .iter()
            .all(|m| !matches!(m, ServerMessage::Error { .. })),
        "{:?}",
        w.clients[a].inbox
    );
    assert!(!ufrag.is_empty());
    let before = frames(&w, b).len();
    w.run_for(Duration::from_secs(2));
    assert!(
        frames(&w, b).len() > before + 80,
        "media flows after the restart"
    );
}

#[test]
fn resuming_after_an_outage_restarts_ice_and_media_comes_back() {
    let (mut w, _a, b) = talker_and_listener(SfuConfig::default());
    // A 20 s outage of everything B has.
    w.cut(b, true);
    w.disconnect(b, false);
    w.run_for(Duration::from_secs(20));
    let before = frames(&w, b).len();
    w.cut(b, false);
    w.resume(b, None).expect("resumed");
    w.send(b, ClientMessage::RestartIce);
    w.run_for(Duration::from_secs(3));
    assert!(
        frames(&w, b).len() > before + 80,
        "media back: {}",
        frames(&w, b).len() - before
    );
}

#[test]
fn app_messages_and_updates_are_rate_limited() {
    let mut w = World::new();
    let a = w.join("room", "alice");
    let b = w.join("room", "bob");
    for i in 0..100 {
        app_message(&mut w, a, i, serde_json::json!(i));
    }
    let limited = w.clients[a]
        .inbox
        .iter()
        .filter(|m| matches!(m, ServerMessage::Reply { error: Some(e), .. } if e.contains("rate limited: at most 20 app messages per second")))
        .count();
    assert_eq!(limited, 60, "the burst of 40 passes at one instant");
    let relayed = w.clients[b]
        .inbox
        .iter()
        .filter(|m| matches!(m, ServerMessage::AppMessage { .. }))
        .count();
    assert_eq!(relayed, 40);
    w.run_for(Duration::from_secs(1));
    app_message(&mut w, a, 1000, serde_json::json!("later"));
    assert!(replied_ok(&w, a, 1000));

    for i in 0..20 {
        w.send(
            a,
            ClientMessage::SetUserName {
                user_name: format!("a{i}"),
            },
        );
    }
    let renames = w.clients[b]
        .inbox
        .iter()
        .filter(|m| matches!(m, ServerMessage::ParticipantUpdated { .. }))
        .count();
    assert_eq!(renames, 10, "the update burst");
    assert!(w.clients[a].inbox.iter().any(|m| matches!(m, ServerMessage::Error { fatal: false, message } if message.contains("rate limited"))));
    assert!(!w.clients[a].closed);
}

#[test]
fn an_over_long_name_is_refused_without_ending_the_call() {
    let mut w = World::new();
    let a = w.join("room", "alice");
    w.send(
        a,
        ClientMessage::SetUserName {
            user_name: "x".repeat(1025),
        },
    );
    assert!(!w.clients[a].closed);
    assert!(w.clients[a].inbox.iter().any(
        |m| matches!(m, ServerMessage::Error { fatal: false, message } if message.contains("1024"))
    ));

    // A custom track with a name over MAX_TRACK_NAME_BYTES: answered, the entry refused.
    let mid = w.publish_mic(a);
    let offer_tracks = vec![PublishedTrack {
        mid: mid.to_string(),
        track_id: "t".into(),
        source: TrackSource::CustomAudio {
            track_name: "n".repeat(daily_proto::MAX_TRACK_NAME_BYTES + 1),
        },
        ignore_audio_level: false,
    }];
    w.restart_send_ice_with(a, offer_tracks);
    assert!(!w.clients[a].closed);
    assert!(w.clients[a].inbox.iter().any(|m| matches!(m, ServerMessage::Error { fatal: false, message } if message.contains("trackName longer than"))), "{:?}", w.clients[a].inbox);
}

#[test]
fn an_offer_lost_with_the_connection_is_made_again_after_resume() {
    let (mut w, a, b) = talker_and_listener(SfuConfig::default());
    w.disconnect(b, false);
    // C publishes while B is away: B's new subscribeOffer goes nowhere.
    let c = w.join("room", "carol");
    w.publish_mic(c);
    w.talk(c, Some(-40));
    w.run_for(Duration::from_secs(1));
    let offers = w.clients[b].subscribe_offers;
    assert_eq!(w.clients[b].tracks.len(), 1, "B has not seen C's track");

    w.resume(b, None).expect("resumed");
    assert_eq!(w.clients[b].subscribe_offers, offers + 1, "offered again");
    let ids: Vec<&str> = w.clients[b]
        .tracks
        .iter()
        .map(|t| t.participant_id.as_str())
        .collect();
    assert!(
        ids.contains(&w.clients[a].id.as_str()) && ids.contains(&w.clients[c].id.as_str()),
        "{ids:?}"
    );
    let from_c = |w: &World| frames(w, b).iter().filter(|(from, _)| *from == c).count();
    w.run_for(Duration::from_secs(2));
    assert!(from_c(&w) > 80, "C's frames reach B: {}", from_c(&w));
}
