//! Signalling relay: a client whose WebSocket lands on a node that does not hold its room is
//! served by the room's node through this node. The first message (`join` or `resume`) and
//! every later frame are piped unchanged both ways; the room node runs the join gate again
//! (meeting tokens are stateless, signed with the cluster's shared API key), so relaying grants
//! nothing. Media never passes here: the room node's SDP carries its own UDP candidate, so the
//! client's transports connect to the room node directly. LiveKit routes signalling to the
//! room's node the same way; why relay and not redirect is in `docs/scaling.md`.
//!
//! Each side keeps its own WebSocket keep-alive (ping and pong frames are answered by the
//! WebSocket layer and not forwarded); a close on either side closes the other.
//! - The room node closes (or `callEnded`, a fatal `error`): its close frame is passed on.
//! - The room node's connection breaks (its process died): the client's socket is dropped
//!   without a close frame, as if it were the room node's, so the SDK tries to resume; its
//!   `resume` then reaches whichever node the room is placed on next, which refuses it (the
//!   session died with the node), and the client reports `on_error` and leaves.
//! - The client goes away: the upstream socket is closed; the room node keeps the participant
//!   for its resume grace, exactly as for a direct client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{self, WebSocket, close_code};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{self, Message as Up, client::IntoClientRequest, protocol::WebSocketConfig};

use super::NodeInfo;
use crate::http::SEND_TIMEOUT;

/// How long connecting to the room's node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Header a relayed upgrade request carries (the relaying node's id). A node never relays a
/// connection that carries it, so a room re-placed while a relay connects cannot bounce a
/// client between nodes.
pub const RELAYED_BY: &str = "x-daily-relayed-by";

/// Largest frame taken from the room node: the client-side limit of our own WebSocket
/// (`http.rs`), which any frame of the room node's fits.
const MAX_FRAME: usize = 4 * daily_proto::MAX_MESSAGE_BYTES;

/// Counts running relays, so a draining node waits for them too.
#[derive(Default)]
pub(crate) struct RelayCount(AtomicUsize);

impl RelayCount {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct Counted(Arc<RelayCount>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why the room node could not be reached.
enum Unreachable {
    /// Nothing listens there (connection refused): the node's process is gone, though its
    /// registry entry has not expired yet.
    Gone(String),
    /// Anything else (timeout, TLS, HTTP refusal): may pass.
    Other(String),
}

/// `http(s)://host:port` -> `ws(s)://host:port/ws/{room}`.
pub fn ws_url(base: &str, room: &str) -> Option<String> {
    let base = base.trim_end_matches('/');
    let rest = base
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))?;
    Some(format!("{rest}/ws/{room}"))
}

type Upstream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(node: &NodeInfo, room: &str, me: &str) -> Result<Upstream, Unreachable> {
    let url = ws_url(&node.url, room).ok_or_else(|| Unreachable::Other(format!("node URL {:?} is not http(s)", node.url)))?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Unreachable::Other(e.to_string()))?;
    let by = me.parse().map_err(|_| Unreachable::Other("node id is not a header value".into()))?;
    request.headers_mut().insert(RELAYED_BY, by);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(request, Some(config), true),
    )
    .await
    {
        Err(_) => Err(Unreachable::Other(format!("no connection within {CONNECT_TIMEOUT:?}"))),
        Ok(Err(tungstenite::Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(Unreachable::Gone(e.to_string()))
        }
        Ok(Err(e)) => Err(Unreachable::Other(e.to_string())),
        Ok(Ok((socket, _))) => Ok(socket),
    }
}

fn fatal(text: &str) -> ws::Message {
    ws::Message::Text(
        daily_proto::ServerMessage::Error {
            message: text.into(),
            fatal: true,
        }
        .to_json()
        .into(),
    )
}

fn close(code: u16, reason: &'static str) -> ws::Message {
    ws::Message::Close(Some(ws::CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn send_down(tx: &mut SplitSink<WebSocket, ws::Message>, msg: ws::Message) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, tx.send(msg)).await, Ok(Ok(())))
}

/// The client's frame for the room node (`None`: not forwarded).
fn up_frame(msg: ws::Message) -> Option<Up> {
    Some(match msg {
        ws::Message::Text(t) => Up::Text(t.as_str().into()),
        ws::Message::Binary(b) => Up::Binary(b),
        ws::Message::Close(c) => Up::Close(c.map(|c| tungstenite::protocol::CloseFrame {
            code: c.code.into(),
            reason: c.reason.as_str().into(),
        })),
        ws::Message::Ping(_) | ws::Message::Pong(_) => return None,
    })
}

