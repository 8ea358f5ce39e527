//! The IO shell around [`Sfu`]: one task owning the one UDP socket shared by every peer
//! connection. It waits on whichever comes first — a command from signalling, a datagram, or the
//! earliest str0m deadline — feeds it to the core and sends what the core queued at once, so a
//! forwarded frame leaves in the same wake-up that received it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::sfu::{Command, Sfu};

/// Longest sleep when no transport has a deadline (commands and datagrams still wake us).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Largest datagram read (ICE/DTLS/SRTP over UDP stay well below an Ethernet MTU).
const RECV_BUF: usize = 2048;

pub(crate) async fn run(
    socket: UdpSocket,
    local: SocketAddr,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    mut shutdown: watch::Receiver<bool>,
    mut sfu: Sfu,
) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        flush(&socket, &mut sfu).await;
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
            cmd = cmds.recv() => match cmd {
                Some(c) => sfu.handle_command(Instant::now(), c),
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
    flush(&socket, &mut sfu).await;
    let stats = sfu.stats();
    tracing::debug!(
        frames_in = stats.frames_in,
        frames_out = stats.frames_out,
        "SFU stopped"
    );
}

async fn flush(socket: &UdpSocket, sfu: &mut Sfu) {
    while let Some(t) = sfu.poll_transmit() {
        if let Err(e) = socket.send_to(&t.contents, t.destination).await {
            tracing::debug!(error = %e, destination = %t.destination, "UDP send failed");
        }
    }
}
