//! The IO shell around [`Sfu`]: one task owning the one UDP socket shared by every peer
//! connection and the senders of the signalling connections. It waits on whichever comes first
//! — a request from signalling, a datagram, or the earliest str0m deadline — feeds it to the
//! core, then routes what the core queued at once: each signalling message to its connection's
//! channel, each datagram onto the socket, so a forwarded frame leaves in the same wake-up that
//! received it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::sfu::{Command, ConnId, Outbound, Sfu};

/// Longest sleep when no transport has a deadline (commands and datagrams still wake us).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Largest datagram read (ICE/DTLS/SRTP over UDP stay well below an Ethernet MTU).
const RECV_BUF: usize = 2048;

/// What the async side asks of the SFU task.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Nearly every request is a `Command`: boxing would allocate for each.
pub(crate) enum Request {
    /// From now on the core's output for `conn` goes to `out`. Sent by a connection that passed
    /// the join gate, just before its `Join`; forgotten once the core closes the connection or
    /// the connection reports `Closed`.
    Connect {
        conn: ConnId,
        out: mpsc::UnboundedSender<Outbound>,
    },
    /// A command for the core.
    Command(Command),
    /// How many participants are in a room (for `GET /{room}`).
    RoomInfo {
        room: String,
        reply: oneshot::Sender<usize>,
    },
}

impl From<Command> for Request {
    fn from(c: Command) -> Self {
        Request::Command(c)
    }
}

/// Each signalling connection's channel, by connection.
type Routes = HashMap<ConnId, mpsc::UnboundedSender<Outbound>>;

pub(crate) async fn run(
    socket: UdpSocket,
    local: SocketAddr,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut shutdown: watch::Receiver<bool>,
    mut sfu: Sfu,
) {
    let mut buf = vec![0u8; RECV_BUF];
    let mut routes = Routes::new();
    loop {
        flush(&socket, &mut sfu, &mut routes).await;
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
    flush(&socket, &mut sfu, &mut routes).await;
    let stats = sfu.stats();
    tracing::debug!(
        frames_in = stats.frames_in,
        frames_out = stats.frames_out,
        "SFU stopped"
    );
}

fn handle_request(sfu: &mut Sfu, routes: &mut Routes, req: Request) {
    match req {
        Request::Connect { conn, out } => {
            routes.insert(conn, out);
        }
        Request::Command(cmd) => {
            // The core says nothing more to a closed connection; what it queued before went
            // out in the flush that followed it.
            let closed = match &cmd {
                Command::Closed { conn } => Some(*conn),
                _ => None,
            };
            sfu.handle_command(Instant::now(), cmd);
            if let Some(conn) = closed {
                routes.remove(&conn);
            }
        }
        Request::RoomInfo { room, reply } => {
            let _ = reply.send(sfu.participant_count(&room));
        }
    }
}

/// Routes the core's signalling output to the connections, then sends its datagrams.
async fn flush(socket: &UdpSocket, sfu: &mut Sfu, routes: &mut Routes) {
    while let Some((conn, out)) = sfu.poll_signal() {
        let Some(tx) = routes.get(&conn) else {
            continue; // The connection is gone; its `Closed` reached the core or will.
        };
        let close = matches!(out, Outbound::Close);
        // A send fails once the connection task has ended: it reports `Closed` next.
        if tx.send(out).is_err() || close {
            routes.remove(&conn);
        }
    }
    while let Some(t) = sfu.poll_transmit() {
        if let Err(e) = socket.send_to(&t.contents, t.destination).await {
            tracing::debug!(error = %e, destination = %t.destination, "UDP send failed");
        }
    }
}
