//! [`CallClient`]: the thin shell around [`CallCore`]. Each API call registers its completion,
//! hands the call to the core under one lock and carries out what the core output, in order:
//! events and completions go to the client's outbox, signalling to the session's socket
//! writer, transport commands to `session.rs`. A timer task calls `handle_timeout` at the
//! core's next deadline. Nothing here decides anything Daily's rules say.
//!
//! The outbox keeps the core's order without a thread or task of its own: entries are queued
//! under the core's lock, and whichever thread finds the outbox idle after releasing that lock
//! delivers everything queued, outside every lock, until it is empty; a thread that finds it
//! busy leaves its entries to the one delivering. A callback may call back into the client: its
//! entries join the queue behind it. A dispatch task per client would cost a task (and a hop
//! on a runtime busy with DTLS handshakes) for the same order.

use super::core::{CallCore, CompletionId, Output, SourceHandle, TransportCommand};
use super::route::{Media, RendererSpec};
use super::session::{self, Session};
use super::types::{CallState, ClientEvent, Done, EventSink, IceConfig, JoinDone, JoinSettings};
use crate::clock::MediaClock;
use crate::source::AudioSource;
use crate::video::{VideoRendererSpec, VideoSource};
use crate::{ClientError, ColorFormat, Engine, InputChange, MediaSource, VideoFrameRef};
use daily_proto::PermissionsUpdate;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

impl SourceHandle for AudioSource {
    fn same_source(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

pub(crate) type Core = CallCore<MediaSource>;

enum Completion {
    Done(Done),
    Join(JoinDone),
}

enum Dispatch {
    Event(ClientEvent),
    Complete(Completion, Result<Value, ClientError>),
}

/// The core and what belongs with it under one lock.
pub(crate) struct Locked {
    pub core: Core,
    completions: HashMap<CompletionId, Completion>,
    next_completion: CompletionId,
    /// This client counts in the engine's "clients in a call" (the speaker plays only then).
    counted: bool,
}

pub(crate) struct ClientInner {
    pub rt: tokio::runtime::Handle,
    pub clock: Arc<MediaClock>,
    flags: Arc<crate::engine::AudioFlags>,
    locked: Mutex<Locked>,
    outbox: Mutex<Outbox>,
    timer: watch::Sender<Option<Instant>>,
    /// Live sessions by generation.
    pub sessions: Mutex<HashMap<u64, Arc<Session>>>,
    /// Signalling connections being opened, by generation (aborted by a teardown).
    pub connecting: Mutex<HashMap<u64, tokio::task::JoinHandle<()>>>,
    /// The receive side: forwarded tracks, receive pipelines, renderers.
    pub media: Mutex<Media>,
    pub next_id: AtomicU64,
    events: EventSink,
    me: Weak<ClientInner>,
}

/// Events and completions waiting for delivery, in the core's order.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Dispatch>,
    /// A thread is delivering.
    busy: bool,
}

pub(crate) fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn relock_media(inner: &ClientInner) -> MutexGuard<'_, Media> {
    relock(&inner.media)
}

