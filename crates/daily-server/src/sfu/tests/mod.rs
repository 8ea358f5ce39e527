//! The SFU core driven by in-memory str0m participants on a virtual clock ([`harness`]): no
//! socket, no sleep, no runtime. Each test is seconds of call in a fraction of a second of CPU.

mod harness;
mod perf;
mod recording;
mod resume;
mod video;

use std::collections::BTreeMap;
use std::time::Duration;

use daily_proto::{
    ClientMessage, PermissionsUpdate, ServerMessage, SubscriptionRules, TrackSource,
};
use str0m::media::Mid;

use crate::auth::Grant;
use harness::{FRAME, World, frame_of, payload};

/// Rules that turn off `publisher`'s microphone.
fn without_mic_of(publisher: &str) -> SubscriptionRules {
    let mut rules = SubscriptionRules::default();
    rules.participants.insert(
        publisher.to_owned(),
        BTreeMap::from([("microphone".to_owned(), false)]),
    );
    rules
}

/// Frames client `receiver` got, as `(publisher index, frame number)`, checked against what
/// was sent: the payload is the publisher's, the RTP time its own, the m-line the one the
/// `subscribeOffer` mapped to that publisher.
fn frames(w: &World, receiver: usize) -> Vec<(usize, u64)> {
    let c = &w.clients[receiver];
    c.recv
        .received
        .iter()
        .map(|r| {
            let (from, n) = frame_of(&r.payload);
            assert_eq!(r.payload, payload(from, n));
            assert_eq!(
                r.rtp_time,
                n * FRAME,
                "the publisher's RTP time arrives unchanged"
            );
            assert!(n < w.clients[from].frames_sent);
            if let Some(t) = c.tracks.iter().find(|t| Mid::from(t.mid.as_str()) == r.mid) {
                assert_eq!(
                    t.participant_id, w.clients[from].id,
                    "mid {} carries its publisher",
                    r.mid
                );
            }
            (from, n)
        })
        .collect()
}

/// The receiver's RTP sequence numbers (the SFU's own, per outgoing stream) have no gap.
fn assert_contiguous_seq(w: &World, receiver: usize) {
    let seqs: Vec<u64> = w.clients[receiver]
        .recv
        .received
        .iter()
        .map(|r| r.seq)
        .collect();
    for s in seqs.windows(2) {
        assert_eq!(s[1], s[0] + 1, "sequence numbers {seqs:?}");
    }
}

fn publishing(m: &ServerMessage, id: &str) -> Option<bool> {
    match m {
        ServerMessage::ParticipantUpdated { participant } if participant.id == id => {
            Some(participant.microphone.publishing)
        }
        _ => None,
    }
}

#[test]
fn a_published_opus_track_is_forwarded_unchanged() {
    let mut w = World::new();
    let a = w.join("room", "alice");
    w.publish_mic(a);
    w.talk(a, Some(-30));
    let b = w.join("room", "bob");
    w.run_for(Duration::from_secs(3));
    // A stops; what str0m still paces out on either hop arrives.
    w.talk(a, None);
    w.run_for(Duration::from_millis(100));

    // Signalling: B was offered A's microphone on one m-line; A, offered nothing, got no offer.
    let (ca, cb) = (&w.clients[a], &w.clients[b]);
    assert_eq!(cb.tracks.len(), 1, "{:?}", cb.tracks);
    let t = &cb.tracks[0];
    assert_eq!(t.participant_id, ca.id);
    assert_eq!(t.source, TrackSource::Microphone);
    assert_eq!(t.track_id, format!("mic-{}", ca.id));
    assert_eq!(ca.subscribe_offers, 0);
    let a_in_joined = cb.inbox.iter().find_map(|m| match m {
        ServerMessage::Joined { participants, .. } => participants.iter().find(|p| p.id == ca.id),
        _ => None,
    });
    assert!(
        a_in_joined.is_some_and(|p| p.microphone.publishing),
        "{:?}",
        cb.inbox
    );
    assert!(
        ca.inbox.iter().any(|m| publishing(m, &ca.id) == Some(true)),
        "{:?}",
        ca.inbox
    );

    // Media: once B's receive transport is up every frame arrives, in order, payload, RTP time
    // and audio level intact, with the SFU's own gapless sequence numbers.
    let got = frames(&w, b);
    assert!(
        got.len() >= 100,
        "received {} of {}",
        got.len(),
        ca.frames_sent
    );
    for (i, (from, n)) in got.iter().enumerate() {
        assert_eq!(*from, a);
        assert_eq!(*n, got[0].1 + i as u64, "frames in order, none lost");
    }
    assert_eq!(
        got.last().unwrap().1 + 1,
        ca.frames_sent,
        "the last frame sent arrived"
    );
    assert!(cb.recv.received.iter().all(|r| r.audio_level == Some(-30)));
    assert_contiguous_seq(&w, b);
    let stats = w.sfu.stats();
    assert_eq!(stats.frames_out, got.len() as u64);
    assert_eq!(stats.frames_in, ca.frames_sent);
}

