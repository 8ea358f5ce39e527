//! Server-side recording in the SFU core: who may start and stop it, what every participant
//! (and a newcomer) is told, the packets handed to the recorder, and each way it ends.

use std::time::Duration;

use daily_proto::{ClientMessage, ServerMessage, SubscriptionRules};

use super::harness::{World, frame_of, payload};
use crate::auth::Grant;
use crate::sfu::{RecordCmd, StopReason};

fn start(stream: Option<&str>, force_new: bool, request_id: u64) -> ClientMessage {
    ClientMessage::StartRecording {
        request_id,
        stream_id: stream.map(str::to_owned),
        force_new,
    }
}

fn stop(stream: Option<&str>, request_id: u64) -> ClientMessage {
    ClientMessage::StopRecording {
        request_id,
        stream_id: stream.map(str::to_owned),
    }
}

/// The reply to `request_id` in client `i`'s inbox (error or `None`), and its position.
fn reply(w: &World, i: usize, request_id: u64) -> (usize, Option<String>) {
    w.clients[i]
        .inbox
        .iter()
        .enumerate()
        .find_map(|(k, m)| match m {
            ServerMessage::Reply {
                request_id: r,
                error,
            } if *r == request_id => Some((k, error.clone())),
            _ => None,
        })
        .expect("a reply")
}

fn recording_msgs(w: &World, i: usize) -> Vec<String> {
    w.clients[i]
        .inbox
        .iter()
        .filter_map(|m| match m {
            ServerMessage::RecordingStarted { status } => {
                Some(format!("started {}", status.stream_id))
            }
            ServerMessage::RecordingStopped { stream_id } => Some(format!("stopped {stream_id}")),
            ServerMessage::RecordingError { stream_id, .. } => Some(format!("error {stream_id}")),
            _ => None,
        })
        .collect()
}

fn drain(w: &mut World) -> Vec<RecordCmd> {
    std::iter::from_fn(|| w.sfu.poll_record()).collect()
}

fn owner() -> Grant {
    Grant {
        is_owner: true,
        ..Grant::default()
    }
}