/// The room node's frame for the client (`None`: not forwarded).
fn down_frame(msg: Up) -> Option<ws::Message> {
    Some(match msg {
        Up::Text(t) => ws::Message::Text(t.as_str().into()),
        Up::Binary(b) => ws::Message::Binary(b),
        Up::Close(c) => ws::Message::Close(c.map(|c| ws::CloseFrame {
            code: c.code.into(),
            reason: c.reason.as_str().into(),
        })),
        Up::Ping(_) | Up::Pong(_) | Up::Frame(_) => return None,
    })
}

/// Serves one client through the room's node: sends `first` (the client's `join` or `resume`,
/// as received), then pipes frames until either side closes or this node shuts down.
/// `resume`: the first message is a resume (a node found gone then gets a fatal error: the
/// session died with it; a join gets "try again", its room is placed afresh within the
/// registry's TTL).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay(
    mut down_tx: SplitSink<WebSocket, ws::Message>,
    mut down_rx: SplitStream<WebSocket>,
    first: String,
    node: NodeInfo,
    room: String,
    me: &str,
    resume: bool,
    count: Arc<RelayCount>,
    mut shutdown: watch::Receiver<bool>,
) {
    count.0.fetch_add(1, Ordering::SeqCst);
    let _counted = Counted(count);
    let upstream = match connect(&node, &room, me).await {
        Ok(s) => s,
        Err(why) => {
            let (text, gone) = match why {
                Unreachable::Gone(e) => (e, true),
                Unreachable::Other(e) => (e, false),
            };
            tracing::warn!(%room, node = %node.id, url = %node.url, error = %text, "cannot reach the room's node");
            let message = if gone && resume {
                "the room's server is gone; the session cannot be resumed"
            } else {
                "the room's server is unreachable; try again in a few seconds"
            };
            // A resume refused with a close and no error is retried by the SDK, the right
            // answer while the node may come back; a gone node's sessions are over.
            if !resume || gone {
                let _ = send_down(&mut down_tx, fatal(message)).await;
            }
            let _ = send_down(&mut down_tx, close(close_code::AGAIN, "room node unreachable")).await;
            return;
        }
    };
    tracing::debug!(%room, node = %node.id, "relaying signalling to the room's node");
    let (mut up_tx, mut up_rx) = upstream.split();
    if !matches!(
        tokio::time::timeout(SEND_TIMEOUT, up_tx.send(Up::Text(first.into()))).await,
        Ok(Ok(()))
    ) {
        let _ = send_down(&mut down_tx, close(close_code::AGAIN, "room node unreachable")).await;
        return;
    }
    loop {
        tokio::select! {
            m = down_rx.next() => {
                let Some(Ok(msg)) = m else {
                    let _ = tokio::time::timeout(SEND_TIMEOUT, up_tx.close()).await;
                    return;
                };
                let closing = matches!(msg, ws::Message::Close(_));
                if let Some(frame) = up_frame(msg)
                    && !matches!(tokio::time::timeout(SEND_TIMEOUT, up_tx.send(frame)).await, Ok(Ok(())))
                {
                    return; // the room node stopped reading: drop both (the client resumes)
                }
                if closing {
                    let _ = tokio::time::timeout(SEND_TIMEOUT, up_tx.close()).await;
                    return;
                }
            }
            m = up_rx.next() => {
                let Some(Ok(msg)) = m else {
                    // Broken without a close frame: drop the client's socket the same way.
                    return;
                };
                let closing = matches!(msg, Up::Close(_));
                if let Some(frame) = down_frame(msg)
                    && !send_down(&mut down_tx, frame).await
                {
                    let _ = tokio::time::timeout(SEND_TIMEOUT, up_tx.close()).await;
                    return;
                }
                if closing {
                    return;
                }
            }
            _ = async { drop(shutdown.wait_for(|s| *s).await) } => {
                // This node stops; the call goes on at the room node, and the SDK resumes it
                // through another node.
                let _ = send_down(&mut down_tx, close(close_code::AWAY, "server shutting down")).await;
                let _ = tokio::time::timeout(SEND_TIMEOUT, up_tx.close()).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn websocket_url_of_a_node() {
        assert_eq!(super::ws_url("http://10.0.0.1:7880", "r").as_deref(), Some("ws://10.0.0.1:7880/ws/r"));
        assert_eq!(super::ws_url("https://n1.example/", "r").as_deref(), Some("wss://n1.example/ws/r"));
        assert_eq!(super::ws_url("ftp://x", "r"), None);
    }
}