#[test]
fn unsubscribing_stops_forwarding_and_resubscribing_resumes_it() {
    let mut w = World::new();
    let a = w.join("room", "alice");
    w.publish_mic(a);
    w.talk(a, Some(-30));
    let b = w.join("room", "bob");
    w.run_for(Duration::from_secs(2));
    let before = frames(&w, b).len();
    assert!(before >= 50, "forwarded before: {before}");
    let mid = w.clients[b].tracks[0].mid.clone();

    // B turns A's microphone off: a reply, a new offer without the track, no more frames.
    let a_id = w.clients[a].id.clone();
    w.send(
        b,
        ClientMessage::SetSubscriptions {
            request_id: 1,
            rules: without_mic_of(&a_id),
        },
    );
    assert!(w.clients[b].inbox.iter().any(|m| matches!(
        m,
        ServerMessage::Reply {
            request_id: 1,
            error: None
        }
    )));
    assert_eq!(w.clients[b].subscribe_offers, 2);
    assert!(w.clients[b].tracks.is_empty(), "{:?}", w.clients[b].tracks);
    // A frame forwarded before the change may still be on its way.
    w.run_for(Duration::ZERO);
    let before = frames(&w, b).len();
    let sent = w.clients[a].frames_sent;
    w.run_for(Duration::from_secs(1));
    assert!(w.clients[a].frames_sent >= sent + 45, "A keeps sending");
    assert_eq!(
        frames(&w, b).len(),
        before,
        "nothing forwarded while unsubscribed"
    );

    // Subscribed again: the m-line is reused and frames flow from where A is now.
    w.send(
        b,
        ClientMessage::SetSubscriptions {
            request_id: 2,
            rules: SubscriptionRules::default(),
        },
    );
    assert!(w.clients[b].inbox.iter().any(|m| matches!(
        m,
        ServerMessage::Reply {
            request_id: 2,
            error: None
        }
    )));
    assert_eq!(w.clients[b].subscribe_offers, 3);
    assert_eq!(w.clients[b].tracks.len(), 1);
    assert_eq!(w.clients[b].tracks[0].mid, mid, "m-line reused");
    let resumed_at = w.clients[a].frames_sent;
    w.run_for(Duration::from_secs(1));
    let got = frames(&w, b);
    let after = &got[before..];
    assert!(after.len() >= 45, "forwarded again: {}", after.len());
    assert!(after.iter().all(|(from, n)| *from == a && *n >= resumed_at));
    // A skipped about 50 frames for B; the SFU's sequence numbers for B did not.
    assert_contiguous_seq(&w, b);
}

#[test]
fn revoking_can_send_stops_forwarding_and_shows_the_track_off() {
    let mut w = World::new();
    let a = w.join("room", "alice");
    w.publish_mic(a);
    w.talk(a, Some(-30));
    let b = w.join("room", "bob");
    let owner = Grant {
        is_owner: true,
        ..Grant::default()
    };
    let o = w.join_with("room", "owner", owner, SubscriptionRules::default(), None);
    w.run_for(Duration::from_secs(2));
    let before = frames(&w, b).len();
    assert!(before >= 50, "forwarded before: {before}");
    let a_id = w.clients[a].id.clone();
    let revoke = |request_id| ClientMessage::UpdatePermissions {
        request_id,
        participant_id: Some(a_id.clone()),
        permissions: PermissionsUpdate {
            can_send: Some(Vec::new()),
            ..Default::default()
        },
    };

    // B is no owner: refused, nothing changes.
    w.send(b, revoke(1));
    assert!(w.clients[b].inbox.iter().any(|m| matches!(
        m,
        ServerMessage::Reply {
            request_id: 1,
            error: Some(_)
        }
    )));
    assert_eq!(w.clients[b].subscribe_offers, 1);

    // The owner revokes A's canSend: everybody sees A's microphone off, B's offer drops it.
    w.send(o, revoke(2));
    assert!(w.clients[o].inbox.iter().any(|m| matches!(
        m,
        ServerMessage::Reply {
            request_id: 2,
            error: None
        }
    )));
    for c in [a, b, o] {
        let last = w.clients[c]
            .inbox
            .iter()
            .rev()
            .find_map(|m| publishing(m, &a_id));
        assert_eq!(last, Some(false), "client {c} sees A's microphone off");
    }
    assert!(w.clients[b].tracks.is_empty(), "{:?}", w.clients[b].tracks);
    // A frame forwarded before the change may still be on its way.
    w.run_for(Duration::ZERO);
    let (b_before, o_before) = (frames(&w, b).len(), frames(&w, o).len());
    let sent = w.clients[a].frames_sent;
    w.run_for(Duration::from_secs(1));
    assert!(w.clients[a].frames_sent >= sent + 45, "A keeps sending");
    assert_eq!(frames(&w, b).len(), b_before, "nothing of A forwarded to B");
    assert_eq!(
        frames(&w, o).len(),
        o_before,
        "nothing of A forwarded to the owner"
    );
}

