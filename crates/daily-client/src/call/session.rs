//! The IO of one session (one `join`): the signalling WebSocket (a reader and a writer task),
//! and the tasks that carry out the core's transport commands in order (start the media,
//! publish, answer subscribe offers). Each reports back to the core through
//! `ClientInner::drive`; none decides anything itself.

use super::client::{ClientInner, relock, relock_media};
use super::core::{CompletionId, SendTrackSpec};
use super::publish::{self, SendTrack};
use super::types::{Connection, IceConfig};
use crate::ClientError;
use crate::send::SendStats;
use crate::MediaSource;
use daily_proto::{ClientMessage, ForwardedTrack, RoomUrl, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::PeerConnection;

/// Work for the session's media task, done in order.
pub(crate) enum MediaCmd {
    Start { loopback: bool, ice: IceConfig, tracks: Vec<SendTrackSpec<MediaSource>> },
    Publish { tracks: Vec<SendTrackSpec<MediaSource>>, done: CompletionId },
    /// ICE restart of the send transport (a publish offer with new ICE credentials).
    RestartIce { tracks: Vec<SendTrackSpec<MediaSource>> },
}

/// How often the client pings the server on the signalling connection (WebSocket ping
/// frames, RFC 6455 section 5.5.2; the server answers each with a pong).
pub const SIGNALLING_PING_INTERVAL: Duration = Duration::from_secs(2);
/// A signalling connection that has received nothing (no message, no pong) for this long is
/// taken for dead: it is dropped and the session resumed on a new one (`core/link.rs`). Three
/// pings' worth, so one lost or delayed pong is not enough.
pub const SIGNALLING_SILENCE_LIMIT: Duration = Duration::from_secs(6);
/// How often the video encoders' bitrate follows the send transport's bandwidth estimate.
const BWE_SAMPLE_INTERVAL: Duration = Duration::from_millis(500);
/// How long one reconnection attempt may take to open the socket (a blackholed network
/// would otherwise hold it for TCP's SYN retries, minutes).
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The two peer connections of a session, once the server has accepted the join.
pub(crate) struct Transports {
    pub send_pc: Arc<dyn PeerConnection>,
    pub recv_pc: Arc<dyn PeerConnection>,
    pub send_tracks: tokio::sync::Mutex<Vec<SendTrack>>,
    pub send_connected: watch::Receiver<bool>,
    send_failed: watch::Receiver<bool>,
    /// ICE gathering of each transport completed (see `wait_local_sdp`).
    pub send_gathered: watch::Receiver<bool>,
    pub recv_gathered: watch::Receiver<bool>,
    /// Bumped whenever the mid → track mapping of the receive transport changes.
    pub forward_version: Arc<AtomicU64>,
    reports: crate::netstats::ReportTable,
    /// Keyframe requests for our video SSRCs (`video::KeyframeTable`).
    pub keyframes: crate::video::KeyframeTable,
    /// The send transport's bandwidth estimate in bit/s (0 = none yet), read from its
    /// congestion controller while video is published; the video encoders follow it.
    pub estimate: Arc<std::sync::atomic::AtomicU32>,
}

pub(crate) struct Session {
    pub generation: u64,
    /// Signalling to send: written by the current connection's writer task, queued while
    /// there is none (between a lost connection and its replacement).
    pub ws_tx: mpsc::UnboundedSender<ClientMessage>,
    ws_rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<ClientMessage>>>,
    /// Counts the signalling connections of this session; only the current one reports.
    link: AtomicU64,
    /// The current connection's reader and writer.
    link_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub cmd_tx: mpsc::UnboundedSender<MediaCmd>,
    pub sub_tx: mpsc::UnboundedSender<(String, Vec<ForwardedTrack>)>,
    /// Where the server's answer to our pending publish offer goes.
    pub publish_answer: Mutex<Option<oneshot::Sender<String>>>,
    transports: watch::Sender<Option<Arc<Transports>>>,
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub send_stats: Arc<SendStats>,
}

impl Session {
    pub(crate) fn transports(&self) -> Option<Arc<Transports>> {
        self.transports.borrow().clone()
    }
}

pub(crate) fn werr(e: webrtc::error::Error) -> ClientError {
    ClientError::WebRtc(e.to_string())
}

/// Waits for ICE gathering to finish and returns the full local SDP (non-trickle signalling).
/// Woken by the peer connection's gathering-complete event (`gathered`); it also looks again
/// every 2 ms in case an event is missed, and gives up after 5 s. (Polling alone, every 2 ms,
/// cost each offer and answer 1-3 ms on loopback.)
pub(crate) async fn wait_local_sdp(pc: &Arc<dyn PeerConnection>, gathered: &watch::Receiver<bool>) -> Result<String, ClientError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut gathered = gathered.clone();
    loop {
        let d = pc.local_description().await;
        if let Some(d) = &d {
            if d.sdp.contains("a=candidate") || Instant::now() > deadline {
                return Ok(d.sdp.clone());
            }
        }
        if Instant::now() > deadline {
            return Err(ClientError::Timeout("ICE gathering did not finish".into()));
        }
        let _ = tokio::time::timeout(Duration::from_millis(2), gathered.changed()).await;
    }
}