impl ClientInner {
    fn lock(&self) -> MutexGuard<'_, Locked> {
        relock(&self.locked)
    }

    /// Reads the core.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&Core) -> R) -> R {
        f(&self.lock().core)
    }

    /// Hands something to the core and carries out its output.
    pub(crate) fn drive<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let mut g = self.lock();
        let r = f(&mut g.core, Instant::now());
        self.settle(g);
        r
    }

    /// An API call with a completion.
    fn call(&self, c: Completion, f: impl FnOnce(&mut Core, Instant, CompletionId)) {
        let mut g = self.lock();
        let id = g.next_completion;
        g.next_completion += 1;
        g.completions.insert(id, c);
        f(&mut g.core, Instant::now(), id);
        self.settle(g);
    }

    /// Carries out the core's output, releases its lock, then delivers the outbox.
    fn settle(&self, mut g: MutexGuard<'_, Locked>) {
        self.flush(&mut g);
        drop(g);
        self.deliver();
    }

    /// Delivers the outbox in order unless another thread is doing it (see the module docs).
    fn deliver(&self) {
        {
            let mut o = relock(&self.outbox);
            if o.busy || o.queue.is_empty() {
                return;
            }
            o.busy = true;
        }
        loop {
            let next = {
                let mut o = relock(&self.outbox);
                match o.queue.pop_front() {
                    Some(d) => d,
                    None => {
                        o.busy = false;
                        return;
                    }
                }
            };
            match next {
                Dispatch::Event(e) => (self.events)(e),
                Dispatch::Complete(Completion::Done(d), r) => d(r.map(|_| ())),
                Dispatch::Complete(Completion::Join(d), r) => d(r),
            }
        }
    }

    fn flush(&self, g: &mut Locked) {
        while let Some(o) = g.core.poll_output() {
            match o {
                Output::Event(e) => {
                    if let ClientEvent::Error(m) = &e {
                        tracing::warn!(error = %m, "call error");
                    }
                    if let ClientEvent::CallStateUpdated(s) = &e {
                        match s {
                            CallState::Joined => tracing::info!("joined"),
                            CallState::Left => tracing::info!("left the call"),
                            _ => {}
                        }
                        let joined = *s == CallState::Joined;
                        if joined != g.counted {
                            g.counted = joined;
                            if joined {
                                self.flags.calls.fetch_add(1, Ordering::AcqRel);
                            } else {
                                self.flags.calls.fetch_sub(1, Ordering::AcqRel);
                            }
                        }
                    }
                    relock(&self.outbox).queue.push_back(Dispatch::Event(e));
                }
                Output::Complete(id, r) => {
                    if let Some(c) = g.completions.remove(&id) {
                        relock(&self.outbox).queue.push_back(Dispatch::Complete(c, r));
                    }
                }
                Output::Signal(generation, msg) => {
                    if let Some(s) = relock(&self.sessions).get(&generation) {
                        let _ = s.ws_tx.send(msg);
                    }
                }
                Output::Transport(cmd) => self.transport(cmd),
            }
        }
        let next = g.core.poll_timeout();
        self.timer.send_if_modified(|t| std::mem::replace(t, next) != next);
    }

    /// Carries out a transport command (never blocks: work is spawned or queued).
    fn transport(&self, cmd: TransportCommand<MediaSource>) {
        let me = self.me.clone();
        match cmd {
            TransportCommand::Connect { generation, url } => {
                // Inserted under the map's lock, which the task takes to remove itself: a task
                // that connects at once cannot run its removal before this insert.
                let mut connecting = relock(&self.connecting);
                let task = self.rt.spawn(session::connect(me, generation, url));
                connecting.insert(generation, task);
            }
            TransportCommand::StartMedia { generation, loopback, ice, tracks } => {
                if let Some(s) = relock(&self.sessions).get(&generation) {
                    let _ = s.cmd_tx.send(session::MediaCmd::Start { loopback, ice, tracks });
                }
            }
            TransportCommand::Publish { generation, tracks, done } => {
                let sent = relock(&self.sessions)
                    .get(&generation)
                    .is_some_and(|s| s.cmd_tx.send(session::MediaCmd::Publish { tracks, done }).is_ok());
                if !sent {
                    // Reported from a task: the core is locked here.
                    self.rt.spawn(async move {
                        if let Some(inner) = me.upgrade() {
                            inner.drive(|c, now| c.handle_publish_done(now, done, Err(ClientError::CallEnded)));
                        }
                    });
                }
            }
            TransportCommand::PublishAnswer { generation, sdp } => {
                if let Some(s) = relock(&self.sessions).get(&generation) {
                    if let Some(tx) = relock(&s.publish_answer).take() {
                        let _ = tx.send(sdp);
                    }
                }
            }
            TransportCommand::Subscribe { generation, sdp, tracks } => {
                if let Some(s) = relock(&self.sessions).get(&generation) {
                    let _ = s.sub_tx.send((sdp, tracks));
                }
            }
            TransportCommand::Reconnect { generation, url, resume } => {
                if let Some(s) = relock(&self.sessions).get(&generation) {
                    let task = self.rt.spawn(session::reconnect(me, generation, url, resume));
                    relock(&s.tasks).push(task);
                }
            }
            TransportCommand::RestartIce { generation, tracks } => {
                if let Some(s) = relock(&self.sessions).get(&generation) {
                    let _ = s.cmd_tx.send(session::MediaCmd::RestartIce { tracks });
                }
            }
            TransportCommand::ParticipantLeft { generation, participant_id } => {
                relock(&self.media).participant_left(generation, &participant_id);
            }
            TransportCommand::Teardown { generation } => {
                if let Some(t) = relock(&self.connecting).remove(&generation) {
                    t.abort();
                }
                let s = relock(&self.sessions).remove(&generation);
                self.rt.spawn(session::teardown(me, generation, s));
            }
        }
    }
}