/// The participant ids of the `activeSpeaker` messages a client got, in order.
fn speakers(w: &World, c: usize) -> Vec<Option<String>> {
    w.clients[c]
        .inbox
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ActiveSpeaker { participant_id } => Some(participant_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_loud_participant_becomes_the_active_speaker() {
    let mut w = World::new();
    let a = w.join("room", "alice");
    let b = w.join("room", "bob");
    w.publish_mic(a);
    w.publish_mic(b);
    w.talk(a, Some(-10));
    w.talk(b, Some(-127));
    w.run_for(Duration::from_secs(2));
    let (a_id, b_id) = (w.clients[a].id.clone(), w.clients[b].id.clone());
    for c in [a, b] {
        assert_eq!(speakers(&w, c), vec![Some(a_id.clone())], "client {c}");
    }
    // Levels are forwarded with the audio.
    assert!(
        w.clients[b]
            .recv
            .received
            .iter()
            .all(|r| r.audio_level == Some(-10))
    );
    assert!(
        w.clients[a]
            .recv
            .received
            .iter()
            .all(|r| r.audio_level == Some(-127))
    );

    // A falls silent and B speaks up: B takes over.
    w.talk(a, Some(-127));
    w.talk(b, Some(-10));
    w.run_for(Duration::from_secs(1));
    for c in [a, b] {
        assert_eq!(
            speakers(&w, c),
            vec![Some(a_id.clone()), Some(b_id.clone())],
            "client {c}"
        );
    }
}

#[test]
fn a_refused_join_is_answered_through_poll_signal() {
    let mut w = World::new();
    let a = w.join_with(
        "small",
        "alice",
        Grant::default(),
        SubscriptionRules::default(),
        Some(1),
    );
    let b = w.join_with(
        "small",
        "bob",
        Grant::default(),
        SubscriptionRules::default(),
        Some(1),
    );
    assert!(!w.clients[a].closed);
    assert!(w.clients[b].closed, "the refused connection is closed");
    assert!(
        matches!(
            w.clients[b].inbox.as_slice(),
            [ServerMessage::Error { fatal: true, message }] if message.contains("room is full")
        ),
        "{:?}",
        w.clients[b].inbox
    );
    assert_eq!(w.sfu.participant_count("small"), 1);
    // Only the member heard about the room, and nothing about the refused one.
    assert!(
        w.clients[a]
            .inbox
            .iter()
            .all(|m| !matches!(m, ServerMessage::ParticipantJoined { .. }))
    );
}

#[test]
fn loss_upstream_stays_visible_to_receivers() {
    let mut w = World::new();
    let a = w.join("room", "alice");
    w.publish_mic(a);
    w.talk(a, Some(-30));
    let b = w.join("room", "bob");
    w.run_for(Duration::from_secs(1));
    // 10 % loss between A and the SFU only.
    w.drop_upstream_rtp(a, 10);
    w.run_for(Duration::from_secs(5));
    w.talk(a, None);
    // Long enough for a last receiver report each way (every second).
    w.run_for(Duration::from_millis(1500));
    assert!(w.dropped >= 20, "dropped {}", w.dropped);

    // B's sequence numbers advance exactly as A's frames do: each frame lost upstream is a
    // missing sequence number at B, not a contiguous stream with a timestamp jump.
    let got = frames(&w, b);
    let seqs: Vec<u64> = w.clients[b].recv.received.iter().map(|r| r.seq).collect();
    assert!(got.len() > 200, "received {}", got.len());
    let offset = seqs[0] as i64 - got[0].1 as i64;
    for ((_, n), seq) in got.iter().zip(&seqs) {
        assert_eq!(
            *seq as i64 - *n as i64,
            offset,
            "frame {n} at sequence number {seq}"
        );
    }
    let span = got.last().unwrap().1 - got[0].1 + 1;
    let missing = span - got.len() as u64;
    assert!(
        missing + 2 >= w.dropped && missing <= w.dropped,
        "{missing} gaps at B for {} packets dropped upstream",
        w.dropped
    );
    // B's receiver reports count the loss (RFC 3550 fraction lost, about 10 %)...
    let rr = &w.clients[b].recv.loss_reported;
    assert!(rr.iter().any(|l| *l > 0.05), "B reported loss {rr:?}");
    // ...and so do the SFU's reports to A, which is what turns A's Opus FEC on.
    let lost = w.clients[a].send.lost_at_far_end.unwrap_or(0);
    assert!(
        lost + 1 >= w.dropped && lost <= w.dropped,
        "SFU reported {lost} lost to A, {} dropped",
        w.dropped
    );
}