/// `TransportCommand::Connect`: opens the signalling connection and starts the session's
/// tasks. The core's deadline bounds how long this may take (a teardown aborts it).
pub(crate) async fn connect(me: Weak<ClientInner>, generation: u64, url: RoomUrl) {
    let ws_url = url.ws_url();
    // Nagle off: `join` and the publish offer go out back to back. `wss://` per `tls.rs`.
    let r = crate::tls::connect_ws(ws_url.as_str()).await;
    let Some(inner) = me.upgrade() else { return };
    relock(&inner.connecting).remove(&generation);
    let ws = match r {
        Ok((ws, _)) => ws,
        Err(e) => {
            let e = ClientError::Signalling(format!("could not connect to {ws_url}: {e}"));
            return inner.drive(|c, now| c.handle_join_failed(now, generation, e));
        }
    };
    let (ws_tx, ws_rx) = mpsc::unbounded_channel::<ClientMessage>();
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<MediaCmd>();
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel::<(String, Vec<ForwardedTrack>)>();
    let session = Arc::new(Session {
        generation,
        ws_tx,
        ws_rx: Arc::new(tokio::sync::Mutex::new(ws_rx)),
        link: AtomicU64::new(0),
        link_tasks: Mutex::new(Vec::new()),
        cmd_tx,
        sub_tx,
        publish_answer: Mutex::new(None),
        transports: watch::channel(None).0,
        tasks: Mutex::new(Vec::new()),
        send_stats: Arc::new(SendStats::default()),
    });
    spawn_link(&inner, &session, ws, None);
    let media = inner.rt.spawn({
        let (me, session) = (me.clone(), Arc::downgrade(&session));
        async move {
            while let Some(cmd) = cmd_rx.recv().await {
                let (Some(inner), Some(s)) = (me.upgrade(), session.upgrade()) else { return };
                match cmd {
                    // Boxed: the task lives as long as the session, and would otherwise be as large as
                    // the biggest future it ever awaits (webrtc-rs set-up) for all that time.
                    MediaCmd::Start { loopback, ice, tracks } => match Box::pin(start_media(&inner, &s, loopback, &ice, tracks)).await {
                        Ok(()) => inner.drive(|c, now| c.handle_media_ready(now, generation)),
                        Err(e) => inner.drive(|c, now| c.handle_join_failed(now, generation, e)),
                    },
                    MediaCmd::Publish { tracks, done } => {
                        let r = match s.transports() {
                            Some(t) => Box::pin(publish::publish(&inner, &s, &t, tracks, false)).await,
                            None => Err(ClientError::CallEnded),
                        };
                        inner.drive(|c, now| c.handle_publish_done(now, done, r));
                    }
                    MediaCmd::RestartIce { tracks } => {
                        if let Some(t) = s.transports() {
                            // A restart that fails (usually the outage goes on: no answer) is
                            // retried by the core; the outage itself is what the application
                            // hears of (`interrupted`, and `on_error` at the limit).
                            if let Err(e) = Box::pin(publish::publish(&inner, &s, &t, tracks, true)).await {
                                tracing::info!(error = %e, "ICE restart of the send transport failed");
                            }
                        }
                    }
                }
            }
        }
    });
    // Subscribe offers are answered in order by their own task, so they proceed while a
    // publish waits for its answer.
    let subscriber = inner.rt.spawn({
        let (me, session) = (me.clone(), Arc::downgrade(&session));
        async move {
            while let Some((sdp, tracks)) = sub_rx.recv().await {
                let Some(s) = session.upgrade() else { return };
                let mut rx = s.transports.subscribe();
                let t = match rx.wait_for(|t| t.is_some()).await {
                    Ok(t) => t.clone(),
                    Err(_) => return,
                };
                let (Some(inner), Some(t)) = (me.upgrade(), t) else { return };
                if let Err(e) = Box::pin(super::route::on_subscribe_offer(&inner, &s, &t, sdp, tracks)).await {
                    inner.drive(|c, _| c.handle_error_report(generation, format!("receive transport negotiation failed: {e}")));
                }
            }
        }
    });
    relock(&session.tasks).extend([media, subscriber]);
    // Registered under the core's lock, so the `join` the core now sends finds the socket.
    inner.drive(|c, now| {
        if c.is_live(generation) {
            relock(&inner.sessions).insert(generation, session.clone());
        }
        c.handle_signalling_open(now, generation);
    });
}

