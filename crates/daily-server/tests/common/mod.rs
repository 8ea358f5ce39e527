//! Shared helpers: a fake signalling client over tokio-tungstenite and a raw HTTP GET.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use daily_proto::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const STEP: Duration = Duration::from_secs(5);

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Deliver `participantCounts` and `activeSpeaker` too (off by default: most tests
    /// assert exact sequences of the other messages).
    pub keep_meta: bool,
}

/// What the next frame was.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Next {
    Msg(ServerMessage),
    Closed,
}

impl Client {
    pub async fn connect(addr: SocketAddr, room: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/{room}"))
            .await
            .expect("connect");
        Client { ws, keep_meta: false }
    }

    /// Connects and joins; returns the client and its `joined` message.
    pub async fn join(addr: SocketAddr, room: &str, name: &str) -> (Client, ServerMessage) {
        let c = Client::connect(addr, room).await;
        let (c, joined) = c.send_join(name).await;
        assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");
        (c, joined)
    }

    /// Sends `join` as `name` on a connected socket; returns the client and the server's
    /// first answer (`joined`, or the error that refused it).
    pub async fn send_join(mut self, name: &str) -> (Client, ServerMessage) {
        self.send(&ClientMessage::Join {
            protocol_version: 1,
            user_name: Some(name.into()),
            token: None,
            subscriptions: None,
        })
        .await;
        let first = self.recv().await;
        (self, first)
    }

    pub async fn send(&mut self, m: &ClientMessage) {
        self.send_text(m.to_json()).await;
    }

    pub async fn send_text(&mut self, t: String) {
        self.ws.send(Message::Text(t.into())).await.expect("send");
    }

    /// Next server message or close (pings skipped), failing after [`STEP`].
    pub async fn next(&mut self) -> Next {
        loop {
            match tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("timed out waiting for the server")
            {
                Some(Ok(Message::Text(t))) => {
                    let m = ServerMessage::parse(t.as_str()).expect("server JSON");
                    let meta = matches!(
                        m,
                        ServerMessage::ParticipantCounts { .. } | ServerMessage::ActiveSpeaker { .. }
                    );
                    if meta && !self.keep_meta {
                        continue;
                    }
                    return Next::Msg(m);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Next::Closed,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> ServerMessage {
        match self.next().await {
            Next::Msg(m) => m,
            Next::Closed => panic!("connection closed while a message was expected"),
        }
    }

    /// Expects the connection to close (after any remaining messages, which are returned).
    pub async fn until_closed(&mut self) -> Vec<ServerMessage> {
        let mut seen = Vec::new();
        for _ in 0..100 {
            match self.next().await {
                Next::Msg(m) => seen.push(m),
                Next::Closed => return seen,
            }
        }
        panic!("connection did not close: {seen:?}");
    }
}

pub fn participant_id(joined: &ServerMessage) -> String {
    match joined {
        ServerMessage::Joined { participant, .. } => participant.id.clone(),
        other => panic!("not joined: {other:?}"),
    }
}

/// `GET path` over HTTP/1.0; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(STEP)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    status_and_body(&out)
}

/// The status code (0 if there is none) and body of a raw HTTP/1 response.
pub fn status_and_body(out: &str) -> (u16, String) {
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
