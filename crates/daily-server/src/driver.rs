//! The IO shell around [`Sfu`]: one task owning the one UDP socket shared by every peer
//! connection and the senders of the signalling connections. It waits on whichever comes first
//! — a request from signalling, a datagram, or the earliest str0m deadline — feeds it to the
//! core, then routes what the core queued at once: each signalling message to its connection's
//! channel, each datagram onto the socket, so a forwarded frame leaves in the same wake-up that
//! received it.
//!
//! The request queue is unbounded: the join gate sends `Connect` + `Join` while holding the
//! room registry's (synchronous) lock, as the REST API sends `EndRoom`, so that the SFU sees
//! them in the gate's order; awaiting room in a bounded queue there would hold that lock
//! across an await. What each signalling connection puts in it is bounded instead
//! ([`MAX_QUEUED_PER_CONNECTION`]), and connections themselves by the HTTP side's limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};

use crate::recorder::Recorder;
use crate::sfu::{Command, ConnId, Outbound, Sfu};

/// Most messages one signalling connection may have waiting in the SFU task's queue. Past
/// it the connection stops reading its socket until the SFU task caught up (TCP then slows
/// the client down), so a flooding client queues at most this many messages of at most
/// `MAX_MESSAGE_BYTES` (256 KiB) each, 8 MiB, however fast it sends. The queue itself stays
/// unbounded (see the module docs) but everything in it is bounded per connection: this,
/// one `Connect` + `Join` or one `Resume` at a time, and a `Closed`.
pub const MAX_QUEUED_PER_CONNECTION: usize = 32;

/// Longest sleep when no transport has a deadline (commands and datagrams still wake us).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Largest datagram read (ICE/DTLS/SRTP over UDP stay well below an Ethernet MTU).
const RECV_BUF: usize = 2048;

/// Identifies one WebSocket connection. A participant keeps its [`ConnId`] for life; the
/// connection that carries it changes when it resumes, so the shell remembers which link is
/// the current one and ignores the others.
pub(crate) type LinkId = u64;

/// What the async side asks of the SFU task.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Nearly every request is a `Command`: boxing would allocate for each.
pub(crate) enum Request {
    /// From now on the core's output for `conn` goes to `out`, carried by connection `link`.
    /// Sent by a connection that passed the join gate, just before its `Join`; forgotten once
    /// the core closes the connection or the connection reports `Closed`.
    Connect {
        conn: ConnId,
        link: LinkId,
        out: mpsc::UnboundedSender<Outbound>,
    },
    /// A command for the core.
    Command(Command),
    /// A `Message` or `Closed` from connection `link`. Handed to the core only while `link`
    /// carries the participant (a connection replaced by a `resume` may still be open or
    /// report its end late: it must not act for, or detach, the resumed session).
    ///
    /// `permit` bounds what one connection may have queued here
    /// ([`MAX_QUEUED_PER_CONNECTION`]): it is released once the request was handled.
    FromLink {
        link: LinkId,
        cmd: Command,
        permit: Option<OwnedSemaphorePermit>,
    },
    /// A new connection's first message was `resume`: if the core accepts it, the
    /// participant's output goes to `out` (its older connection, if any, is closed by dropping
    /// its sender) and `reply` gets the participant's [`ConnId`]; else the refusal.
    Resume {
        link: LinkId,
        room: String,
        session_id: String,
        participant_id: String,
        resume_token: String,
        out: mpsc::UnboundedSender<Outbound>,
        reply: oneshot::Sender<Result<ConnId, String>>,
    },
    /// The recorder thread gave up on recording `key` (e.g. the disk is full).
    RecorderFailed { key: u64, message: String },
    /// How many participants are in a room (for `GET /{room}`).
    RoomInfo {
        room: String,
        reply: oneshot::Sender<usize>,
    },
    /// Every room with participants and how many (the cluster heartbeat, `cluster/`).
    Load {
        reply: oneshot::Sender<Vec<(String, usize)>>,
    },
}

impl From<Command> for Request {
    fn from(c: Command) -> Self {
        Request::Command(c)
    }
}

/// Where a participant's output goes: the current connection and its channel.
struct Route {
    link: LinkId,
    tx: mpsc::UnboundedSender<Outbound>,
}

/// Each participant's route, by participant.
type Routes = HashMap<ConnId, Route>;

