//! The accept loop: our own instead of `axum::serve`, which can neither bound how long a
//! connection sits idle nor count connections, nor speak TLS.
//!
//! For each accepted TCP connection: Nagle off, a slot from the [`ConnLimiter`] (or a refusal),
//! the TLS handshake when configured, then hyper's HTTP/1 connection serving the router, with
//! upgrades (the signalling WebSocket). hyper's header-read timer is the idle timeout: it runs
//! whenever the connection waits for a request head, the first one or the next on a kept-alive
//! connection, and also cuts off a head that trickles in (`docs/server-limits.md`). The TLS
//! handshake is bounded by the same timeout. The slot is held by the stream itself
//! ([`Counted`]), so it is given back when the socket closes, after a WebSocket call too.
//!
//! A refused connection is served exactly one answer (429 or 503, `Retry-After`, `Connection:
//! close`) by hyper, which reads the request first: answering before the request has been
//! read and closing could make the kernel reset the connection and the client lose the answer.
//! At most [`refusing_cap`] refusals are served at once; past that a connection is closed at
//! once, which a client also sees at once (no hang).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::limits::{ConnLimiter, ConnSlot, Refusal};

/// Most refused connections being answered at once (each for at most a few seconds).
const MAX_REFUSING: usize = 64;

/// How many refusals may be answered at once: [`MAX_REFUSING`], and at most a quarter of
/// `max_connections`. Each holds a descriptor while it waits for its request; with the default
/// `max_connections` (half the descriptor limit) admitted and refused connections together stay
/// below the limit. Measured: at `ulimit -n 128` (`max_connections` 64) with 64 refusals in
/// flight the process ran out of descriptors and a join waited 3 s in the accept backlog.
pub(crate) fn refusing_cap(max_connections: usize) -> usize {
    MAX_REFUSING.min(max_connections / 4).max(1)
}

/// Longest a refused connection may take to send its request before it is closed unanswered.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause after `accept` fails for lack of resources (`EMFILE`, `ENFILE`, `ENOMEM`), so the loop
/// does not spin while the process is out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A stream that holds its connection's slot in the counts until it is dropped.
struct Counted<S> {
    stream: S,
    _slot: ConnSlot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// What every connection task needs.
#[derive(Clone)]
pub(crate) struct Listener {
    pub router: Router,
    pub tls: Option<TlsAcceptor>,
    pub limiter: Arc<ConnLimiter>,
    pub shutdown: watch::Receiver<bool>,
    pub refusing: Arc<AtomicUsize>,
}

impl Listener {
    /// Accepts until shutdown, then returns (connections still open finish on their own tasks;
    /// [`ConnLimiter::wait_idle`] says when they are gone).
    pub(crate) async fn run(self, tcp: TcpListener) {
        let mut shutdown = self.shutdown.clone();
        let mut refusals = Every::new();
        let mut accept_errors = Every::new();
        loop {
            let accepted = tokio::select! {
                r = tcp.accept() => r,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    if let Some(n) = accept_errors.due() {
                        tracing::warn!(error = %e, times = n, "accept failed (out of descriptors?); pausing");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // TCP_NODELAY: signalling is many small messages in a row (`joined`, then
            // `participantCounts`, then `publishAnswer`); with Nagle's algorithm the later ones
            // waited for the client's delayed ACK, about 40 ms, which showed up in every join.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let admitted = self.limiter.try_admit(peer.ip());
            let this = self.clone();
            match admitted {
                Ok(slot) => {
                    tokio::spawn(this.serve(Counted {
                        stream,
                        _slot: slot,
                    }));
                }
                Err(refusal) => {
                    // At most one warning per LOG_EVERY: a flood of refusals must not flood the
                    // log too.
                    if let Some(n) = refusals.due() {
                        let l = self.limiter.limits();
                        tracing::warn!(
                            %peer, ?refusal, refused = n, max_connections = l.max_connections,
                            max_connections_per_ip = l.max_connections_per_ip,
                            "connections over a limit are being refused (docs/server-limits.md)"
                        );
                    }
                    tracing::debug!(%peer, ?refusal, "connection over a limit; answering and closing");
                    let n = self.refusing.fetch_add(1, Ordering::AcqRel);
                    if n >= refusing_cap(self.limiter.limits().max_connections) {
                        self.refusing.fetch_sub(1, Ordering::AcqRel);
                        drop(stream);
                        continue;
                    }
                    tokio::spawn(async move {
                        this.refuse(stream, refusal).await;
                        this.refusing.fetch_sub(1, Ordering::AcqRel);
                    });
                }
            }
        }
    }

    /// Serves an admitted connection until it closes, is upgraded, or the server shuts down.
    async fn serve(self, stream: Counted<TcpStream>) {
        let idle = self.limiter.limits().http_idle_timeout;
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let mut router = router.clone();
            // `Router` is always ready; its error type is `Infallible`.
            async move { router.call(req.map(Body::new)).await }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(idle)
            .keep_alive(true);
        match &self.tls {
            None => drive(&http, stream, service, self.shutdown).await,
            Some(acceptor) => match tokio::time::timeout(idle, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => drive(&http, tls, service, self.shutdown).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            },
        }
    }

    /// Answers one request of a connection over a limit with 429/503, then closes it.
    async fn refuse(&self, stream: TcpStream, refusal: Refusal) {
        let limits = self.limiter.limits();
        let (status, text) = match refusal {
            Refusal::PerIp => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many connections from your address (limit {}); retry later\n",
                    limits.max_connections_per_ip
                ),
            ),
            Refusal::Total => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server has too many connections (limit {}); retry later\n",
                    limits.max_connections
                ),
            ),
        };
        let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
            let mut resp = Response::new(Body::from(text.clone()));
            *resp.status_mut() = status;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            async move { Ok::<_, Infallible>(resp) }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        let wait = REFUSAL_READ_TIMEOUT.min(limits.http_idle_timeout);
        http.timer(TokioTimer::new())
            .header_read_timeout(wait)
            .keep_alive(false);
        let answer = async {
            match &self.tls {
                None => drive(&http, stream, service, self.shutdown.clone()).await,
                Some(acceptor) => {
                    if let Ok(Ok(tls)) = tokio::time::timeout(wait, acceptor.accept(stream)).await {
                        drive(&http, tls, service, self.shutdown.clone()).await;
                    }
                }
            }
        };
        // Bounded as a whole: a client that does not read its answer cannot hold the slot.
        let _ = tokio::time::timeout(2 * wait, answer).await;
    }
}

/// Runs one HTTP/1 connection (with upgrades) to its end; on shutdown lets the request in
/// flight finish and then closes.
async fn drive<S, Svc>(
    http: &hyper::server::conn::http1::Builder,
    stream: S,
    service: Svc,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::HttpService<Incoming, ResBody = Body> + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        // The guard `wait_for` returns must not live across the await below.
        _ = async { drop(shutdown.wait_for(|s| *s).await) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// How often a repeated warning is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts occurrences of something and says when to log it: at the first one, then at most
/// once per [`LOG_EVERY`], with how many happened since the last log.
struct Every {
    last: Option<tokio::time::Instant>,
    count: u64,
}

impl Every {
    fn new() -> Every {
        Every {
            last: None,
            count: 0,
        }
    }

    fn due(&mut self) -> Option<u64> {
        self.count += 1;
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|t| now < t + LOG_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// Errors of `accept` that concern one connection only (it was reset before we took it); the
/// listener itself is fine.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
