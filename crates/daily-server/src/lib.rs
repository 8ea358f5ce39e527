//! Room server for the open Daily SDK: HTTP + WebSocket signalling and an audio SFU.
//!
//! ```no_run
//! use daily_server::{RoomServer, ServerConfig};
//! let mut server = RoomServer::start(ServerConfig::default())?;
//! println!("join {}", server.room_url("demo"));
//! server.shutdown();
//! # Ok::<(), daily_server::ServerError>(())
//! ```
//!
//! # What runs where
//! [`RoomServer::start`] binds the HTTP listener (TCP `host:port`) and one UDP socket
//! (`host:0`) and starts one owner thread running a small tokio runtime (two workers); the caller
//! need not be inside a runtime. On it run:
//! - the accept loop (`listener.rs`): connection limits ([`Limits`], `docs/server-limits.md`)
//!   and, with [`ServerConfig::tls`], HTTPS and WSS on the same port (`tls.rs`);
//! - the HTTP server (axum over hyper's HTTP/1): `GET /` (server info), `GET /{room}` (the call page for a
//!   browser, room info as JSON for anything else; the page's files under `/assets/`), the
//!   signalling WebSocket `GET /ws/{room}` (protocol: [`daily_proto`], `docs/signalling.md`)
//!   and, with an API key, the REST API under `/v1` (rooms and meeting tokens,
//!   `docs/rest-api.md`);
//! - the SFU task, the only owner of room state and of every str0m `Rtc`: one task, one UDP
//!   socket for all peers (as str0m's `chat` example). Signalling connections talk to it through
//!   one command queue, so there are no locks on the media path.
//!
//! # Media
//! Each participant has two peer connections: the *send transport* (client offers with
//! `publishOffer`, server answers) on which the SFU receives the participant's Opus audio, and
//! the *receive transport* (server offers with `subscribeOffer`) on which it forwards every
//! other participant's tracks, one `m=audio` line per remote track. Frames are forwarded
//! untouched (no transcoding) the moment they arrive; their RTP timestamps, marker bit and
//! audio level are carried over. m-lines of tracks that went away are set `inactive` and reused
//! for later tracks, so the SDP does not grow without bound.
//!
//! The server is a full ICE agent (not ICE-lite) with one host candidate, the bound UDP address;
//! SDPs are complete (non-trickle); DTLS 1.2; the only codec offered and accepted is Opus
//! (`opus/48000/2`). One DTLS certificate is made per server and shared by its transports.
#![forbid(unsafe_code)]

mod auth;
pub mod cluster;
mod driver;
mod http;
mod limits;
mod listener;
mod nodes_rest;
mod page;
mod rest;
mod rooms;
mod recorder;
mod recordings_rest;
mod sfu;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use auth::{MAX_API_KEY_BYTES, validate_api_key};
pub use http::{MAX_OUTBOUND_BYTES, SEND_TIMEOUT};
pub use limits::{
    HTTP_IDLE_TIMEOUT, JOIN_TIMEOUT, Limits, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP,
    MAX_PENDING_JOINS, default_max_connections,
};
pub use tls::TlsConfig;
pub use rest::MAX_BODY_BYTES;
pub use sfu::{
    APP_MESSAGE_BURST, APP_MESSAGES_PER_SECOND, DEAD_MEDIA_GRACE, MAX_PARTICIPANTS_PER_ROOM, MAX_TRACKS_PER_PARTICIPANT,
    MAX_USER_NAME_BYTES, PING_INTERVAL, RateLimit, SIGNALLING_TIMEOUT, SfuConfig, UPDATE_BURST, UPDATES_PER_SECOND,
};
pub use driver::MAX_QUEUED_PER_CONNECTION;

/// How long `daily-server --redis` drains on SIGTERM before it stops anyway
/// ([`RoomServer::drain`], `--drain-timeout`): five minutes, enough for most calls started
/// before a rolling restart to end, short enough that a restart finishes.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long shutdown waits for the SFU task, which waits for the recorder to close its files.
const RECORDER_GRACE: Duration = Duration::from_secs(10);

