//! HTTP routes and the signalling WebSocket. Each connection is one task that parses frames
//! into [`Command`]s for the core and writes the core's messages back (the SFU task
//! routes them to its channel, registered with [`Request::Connect`]); it never touches room
//! state itself, so ordering is the order of the SFU task's single request queue.
//!
//! # The join gate
//! Who may join is decided here, before the `Command::Join` is sent, not in the SFU: the API
//! key and the room registry belong to the HTTP side (the REST API changes them), JWT checks
//! stay off the SFU task that forwards media, and a refused join never reaches room state, so
//! it cannot leak who is inside — the refusal is one fatal `error` with one generic message
//! ([`rooms::NOT_ALLOWED`]) and nothing else. The token is checked before the registry lock is
//! taken; the `Join` is sent while holding it, as `DELETE /v1/rooms` sends `EndRoom`, so the
//! SFU sees the two in the order the gate decided them. `max_participants` is the one rule
//! left to the SFU, which alone knows the count at the moment of the join.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use daily_proto::{
    ClientMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage, is_valid_room_name,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::driver::Request;
use crate::limits::{ConnLimiter, PendingSlot};
use crate::page;
use crate::rest::Api;
use crate::rooms::{self, Privacy, TokenCheck};
use crate::sfu::{Command, ConnId};

mod session;

/// How long one WebSocket write may block before the connection is dropped (a client that
/// does not read must not hold the server).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bytes of messages that may wait to be written to one joined client. Past it the
/// connection is dropped (without an `error`: the client is not reading). [`SEND_TIMEOUT`] alone
/// does not bound memory: a client that reads a little now and then completes every write in
/// time while its queue keeps growing. Far above a legitimate backlog (a message is at most
/// [`MAX_MESSAGE_BYTES`]; a newcomer to a full room gets a few large ones at once).
pub const MAX_OUTBOUND_BYTES: usize = 32 * MAX_MESSAGE_BYTES; // 8 MiB

/// Frames above this are refused by the WebSocket layer itself (connection dropped without an
/// `error`); frames between [`MAX_MESSAGE_BYTES`] and this get an `error` first.
const HARD_FRAME_LIMIT: usize = 4 * MAX_MESSAGE_BYTES;

/// Counts live WebSocket tasks so shutdown can wait until `callEnded` was flushed.
#[derive(Default)]
pub(crate) struct ConnTracker {
    live: AtomicUsize,
    idle: Notify,
}

struct ConnGuard(Arc<ConnTracker>);

impl ConnTracker {
    fn enter(self: &Arc<Self>) -> ConnGuard {
        self.live.fetch_add(1, Ordering::SeqCst);
        ConnGuard(self.clone())
    }