#[test]
fn owners_record_every_audio_packet_and_everybody_hears_of_it() {
    let mut w = World::new();
    w.sfu.set_recording(true, false);
    let a = w.join_with("rec", "owner", owner(), SubscriptionRules::default(), None);
    let b = w.join("rec", "guest");
    w.publish_mic(a);
    w.publish_mic(b);
    w.run_for(Duration::from_secs(1));

    // Not an owner on a server with an API key: refused, nothing started.
    w.send(b, start(None, false, 1));
    assert!(reply(&w, b, 1).1.unwrap().contains("owners"));
    assert!(drain(&mut w).is_empty());

    w.send(a, start(Some("s1"), false, 2));
    let (at, err) = reply(&w, a, 2);
    assert_eq!(err, None);
    let started_at = w.clients[a]
        .inbox
        .iter()
        .position(|m| matches!(m, ServerMessage::RecordingStarted { .. }))
        .unwrap();
    assert!(started_at < at, "the room hears of it before the reply");
    assert_eq!(recording_msgs(&w, a), ["started s1"]);
    assert_eq!(recording_msgs(&w, b), ["started s1"]);
    // Same stream id: refused unless force_new.
    w.send(a, start(Some("s1"), false, 3));
    assert!(reply(&w, a, 3).1.unwrap().contains("already running"));
    // Stopping an unknown stream names the running ones.
    w.send(a, stop(Some("nope"), 4));
    assert!(reply(&w, a, 4).1.unwrap().contains("\"s1\""));

    let key = match drain(&mut w).as_slice() {
        [
            RecordCmd::Start {
                key,
                status,
                room,
                participants,
                ..
            },
        ] => {
            assert_eq!(
                (room.as_str(), *participants, status.kind.as_str()),
                ("rec", 2, "raw-tracks")
            );
            assert_eq!(status.started_by, w.clients[a].id);
            *key
        }
        other => panic!("{other:?}"),
    };
    w.talk(a, Some(-30));
    w.talk(b, Some(-30));
    w.run_for(Duration::from_secs(1));
    // A newcomer is told right after `joined`.
    let c = w.join("rec", "late");
    let inbox = &w.clients[c].inbox;
    let joined = inbox
        .iter()
        .position(|m| matches!(m, ServerMessage::Joined { .. }))
        .unwrap();
    let told = inbox
        .iter()
        .position(|m| matches!(m, ServerMessage::RecordingStarted { .. }))
        .unwrap();
    assert!(joined < told);

    // Every packet of both microphones, as sent, on its own track of the recording.
    let cmds = drain(&mut w);
    let mut tracks = std::collections::BTreeMap::new();
    let mut frames: Vec<Vec<u64>> = vec![Vec::new(); 2];
    for cmd in &cmds {
        match cmd {
            RecordCmd::Track {
                key: k,
                track,
                participant_id,
                source,
                ..
            } => {
                assert_eq!(*k, key);
                assert_eq!(source, "microphone");
                tracks.insert(*track, participant_id.clone());
            }
            RecordCmd::Packet {
                key: k,
                track,
                payload: p,
                rtp_ts,
                ..
            } => {
                assert_eq!(*k, key);
                let (from, n) = frame_of(p);
                assert_eq!(p.as_ref(), payload(from, n).as_slice());
                assert_eq!(
                    tracks[track], w.clients[from].id,
                    "the track is its publisher's"
                );
                assert_eq!(u64::from(*rtp_ts), n * super::harness::FRAME);
                frames[from].push(n);
            }
            RecordCmd::Participants { count, .. } => assert_eq!(*count, 3),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(tracks.len(), 2);
    for (i, f) in frames.iter().enumerate() {
        assert!(f.len() >= 45, "client {i}: {} packets in 1 s", f.len());
        assert!(
            f.windows(2).all(|p| p[1] == p[0] + 1),
            "in order, none missing"
        );
    }

    // force_new: the running one stops, a new one starts under the same stream id.
    w.send(a, start(Some("s1"), true, 5));
    assert_eq!(reply(&w, a, 5).1, None);
    let cmds = drain(&mut w);
    assert!(
        matches!(cmds[0], RecordCmd::Stop { key: k, reason: StopReason::Stopped, .. } if k == key)
    );
    let key2 = match &cmds[1] {
        RecordCmd::Start { key, .. } => *key,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        recording_msgs(&w, b),
        ["started s1", "stopped s1", "started s1"]
    );

    // The recorder fails (disk full): error then stopped, to everybody.
    w.sfu
        .handle_recorder_failed(key2, "No space left on device");
    w.run_for(Duration::from_millis(10));
    for i in [a, b, c] {
        assert_eq!(
            recording_msgs(&w, i).last().map(String::as_str),
            Some("stopped s1")
        );
        assert!(recording_msgs(&w, i).contains(&"error s1".to_owned()));
    }
    drain(&mut w);
    // Packets are no longer copied.
    w.run_for(Duration::from_millis(200));
    assert!(
        drain(&mut w)
            .iter()
            .all(|c| !matches!(c, RecordCmd::Packet { .. }))
    );

    // Default stream; then the call ends with it running.
    w.send(a, start(None, false, 6));
    assert_eq!(reply(&w, a, 6).1, None);
    let key3 = match drain(&mut w).as_slice() {
        [RecordCmd::Start { key, status, .. }] => {
            assert_eq!(status.stream_id, daily_proto::DEFAULT_STREAM_ID);
            *key
        }
        other => panic!("{other:?}"),
    };
    for i in [c, b, a] {
        w.send(i, ClientMessage::Leave);
    }
    let stops: Vec<_> = drain(&mut w)
        .into_iter()
        .filter_map(|c| match c {
            RecordCmd::Stop { key, reason, .. } => Some((key, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(stops, [(key3, StopReason::CallEnded)]);
}

#[test]
fn open_servers_let_anybody_record_and_disabled_ones_say_how_to_enable() {
    let mut w = World::new();
    let a = w.join("off", "a");
    w.send(a, start(None, false, 1));
    assert!(reply(&w, a, 1).1.unwrap().contains("--recordings-dir"));

    let mut w = World::new();
    w.sfu.set_recording(true, true);
    let a = w.join("open", "a");
    w.send(a, start(None, false, 1));
    assert_eq!(reply(&w, a, 1).1, None);
    w.send(a, stop(None, 2));
    assert_eq!(reply(&w, a, 2).1, None);
    w.send(a, stop(None, 3));
    assert!(reply(&w, a, 3).1.unwrap().contains("none is running"));
    // Server shutdown stops a running recording (and says so before `callEnded`).
    w.send(a, start(None, false, 4));
    drain(&mut w);
    let now = w.now;
    w.sfu.shutdown(now, "bye");
    w.run_for(Duration::from_millis(10));
    assert!(matches!(
        drain(&mut w).as_slice(),
        [RecordCmd::Stop {
            reason: StopReason::ServerStopped,
            ..
        }]
    ));
    let inbox = &w.clients[a].inbox;
    let stopped = inbox
        .iter()
        .rposition(|m| matches!(m, ServerMessage::RecordingStopped { .. }));
    let ended = inbox
        .iter()
        .position(|m| matches!(m, ServerMessage::CallEnded { .. }));
    assert!(stopped.is_some() && stopped < ended, "{inbox:?}");
}