/// `MediaCmd::Start`: builds both peer connections, publishes what the core listed and
/// waits until the send transport is connected (the core's deadline bounds the wait).
async fn start_media(
    inner: &Arc<ClientInner>,
    session: &Arc<Session>,
    loopback: bool,
    ice: &IceConfig,
    tracks: Vec<SendTrackSpec<MediaSource>>,
) -> Result<(), ClientError> {
    let generation = session.generation;
    relock_media(inner).start(generation, &inner.clock);
    let reports = crate::netstats::ReportTable::default();
    let keyframes = crate::video::KeyframeTable::default();
    // Bandwidth estimation only where it has something to steer (`build_pc`): a session that
    // publishes video from its start. A video track added later in the call is sent at its
    // `sendSettings` cap, without an estimate.
    let estimating = tracks.iter().any(|t| t.key.is_video());
    let status = |connection: Connection| {
        let me = Arc::downgrade(inner);
        crate::netstats::ConnectionStatus::new(Box::new(move |connected| {
            if let Some(inner) = me.upgrade() {
                inner.drive(|c, now| c.handle_connection_status(now, generation, connection, connected));
            }
        }))
    };
    let (conn_tx, conn_rx) = watch::channel(false);
    let (fail_tx, fail_rx) = watch::channel(false);
    let (send_gathered_tx, send_gathered) = watch::channel(false);
    let (recv_gathered_tx, recv_gathered) = watch::channel(false);
    let send_pc = publish::build_pc(
        loopback,
        Arc::new(publish::PcHandler {
            connected: conn_tx,
            failed: fail_tx,
            gathered: send_gathered_tx,
            on_track: None,
            status: status(Connection::SendTransport),
        }),
        &reports,
        &keyframes,
        ice,
        estimating,
    )
    .await?;
    let slot: Arc<Mutex<Weak<Transports>>> = Arc::new(Mutex::new(Weak::new()));
    let recv_pc = publish::build_pc(
        loopback,
        Arc::new(publish::PcHandler {
            connected: watch::channel(false).0,
            failed: watch::channel(false).0,
            gathered: recv_gathered_tx,
            on_track: Some((Arc::downgrade(inner), generation, slot.clone())),
            status: status(Connection::RecvTransport),
        }),
        &reports,
        &keyframes,
        ice,
        false,
    )
    .await?;
    let t = Arc::new(Transports {
        send_pc,
        recv_pc,
        send_tracks: tokio::sync::Mutex::new(Vec::new()),
        send_connected: conn_rx,
        send_failed: fail_rx,
        send_gathered,
        recv_gathered,
        forward_version: Arc::new(AtomicU64::new(0)),
        reports,
        keyframes,
        estimate: Arc::new(std::sync::atomic::AtomicU32::new(0)),
    });
    *relock(&slot) = Arc::downgrade(&t);
    session.transports.send_replace(Some(t.clone()));
    let publishing = !tracks.is_empty();
    publish::publish(inner, session, &t, tracks, false).await?;
    if publishing {
        let (mut rx, mut fail) = (t.send_connected.clone(), t.send_failed.clone());
        loop {
            if *rx.borrow() {
                break;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Err(ClientError::WebRtc("send transport closed".into())) },
                _ = fail.changed() => if *fail.borrow() { return Err(ClientError::WebRtc("send transport failed to connect".into())) },
            }
        }
    }
    // Network stats every 2 s while this session lasts (teardown aborts the task).
    let me = Arc::downgrade(inner);
    let send_stats = session.send_stats.clone();
    let sampler = inner.rt.spawn(crate::netstats::sample_every(t.send_pc.clone(), t.recv_pc.clone(), t.reports.clone(), move |v| {
        let Some(inner) = me.upgrade() else { return false };
        // Adaptive in-band FEC: tuned to the worst send loss of the last 30 s, off after 30 s
        // without loss. Capped at 30 %: beyond it FEC cannot recover much and costs bitrate.
        let worst = v["stats"]["worstAudioSendPacketLoss"].as_f64().unwrap_or(0.0);
        let pct = (worst * 100.0).ceil().clamp(0.0, 30.0) as u8;
        send_stats.expected_loss_pct.store(pct, Ordering::Relaxed);
        inner.drive(|c, _| c.handle_network_stats(generation, v))
    }));
    relock(&session.tasks).push(sampler);
    if !estimating {
        return Ok(());
    }
    // The congestion controller's estimate, every BWE_SAMPLE_INTERVAL (webrtc-rs reports it in
    // the outbound RTP stats: `targetBitrate`).
    let weak = Arc::downgrade(&t);
    let bwe = inner.rt.spawn(async move {
        let mut tick = tokio::time::interval(BWE_SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(t) = weak.upgrade() else { return };
            let stats = t.send_pc.get_stats(Instant::now(), rtc::statistics::StatsSelector::None).await;
            let target = stats.outbound_rtp_streams().map(|s| s.target_bitrate).fold(0.0f64, f64::max);
            if target > 0.0 {
                t.estimate.store(target.min(f64::from(u32::MAX)) as u32, Ordering::Relaxed);
            }
        }
    });
    relock(&session.tasks).push(bwe);
    Ok(())
}