/// How long shutdown waits for connections to flush `callEnded` and close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Requested size of the shared UDP socket's kernel buffers, in bytes (Linux grants at most
/// `net.core.rmem_max` / `wmem_max`).
const UDP_BUFFER_BYTES: usize = 4 << 20;

/// Where the server listens, how it authenticates, and its connection limits.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address for HTTP (TCP) and the SFU (UDP). Default `127.0.0.1`.
    pub host: IpAddr,
    /// HTTP port; `0` picks a free one (see [`RoomServer::local_addr`]). The UDP port is always
    /// picked by the system.
    pub port: u16,
    /// The API key: the bearer secret of the REST API (`/v1`, `docs/rest-api.md`) and the HS256
    /// key meeting tokens are signed with. `None` (default): no REST API (401 with a hint),
    /// every meeting token is refused, and only ad-hoc public rooms exist. 1-1024 bytes of
    /// visible ASCII, else [`ServerError::InvalidApiKey`].
    pub api_key: Option<String>,
    /// Serve HTTPS and WSS (instead of HTTP and WS) with this certificate and key; the server's
    /// URLs then start with `https://`. `None` (default): plain HTTP, e.g. behind a proxy that
    /// terminates TLS.
    pub tls: Option<TlsConfig>,
    /// Idle timeouts and connection caps (`docs/server-limits.md`).
    pub limits: Limits,
    /// The SFU's tunables: the resume grace after a signalling outage and the rate limits on
    /// app messages and participant updates (`docs/server-limits.md`).
    pub sfu: SfuConfig,
    /// Where server-side recordings go (`startRecording`; one subdirectory per recording,
    /// `docs/rest-api.md`), created if missing. `None` (default): recording is off and
    /// `startRecording` is refused with a message saying how to turn it on.
    pub recordings_dir: Option<PathBuf>,
    /// Cluster mode (`docs/scaling.md`): `redis://[:password@]HOST:PORT[/db]` of the Redis the
    /// nodes share. The server registers there as a node with a heartbeat and lists the live
    /// nodes at `GET /v1/nodes`. `None` (default): a single server, nothing in Redis.
    pub redis_url: Option<String>,
    /// In cluster mode, the base URL clients reach this node on (e.g. behind a proxy or NAT).
    /// `None` (default): the server's own URL ([`RoomServer::url`]).
    pub node_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            api_key: None,
            tls: None,
            limits: Limits::default(),
            sfu: SfuConfig::default(),
            recordings_dir: None,
            redis_url: None,
            node_url: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("sfu", &self.sfu)
            .field("recordings_dir", &self.recordings_dir)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("node_url", &self.node_url)
            .finish()
    }
}

/// Which socket a [`ServerError::Bind`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// The HTTP listener.
    Tcp,
    /// The SFU's media socket.
    Udp,
}

impl std::fmt::Display for SocketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SocketKind::Tcp => "TCP",
            SocketKind::Udp => "UDP",
        })
    }
}