pub(crate) async fn run(
    socket: UdpSocket,
    local: SocketAddr,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut shutdown: watch::Receiver<bool>,
    mut sfu: Sfu,
    mut recorder: Option<Recorder>,
) {
    let mut buf = vec![0u8; RECV_BUF];
    let mut routes = Routes::new();
    loop {
        flush(&socket, &mut sfu, &mut routes, recorder.as_ref()).await;
        let now = Instant::now();
        let deadline = sfu
            .poll_timeout()
            .unwrap_or(now + IDLE_WAKE)
            .min(now + IDLE_WAKE);
        if deadline <= now {
            sfu.handle_timeout(now);
            continue;
        }
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            req = requests.recv() => match req {
                Some(r) => handle_request(&mut sfu, &mut routes, r),
                None => break,
            },
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => sfu.handle_udp(Instant::now(), source, local, &buf[..n]),
                // Linux reports ICMP errors of earlier sends here; they concern one peer only.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                sfu.handle_timeout(Instant::now());
            }
        }
    }
    sfu.shutdown(Instant::now(), "the server is shutting down");
    flush(&socket, &mut sfu, &mut routes, recorder.as_ref()).await;
    if let Some(mut r) = recorder.take() {
        // Every recording got its `Stop` above; wait for the files to be closed.
        tokio::task::block_in_place(|| r.finish());
    }
    let stats = sfu.stats();
    tracing::debug!(
        frames_in = stats.frames_in,
        frames_out = stats.frames_out,
        "SFU stopped"
    );
}

fn handle_request(sfu: &mut Sfu, routes: &mut Routes, req: Request) {
    match req {
        Request::Connect { conn, link, out } => {
            routes.insert(conn, Route { link, tx: out });
        }
        Request::Command(cmd) => sfu.handle_command(Instant::now(), cmd),
        Request::FromLink { link, cmd, permit } => {
            let _permit = permit; // Released when this request is done.
            let (conn, closed) = match &cmd {
                Command::Message { conn, .. } => (*conn, false),
                Command::Closed { conn, .. } => (*conn, true),
                _ => return sfu.handle_command(Instant::now(), cmd),
            };
            match routes.get(&conn) {
                Some(r) if r.link == link => {}
                // Another connection carries the participant now: this one is stale.
                Some(_) => return,
                // Unrouted: a message goes nowhere; an end still reaches the core (after the
                // core closed the connection it is a no-op there).
                None if !closed => return,
                None => {}
            }
            // The core says nothing more to a closed connection; what it queued before went
            // out in the flush that followed it.
            sfu.handle_command(Instant::now(), cmd);
            if closed {
                routes.remove(&conn);
            }
        }
        Request::Resume {
            link,
            room,
            session_id,
            participant_id,
            resume_token,
            out,
            reply,
        } => {
            let result = sfu.resume(
                Instant::now(),
                &room,
                &session_id,
                &participant_id,
                &resume_token,
            );
            if let Ok(conn) = result {
                // Replaces (and so closes) an older connection's route; `resumed` and what
                // follows go out in the next flush.
                routes.insert(conn, Route { link, tx: out });
            }
            let _ = reply.send(result);
        }
        Request::RecorderFailed { key, message } => sfu.handle_recorder_failed(key, &message),
        Request::RoomInfo { room, reply } => {
            let _ = reply.send(sfu.participant_count(&room));
        }
        Request::Load { reply } => {
            let _ = reply.send(sfu.room_loads());
        }
    }
}

/// Routes the core's signalling output to the connections, hands its recording orders to the
/// recorder thread (never blocking), then sends its datagrams.
async fn flush(socket: &UdpSocket, sfu: &mut Sfu, routes: &mut Routes, recorder: Option<&Recorder>) {
    while let Some(cmd) = sfu.poll_record() {
        if let Some(r) = recorder {
            r.send(cmd);
        }
    }
    while let Some((conn, out)) = sfu.poll_signal() {
        let Some(route) = routes.get(&conn) else {
            // The connection is gone (its `Closed` reached the core or will), or the
            // participant is detached: `resumed` will carry what it missed.
            continue;
        };
        let close = matches!(out, Outbound::Close);
        // A send fails once the connection task has ended: it reports `Closed` next.
        if route.tx.send(out).is_err() || close {
            routes.remove(&conn);
        }
    }
    while let Some(t) = sfu.poll_transmit() {
        if let Err(e) = socket.send_to(&t.contents, t.destination).await {
            tracing::debug!(error = %e, destination = %t.destination, "UDP send failed");
        }
    }
}
