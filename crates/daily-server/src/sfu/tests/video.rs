//! Video through the SFU core: forwarded on `m=video` lines without transcoding, a keyframe
//! asked of the publisher for every new subscriber and for subscribers' PLIs (coalesced).

use std::time::Duration;

use daily_proto::TrackSource;
use str0m::media::Mid;

use super::harness::World;

/// Runs `frames` video frames of client `index` at 30 fps.
fn show_for(w: &mut World, index: usize, frames: usize) {
    for _ in 0..frames {
        w.show(index, 3000);
        w.run_for(Duration::from_millis(33));
    }
}

/// The m-line of client `receiver`'s receive transport that carries `publisher`'s camera.
fn camera_mid(w: &World, receiver: usize, publisher: usize) -> Option<Mid> {
    w.clients[receiver]
        .tracks
        .iter()
        .find(|t| t.source == TrackSource::Camera && t.participant_id == w.clients[publisher].id)
        .map(|t| Mid::from(t.mid.as_str()))
}

/// RTP packets client `receiver` got on `mid`.
fn packets_on(w: &World, receiver: usize, mid: Mid) -> usize {
    w.clients[receiver].recv.received.iter().filter(|r| r.mid == mid).count()
}

#[test]
fn video_is_forwarded_and_each_new_subscriber_gets_a_keyframe_request() {
    let mut w = World::new();
    let a = w.join("v", "cam");
    w.publish_camera(a);
    w.run_for(Duration::from_millis(500));
    // Alone, the publisher's stream starts (with its own first keyframe): nobody to ask for.
    show_for(&mut w, a, 10);
    assert!(w.clients[a].send.keyframe_requests.is_empty());
    let b = w.join("v", "viewer");
    w.run_for(Duration::from_millis(300));
    show_for(&mut w, a, 30);
    let mid = camera_mid(&w, b, a).expect("a camera m-line offered to the viewer");
    assert!(w.clients[b].last_offer.contains("m=video"), "the subscribe offer has an m=video line");
    assert!(w.clients[b].last_offer.to_ascii_uppercase().contains("VP8/90000"));
    // 3000-byte frames: 3 packets each; all but the first few (before the transports were up).
    let got = packets_on(&w, b, mid);
    assert!(got >= 60, "only {got} video packets forwarded");
    let asked = w.clients[a].send.keyframe_requests.len();
    assert!(asked >= 1, "no keyframe requested for the first subscriber");
    assert_eq!(w.sfu.stats().keyframe_requests as usize, asked);

    // A third participant joining later: one more request reaches the publisher.
    let c = w.join("v", "late");
    w.run_for(Duration::from_millis(500));
    show_for(&mut w, a, 15);
    assert!(camera_mid(&w, c, a).is_some_and(|m| packets_on(&w, c, m) > 10));
    assert!(w.clients[a].send.keyframe_requests.len() > asked, "no keyframe requested for the late subscriber");
}

#[test]
fn subscribers_plis_reach_the_publisher_coalesced() {
    let mut w = World::new();
    let a = w.join("v", "cam");
    let b = w.join("v", "one");
    let c = w.join("v", "two");
    w.publish_camera(a);
    w.run_for(Duration::from_millis(500));
    show_for(&mut w, a, 30);
    let (mb, mc) = (camera_mid(&w, b, a).unwrap(), camera_mid(&w, c, a).unwrap());
    let before = w.clients[a].send.keyframe_requests.len();
    // Both lose a packet at once: two PLIs within the coalescing interval make one request.
    w.request_keyframe(b, mb);
    w.request_keyframe(c, mc);
    show_for(&mut w, a, 3);
    let after = w.clients[a].send.keyframe_requests.len();
    assert_eq!(after, before + 1, "two PLIs within 300 ms should cost the publisher one keyframe");
    // Later, a new PLI is a new request.
    show_for(&mut w, a, 12);
    w.request_keyframe(b, mb);
    show_for(&mut w, a, 3);
    assert_eq!(w.clients[a].send.keyframe_requests.len(), after + 1);
}

#[test]
fn an_unsubscribed_camera_is_not_forwarded_and_audio_slots_are_not_reused_for_video() {
    let mut w = World::new();
    let a = w.join("v", "cam");
    let mut rules = daily_proto::SubscriptionRules::default();
    rules.base.insert("camera".to_owned(), false);
    let b = w.join_with("v", "bot", crate::auth::Grant::default(), rules, None);
    w.publish_mic(a);
    w.talk(a, Some(-30));
    w.run_for(Duration::from_millis(500));
    w.publish_camera(a);
    w.run_for(Duration::from_millis(500));
    show_for(&mut w, a, 20);
    assert!(camera_mid(&w, b, a).is_none(), "an unsubscribed camera was offered");
    assert!(w.clients[b].tracks.iter().any(|t| t.source == TrackSource::Microphone));
    assert!(!w.clients[b].last_offer.contains("m=video"));
}
