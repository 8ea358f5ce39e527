//! The signalling protocol against a real server on loopback, with a fake client.

mod common;

use common::{Client, Next, http_get, participant_id};
use daily_proto::{ClientMessage, LeftReason, MAX_MESSAGE_BYTES, ServerMessage};
use daily_server::{RoomServer, ServerConfig};
use futures_util::SinkExt;

fn start() -> RoomServer {
    RoomServer::start(ServerConfig::default()).expect("server starts")
}

fn assert_fatal(msgs: &[ServerMessage]) {
    assert!(
        matches!(msgs.first(), Some(ServerMessage::Error { fatal: true, .. })),
        "expected a fatal error before close, got {msgs:?}"
    );
}

#[tokio::test]
async fn join_and_see_each_other() {
    let mut server = start();
    let addr = server.local_addr();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.room_url("r1"), format!("{}/r1", server.url()));

    let (mut a, joined_a) = Client::join(addr, "r1", "alice").await;
    let ServerMessage::Joined {
        room,
        participants,
        participant,
        session_id,
        ..
    } = &joined_a
    else {
        unreachable!()
    };
    assert_eq!(room, "r1");
    assert!(participants.is_empty());
    assert_eq!(participant.user_name, "alice");
    assert!(!participant.microphone.publishing);
    assert!(!session_id.is_empty());

    let (_b, joined_b) = Client::join(addr, "r1", "bob").await;
    let ServerMessage::Joined {
        participants,
        session_id: sid_b,
        ..
    } = &joined_b
    else {
        unreachable!()
    };
    assert_eq!(participants.len(), 1);
    assert_eq!(participants[0].id, participant_id(&joined_a));
    assert_eq!(sid_b, session_id);
    match a.recv().await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.id, participant_id(&joined_b));
            assert_eq!(participant.user_name, "bob");
        }
        other => panic!("{other:?}"),
    }

    // Another room is separate.
    let (_c, joined_c) = Client::join(addr, "other", "carol").await;
    let ServerMessage::Joined { participants, .. } = &joined_c else {
        unreachable!()
    };
    assert!(participants.is_empty());

    let (status, body) = http_get(addr, "/");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["server"], "daily-server");
    let (status, body) = http_get(addr, "/r1");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["room"].as_str(), v["participants"].as_u64()),
        (Some("r1"), Some(2))
    );
    assert_eq!(http_get(addr, "/bad%20name").0, 404);
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws/bad%20name"))
            .await
            .is_err()
    );
    server.shutdown();
}

#[tokio::test]
async fn bad_connections_close_alone() {
    let mut server = start();
    let addr = server.local_addr();
    let (mut a, _) = Client::join(addr, "r", "alice").await;

    // Wrong first message.
    let mut c = Client::connect(addr, "r").await;
    c.send(&ClientMessage::Leave).await;
    assert_fatal(&c.until_closed().await);

    // Wrong protocol version.
    let mut c = Client::connect(addr, "r").await;
    c.send(&ClientMessage::Join {
        protocol_version: 2,
        user_name: None,
        token: None,
        subscriptions: None,
    })
    .await;
    assert_fatal(&c.until_closed().await);

    // Malformed JSON as the first message.
    let mut c = Client::connect(addr, "r").await;
    c.send_text("{not json".into()).await;
    assert_fatal(&c.until_closed().await);

    // Malformed JSON after joining: closes, and the others see that participant leave.
    let (mut b, jb) = Client::join(addr, "r", "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    b.send_text(r#"{"type":"publishOffer"}"#.into()).await;
    assert_fatal(&b.until_closed().await);
    match a.recv().await {
        ServerMessage::ParticipantLeft {
            participant,
            reason,
        } => {
            assert_eq!(participant.id, participant_id(&jb));
            assert_eq!(reason, LeftReason::LeftCall);
        }
        other => panic!("{other:?}"),
    }

    // Oversized frame (above MAX_MESSAGE_BYTES): error then close.
    let (mut b, _) = Client::join(addr, "r", "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let big = format!(
        r#"{{"type":"setUserName","userName":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    b.send_text(big).await;
    assert_fatal(&b.until_closed().await);
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantLeft { .. }
    ));

    // Far oversized (beyond the WebSocket limit): just closed.
    let (mut b, _) = Client::join(addr, "r", "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let _ =
        b.ws.send(tokio_tungstenite::tungstenite::Message::Text(
            "y".repeat(8 * MAX_MESSAGE_BYTES).into(),
        ))
        .await;
    b.until_closed().await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantLeft { .. }
    ));

    // Binary frame, an SDP the server cannot parse, join twice, an answer nobody asked for.
    for bad in [
        None,
        Some(ClientMessage::PublishOffer {
            sdp: "v=0\r\nm=audio garbage\r\n".into(),
            tracks: vec![],
        }),
        Some(ClientMessage::Join {
            protocol_version: 1,
            user_name: None,
            token: None,
            subscriptions: None,
        }),
        Some(ClientMessage::SubscribeAnswer {
            sdp: "v=0\r\n".into(),
        }),
    ] {
        let (mut b, _) = Client::join(addr, "r", "bob").await;
        assert!(matches!(
            a.recv().await,
            ServerMessage::ParticipantJoined { .. }
        ));
        match bad {
            None => {
                b.ws.send(tokio_tungstenite::tungstenite::Message::Binary(
                    vec![1, 2, 3].into(),
                ))
                .await
                .unwrap()
            }
            Some(m) => b.send(&m).await,
        }
        assert_fatal(&b.until_closed().await);
        assert!(matches!(
            a.recv().await,
            ServerMessage::ParticipantLeft { .. }
        ));
    }

    // The first client was never disturbed and the server still serves.
    a.send(&ClientMessage::SetUserName {
        user_name: "alice2".into(),
    })
    .await;
    match a.recv().await {
        ServerMessage::ParticipantUpdated { participant } => {
            assert_eq!(participant.user_name, "alice2")
        }
        other => panic!("{other:?}"),
    }
    let (_d, jd) = Client::join(addr, "r", "dave").await;
    let ServerMessage::Joined { participants, .. } = &jd else {
        unreachable!()
    };
    assert_eq!(participants.len(), 1);
    server.shutdown();
}