/// Everything that can go wrong starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A socket could not be bound or configured.
    #[error("cannot bind the {kind} socket on {addr}: {source}")]
    Bind {
        /// Which socket.
        kind: SocketKind,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime or its thread could not be started.
    #[error("cannot start the server runtime: {source}")]
    Runtime {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The DTLS certificate shared by the server's peer connections could not be made.
    #[error("cannot generate the DTLS certificate")]
    Certificate,
    /// [`ServerConfig::api_key`] is not usable.
    #[error("invalid API key: {0}")]
    InvalidApiKey(&'static str),
    /// The certificate or key of [`ServerConfig::tls`] could not be loaded or do not fit.
    #[error("TLS: {}: {reason}", path.display())]
    Tls {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A field of [`ServerConfig::limits`] is out of range (the message names it).
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    /// [`ServerConfig::recordings_dir`] cannot be created or read.
    #[error("recordings directory {}: {source}", path.display())]
    Recordings {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Cluster mode could not start (bad `redis_url`, Redis unreachable).
    #[error("cluster: {0}")]
    Cluster(#[from] cluster::ClusterError),
    /// The server thread ended before it was ready (it logged why).
    #[error("the server thread stopped during start-up")]
    StartFailed,
    /// [`RoomServer::drain`] on a server not in cluster mode.
    #[error("draining needs cluster mode (a Redis URL): a single server has nowhere to send new rooms")]
    NotClustered,
}

/// A running room server. Stopped by [`RoomServer::shutdown`] or on drop.
pub struct RoomServer {
    local_addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    has_api_key: bool,
    udp_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    clustered: bool,
    drain: Arc<cluster::DrainFlag>,
    relays: Arc<cluster::relay::RelayCount>,
    cmds: mpsc::UnboundedSender<driver::Request>,
}

impl std::fmt::Debug for RoomServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomServer")
            .field("local_addr", &self.local_addr)
            .field("udp_addr", &self.udp_addr)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl RoomServer {
    /// Binds HTTP (TCP) on `host:port` and the SFU's UDP socket on `host:0`, starts everything
    /// on its own thread and runtime, and returns once connections are accepted.
    pub fn start(config: ServerConfig) -> Result<RoomServer, ServerError> {
        let api_key = match &config.api_key {
            Some(k) => {
                auth::validate_api_key(k).map_err(ServerError::InvalidApiKey)?;
                Some(auth::ApiKey::new(k))
            }
            None => None,
        };
        config.limits.validate().map_err(ServerError::InvalidLimit)?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let http_addr = SocketAddr::new(config.host, config.port);
        let bind_err = |kind, addr| move |source| ServerError::Bind { kind, addr, source };
        let tcp = TcpListener::bind(http_addr).map_err(bind_err(SocketKind::Tcp, http_addr))?;
        tcp.set_nonblocking(true)
            .map_err(bind_err(SocketKind::Tcp, http_addr))?;
        let local_addr = tcp
            .local_addr()
            .map_err(bind_err(SocketKind::Tcp, http_addr))?;
        let udp_want = SocketAddr::new(config.host, 0);
        let udp = UdpSocket::bind(udp_want).map_err(bind_err(SocketKind::Udp, udp_want))?;
        udp.set_nonblocking(true)
            .map_err(bind_err(SocketKind::Udp, udp_want))?;
        // Every participant's media arrives on this one socket. With the default buffer (208 KiB
        // here) 100 bot pairs in one process lost datagrams on it whenever the SFU task was
        // descheduled for a moment (UDP RcvbufErrors +243 in a 15 s run), and the losses made
        // senders turn on Opus FEC, which costs CPU and deepened the overload. Best effort.
        let sock = socket2::SockRef::from(&udp);
        if let Err(e) = sock.set_recv_buffer_size(UDP_BUFFER_BYTES) {
            tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
        }
        if let Err(e) = sock.set_send_buffer_size(UDP_BUFFER_BYTES) {
            tracing::debug!(error = %e, "cannot enlarge the UDP send buffer");
        }
        tracing::debug!(recv = ?sock.recv_buffer_size().ok(), send = ?sock.send_buffer_size().ok(), "UDP buffers");
        let udp_addr = udp
            .local_addr()
            .map_err(bind_err(SocketKind::Udp, udp_want))?;

        let catalog = match &config.recordings_dir {
            Some(dir) => Some(Arc::new(recorder::catalog::Catalog::open(dir).map_err(
                |source| ServerError::Recordings {
                    path: dir.clone(),
                    source,
                },
            )?)),
            None => None,
        };
        let rtc_config = sfu::rtc_config().ok_or(ServerError::Certificate)?;
        let core = sfu::Sfu::new(udp_addr, rtc_config)
            .with_config(config.sfu.clone())
            .with_recording(catalog.is_some(), config.api_key.is_none());
        let api = Arc::new(rest::Api::new(
            api_key,
            format!("{scheme}://{local_addr}"),
            catalog.clone(),
        ));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("daily-server-rt")
            .enable_all()
            .build()
            .map_err(|source| ServerError::Runtime { source })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), ServerError>>();
        let redis = config.redis_url.clone().map(|r| {
            (r, config.node_url.clone().unwrap_or_else(|| format!("{scheme}://{local_addr}")))
        });
        let clustered = redis.is_some();
        let drain = Arc::new(cluster::DrainFlag::default());
        let relays = Arc::new(cluster::relay::RelayCount::default());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            cmd_tx: cmd_tx.clone(),
            cmd_rx,
            drain: drain.clone(),
            relays: relays.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("daily-server".into())
            .spawn(move || {
                let listen = Listen {
                    tcp,
                    tls,
                    limits: config.limits,
                };
                runtime.block_on(serve(
                    listen,
                    udp,
                    udp_addr,
                    core,
                    api,
                    catalog,
                    redis,
                    shared,
                    shutdown_rx,
                    ready_tx,
                ));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|source| ServerError::Runtime { source })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(ServerError::StartFailed);
            }
        }
        tracing::info!(http = %local_addr, udp = %udp_addr, "daily-server started");
        Ok(RoomServer {
            local_addr,
            scheme,
            has_api_key: config.api_key.is_some(),
            udp_addr,
            shutdown: shutdown_tx,
            thread: Some(thread),
            clustered,
            drain,
            relays,
            cmds: cmd_tx,
        })
    }

    /// The HTTP address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://HOST:PORT`, or `https://` with TLS (IPv6 hosts in brackets).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Whether the server speaks TLS (HTTPS and WSS).
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// `http(s)://HOST:PORT/room`: the meeting URL clients join.
    pub fn room_url(&self, room: &str) -> String {
        format!("{}/{}", self.url(), room)
    }

    /// Whether the server was started with an API key (REST API on, private rooms possible).
    pub fn has_api_key(&self) -> bool {
        self.has_api_key
    }

    /// `http(s)://HOST:PORT/v1`: the REST API's base URL (Daily's `https://api.daily.co/v1`), e.g.
    /// pipecat's `DailyRESTHelper(daily_api_url=...)`.
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Cluster mode: starts draining (idempotent). The node stops taking new rooms: it is
    /// published as `draining` at once, placement skips it, and it gives back every room placed
    /// on it that has no call here, so their next joins go to other nodes. Running calls go on,
    /// and joins to them are still served here (a room lives on one node). Wait for
    /// [`RoomServer::is_drained`], then [`RoomServer::shutdown`]; `daily-server` does this on
    /// SIGTERM (`--drain-timeout`). LiveKit's nodes drain the same way.
    ///
    /// # Errors
    /// [`ServerError::NotClustered`] without [`ServerConfig::redis_url`]: a single server has
    /// nowhere to send new rooms.
    pub fn drain(&self) -> Result<(), ServerError> {
        if !self.clustered {
            return Err(ServerError::NotClustered);
        }
        self.drain.start();
        Ok(())
    }

    /// Whether this node has no participants left (counting those within their resume grace)
    /// and relays no signalling to other nodes: true once a drain is complete. `false` if the
    /// server has stopped answering within 2 s.
    pub fn is_drained(&self) -> bool {
        let (reply, rx) = tokio::sync::oneshot::channel();
        if self.cmds.send(driver::Request::Load { reply }).is_err() {
            return true; // stopped: nothing left here
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut rx = rx;
        loop {
            match rx.try_recv() {
                Ok(rooms) => return rooms.iter().all(|(_, n)| *n == 0) && self.relays.get() == 0,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => return true,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
    }

    /// Tells every connected participant `callEnded`, closes sockets, stops all threads and
    /// joins them. Idempotent. Also done on drop.
    pub fn shutdown(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the server thread panicked");
            }
            tracing::info!(http = %self.local_addr, "daily-server stopped");
        }
    }
}

impl Drop for RoomServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Made in [`RoomServer::start`], shared between the handle and the server's tasks.
struct Shared {
    cmd_tx: mpsc::UnboundedSender<driver::Request>,
    cmd_rx: mpsc::UnboundedReceiver<driver::Request>,
    drain: Arc<cluster::DrainFlag>,
    relays: Arc<cluster::relay::RelayCount>,
}

/// The HTTP side's part of the start-up: its socket, TLS and limits.
struct Listen {
    tcp: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
}

/// Runs everything until shutdown, then waits (bounded) for connections to flush.
#[allow(clippy::too_many_arguments)]
async fn serve(
    listen: Listen,
    udp: UdpSocket,
    udp_addr: SocketAddr,
    core: sfu::Sfu,
    api: Arc<rest::Api>,
    catalog: Option<Arc<recorder::catalog::Catalog>>,
    redis: Option<(String, String)>,
    shared: Shared,
    mut shutdown: watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<Result<(), ServerError>>,
) {
    let Shared {
        cmd_tx,
        cmd_rx,
        drain,
        relays,
    } = shared;
    let (tcp, udp) = match (
        tokio::net::TcpListener::from_std(listen.tcp),
        tokio::net::UdpSocket::from_std(udp),
    ) {
        (Ok(t), Ok(u)) => (t, u),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot register the sockets with the runtime");
            return;
        }
    };
    let cluster = match redis {
        Some((redis_url, node_url)) => match cluster::Cluster::connect(&redis_url, node_url, drain).await {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = ready.send(Err(e.into()));
                return;
            }
        },
        None => None,
    };
    let recorder = match catalog {
        Some(c) => {
            let tx = cmd_tx.clone();
            let on_failed: recorder::OnFailed = Box::new(move |key, message| {
                let _ = tx.send(driver::Request::RecorderFailed { key, message });
            });
            match recorder::Recorder::start(c, on_failed) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the recorder thread");
                    return;
                }
            }
        }
        None => None,
    };
    let tracker = Arc::new(http::ConnTracker::default());
    let limiter = limits::ConnLimiter::new(listen.limits);
    let cmd_tx_heartbeat = cmd_tx.clone();
    let state = http::AppState {
        cmds: cmd_tx,
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        next_conn: Arc::new(AtomicU64::new(1)),
        api,
        limiter: limiter.clone(),
        cluster: cluster.clone(),
        relays,
    };
    let sfu_task = tokio::spawn(driver::run(
        udp,
        udp_addr,
        cmd_rx,
        shutdown.clone(),
        core,
        recorder,
    ));
    let listener = listener::Listener {
        router: http::router(state),
        tls: listen.tls,
        limiter: limiter.clone(),
        shutdown: shutdown.clone(),
        refusing: Arc::new(AtomicUsize::new(0)),
    };
    let http_task = tokio::spawn(listener.run(tcp));
    let bus_task = cluster
        .clone()
        .map(|c| tokio::spawn(c.run_bus(cmd_tx_heartbeat.clone(), shutdown.clone())));
    let heartbeat_task = cluster.map(|c| {
        tracing::info!(node = %c.id, url = %c.url, "cluster node registering");
        tokio::spawn(c.run_heartbeat(cmd_tx_heartbeat, shutdown.clone()))
    });
    let _ = ready.send(Ok(()));
    let _ = shutdown.wait_for(|s| *s).await;
    // The SFU task sends `callEnded` + close to every participant before it ends, and waits
    // for the recorder to close its files: longer than the grace, so that recordings end with
    // their end-of-stream pages, but bounded (a stalled disk must not hang the shutdown; the
    // files then keep what reached them, page by page).
    let _ = tokio::time::timeout(RECORDER_GRACE, sfu_task).await;
    if let Some(b) = bus_task {
        b.abort();
    }
    if let Some(h) = heartbeat_task {
        // It deregisters the node (bounded by the Redis command timeout).
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, h).await;
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait_idle()).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, http_task).await;
    // Every socket closed (kept-alive HTTP connections finish their request and close).
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, limiter.wait_idle()).await;
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
