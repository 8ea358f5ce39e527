//! Resuming a session after the signalling connection was lost (issue 16), and the server's
//! WebSocket pings, against a real server on loopback with raw WebSocket clients.

mod common;

use std::time::Duration;

use common::{Client, Next, participant_id};
use daily_proto::{ClientMessage, ServerMessage};
use daily_server::{RoomServer, ServerConfig};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

fn start() -> RoomServer {
    RoomServer::start(ServerConfig::default()).expect("server starts")
}

/// `(session id, resume token)` from `joined`.
fn resume_data(joined: &ServerMessage) -> (String, String) {
    match joined {
        ServerMessage::Joined {
            session_id,
            resume_token,
            ..
        } => (
            session_id.clone(),
            resume_token.clone().expect("joined carries a resume token"),
        ),
        other => panic!("not joined: {other:?}"),
    }
}

fn resume_msg(session_id: &str, participant_id: &str, token: &str) -> ClientMessage {
    ClientMessage::Resume {
        protocol_version: 1,
        session_id: session_id.into(),
        participant_id: participant_id.into(),
        resume_token: token.into(),
    }
}

/// For `d`, no message matching `bad` arrives.
async fn quiet_for(c: &mut Client, d: Duration, bad: impl Fn(&ServerMessage) -> bool) {
    let end = tokio::time::Instant::now() + d;
    while let Ok(m) = tokio::time::timeout_at(end, c.ws.next()).await {
        if let Some(Ok(Message::Text(t))) = m {
            let m = ServerMessage::parse(t.as_str()).expect("server JSON");
            assert!(!bad(&m), "unexpected {m:?}");
        }
    }
}

#[tokio::test]
async fn a_lost_connection_resumes_on_a_new_one() {
    let server = start();
    let addr = server.local_addr();
    let (a, joined_a) = Client::join(addr, "r", "alice").await;
    let a_id = participant_id(&joined_a);
    let (session_id, token) = resume_data(&joined_a);
    assert_eq!(token.len(), 32);
    let (mut b, _) = Client::join(addr, "r", "bob").await;

    // Alice's socket goes away without leave or close frame: Bob is not told.
    drop(a);
    quiet_for(&mut b, Duration::from_millis(500), |m| {
        matches!(m, ServerMessage::ParticipantLeft { .. })
    })
    .await;

    // A wrong token is refused (fatal error, closed) and changes nothing.
    let mut wrong = Client::connect(addr, "r").await;
    wrong
        .send(&resume_msg(&session_id, &a_id, &"0".repeat(32)))
        .await;
    let msgs = wrong.until_closed().await;
    assert!(
        matches!(msgs.as_slice(), [ServerMessage::Error { fatal: true, .. }]),
        "{msgs:?}"
    );

    // The right one: same participant, Bob in the room.
    let mut a2 = Client::connect(addr, "r").await;
    a2.send(&resume_msg(&session_id, &a_id, &token)).await;
    match a2.recv().await {
        ServerMessage::Resumed {
            participant,
            participants,
            ..
        } => {
            assert_eq!(participant.id, a_id);
            assert_eq!(participants.len(), 1);
            assert_eq!(participants[0].user_name, "bob");
        }
        other => panic!("expected resumed, got {other:?}"),
    }

    // It works as before: an app message reaches Bob.
    a2.send(&ClientMessage::AppMessage {
        request_id: 1,
        data: serde_json::json!({"hi": 1}),
        to: None,
    })
    .await;
    assert!(matches!(
        a2.recv().await,
        ServerMessage::Reply {
            request_id: 1,
            error: None
        }
    ));
    match b.recv().await {
        ServerMessage::AppMessage { from, .. } => assert_eq!(from, a_id),
        other => panic!("{other:?}"),
    }

    // A second resume takes over again; the connection it replaces is closed, and its end
    // does not detach or remove the session.
    let mut a3 = Client::connect(addr, "r").await;
    a3.send(&resume_msg(&session_id, &a_id, &token)).await;
    assert!(matches!(a3.recv().await, ServerMessage::Resumed { .. }));
    let rest = a2.until_closed().await;
    assert!(rest.is_empty(), "{rest:?}");
    quiet_for(&mut b, Duration::from_millis(300), |m| {
        matches!(m, ServerMessage::ParticipantLeft { .. })
    })
    .await;
    a3.send(&ClientMessage::SetUserName {
        user_name: "Alice".into(),
    })
    .await;
    match b.recv().await {
        ServerMessage::ParticipantUpdated { participant } => {
            assert_eq!(
                (participant.id.as_str(), participant.user_name.as_str()),
                (a_id.as_str(), "Alice")
            )
        }
        other => panic!("{other:?}"),
    }

    // Leaving ends it for good: Bob is told, the token no longer works.
    a3.send(&ClientMessage::Leave).await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::ParticipantLeft { .. }
    ));
    let mut a4 = Client::connect(addr, "r").await;
    a4.send(&resume_msg(&session_id, &a_id, &token)).await;
    let msgs = a4.until_closed().await;
    assert!(
        matches!(msgs.as_slice(), [ServerMessage::Error { fatal: true, .. }]),
        "{msgs:?}"
    );
}

#[tokio::test]
async fn the_server_pings_every_connection() {
    let server = start();
    let (mut a, _) = Client::join(server.local_addr(), "r", "alice").await;
    let got_ping = async {
        loop {
            match a.ws.next().await {
                Some(Ok(Message::Ping(_))) => return,
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    };
    // The SFU's PING_INTERVAL is 5 s.
    tokio::time::timeout(Duration::from_secs(7), got_ping)
        .await
        .expect("a ping within the ping interval");
    // Reading answered it (tungstenite queues the pong); the connection stays up.
    a.send(&ClientMessage::Leave).await;
    assert!(matches!(a.next().await, Next::Msg(ServerMessage::Left)));
}

#[tokio::test]
async fn a_silent_client_is_detached_after_the_signalling_timeout_and_can_resume() {
    let server = start();
    let addr = server.local_addr();
    let (mut a, joined_a) = Client::join(addr, "r", "alice").await;
    let a_id = participant_id(&joined_a);
    let (session_id, token) = resume_data(&joined_a);
    let (mut b, _) = Client::join(addr, "r", "bob").await;

    // Alice's client stops reading (so it answers no ping) for longer than the server's
    // SIGNALLING_TIMEOUT (15 s) plus a ping interval: the server gives up on the connection,
    // but Bob is not told (Alice is only detached).
    quiet_for(&mut b, Duration::from_secs(21), |m| {
        matches!(m, ServerMessage::ParticipantLeft { .. })
    })
    .await;
    let ended = async {
        loop {
            match a.ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Text(_))) => {}
                _ => return,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), ended)
        .await
        .expect("the server dropped the silent connection");

    let mut a2 = Client::connect(addr, "r").await;
    a2.send(&resume_msg(&session_id, &a_id, &token)).await;
    assert!(matches!(a2.recv().await, ServerMessage::Resumed { .. }));
    a2.send(&ClientMessage::Leave).await;
    assert!(matches!(b.recv().await, ServerMessage::ParticipantLeft { .. }));
}