#[tokio::test]
async fn leave_and_close() {
    let mut server = start();
    let addr = server.local_addr();
    let (mut a, _) = Client::join(addr, "r", "alice").await;
    let (mut b, jb) = Client::join(addr, "r", "bob").await;
    let (mut c, jc) = Client::join(addr, "r", "carol").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    assert!(matches!(
        b.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));

    b.send(&ClientMessage::SetUserName {
        user_name: "robert".into(),
    })
    .await;
    for x in [&mut a, &mut b, &mut c] {
        match x.recv().await {
            ServerMessage::ParticipantUpdated { participant } => {
                assert_eq!(participant.id, participant_id(&jb));
                assert_eq!(participant.user_name, "robert");
            }
            other => panic!("{other:?}"),
        }
    }

    b.send(&ClientMessage::Leave).await;
    let rest = b.until_closed().await;
    assert!(matches!(rest.as_slice(), [ServerMessage::Left]), "{rest:?}");
    for x in [&mut a, &mut c] {
        match x.recv().await {
            ServerMessage::ParticipantLeft {
                participant,
                reason,
            } => {
                assert_eq!(participant.id, participant_id(&jb));
                assert_eq!(participant.user_name, "robert");
                assert_eq!(reason, LeftReason::LeftCall);
            }
            other => panic!("{other:?}"),
        }
    }

    // Closing the socket without `leave` counts as leaving.
    c.ws.close(None).await.unwrap();
    match a.recv().await {
        ServerMessage::ParticipantLeft {
            participant,
            reason,
        } => {
            assert_eq!(participant.id, participant_id(&jc));
            assert_eq!(reason, LeftReason::LeftCall);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(http_get(addr, "/r").1, r#"{"participants":1,"room":"r"}"#);
    server.shutdown();
}

#[tokio::test]
async fn shutdown_ends_the_call() {
    let mut server = start();
    let addr = server.local_addr();
    let (mut a, _) = Client::join(addr, "r", "alice").await;
    let (mut b, _) = Client::join(addr, "s", "bob").await;
    let mut waiting = Client::connect(addr, "r").await; // never joins
    std::thread::sleep(std::time::Duration::from_millis(50));
    let t = std::time::Instant::now();
    server.shutdown();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "shutdown took {:?}",
        t.elapsed()
    );
    server.shutdown(); // idempotent
    for x in [&mut a, &mut b] {
        let rest = x.until_closed().await;
        assert!(
            matches!(rest.as_slice(), [ServerMessage::CallEnded { .. }]),
            "{rest:?}"
        );
    }
    assert!(matches!(waiting.next().await, Next::Closed));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener still open"
    );
}

#[test]
fn start_errors_are_structured() {
    let server = start();
    let taken = ServerConfig {
        port: server.local_addr().port(),
        ..ServerConfig::default()
    };
    match RoomServer::start(taken) {
        Err(daily_server::ServerError::Bind {
            kind: daily_server::SocketKind::Tcp,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    drop(server); // Drop shuts down too.
}

#[tokio::test]
async fn publish_offer_without_media() {
    let mut server = start();
    let addr = server.local_addr();
    let (mut a, _) = Client::join(addr, "r", "alice").await;
    let empty = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n".to_owned();
    a.send(&ClientMessage::PublishOffer {
        sdp: empty.clone(),
        tracks: vec![],
    })
    .await;
    match a.recv().await {
        ServerMessage::PublishAnswer { sdp } => {
            assert!(sdp.starts_with("v=0\r\n") && !sdp.contains("m="), "{sdp}")
        }
        other => panic!("{other:?}"),
    }
    let track = daily_proto::PublishedTrack {
        mid: "0".into(),
        track_id: "t".into(),
        source: daily_proto::TrackSource::Microphone,
        ignore_audio_level: false,
    };
    a.send(&ClientMessage::PublishOffer {
        sdp: empty,
        tracks: vec![track],
    })
    .await;
    assert_fatal(&a.until_closed().await);
    server.shutdown();
}
