//! The signalling connection once it carries a participant: after a `join` the gate
//! admitted, or a `resume` the core accepted. Relays frames to the core and the core's
//! messages to the socket, pings the client, and tells the core how the connection ended:
//! *cleanly* (a close frame, a protocol violation, or the server's own decision — the
//! participant leaves now) or *lost* (EOF, a socket error, a blocked write, nothing heard for
//! [`SIGNALLING_TIMEOUT`] — the participant is kept for a `resume`, `sfu/resume.rs`).

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, close_code};
use futures_util::StreamExt;
use futures_util::stream::{SplitSink, SplitStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::{AppState, Writer, close_frame, error_frame, parse_frame, send};
use crate::driver::{LinkId, MAX_QUEUED_PER_CONNECTION, Request};
use crate::sfu::{Command, ConnId, Outbound, PING_INTERVAL, SIGNALLING_TIMEOUT};

/// How long a `resume` waits for the SFU task's verdict.
const RESUME_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection ended.
enum End {
    /// The participant leaves now.
    Clean,
    /// The connection was lost: the participant is detached.
    Lost,
    /// The client did not read its messages ([`super::MAX_OUTBOUND_BYTES`]): dropped, and the
    /// participant leaves (a policy decision, not a network fault).
    Overflow,
}

/// A socket error that means the network or the peer went away (the participant may come
/// back), as opposed to a protocol violation (invalid UTF-8, an oversized frame).
fn is_lost(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    // tungstenite reports EOF without a close frame as a protocol error; it is a lost
    // connection here (the client's end went away, or it reconnects).
    e.to_string().contains("without closing handshake")
}

/// The first message was `resume`: asks the core, then serves the participant or refuses.
#[allow(clippy::too_many_arguments)]
pub(super) async fn resume(
    mut tx: SplitSink<WebSocket, Message>,
    rx: SplitStream<WebSocket>,
    link: LinkId,
    room: String,
    session_id: String,
    participant_id: String,
    resume_token: String,
    state: &AppState,
) {
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (reply, verdict) = oneshot::channel();
    let asked = state
        .cmds
        .send(Request::Resume {
            link,
            room,
            session_id,
            participant_id,
            resume_token,
            out: out_tx,
            reply,
        })
        .is_ok();
    let verdict = match asked {
        true => tokio::time::timeout(RESUME_REPLY_TIMEOUT, verdict)
            .await
            .ok()
            .and_then(Result::ok),
        false => None,
    };
    match verdict {
        Some(Ok(conn)) => serve(conn, link, out_rx, rx, Writer::spawn(tx), state).await,
        Some(Err(refusal)) => {
            let _ = send(&mut tx, error_frame(refusal)).await;
            let _ = send(&mut tx, close_frame(close_code::POLICY, "cannot resume")).await;
        }
        None => {
            let _ = send(
                &mut tx,
                close_frame(close_code::AWAY, "server shutting down"),
            )
            .await;
        }
    }
}

/// Serves participant `conn` on connection `link` until it ends, then reports how.
pub(super) async fn serve(
    conn: ConnId,
    link: LinkId,
    mut out_rx: mpsc::UnboundedReceiver<Outbound>,
    mut rx: SplitStream<WebSocket>,
    writer: Writer,
    state: &AppState,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let queued = Arc::new(Semaphore::new(MAX_QUEUED_PER_CONNECTION));
    let end = loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(Outbound::Message(m)) => {
                    if !writer.push(Message::Text(m.to_json().into())) {
                        break End::Overflow;
                    }
                }
                // The core closed it, or a resumed connection took the participant over.
                Some(Outbound::Close) | None => {
                    writer.push(close_frame(close_code::NORMAL, ""));
                    break End::Clean;
                }
            },
            msg = rx.next() => {
                heard = Instant::now();
                let msg = match msg {
                    None => break End::Lost,
                    Some(Err(e)) => break if is_lost(&e) { End::Lost } else { End::Clean },
                    Some(Ok(msg)) => msg,
                };
                match parse_frame(msg) {
                    Ok(Some(m)) => {
                        // Waits (reading nothing) while this connection has its share queued.
                        let Ok(permit) = queued.clone().acquire_owned().await else {
                            break End::Clean;
                        };
                        let cmd = Command::Message { conn, msg: m };
                        let permit = Some(permit);
                        if state.cmds.send(Request::FromLink { link, cmd, permit }).is_err() {
                            break End::Clean;
                        }
                    }
                    Ok(None) => {} // Ping or pong: proof of life is all it is.
                    Err((text, code)) => {
                        if !text.is_empty() {
                            writer.push(error_frame(text));
                            writer.push(close_frame(code, "invalid message"));
                        }
                        break End::Clean; // A violation, or the client's close frame.
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= SIGNALLING_TIMEOUT {
                    tracing::info!(conn, "no frame from the client within the timeout; connection lost");
                    break End::Lost;
                }
                writer.push(Message::Ping(Default::default()));
            }
            // A write failed or blocked for SEND_TIMEOUT.
            _ = writer.frames.closed() => break End::Lost,
        }
    };
    let clean = !matches!(end, End::Lost);
    let cmd = Command::Closed { conn, clean };
    let _ = state.cmds.send(Request::FromLink {
        link,
        cmd,
        permit: None,
    });
    if matches!(end, End::Overflow) {
        if !writer.frames.is_closed() {
            tracing::info!(
                conn,
                limit = super::MAX_OUTBOUND_BYTES,
                "client does not read its messages; dropping the connection"
            );
        }
        writer.task.abort();
    } else if matches!(end, End::Lost) {
        writer.task.abort();
    } else {
        writer.finish().await;
    }
}