/// `TransportCommand::Teardown`: stops the session's tasks, closes its transports and
/// pipelines, then tells the core.
pub(crate) async fn teardown(me: Weak<ClientInner>, generation: u64, session: Option<Arc<Session>>) {
    if let Some(s) = session {
        for t in relock(&s.tasks).drain(..).chain(relock(&s.link_tasks).drain(..)) {
            t.abort();
        }
        if let Some(t) = s.transports.send_replace(None) {
            for mut st in t.send_tracks.lock().await.drain(..) {
                st.detach();
            }
            let _ = t.send_pc.close().await;
            let _ = t.recv_pc.close().await;
        }
    }
    let Some(inner) = me.upgrade() else { return };
    relock_media(&inner).end(generation, &inner.clock);
    inner.drive(|c, now| c.handle_teardown_done(now, generation));
}

/// Makes `ws` the session's signalling connection: sends `first` (a `resume`) on it, then
/// what is queued, pings the server every [`SIGNALLING_PING_INTERVAL`] and feeds what it
/// reads to the core. The previous connection's tasks are stopped; a connection silent for
/// [`SIGNALLING_SILENCE_LIMIT`] is closed and reported like any other close.
fn spawn_link(inner: &Arc<ClientInner>, session: &Arc<Session>, ws: WsStream, first: Option<ClientMessage>) {
    let generation = session.generation;
    let link = session.link.fetch_add(1, Ordering::AcqRel) + 1;
    let (mut ws_write, mut ws_read) = ws.split();
    let queue = session.ws_rx.clone();
    let writer = inner.rt.spawn(async move {
        if let Some(m) = first {
            if ws_write.send(Message::text(m.to_json())).await.is_err() {
                return;
            }
        }
        let mut queue = queue.lock().await;
        let mut ping = tokio::time::interval(SIGNALLING_PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await; // the first tick is immediate
        loop {
            let sent = tokio::select! {
                m = queue.recv() => match m {
                    Some(m) => ws_write.send(Message::text(m.to_json())).await,
                    None => break,
                },
                _ = ping.tick() => ws_write.send(Message::Ping(Default::default())).await,
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = ws_write.close().await;
    });
    let me = Arc::downgrade(inner);
    let weak_session = Arc::downgrade(session);
    let reader = inner.rt.spawn(async move {
        loop {
            let m = match tokio::time::timeout(SIGNALLING_SILENCE_LIMIT, ws_read.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => {
                    tracing::info!(silent_s = SIGNALLING_SILENCE_LIMIT.as_secs(), "signalling connection silent: taken for dead");
                    break;
                }
            };
            let text = match m {
                Ok(Message::Text(t)) => t,
                Ok(Message::Close(_)) | Err(_) => break,
                _ => continue, // pings and pongs: proof of life only
            };
            let Some(inner) = me.upgrade() else { return };
            match ServerMessage::parse(&text) {
                Ok(msg) => inner.drive(|c, now| c.handle_server_message(now, generation, msg)),
                Err(e) => inner.drive(|c, _| c.handle_error_report(generation, format!("bad message from the server: {e}"))),
            }
        }
        let current = weak_session.upgrade().is_some_and(|s| s.link.load(Ordering::Acquire) == link);
        if let (true, Some(inner)) = (current, me.upgrade()) {
            inner.drive(|c, now| c.handle_signalling_closed(now, generation));
        }
    });
    let old: Vec<_> = std::mem::replace(&mut *relock(&session.link_tasks), vec![writer, reader]);
    for t in old {
        t.abort();
    }
}

/// `TransportCommand::Reconnect`: a new signalling connection for session `generation`,
/// `resume` sent on it first.
pub(crate) async fn reconnect(me: Weak<ClientInner>, generation: u64, url: RoomUrl, resume: ClientMessage) {
    let ws_url = url.ws_url();
    let r = tokio::time::timeout(RECONNECT_TIMEOUT, crate::tls::connect_ws(ws_url.as_str())).await;
    let Some(inner) = me.upgrade() else { return };
    let ws = match r {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            let gone = e.refused();
            let e = ClientError::Signalling(format!("could not reconnect to {ws_url}: {e}"));
            return inner.drive(|c, now| c.handle_reconnect_failed(now, generation, e, gone));
        }
        Err(_) => {
            let e = ClientError::Timeout(format!("could not reconnect to {ws_url} within {} s", RECONNECT_TIMEOUT.as_secs()));
            return inner.drive(|c, now| c.handle_reconnect_failed(now, generation, e, false));
        }
    };
    let Some(session) = relock(&inner.sessions).get(&generation).cloned() else { return };
    spawn_link(&inner, &session, ws, Some(resume));
    inner.drive(|c, now| c.handle_signalling_reopened(now, generation));
}