    /// Resolves once no connection task is left.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub cmds: mpsc::UnboundedSender<Request>,
    pub shutdown: watch::Receiver<bool>,
    pub tracker: Arc<ConnTracker>,
    pub next_conn: Arc<AtomicU64>,
    pub api: Arc<Api>,
    /// Connection counts; the join timeout and the bound on connections waiting to join.
    pub limiter: Arc<ConnLimiter>,
    /// Cluster mode (`--redis`): this node's connection to the shared Redis.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Signalling connections relayed to other nodes (cluster mode).
    pub relays: Arc<crate::cluster::relay::RelayCount>,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ws/{room}", get(ws_upgrade))
        .route("/assets/{file}", get(|Path(file): Path<String>| async move { page::asset(&file) }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/{room}", get(room_info))
        .merge(crate::rest::routes())
        .with_state(state)
}

async fn index() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "server": "daily-server", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /{room}`: the call page for a browser (`Accept: text/html`), the room's JSON summary
/// for anything else.
async fn room_info(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !is_valid_room_name(&room) {
        return (StatusCode::NOT_FOUND, "invalid room name").into_response();
    }
    if page::wants_html(&headers) {
        return page::call_page();
    }
    // Who is in a private room is nobody's business but its members'. In cluster mode the
    // room's settings and node are in Redis; a room living on another node is counted there.
    let private = match &state.cluster {
        Some(cluster) => match cluster.room(&room).await {
            Ok(r) => r.is_some_and(|r| r.privacy == Privacy::Private),
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        None => state
            .api
            .rooms()
            .get(&room)
            .is_some_and(|r| r.privacy == Privacy::Private),
    };
    if private {
        return Json(serde_json::json!({ "room": room, "privacy": "private" })).into_response();
    }
    if let Some(cluster) = &state.cluster {
        match cluster.placed_on(&room).await {
            Ok(Some(node)) if node.id != cluster.id => {
                return Json(serde_json::json!({ "room": room, "node": node.url })).into_response();
            }
            Ok(_) => {}
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    }
    let (reply, rx) = oneshot::channel();
    if state
        .cmds
        .send(Request::RoomInfo {
            room: room.clone(),
            reply,
        })
        .is_err()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(n)) => Json(serde_json::json!({ "room": room, "participants": n })).into_response(),
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn ws_upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !is_valid_room_name(&room) {
        return (StatusCode::NOT_FOUND, "invalid room name").into_response();
    }
    // Bounded before the upgrade, so a client over the bound gets an HTTP answer, not a hang.
    let Some(pending) = state.limiter.try_pending() else {
        tracing::info!(%room, "too many connections waiting to join; refusing an upgrade");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            format!(
                "too many connections waiting to join (limit {}); retry later\n",
                state.limiter.limits().max_pending_joins
            ),
        )
            .into_response();
    };
    let relayed = headers.contains_key(crate::cluster::relay::RELAYED_BY);
    let guard = state.tracker.enter();
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| async move {
            let _guard = guard;
            connection(socket, room, state, pending, relayed).await;
        })
}

fn error_frame(message: impl Into<String>) -> Message {
    Message::Text(
        ServerMessage::Error {
            message: message.into(),
            fatal: true,
        }
        .to_json()
        .into(),
    )
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Parses one incoming frame. `Err` carries the fatal error text and close code.
fn parse_frame(msg: Message) -> Result<Option<ClientMessage>, (String, u16)> {
    match msg {
        Message::Text(t) => match ClientMessage::parse(t.as_str()) {
            Ok(m) => Ok(Some(m)),
            Err(e @ daily_proto::ProtoError::TooLarge { .. }) => {
                Err((e.to_string(), close_code::SIZE))
            }
            Err(e) => Err((e.to_string(), close_code::POLICY)),
        },
        Message::Binary(_) => Err((
            "binary frames are not part of the protocol".into(),
            close_code::POLICY,
        )),
        Message::Ping(_) | Message::Pong(_) => Ok(None),
        Message::Close(_) => Err((String::new(), close_code::NORMAL)),
    }
}

async fn send(
    socket: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    msg: Message,
) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

/// `relayed`: the upgrade came from another node's relay (`cluster/relay.rs`).
async fn connection(socket: WebSocket, room: String, state: AppState, pending: PendingSlot, relayed: bool) {
    let conn: ConnId = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut tx, mut rx) = socket.split();
    let mut shutdown = state.shutdown.clone();

    // 1. The first message must be `join` with our protocol version.
    let join_timeout = state.limiter.limits().join_timeout;
    let first = tokio::select! {
        r = tokio::time::timeout(join_timeout, rx.next()) => Some(r),
        _ = shutdown.wait_for(|s| *s) => None,
    };
    drop(pending);
    let Some(first) = first else {
        let _ = send(
            &mut tx,
            close_frame(close_code::AWAY, "server shutting down"),
        )
        .await;
        return;
    };
    let mut first_text = String::new();
    let first = match first {
        Err(_) => Err(("no join within the timeout".to_owned(), close_code::POLICY)),
        Ok(None) | Ok(Some(Err(_))) => return,
        Ok(Some(Ok(msg))) => {
            if let Message::Text(t) = &msg {
                first_text = t.as_str().to_owned();
            }
            parse_frame(msg)
        }
    };
    // Cluster mode: a session for a room that lives on another node is relayed there.
    if let (Some(cluster), Ok(Some(ClientMessage::Join { protocol_version, .. } | ClientMessage::Resume { protocol_version, .. }))) =
        (&state.cluster, &first)
        && *protocol_version == PROTOCOL_VERSION
    {
        let refuse = match cluster.place_room(&room).await {
            Ok(Some(node)) if node.id != cluster.id && !relayed => {
                let resume = matches!(first, Ok(Some(ClientMessage::Resume { .. })));
                return crate::cluster::relay::relay(
                    tx,
                    rx,
                    first_text,
                    node,
                    room,
                    &cluster.id,
                    resume,
                    state.relays.clone(),
                    state.shutdown.clone(),
                )
                .await;
            }
            // Relayed here but placed elsewhere meanwhile (a re-placement raced the relay):
            // not relayed twice, the client tries again.
            Ok(Some(node)) if node.id != cluster.id => Some("the room moved to another server; try again"),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(room = %room, error = %e, "join refused: cluster state unavailable");
                Some("the cluster state is unavailable; try again")
            }
        };
        if let Some(text) = refuse {
            // A resume is only closed: the SDK tries again, and the session must not end
            // because Redis was briefly away.
            if !matches!(first, Ok(Some(ClientMessage::Resume { .. }))) {
                let _ = send(&mut tx, error_frame(text)).await;
            }
            let _ = send(&mut tx, close_frame(close_code::AGAIN, "cluster unavailable")).await;
            return;
        }
    }
    // A joining connection's participant takes its link's number; a resuming one adopts the
    // participant's (`session.rs`).
    let link: crate::driver::LinkId = conn;
    let (user_name, token, subscriptions) = match first {
        Ok(Some(ClientMessage::Join {
            protocol_version,
            user_name,
            token,
            subscriptions,
        })) if protocol_version == PROTOCOL_VERSION => {
            (user_name, token, subscriptions.unwrap_or_default())
        }
        Ok(Some(ClientMessage::Resume {
            protocol_version,
            session_id,
            participant_id,
            resume_token,
        })) if protocol_version == PROTOCOL_VERSION => {
            return session::resume(
                tx,
                rx,
                link,
                room,
                session_id,
                participant_id,
                resume_token,
                &state,
            )
            .await;
        }
        Ok(Some(
            ClientMessage::Join {
                protocol_version, ..
            }
            | ClientMessage::Resume {
                protocol_version, ..
            },
        )) => {
            let text = format!(
                "unsupported protocol version {protocol_version}; this server speaks {PROTOCOL_VERSION}"
            );
            let _ = send(&mut tx, error_frame(text)).await;
            let _ = send(
                &mut tx,
                close_frame(close_code::PROTOCOL, "protocol version"),
            )
            .await;
            return;
        }
        Ok(_) => {
            let _ = send(
                &mut tx,
                error_frame("the first message must be join or resume"),
            )
            .await;
            let _ = send(&mut tx, close_frame(close_code::POLICY, "join first")).await;
            return;
        }
        Err((text, code)) => {
            if !text.is_empty() {
                let _ = send(&mut tx, error_frame(text)).await;
                let _ = send(&mut tx, close_frame(code, "invalid message")).await;
            }
            return;
        }
    };

    // 2. The gate (see the module docs), then the core.
    let now = crate::unix_now();
    let check = match token.as_deref().filter(|t| !t.is_empty()) {
        None => TokenCheck::Absent,
        Some(t) => match state.api.key.as_ref().map(|k| k.verify(t, &room, now)) {
            Some(Ok(grant)) => TokenCheck::Valid(grant),
            Some(Err(_)) | None => TokenCheck::Refused,
        },
    };

    // 3. Joined: relay frames to the core and the core's messages to the socket. Writes run in
    // their own task so this loop keeps draining the core's queue even while a client does not
    // read, and can drop the connection once too much piles up for it.
    // In cluster mode the room's settings come from Redis; without them the join is refused
    // (a private room must not open up because Redis is unreachable).
    let shared = match &state.cluster {
        Some(cluster) => match cluster.room(&room).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(room = %room, error = %e, "join refused: cluster state unavailable");
                let _ = send(&mut tx, error_frame("the cluster state is unavailable; try again")).await;
                let _ = send(&mut tx, close_frame(close_code::AGAIN, "cluster unavailable")).await;
                return;
            }
        },
        None => None,
    };
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let sent = {
        let registry = state.api.rooms();
        let record = match &shared {
            Some(r) => r.as_ref(),
            None => registry.get(&room),
        };
        match rooms::admit(record, check, now) {
            Ok(admitted) => Ok(state
                .cmds
                .send(Request::Connect {
                    conn,
                    link,
                    out: out_tx,
                })
                .is_ok()
                && state
                    .cmds
                    .send(
                        Command::Join {
                            conn,
                            room: room.clone(),
                            user_name,
                            subscriptions,
                            grant: admitted.grant,
                            max_participants: admitted.max_participants,
                        }
                        .into(),
                    )
                    .is_ok()),
            Err(refusal) => Err(refusal),
        }
    };
    if let Err(refusal) = sent {
        tracing::info!(%room, reason = refusal, "join refused");
        let _ = send(&mut tx, error_frame(refusal)).await;
        let _ = send(&mut tx, close_frame(close_code::POLICY, "not allowed")).await;
        return;
    }
    if sent != Ok(true) {
        let _ = send(
            &mut tx,
            close_frame(close_code::AWAY, "server shutting down"),
        )
        .await;
        return;
    }
    session::serve(conn, link, out_rx, rx, Writer::spawn(tx), &state).await;
}

/// The write half of a joined connection, run as its own task: frames are written in order,
/// each within [`SEND_TIMEOUT`], and `backlog` counts the bytes queued but not yet written.
struct Writer {
    frames: mpsc::UnboundedSender<Message>,
    backlog: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn spawn(mut sink: futures_util::stream::SplitSink<WebSocket, Message>) -> Writer {
        let (frames, mut queue) = mpsc::unbounded_channel::<Message>();
        let backlog = Arc::new(AtomicUsize::new(0));
        let written = backlog.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = queue.recv().await {
                let len = frame_len(&msg);
                let last = matches!(msg, Message::Close(_));
                let ok = send(&mut sink, msg).await;
                written.fetch_sub(len, Ordering::Relaxed);
                if !ok || last {
                    break;
                }
            }
        });
        Writer {
            frames,
            backlog,
            task,
        }
    }

    /// Queues a frame. `false` when the backlog would exceed [`MAX_OUTBOUND_BYTES`] or the
    /// writer has stopped (the connection is to be dropped).
    fn push(&self, msg: Message) -> bool {
        let len = frame_len(&msg);
        let backlog = self.backlog.fetch_add(len, Ordering::Relaxed) + len;
        backlog <= MAX_OUTBOUND_BYTES && self.frames.send(msg).is_ok()
    }

    /// Lets what is queued go out (at most [`SEND_TIMEOUT`] in all), then drops the socket.
    async fn finish(self) {
        drop(self.frames);
        let mut task = self.task;
        if tokio::time::timeout(SEND_TIMEOUT, &mut task).await.is_err() {
            task.abort();
        }
    }
}

fn frame_len(msg: &Message) -> usize {
    match msg {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}