async fn timer_loop(me: Weak<ClientInner>, mut rx: watch::Receiver<Option<Instant>>) {
    loop {
        let next = *rx.borrow_and_update();
        match next {
            None => {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                        let Some(inner) = me.upgrade() else { return };
                        inner.drive(|c, now| c.handle_timeout(now));
                    }
                    r = rx.changed() => if r.is_err() { return },
                }
            }
        }
    }
}

fn now_epoch_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A call client (daily-python's `CallClient`). Methods return at once; results arrive in
/// completions and events, in the order the call core decided (see `core.rs`), on the thread
/// that caused them (a runtime thread, or the caller's own for an immediate error). Event
/// sinks and completions must not block for long, nor wait for another completion of the
/// same client (it is delivered after them).
pub struct CallClient {
    _engine: Engine,
    inner: Arc<ClientInner>,
}

/// The client's call state, for a recorder that holds only a weak reference.
pub(crate) fn state_of(inner: &ClientInner) -> CallState {
    inner.with_core(|c| c.call_state())
}

/// A recording starts: every receive pipeline and send pipe of the client gets a tap now, and
/// every one made while `link` is listed gets one when it is made (`route.rs`, `publish.rs`).
pub(crate) fn attach_recorder(inner: &Arc<ClientInner>, link: &Arc<crate::record::RecLink>) {
    super::route::tap_receivers(inner, link);
    let sessions: Vec<Arc<Session>> = relock(&inner.sessions).values().cloned().collect();
    for s in sessions {
        if let Some(t) = s.transports() {
            super::publish::tap_senders(&t, link);
        }
    }
}

/// A recording stopped: nodes made from now on get no tap (the existing taps close).
pub(crate) fn detach_recorder(inner: &Arc<ClientInner>, link: &Arc<crate::record::RecLink>) {
    relock_media(inner).recorders.retain(|l| !Arc::ptr_eq(l, link));
}

impl CallClient {
    pub(crate) fn inner_arc(&self) -> Arc<ClientInner> {
        self.inner.clone()
    }

    /// Creates a client on `engine`; `events` receives every event in order.
    pub fn new(engine: &Engine, events: EventSink) -> CallClient {
        let e = engine.inner();
        let (ttx, trx) = watch::channel(None);
        let inner = Arc::new_cyclic(|me| ClientInner {
            rt: e.runtime.handle().clone(),
            clock: e.clock.clone(),
            flags: e.flags.clone(),
            locked: Mutex::new(Locked {
                core: CallCore::new(uuid::Uuid::new_v4().to_string(), now_epoch_s()),
                completions: HashMap::new(),
                next_completion: 1,
                counted: false,
            }),
            outbox: Mutex::new(Outbox::default()),
            events,
            timer: ttx,
            sessions: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            media: Mutex::new(Media::default()),
            next_id: AtomicU64::new(1),
            me: me.clone(),
        });
        inner.rt.spawn(timer_loop(Arc::downgrade(&inner), trx));
        CallClient { _engine: engine.clone(), inner }
    }

    /// The current call state.
    pub fn call_state(&self) -> CallState {
        self.inner.with_core(|c| c.call_state())
    }

    /// `participants()`: `{"local": {...}, "<id>": {...}}`.
    pub fn participants(&self) -> Value {
        self.inner.with_core(|c| c.participants())
    }

    /// Joins `meeting_url`. A malformed URL completes with an error at once.
    pub fn join(&self, meeting_url: &str, meeting_token: Option<String>, settings: JoinSettings, done: JoinDone) {
        tracing::info!(url = %meeting_url, "joining");
        self.inner.call(Completion::Join(done), |c, now, id| c.handle_join(now, meeting_url, meeting_token, settings, id));
    }

    /// Leaves the call. Completes with `Ok` when not in a call.
    pub fn leave(&self, done: Done) {
        self.inner.call(Completion::Done(done), |c, now, id| c.handle_leave(now, id));
    }

    /// Leaves if needed and waits for it (at most a few seconds), then forgets the sources
    /// and renderers. Not from inside one of this client's callbacks (it would wait 5 s).
    pub fn release(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.leave(Box::new(move |_| {
            let _ = tx.send(());
        }));
        let _ = rx.recv_timeout(Duration::from_secs(5));
        self.inner.drive(|c, _| c.handle_release());
        let mut media = relock(&self.inner.media);
        media.renderers.clear();
        media.video_renderers.clear();
    }

    /// Sets the display name; sent to the room when joined.
    pub fn set_user_name(&self, name: &str) {
        self.inner.drive(|c, _| c.handle_set_user_name(name));
    }

    /// Publishes `source` as custom track `name` (now, or at join). With `ignore_level`, the
    /// track's audio never makes this participant the active speaker.
    pub fn add_custom_audio_track(&self, name: &str, track_id: String, source: AudioSource, ignore_level: bool, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_custom_track(name, track_id, source.into(), ignore_level, false, id));
    }

    /// Replaces the source of custom track `name` (`update_custom_audio_track`).
    pub fn update_custom_audio_track(&self, name: &str, track_id: String, source: AudioSource, ignore_level: bool, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_custom_track(name, track_id, source.into(), ignore_level, true, id));
    }

    /// Publishes `source` as custom video track `name` (now, or at join), encoded within the
    /// camera's `sendSettings` limits.
    pub fn add_custom_video_track(&self, name: &str, track_id: String, source: VideoSource, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_custom_video_track(name, track_id, source.into(), false, id));
    }

    /// Replaces the source of custom video track `name` (`update_custom_video_track`).
    pub fn update_custom_video_track(&self, name: &str, track_id: String, source: VideoSource, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_custom_video_track(name, track_id, source.into(), true, id));
    }

    /// Stops publishing custom video track `name`.
    pub fn remove_custom_video_track(&self, name: &str, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_remove_custom_video_track(name, id));
    }

    /// Stops publishing custom track `name`.
    pub fn remove_custom_audio_track(&self, name: &str, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_remove_custom_track(name, id));
    }

    /// Changes the microphone input: `Some((track_id, source))` publishes that source as the
    /// microphone, `None` stops it. Applies at once in a call, else at the next join.
    pub fn set_microphone(&self, microphone: Option<(String, AudioSource)>, done: Done) {
        let change = InputChange { microphone: Some(microphone.map(|(id, s)| (id, s.into()))), ..Default::default() };
        self.update_inputs(change, &Value::Null, done)
    }

    /// Changes the camera input: `Some((track_id, source))` publishes that source as the
    /// camera (while `publishing.camera.isPublishing`), `None` stops it.
    pub fn set_camera(&self, camera: Option<(String, VideoSource)>, done: Done) {
        let change = InputChange { camera: Some(camera.map(|(id, s)| (id, s.into()))), ..Default::default() };
        self.update_inputs(change, &Value::Null, done)
    }

    /// daily-python's `update_inputs`: merges `patch` (Daily's input settings, shorthands
    /// such as `"camera": False` allowed) into `inputs()`, and switches the sources `change`
    /// names (`sources::input_change` resolves them from `settings.deviceId` /
    /// `settings.customTrack`). Emits `InputsUpdated` before `done`.
    pub fn update_inputs(&self, change: InputChange, patch: &Value, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_update_inputs(change, patch, id));
    }

    /// daily-python's `set_ice_config`: STUN/TURN servers and policy used from the next
    /// `join` on (a call in progress keeps its transports). `IceConfig::default()` clears it.
    pub fn set_ice_config(&self, config: IceConfig, done: Done) {
        let r = self.inner.drive(|c, _| c.handle_set_ice_config(config));
        done(r)
    }

    /// `inputs()`.
    pub fn inputs(&self) -> Value {
        self.inner.with_core(|c| c.inputs().clone())
    }

    /// `publishing()`.
    pub fn publishing(&self) -> Value {
        self.inner.with_core(|c| c.publishing().clone())
    }

    /// `subscriptions()`.
    pub fn subscriptions(&self) -> Value {
        self.inner.with_core(|c| c.subscriptions().clone())
    }

    /// `subscription_profiles()`.
    pub fn subscription_profiles(&self) -> Value {
        self.inner.with_core(|c| c.subscription_profiles().clone())
    }

    /// `participant_counts()`: `{"present": n, "hidden": n}` as the server last reported
    /// (the local participant included; zeros when not in a call).
    pub fn participant_counts(&self) -> Value {
        let (present, hidden) = self.inner.with_core(|c| c.counts());
        json!({"present": present, "hidden": hidden})
    }

    /// `active_speaker()`: the participant dict of the room's active speaker, or `Null`.
    pub fn active_speaker(&self) -> Value {
        self.inner.with_core(|c| c.active_speaker()).map_or(Value::Null, |p| p.to_value())
    }

    /// daily-python's `update_publishing`: the microphone's `isPublishing: False` stops
    /// sending it and `sendSettings` re-tunes its encoder (`"speech"`, `"music"`, or
    /// `{"channelConfig": "mono"|"stereo", "bitrate": bit/s}`). `PublishingUpdated` before
    /// `done`.
    pub fn update_publishing(&self, patch: &Value, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_update_publishing(patch, id));
    }

    /// daily-python's `update_subscription_profiles`; `done` fires once the server applied
    /// the change (at once when not in a call: applied at join).
    pub fn update_subscription_profiles(&self, patch: &Value, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_update_subscription_profiles(patch, id));
    }

    /// daily-python's `update_subscriptions`: `participant_settings` (`{pid: {"profile":
    /// name, "media": {"microphone": "subscribed"|"unsubscribed"|"staged", "customAudio":
    /// {name: ...}}}}`) merge into `subscriptions()`, `profile_settings` into the profiles.
    pub fn update_subscriptions(&self, participant_settings: &Value, profile_settings: &Value, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_update_subscriptions(participant_settings, profile_settings, id));
    }

    /// daily-python's `send_app_message`: any JSON value, to everybody (`to` = `None` or
    /// `"*"`) or one participant; at most 4096 bytes serialised (Daily's limit).
    pub fn send_app_message(&self, data: Value, to: Option<String>, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_send_app_message(data, to, id));
    }

    /// daily-python's `update_permissions` of the local participant.
    pub fn update_permissions(&self, update: PermissionsUpdate, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_update_permissions(update, id));
    }

    /// The `permissions` part of daily-python's `update_remote_participants`.
    pub fn update_remote_permissions(&self, updates: Vec<(String, PermissionsUpdate)>, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_update_remote_permissions(updates, id));
    }

    /// `start_recording(streaming_settings, stream_id, force_new)`: `done` gets the stream id,
    /// after the room's `recordingStarted` (server-side recording, `docs/signalling.md`).
    pub fn start_recording(&self, streaming_settings: &Value, stream_id: Option<String>, force_new: bool, done: JoinDone) {
        self.inner.call(Completion::Join(done), |c, _, id| c.handle_start_recording(streaming_settings, stream_id, force_new, id));
    }

    /// `stop_recording(stream_id)`: `done` after the room's `recordingStopped`.
    pub fn stop_recording(&self, stream_id: Option<String>, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_stop_recording(stream_id, id));
    }

    /// daily-python's `eject_remote_participants`: owners and `participants` admins only.
    pub fn eject(&self, ids: Vec<String>, done: Done) {
        self.inner.call(Completion::Done(done), |c, _, id| c.handle_eject(ids, id));
    }

    /// The microphone input: its track id, if one is set.
    pub fn microphone_track_id(&self) -> Option<String> {
        self.inner.with_core(|c| c.microphone_track_id().map(str::to_owned))
    }

    /// Renders `audio_source` of `participant_id` as mono PCM at `sample_rate`, `interval_ms`
    /// at a time, into `sink`. Several renderers may watch the same track. `sink` runs on the
    /// engine's service thread, shared by every client: it should hand the audio off rather
    /// than block.
    pub fn set_audio_renderer(
        &self,
        participant_id: &str,
        audio_source: &str,
        sample_rate: u32,
        interval_ms: u32,
        sink: Arc<dyn Fn(&[i16]) + Send + Sync>,
    ) -> Result<(), ClientError> {
        crate::receive::Renderer::validate(sample_rate, interval_ms)?;
        let spec = RendererSpec {
            participant_id: participant_id.to_owned(),
            audio_source: audio_source.to_owned(),
            sample_rate,
            interval_ms,
            sink,
        };
        relock(&self.inner.media).add_renderer(&self.inner.clock, spec);
        Ok(())
    }

    /// daily-python's `set_video_renderer`: `sink` gets every decoded frame of
    /// `participant_id`'s `video_source` (`"camera"`, `"screenVideo"` or a custom video track
    /// name) in `color_format`, from the track's decoder thread (keep it short).
    pub fn set_video_renderer(
        &self,
        participant_id: &str,
        video_source: &str,
        color_format: ColorFormat,
        sink: Arc<dyn Fn(&VideoFrameRef<'_>) + Send + Sync>,
    ) -> Result<(), ClientError> {
        let spec = VideoRendererSpec {
            participant_id: participant_id.to_owned(),
            video_source: video_source.to_owned(),
            format: color_format,
            sink,
        };
        relock(&self.inner.media).add_video_renderer(spec);
        Ok(())
    }

    /// Receive statistics of every remote track: `{participant_id: {audio_source: {...}}}`.
    pub fn receive_stats(&self) -> Value {
        relock(&self.inner.media).receive_stats()
    }

    /// Send statistics: Opus frames sent and dropped (queue full or not yet connected).
    pub fn send_stats(&self) -> Value {
        let generation = self.inner.with_core(|c| c.generation());
        match relock(&self.inner.sessions).get(&generation) {
            Some(s) => {
                let mut v = json!({
                    "framesSent": s.send_stats.frames_sent.load(Ordering::Relaxed),
                    "framesDropped": s.send_stats.frames_dropped.load(Ordering::Relaxed),
                });
                let video = s.transports().map(|t| super::publish::video_send_stats(&t)).unwrap_or_default();
                if !video.is_empty() {
                    v["video"] = Value::Object(video);
                }
                v
            }
            None => json!({}),
        }
    }

    /// `get_network_stats()`: the latest network stats dict (see `netstats`), updated every
    /// 2 s in a call; the default dict before the first update and when not in a call.
    pub fn network_stats(&self) -> Value {
        self.inner.with_core(|c| c.network_stats().cloned()).unwrap_or_else(crate::netstats::default_stats)
    }
}

impl Drop for CallClient {
    fn drop(&mut self) {
        let state = self.call_state();
        if matches!(state, CallState::Joining | CallState::Joined | CallState::Leaving) {
            self.release();
        }
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let g = self.locked.get_mut().unwrap_or_else(|e| e.into_inner());
        if g.counted {
            self.flags.calls.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
