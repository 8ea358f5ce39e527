//! `CallClient`: joins a room on a daily-server over WebSocket signalling and two WebRTC peer
//! connections (webrtc-rs): the send transport (we offer) and the receive transport (the
//! server offers). See `docs/signalling.md` for the protocol.

use crate::clock::{MediaClock, NodeId};
use crate::receive::{InPacket, MAX_PAYLOAD, RecvNode, RecvStats, RenderSink, Renderer};
use crate::send::{SendPipe, SendStats, out_queue, rand_u32};
use crate::source::AudioSource;
use crate::{ClientError, Engine, shapes};
use daily_proto::{
    ClientMessage, ForwardedTrack, MAX_APP_MESSAGE_BYTES, MediaInfo, PROTOCOL_VERSION, ParticipantInfo,
    PermissionsUpdate, PublishedTrack, RoomUrl, ServerMessage, TrackSource,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RtpSender;

/// How long `join` waits for the server before failing.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames at or above this level (in -dBov, RFC 6464) carry the voice-activity bit.
const VOICE_LEVEL_DBOV: u8 = 50;

/// The RFC 6464 client-to-mixer audio level header extension.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// STUN/TURN servers and policy for the peer connections (daily-python's `set_ice_config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IceConfig {
    /// ICE servers (RFC 8445 section 5.1.1: STUN for server-reflexive, TURN for relay
    /// candidates).
    pub servers: Vec<IceServer>,
    /// Gather relay (TURN) candidates only (`iceTransportPolicy: "relay"`).
    pub relay_only: bool,
}

/// One STUN or TURN server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs (RFC 7064, RFC 7065).
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: String,
    /// TURN credential.
    pub credential: String,
}

impl IceConfig {
    /// Checks the URL schemes.
    pub fn validate(&self) -> Result<(), String> {
        for s in &self.servers {
            if s.urls.is_empty() {
                return Err("an ICE server needs at least one URL".into());
            }
            for u in &s.urls {
                if !["stun:", "stuns:", "turn:", "turns:"].iter().any(|p| u.starts_with(p)) {
                    return Err(format!("ICE server URL {u:?} must start with stun:, stuns:, turn: or turns:"));
                }
            }
        }
        Ok(())
    }
}

/// How long `join` waits for media transports to connect.
const TRANSPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Daily's call states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Created, never joined.
    Initialized,
    /// `join` in progress.
    Joining,
    /// In the call.
    Joined,
    /// `leave` in progress.
    Leaving,
    /// Left (or failed to join).
    Left,
}

impl CallState {
    /// The string daily-python uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Initialized => "initialized",
            CallState::Joining => "joining",
            CallState::Joined => "joined",
            CallState::Leaving => "leaving",
            CallState::Left => "left",
        }
    }
}

/// Events a client emits, in order. The binding maps them to `EventHandler` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// `on_call_state_updated(state)`.
    CallStateUpdated(CallState),
    /// `on_participant_joined(participant)`.
    ParticipantJoined(Value),
    /// `on_participant_updated(participant)`.
    ParticipantUpdated(Value),
    /// `on_participant_left(participant, reason)`.
    ParticipantLeft(Value, String),
    /// `on_error(message)`.
    Error(String),
    /// `on_active_speaker_changed(participant)`: the new speaker's participant dict (not
    /// sent when the speaker leaves; `active_speaker()` is then `None`).
    ActiveSpeakerChanged(Value),
    /// `on_app_message(message, sender)`: any JSON value and the sender's participant id.
    AppMessage(Value, String),
    /// `on_participant_counts_updated(counts)`: `{"present": n, "hidden": n}`.
    ParticipantCountsUpdated(Value),
    /// `on_inputs_updated(input_settings)`.
    InputsUpdated(Value),
    /// `on_publishing_updated(publishing_settings)`.
    PublishingUpdated(Value),
    /// `on_subscriptions_updated(subscriptions)`.
    SubscriptionsUpdated(Value),
    /// `on_subscription_profiles_updated(profiles)`.
    SubscriptionProfilesUpdated(Value),
    /// `on_network_stats_updated(stats)`.
    NetworkStatsUpdated(Value),
    /// `on_network_connection_status_updated(status)`: `{"connection": "signalling" |
    /// "sendTransport" | "recvTransport", "event": "connected" | "interrupted"}`.
    NetworkConnectionStatusUpdated(Value),
}

/// Receives events. Called from network threads: must not block for long.
pub type EventSink = Arc<dyn Fn(ClientEvent) + Send + Sync>;
/// Completion with no value.
pub type Done = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Completion of `join`.
pub type JoinDone = Box<dyn FnOnce(Result<Value, String>) + Send>;

/// What to publish at join.
#[derive(Clone, Default)]
pub struct JoinSettings {
    /// A custom source used as the microphone, with its track id (resolved by the caller from
    /// `inputs.microphone.settings`); `None` sends no microphone.
    pub microphone: Option<(String, AudioSource)>,
    /// Daily's `client_settings` (`{"inputs": ..., "publishing": ...}`, shorthands allowed):
    /// merged into `inputs()` / `publishing()`; the microphone's `isPublishing` and
    /// `sendSettings` (`"speech"`, `"music"`, `{"channelConfig", "bitrate"}`) apply.
    pub client_settings: Value,
}

/// How the microphone track is encoded (from `publishing.microphone.sendSettings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MicSend {
    /// Opus bitrate in bit/s; `None` = encoder default.
    bitrate: Option<u32>,
    /// 1 (`mono`) or 2 (`stereo`).
    channels: u16,
    /// `Voip` for `"speech"`, `Audio` otherwise.
    application: daily_media::OpusApplication,
}

impl Default for MicSend {
    fn default() -> Self {
        MicSend { bitrate: None, channels: 1, application: daily_media::OpusApplication::Audio }
    }
}

struct CustomTrack {
    track_id: String,
    source: AudioSource,
    ignore_level: bool,
}

struct RendererSpec {
    participant_id: String,
    audio_source: String,
    sample_rate: u32,
    interval_ms: u32,
    sink: Arc<dyn Fn(&[i16]) + Send + Sync>,
}

struct RecvTrack {
    node: NodeId,
    closed: Arc<AtomicBool>,
    stats: Arc<RecvStats>,
    channels: u16,
}

struct State {
    call_state: CallState,
    user_name: String,
    local_id: String,
    joined_at: u64,
    session_id: Option<String>,
    remotes: BTreeMap<String, ParticipantInfo>,
    custom_tracks: BTreeMap<String, CustomTrack>,
    mic: Option<(String, AudioSource)>,
    /// `publishing.microphone.isPublishing`.
    mic_publishing: bool,
    mic_send: MicSend,
    /// The local participant as the server last described it (owner, ids, permissions).
    server_me: Option<ParticipantInfo>,
    /// `(present, hidden)` from the server.
    counts: (u32, u32),
    active_speaker: Option<String>,
    /// Daily's settings dicts, as the getters return them.
    inputs: Value,
    publishing: Value,
    profiles: Value,
    subscriptions: Value,
    /// The subscription rules the server has (sent in `join` or `setSubscriptions`).
    sent_rules: Option<daily_proto::SubscriptionRules>,
    ice: IceConfig,
    renderers: Vec<RendererSpec>,
    /// Forwarded tracks of the current receive-transport offer, by mid.
    forwarded: HashMap<String, ForwardedTrack>,
    recv: HashMap<(String, String), RecvTrack>,
    session: Option<Arc<Session>>,
    /// Bumped on every join so stale tasks of an older session do nothing.
    generation: u64,
}

pub(crate) struct ClientInner {
    rt: tokio::runtime::Handle,
    clock: Arc<MediaClock>,
    flags: Arc<crate::engine::AudioFlags>,
    events: EventSink,
    state: Mutex<State>,
    next_id: AtomicU64,
    /// The latest network stats dict and the session generation it belongs to.
    network_stats: Mutex<Option<(u64, Value)>>,
}

/// A call client (daily-python's `CallClient`). Methods return at once; results arrive in
/// completions and events.
pub struct CallClient {
    _engine: Engine,
    inner: Arc<ClientInner>,
}

/// One sending m-line of the send transport and its RTP stream (SSRC, sequence numbers).
///
/// An m-line is never removed once added: when what it carries goes away it turns dormant
/// (`live` is `None`, nothing sent) and the next track to publish takes it over, keeping its
/// SSRC. Removing a transceiver and adding another makes webrtc-rs reuse the m-line with a new
/// SSRC, which str0m then did not always accept (a re-published microphone stayed silent in
/// some runs of `tests/republish.rs`).
struct SendTrack {
    live: Option<LiveSend>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    /// Next RTP sequence number, continued across the streams the m-line carries.
    seq: Arc<std::sync::atomic::AtomicU16>,
    sender: Arc<dyn RtpSender>,
    pt: Arc<std::sync::atomic::AtomicU8>,
}

/// What a send m-line currently carries.
struct LiveSend {
    key: TrackSource,
    /// Encoder settings the pipe was built with (a change rebuilds the pipe).
    send: MicSend,
    track_id: String,
    source: AudioSource,
    pipe_id: u64,
    task: tokio::task::JoinHandle<()>,
}

impl SendTrack {
    /// Stops carrying anything (the m-line stays, dormant).
    fn detach(&mut self) {
        if let Some(l) = self.live.take() {
            l.source.detach(l.pipe_id);
            l.task.abort();
        }
    }
}

struct Session {
    generation: u64,
    ws_tx: mpsc::UnboundedSender<ClientMessage>,
    send_pc: Arc<dyn PeerConnection>,
    recv_pc: Arc<dyn PeerConnection>,
    send_tracks: tokio::sync::Mutex<Vec<SendTrack>>,
    publish_answer: Mutex<Option<oneshot::Sender<String>>>,
    left: Mutex<Option<oneshot::Sender<()>>>,
    send_connected: watch::Receiver<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    send_stats: Arc<SendStats>,
    /// Bumped whenever the mid → track mapping of the receive transport changes.
    forward_version: Arc<AtomicU64>,
    /// Completions of requests awaiting the server's `reply`, by request id.
    requests: Mutex<HashMap<u64, Done>>,
    next_request: AtomicU64,
    /// Set before the outstanding requests are failed: later requests fail at once.
    closed: AtomicBool,
}

impl Session {
    /// Completes every outstanding request with `error` (the session is ending).
    fn fail_requests(&self, error: &str) {
        self.closed.store(true, Ordering::Release);
        let pending: Vec<Done> =
            self.requests.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, d)| d).collect();
        for d in pending {
            d(Err(error.to_owned()));
        }
    }
}

fn now_epoch_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl CallClient {
    /// Creates a client on `engine`; `events` receives every event in order.
    pub fn new(engine: &Engine, events: EventSink) -> CallClient {
        let e = engine.inner();
        let inner = Arc::new(ClientInner {
            rt: e.runtime.handle().clone(),
            clock: e.clock.clone(),
            flags: e.flags.clone(),
            events,
            state: Mutex::new(State {
                call_state: CallState::Initialized,
                user_name: String::new(),
                local_id: uuid::Uuid::new_v4().to_string(),
                joined_at: now_epoch_s(),
                session_id: None,
                remotes: BTreeMap::new(),
                custom_tracks: BTreeMap::new(),
                mic: None,
                mic_publishing: true,
                mic_send: MicSend::default(),
                server_me: None,
                counts: (0, 0),
                active_speaker: None,
                inputs: shapes::default_inputs(),
                publishing: shapes::default_publishing(),
                profiles: shapes::default_profiles(),
                subscriptions: serde_json::json!({}),
                sent_rules: None,
                ice: IceConfig::default(),
                renderers: Vec::new(),
                forwarded: HashMap::new(),
                recv: HashMap::new(),
                session: None,
                generation: 0,
            }),
            next_id: AtomicU64::new(1),
            network_stats: Mutex::new(None),
        });
        CallClient { _engine: engine.clone(), inner }
    }

    /// The current call state.
    pub fn call_state(&self) -> CallState {
        self.inner.lock().call_state
    }

    /// `participants()`: `{"local": {...}, "<id>": {...}}`.
    pub fn participants(&self) -> Value {
        self.inner.participants()
    }

    /// Joins `meeting_url`. A malformed URL completes at once (on this thread) with an error.
    pub fn join(&self, meeting_url: &str, meeting_token: Option<String>, settings: JoinSettings, done: JoinDone) {
        let url = match RoomUrl::parse(meeting_url) {
            Ok(u) => u,
            Err(e) => return done(Err(e.to_string())),
        };
        let generation = {
            let mut st = self.inner.lock();
            if matches!(st.call_state, CallState::Joining | CallState::Joined | CallState::Leaving) {
                drop(st);
                return done(Err(format!("cannot join: the call is {}", self.call_state().as_str())));
            }
            if let Err(e) = apply_inputs_patch(&mut st, &settings.client_settings["inputs"])
                .and_then(|_| apply_publishing_patch(&mut st, &settings.client_settings["publishing"]))
            {
                drop(st);
                return done(Err(e));
            }
            st.generation += 1;
            st.mic = settings.microphone.clone();
            sync_mic_input(&mut st);
            st.remotes.clear();
            st.generation
        };
        self.inner.set_state(CallState::Joining);
        let inner = self.inner.clone();
        let room_for_log = url.room.clone();
        tracing::info!(url = %meeting_url, "joining");
        self.inner.rt.spawn(async move {
            let mut res = run_join(&inner, url, meeting_token, generation).await;
            let current = {
                let st = inner.lock();
                st.generation == generation && st.session.is_some()
            };
            if res.is_ok() && !current {
                res = Err(ClientError::Signalling("the join was cancelled by leave()".into()));
            }
            match res {
                Ok(join_data) => {
                    tracing::info!(room = %room_for_log, "joined");
                    inner.set_state(CallState::Joined);
                    // Subscriptions changed while joining (after `join` was sent): send them.
                    let (session, rules) = {
                        let mut st = inner.lock();
                        let rules = shapes::subscription_rules(&st.profiles, &st.subscriptions);
                        let stale = st.sent_rules.as_ref() != Some(&rules);
                        if stale {
                            st.sent_rules = Some(rules.clone());
                        }
                        (st.session.clone().filter(|_| stale), rules)
                    };
                    if let Some(s) = session {
                        let request_id = s.next_request.fetch_add(1, Ordering::Relaxed);
                        let _ = s.ws_tx.send(ClientMessage::SetSubscriptions { request_id, rules });
                    }
                    done(Ok(join_data));
                    // Everybody already here, once each, after the joined state.
                    let remotes: Vec<Value> = {
                        let st = inner.lock();
                        let rules = shapes::subscription_rules(&st.profiles, &st.subscriptions);
                        st.remotes.values().map(|p| shapes::participant_with(p, false, Some(&rules))).collect()
                    };
                    for p in remotes {
                        (inner.events)(ClientEvent::ParticipantJoined(p));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    // A cancelled join (leave() or a newer join) must not touch the state
                    // that superseded it.
                    let current = inner.lock().generation == generation;
                    tracing::warn!(room = %room_for_log, error = %msg, "join failed");
                    inner.teardown(generation).await;
                    if current {
                        (inner.events)(ClientEvent::Error(msg.clone()));
                        inner.set_state(CallState::Left);
                    }
                    done(Err(msg));
                }
            }
        });
    }

    /// Leaves the call. Completes with `Ok` when not in a call.
    pub fn leave(&self, done: Done) {
        let inner = self.inner.clone();
        self.inner.rt.spawn(async move {
            let r = inner.leave().await;
            done(r);
        });
    }

    /// Leaves if needed and waits for it (at most a few seconds). Call from a non-runtime thread.
    pub fn release(&self) {
        let inner = self.inner.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner.rt.spawn(async move {
            let _ = inner.leave().await;
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(5));
        let mut st = self.inner.lock();
        st.renderers.clear();
        st.custom_tracks.clear();
        st.mic = None;
    }

    /// Sets the display name; sent to the room when joined.
    pub fn set_user_name(&self, name: &str) {
        let session = {
            let mut st = self.inner.lock();
            st.user_name = name.to_owned();
            st.session.clone()
        };
        if let Some(s) = session {
            let _ = s.ws_tx.send(ClientMessage::SetUserName { user_name: name.to_owned() });
        }
    }

    /// Publishes `source` as custom track `name` (now, or at join). With `ignore_level`, the
    /// track's audio never makes this participant the active speaker.
    pub fn add_custom_audio_track(&self, name: &str, track_id: String, source: AudioSource, ignore_level: bool, done: Done) {
        let inputs = {
            let mut st = self.inner.lock();
            if st.custom_tracks.contains_key(name) {
                drop(st);
                return done(Err(format!("a custom audio track named {name:?} already exists")));
            }
            st.inputs["customAudio"][name] = json!({"isEnabled": true, "settings": {"customTrack": {"id": track_id}}});
            st.custom_tracks.insert(name.to_owned(), CustomTrack { track_id, source, ignore_level });
            st.inputs.clone()
        };
        (self.inner.events)(ClientEvent::InputsUpdated(inputs));
        self.republish(done);
    }

    /// Replaces the source of custom track `name` (`update_custom_audio_track`).
    pub fn update_custom_audio_track(&self, name: &str, track_id: String, source: AudioSource, ignore_level: bool, done: Done) {
        let inputs = {
            let mut st = self.inner.lock();
            let Some(t) = st.custom_tracks.get_mut(name) else {
                drop(st);
                return done(Err(format!("no custom audio track named {name:?}")));
            };
            *t = CustomTrack { track_id: track_id.clone(), source, ignore_level };
            st.inputs["customAudio"][name] = json!({"isEnabled": true, "settings": {"customTrack": {"id": track_id}}});
            st.inputs.clone()
        };
        (self.inner.events)(ClientEvent::InputsUpdated(inputs));
        self.republish(done);
    }

    /// Changes the microphone input: `Some((track_id, source))` publishes that source as the
    /// microphone, `None` stops it. Applies at once in a call, else at the next join.
    pub fn set_microphone(&self, microphone: Option<(String, AudioSource)>, done: Done) {
        self.update_inputs(Some(microphone), &Value::Null, done)
    }

    /// daily-python's `update_inputs`: merges `patch` (Daily's input settings, shorthands
    /// such as `"camera": False` allowed) into `inputs()`, and when `microphone` is `Some`
    /// switches the published microphone to it (`Some(None)` stops it; the caller resolves
    /// `settings.deviceId` / `settings.customTrack`). Emits `InputsUpdated` before `done`.
    pub fn update_inputs(&self, microphone: Option<Option<(String, AudioSource)>>, patch: &Value, done: Done) {
        let (inputs, changed) = {
            let mut st = self.inner.lock();
            if let Err(e) = apply_inputs_patch(&mut st, patch) {
                drop(st);
                return done(Err(e));
            }
            let mut changed = false;
            if let Some(m) = microphone {
                let same = match (&st.mic, &m) {
                    (Some((a, s1)), Some((b, s2))) => a == b && s1.ptr_eq(s2),
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    st.mic = m;
                    changed = true;
                }
            }
            sync_mic_input(&mut st);
            (st.inputs.clone(), changed)
        };
        (self.inner.events)(ClientEvent::InputsUpdated(inputs));
        if changed { self.republish(done) } else { done(Ok(())) }
    }

    /// daily-python's `set_ice_config`: STUN/TURN servers and policy used from the next
    /// `join` on (a call in progress keeps its transports). `IceConfig::default()` clears it.
    pub fn set_ice_config(&self, config: IceConfig, done: Done) {
        if let Err(e) = config.validate() {
            return done(Err(e));
        }
        self.inner.lock().ice = config;
        done(Ok(()))
    }

    /// `inputs()`: Daily's input settings as of the last `InputsUpdated`.
    pub fn inputs(&self) -> Value {
        self.inner.lock().inputs.clone()
    }

    /// `publishing()`: Daily's publishing settings.
    pub fn publishing(&self) -> Value {
        self.inner.lock().publishing.clone()
    }

    /// `subscriptions()`: per-participant subscription settings set so far.
    pub fn subscriptions(&self) -> Value {
        self.inner.lock().subscriptions.clone()
    }

    /// `subscription_profiles()`.
    pub fn subscription_profiles(&self) -> Value {
        self.inner.lock().profiles.clone()
    }

    /// `participant_counts()`: `{"present": n, "hidden": n}` as the server last reported
    /// (the local participant included; zeros when not in a call).
    pub fn participant_counts(&self) -> Value {
        let (present, hidden) = self.inner.lock().counts;
        json!({"present": present, "hidden": hidden})
    }

    /// `active_speaker()`: the participant dict of the room's active speaker, or `Null`.
    pub fn active_speaker(&self) -> Value {
        let st = self.inner.lock();
        match &st.active_speaker {
            Some(id) => self.inner.participant_dict(&st, id).unwrap_or(Value::Null),
            None => Value::Null,
        }
    }

    /// daily-python's `update_publishing`: merges `patch` into `publishing()`. The
    /// microphone's `isPublishing: False` stops sending it (the input stays; remote
    /// participants see the microphone go off) and `sendSettings` re-tunes its encoder
    /// (`"speech"`, `"music"`, or `{"channelConfig": "mono"|"stereo", "bitrate": bit/s}`).
    /// Emits `PublishingUpdated` before `done`.
    pub fn update_publishing(&self, patch: &Value, done: Done) {
        let (publishing, changed) = {
            let mut st = self.inner.lock();
            let before = (st.mic_publishing, st.mic_send);
            if let Err(e) = apply_publishing_patch(&mut st, patch) {
                drop(st);
                return done(Err(e));
            }
            (st.publishing.clone(), before != (st.mic_publishing, st.mic_send))
        };
        (self.inner.events)(ClientEvent::PublishingUpdated(publishing));
        if changed { self.republish(done) } else { done(Ok(())) }
    }

    /// daily-python's `update_subscription_profiles`: merges `patch` into
    /// `subscription_profiles()`; the server forwards only what the result subscribes to.
    /// Emits `SubscriptionProfilesUpdated` before `done`, which fires once the server
    /// applied the change (at once when not in a call: applied at join).
    pub fn update_subscription_profiles(&self, patch: &Value, done: Done) {
        if !patch.is_object() {
            return done(Err("subscription profiles must be a dict".into()));
        }
        let profiles = {
            let mut st = self.inner.lock();
            shapes::merge(&mut st.profiles, patch);
            st.profiles.clone()
        };
        (self.inner.events)(ClientEvent::SubscriptionProfilesUpdated(profiles));
        self.send_rules(done);
    }

    /// daily-python's `update_subscriptions`: `participant_settings` (`{pid: {"profile":
    /// name, "media": {"microphone": "subscribed"|"unsubscribed"|"staged", "customAudio":
    /// {name: ...}}}}`) merge into `subscriptions()`, `profile_settings` into the profiles.
    /// Unsubscribing stops the forwarding at the server. Events before `done`.
    pub fn update_subscriptions(&self, participant_settings: &Value, profile_settings: &Value, done: Done) {
        for (v, what) in [(participant_settings, "participant_settings"), (profile_settings, "profile_settings")] {
            if !v.is_null() && !v.is_object() {
                return done(Err(format!("{what} must be a dict")));
            }
        }
        let (subs, profiles) = {
            let mut st = self.inner.lock();
            let mut subs = None;
            if let Some(o) = participant_settings.as_object() {
                for (pid, settings) in o {
                    let entry = st.subscriptions.as_object_mut().map(|m| {
                        m.entry(pid.clone()).or_insert_with(|| json!({"profile": "base", "media": {}}))
                    });
                    if let Some(e) = entry {
                        shapes::merge(e, settings);
                    }
                }
                subs = Some(st.subscriptions.clone());
            }
            let mut profiles = None;
            if profile_settings.is_object() {
                shapes::merge(&mut st.profiles, profile_settings);
                profiles = Some(st.profiles.clone());
            }
            (subs, profiles)
        };
        if let Some(p) = profiles {
            (self.inner.events)(ClientEvent::SubscriptionProfilesUpdated(p));
        }
        if let Some(s) = subs {
            (self.inner.events)(ClientEvent::SubscriptionsUpdated(s));
        }
        self.send_rules(done);
    }

    /// Sends the current subscription rules to the server, if in a call.
    fn send_rules(&self, done: Done) {
        let (joined, rules) = {
            let mut st = self.inner.lock();
            let rules = shapes::subscription_rules(&st.profiles, &st.subscriptions);
            let joined = st.call_state == CallState::Joined;
            if joined {
                st.sent_rules = Some(rules.clone());
            }
            (joined, rules)
        };
        if !joined {
            // Applied at join; a join already under way sends them once it is joined.
            return done(Ok(()));
        }
        self.request("update subscriptions", move |request_id| ClientMessage::SetSubscriptions { request_id, rules }, done);
    }

    /// daily-python's `send_app_message`: any JSON value, to everybody (`to` = `None` or
    /// `"*"`) or one participant; at most 4096 bytes serialised (Daily's limit). Fails when
    /// not in a call or the participant is not there; `done` fires once the server routed it.
    pub fn send_app_message(&self, data: Value, to: Option<String>, done: Done) {
        let size = serde_json::to_string(&data).map_or(usize::MAX, |t| t.len());
        if size > MAX_APP_MESSAGE_BYTES {
            return done(Err(format!("app message of {size} bytes exceeds the limit of {MAX_APP_MESSAGE_BYTES} bytes")));
        }
        let to = to.filter(|t| t != "*");
        self.request("send an app message", move |request_id| ClientMessage::AppMessage { request_id, data, to }, done);
    }

    /// daily-python's `update_permissions`: changes the local participant's permissions.
    /// Without owner or `participants` admin rights only giving rights up is allowed.
    pub fn update_permissions(&self, update: PermissionsUpdate, done: Done) {
        if let Err(e) = update.validate() {
            return done(Err(e));
        }
        self.request(
            "update permissions",
            move |request_id| ClientMessage::UpdatePermissions { request_id, participant_id: None, permissions: update },
            done,
        );
    }

    /// The `permissions` part of daily-python's `update_remote_participants`: owners and
    /// `participants` admins change others' permissions. `done` fires once, after every
    /// participant's update was answered, with the failures joined by `"; "`.
    pub fn update_remote_permissions(&self, updates: Vec<(String, PermissionsUpdate)>, done: Done) {
        if updates.is_empty() {
            return done(Ok(()));
        }
        for (_, u) in &updates {
            if let Err(e) = u.validate() {
                return done(Err(e));
            }
        }
        let all = Arc::new(Mutex::new((updates.len(), Vec::<String>::new(), Some(done))));
        for (pid, u) in updates {
            let all = all.clone();
            self.request(
                "update remote participants",
                move |request_id| ClientMessage::UpdatePermissions { request_id, participant_id: Some(pid), permissions: u },
                Box::new(move |r| {
                    let mut g = all.lock().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = r {
                        g.1.push(e);
                    }
                    g.0 -= 1;
                    if g.0 == 0 {
                        let errs = std::mem::take(&mut g.1);
                        let d = g.2.take();
                        drop(g);
                        if let Some(d) = d {
                            d(if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) });
                        }
                    }
                }),
            );
        }
    }

    /// daily-python's `eject_remote_participants`: owners and `participants` admins only.
    /// Each ejected client gets an error and leaves the call.
    pub fn eject(&self, ids: Vec<String>, done: Done) {
        if ids.is_empty() {
            return done(Ok(()));
        }
        self.request("eject participants", move |request_id| ClientMessage::Eject { request_id, participant_ids: ids }, done);
    }

    /// Sends a request built by `make` and completes `done` with the server's reply; fails at
    /// once when not joined. Every path completes `done` exactly once: a session that ends
    /// first fails its outstanding requests.
    fn request(&self, what: &str, make: impl FnOnce(u64) -> ClientMessage, done: Done) {
        let session = {
            let st = self.inner.lock();
            if st.call_state == CallState::Joined { st.session.clone() } else { None }
        };
        let Some(s) = session else {
            return done(Err(format!("cannot {what}: not in a call")));
        };
        let id = s.next_request.fetch_add(1, Ordering::Relaxed);
        s.requests.lock().unwrap_or_else(|e| e.into_inner()).insert(id, done);
        let sent = s.ws_tx.send(make(id)).is_ok();
        if !sent || s.closed.load(Ordering::Acquire) {
            let d = s.requests.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            if let Some(d) = d {
                d(Err(format!("cannot {what}: the call ended")));
            }
        }
    }

    /// The microphone input: its track id, if one is set.
    pub fn microphone_track_id(&self) -> Option<String> {
        self.inner.lock().mic.as_ref().map(|(id, _)| id.clone())
    }

    /// Stops publishing custom track `name`.
    pub fn remove_custom_audio_track(&self, name: &str, done: Done) {
        let inputs = {
            let mut st = self.inner.lock();
            if st.custom_tracks.remove(name).is_none() {
                drop(st);
                return done(Err(format!("no custom audio track named {name:?}")));
            }
            if let Some(o) = st.inputs["customAudio"].as_object_mut() {
                o.remove(name);
            }
            st.inputs.clone()
        };
        (self.inner.events)(ClientEvent::InputsUpdated(inputs));
        self.republish(done);
    }

    fn republish(&self, done: Done) {
        let session = self.inner.lock().session.clone();
        let Some(session) = session else { return done(Ok(())) };
        let inner = self.inner.clone();
        self.inner.rt.spawn(async move {
            let r = inner.publish(&session).await.map_err(|e| e.to_string());
            done(r);
        });
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
        // Validate now so bad arguments raise instead of failing silently later.
        Renderer::validate(sample_rate, interval_ms)?;
        let spec = RendererSpec {
            participant_id: participant_id.to_owned(),
            audio_source: audio_source.to_owned(),
            sample_rate,
            interval_ms,
            sink,
        };
        let mut st = self.inner.lock();
        if let Some(rt) = st.recv.get(&(participant_id.to_owned(), audio_source.to_owned())) {
            attach_renderer(&self.inner.clock, rt, &spec);
        }
        st.renderers.push(spec);
        Ok(())
    }

    /// Receive statistics of every remote track: `{participant_id: {audio_source: {...}}}`.
    pub fn receive_stats(&self) -> Value {
        let st = self.inner.lock();
        let mut out = serde_json::Map::new();
        for ((pid, src), t) in &st.recv {
            let e = out.entry(pid.clone()).or_insert_with(|| json!({}));
            e[src] = json!({
                "packetsReceived": t.stats.received.load(Ordering::Relaxed),
                "packetsLost": t.stats.lost.load(Ordering::Relaxed),
                "packetsLate": t.stats.late.load(Ordering::Relaxed),
                "jitterBufferDelayMs": t.stats.delay_ms.load(Ordering::Relaxed),
                "concealedMs": t.stats.concealed_ms.load(Ordering::Relaxed),
            });
        }
        Value::Object(out)
    }

    /// Send statistics: Opus frames sent and dropped (queue full or not yet connected).
    pub fn send_stats(&self) -> Value {
        let st = self.inner.lock();
        match &st.session {
            Some(s) => json!({
                "framesSent": s.send_stats.frames_sent.load(Ordering::Relaxed),
                "framesDropped": s.send_stats.frames_dropped.load(Ordering::Relaxed),
            }),
            None => json!({}),
        }
    }

    /// `get_network_stats()`: the latest network stats dict (see `netstats` for its shape and
    /// sources), updated every 2 s in a call; `{"quality": 100, "threshold": "good", "stats":
    /// {"latest": {}}}` before the first update and when not in a call.
    pub fn network_stats(&self) -> Value {
        let current = self.inner.lock().session.as_ref().map(|s| s.generation);
        let latest = self.inner.network_stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match (current, latest) {
            (Some(g), Some((sg, v))) if g == sg => v,
            _ => crate::netstats::default_stats(),
        }
    }
}

/// Merges an inputs patch into `st.inputs`. A microphone `settings` naming a device or a
/// custom track replaces the old settings instead of merging with them.
fn apply_inputs_patch(st: &mut State, patch: &Value) -> Result<(), String> {
    if patch.is_null() {
        return Ok(());
    }
    if !patch.is_object() {
        return Err("input settings must be a dict".into());
    }
    let patch = shapes::expand_shorthand(patch, "isEnabled");
    shapes::merge(&mut st.inputs, &patch);
    let settings = &patch["microphone"]["settings"];
    if settings.get("deviceId").is_some() || settings.get("customTrack").is_some() {
        st.inputs["microphone"]["settings"] = settings.clone();
    }
    Ok(())
}

/// `inputs.microphone.isEnabled` follows whether a microphone source is set.
fn sync_mic_input(st: &mut State) {
    st.inputs["microphone"]["isEnabled"] = json!(st.mic.is_some());
}

/// Merges a publishing patch into `st.publishing` and applies the microphone's
/// `isPublishing` and `sendSettings`.
fn apply_publishing_patch(st: &mut State, patch: &Value) -> Result<(), String> {
    if patch.is_null() {
        return Ok(());
    }
    if !patch.is_object() {
        return Err("publishing settings must be a dict".into());
    }
    let patch = shapes::expand_shorthand(patch, "isPublishing");
    let mic = &patch["microphone"];
    let mut send = st.mic_send;
    match &mic["sendSettings"] {
        Value::Null => {}
        Value::String(s) if s == "speech" => send.application = daily_media::OpusApplication::Voip,
        Value::String(s) if s == "music" => send.application = daily_media::OpusApplication::Audio,
        Value::String(s) => return Err(format!("unknown microphone sendSettings preset {s:?} (expected \"speech\" or \"music\")")),
        Value::Object(o) => {
            match o.get("channelConfig").and_then(Value::as_str) {
                None => {}
                Some("mono") => send.channels = 1,
                Some("stereo") => send.channels = 2,
                Some(c) => return Err(format!("channelConfig must be \"mono\" or \"stereo\", got {c:?}")),
            }
            match o.get("bitrate") {
                None | Some(Value::Null) => {}
                Some(b) => match b.as_u64() {
                    Some(b) => send.bitrate = Some(b.clamp(6000, 510_000) as u32),
                    None => return Err(format!("bitrate must be a positive integer in bit/s, got {b}")),
                },
            }
        }
        other => return Err(format!("microphone sendSettings must be a preset name or a dict, got {other}")),
    }
    let publishing = match &mic["isPublishing"] {
        Value::Null => st.mic_publishing,
        Value::Bool(b) => *b,
        other => return Err(format!("isPublishing must be a bool, got {other}")),
    };
    shapes::merge(&mut st.publishing, &patch);
    st.mic_send = send;
    st.mic_publishing = publishing;
    Ok(())
}

fn attach_renderer(clock: &MediaClock, rt: &RecvTrack, spec: &RendererSpec) {
    let sink = spec.sink.clone();
    let boxed: RenderSink = Box::new(move |pcm: &[i16]| sink(pcm));
    if let Ok(r) = Renderer::new(rt.channels, spec.sample_rate, spec.interval_ms, boxed) {
        clock.with_node::<RecvNode>(rt.node, move |n| n.renderers.push(r));
    }
}

impl Drop for CallClient {
    fn drop(&mut self) {
        let st = self.inner.lock();
        if st.session.is_some() {
            drop(st);
            self.release();
        }
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if st.call_state == CallState::Joined {
            self.flags.calls.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl ClientInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, s: CallState) {
        {
            let mut st = self.lock();
            if st.call_state == s {
                return;
            }
            // The engine counts clients in a call: the speaker device plays only then.
            if s == CallState::Joined {
                self.flags.calls.fetch_add(1, Ordering::AcqRel);
            } else if st.call_state == CallState::Joined {
                self.flags.calls.fetch_sub(1, Ordering::AcqRel);
            }
            st.call_state = s;
        }
        (self.events)(ClientEvent::CallStateUpdated(s));
    }

    fn local_info(&self, st: &State) -> ParticipantInfo {
        let me = st.server_me.as_ref();
        let permissions = me.map(|m| m.permissions.clone()).unwrap_or_default();
        let mut custom = BTreeMap::new();
        for (name, t) in &st.custom_tracks {
            custom.insert(name.clone(), MediaInfo { publishing: true, track_id: Some(t.track_id.clone()) });
        }
        let mic_on = st.mic.is_some()
            && st.mic_publishing
            && st.call_state == CallState::Joined
            && permissions.may_send(&TrackSource::Microphone);
        ParticipantInfo {
            id: st.local_id.clone(),
            user_name: st.user_name.clone(),
            user_id: me.map_or_else(|| st.local_id.clone(), |m| m.user_id.clone()),
            joined_at: st.joined_at,
            is_owner: me.is_some_and(|m| m.is_owner),
            microphone: MediaInfo { publishing: mic_on, track_id: st.mic.as_ref().map(|m| m.0.clone()) },
            custom_audio: custom,
            permissions,
        }
    }

    /// The dict of participant `id` (local or remote) as `participants()` shows it.
    fn participant_dict(&self, st: &State, id: &str) -> Option<Value> {
        if id == st.local_id {
            return Some(shapes::participant(&self.local_info(st), true));
        }
        let rules = shapes::subscription_rules(&st.profiles, &st.subscriptions);
        st.remotes.get(id).map(|p| shapes::participant_with(p, false, Some(&rules)))
    }

    /// A remote participant's dict under the current subscription rules.
    fn remote_dict(&self, p: &ParticipantInfo) -> Value {
        let st = self.lock();
        let rules = shapes::subscription_rules(&st.profiles, &st.subscriptions);
        shapes::participant_with(p, false, Some(&rules))
    }

    fn participants(&self) -> Value {
        let st = self.lock();
        let rules = shapes::subscription_rules(&st.profiles, &st.subscriptions);
        let mut m = serde_json::Map::new();
        m.insert("local".into(), shapes::participant(&self.local_info(&st), true));
        for (id, p) in &st.remotes {
            m.insert(id.clone(), shapes::participant_with(p, false, Some(&rules)));
        }
        Value::Object(m)
    }

    async fn leave(self: &Arc<Self>) -> Result<(), String> {
        let (session, generation) = {
            let st = self.lock();
            (st.session.clone(), st.generation)
        };
        let Some(session) = session else {
            // Still connecting: cancel the join (it completes with an error) and report left.
            let cancel = {
                let mut st = self.lock();
                if st.call_state == CallState::Joining {
                    st.generation += 1;
                    true
                } else {
                    false
                }
            };
            if cancel {
                self.set_state(CallState::Left);
            }
            return Ok(());
        };
        self.set_state(CallState::Leaving);
        let (tx, rx) = oneshot::channel();
        *session.left.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        if session.ws_tx.send(ClientMessage::Leave).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
        self.teardown(generation).await;
        tracing::info!("left the call");
        self.set_state(CallState::Left);
        Ok(())
    }

    /// Closes transports, stops tasks and media nodes of session `generation`.
    async fn teardown(self: &Arc<Self>, generation: u64) {
        let (session, recv) = {
            let mut st = self.lock();
            if st.generation != generation {
                return;
            }
            st.remotes.clear();
            st.forwarded.clear();
            st.session_id = None;
            st.counts = (0, 0);
            st.active_speaker = None;
            (st.session.take(), std::mem::take(&mut st.recv))
        };
        if let Some(s) = &session {
            s.fail_requests("the call ended before the server answered");
        }
        for (_, t) in recv {
            t.closed.store(true, Ordering::Release);
            self.clock.remove(t.node);
        }
        if let Some(s) = session {
            for mut t in s.send_tracks.lock().await.drain(..) {
                t.detach();
            }
            let _ = s.send_pc.close().await;
            let _ = s.recv_pc.close().await;
            for t in s.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                t.abort();
            }
        }
    }

    /// (Re)negotiates the send transport so it carries exactly the microphone (if any) and
    /// the custom tracks.
    async fn publish(self: &Arc<Self>, session: &Arc<Session>) -> Result<(), ClientError> {
        let mut tracks = session.send_tracks.lock().await;
        let (want, ignore_levels) = {
            let st = self.lock();
            // (source, track id, audio, encoder settings)
            let mut want: Vec<(TrackSource, String, AudioSource, MicSend)> = Vec::new();
            if let Some((id, src)) = st.mic.as_ref().filter(|_| st.mic_publishing) {
                want.push((TrackSource::Microphone, id.clone(), src.clone(), st.mic_send));
            }
            let mut ignore = Vec::new();
            for (name, t) in &st.custom_tracks {
                let key = TrackSource::CustomAudio { track_name: name.clone() };
                if t.ignore_level {
                    ignore.push(key.clone());
                }
                // Custom tracks keep our defaults; the microphone follows its send settings.
                want.push((key, t.track_id.clone(), t.source.clone(), MicSend::default()));
            }
            (want, ignore)
        };
        // Detach what is no longer wanted as it is (source, id or settings changed).
        for t in tracks.iter_mut() {
            let same = t.live.as_ref().is_some_and(|l| {
                want.iter().any(|(k, id, s, m)| *k == l.key && *id == l.track_id && s.ptr_eq(&l.source) && *m == l.send)
            });
            if !same {
                t.detach();
            }
        }
        for (key, track_id, source, send) in want {
            if tracks.iter().any(|t| t.live.as_ref().is_some_and(|l| l.key == key)) {
                continue;
            }
            // A dormant m-line if there is one, else a new one.
            let i = match tracks.iter().position(|t| t.live.is_none()) {
                Some(i) => i,
                None => {
                    tracks.push(add_send_track(self, session, &key).await?);
                    tracks.len() - 1
                }
            };
            attach_send(self, session, &mut tracks[i], key, track_id, source, send)?;
        }
        // Nothing was ever published: no send transport is needed yet (an offer without
        // m-lines carries no ICE credentials).
        if tracks.is_empty() && session.send_pc.local_description().await.is_none() {
            return Ok(());
        }
        // Offer.
        let offer = session.send_pc.create_offer(None).await.map_err(werr)?;
        session.send_pc.set_local_description(offer).await.map_err(werr)?;
        let sdp = wait_local_sdp(&session.send_pc).await?;
        let mut published = Vec::new();
        for tr in session.send_pc.get_transceivers().await {
            let Ok(Some(sender)) = tr.sender().await else { continue };
            if let Some(l) = tracks.iter().find(|t| t.sender.id() == sender.id()).and_then(|t| t.live.as_ref()) {
                if let Ok(Some(mid)) = tr.mid().await {
                    published.push(PublishedTrack {
                        mid,
                        track_id: l.track_id.clone(),
                        source: l.key.clone(),
                        ignore_audio_level: ignore_levels.contains(&l.key),
                    });
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        *session.publish_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        session
            .ws_tx
            .send(ClientMessage::PublishOffer { sdp, tracks: published })
            .map_err(|_| ClientError::Signalling("signalling connection closed".into()))?;
        let answer = tokio::time::timeout(TRANSPORT_TIMEOUT, rx)
            .await
            .map_err(|_| ClientError::Timeout("the server did not answer the publish offer".into()))?
            .map_err(|_| ClientError::Signalling("signalling connection closed".into()))?;
        let desc = webrtc::peer_connection::RTCSessionDescription::answer(answer).map_err(werr)?;
        session.send_pc.set_remote_description(desc).await.map_err(werr)?;
        tracing::debug!(m_lines = tracks.len(), published = tracks.iter().filter(|t| t.live.is_some()).count(), "send transport negotiated");
        for t in tracks.iter() {
            if let Ok(params) = t.sender.get_parameters().await {
                if let Some(c) = params.rtp_parameters.codecs.first() {
                    t.pt.store(c.payload_type, Ordering::Release);
                }
            }
        }
        Ok(())
    }

    fn on_server_message(self: &Arc<Self>, session: &Arc<Session>, msg: ServerMessage) {
        match msg {
            ServerMessage::PublishAnswer { sdp } => {
                if let Some(tx) = session.publish_answer.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(sdp);
                }
            }
            ServerMessage::SubscribeOffer { .. } => unreachable!("handled by the subscribe task"),
            ServerMessage::ParticipantJoined { participant } => {
                let v = self.remote_dict(&participant);
                self.lock().remotes.insert(participant.id.clone(), participant);
                (self.events)(ClientEvent::ParticipantJoined(v));
            }
            ServerMessage::ParticipantUpdated { participant } => {
                let local = {
                    let mut st = self.lock();
                    if participant.id == st.local_id {
                        st.server_me = Some(participant.clone());
                        Some(shapes::participant(&self.local_info(&st), true))
                    } else {
                        None
                    }
                };
                if let Some(v) = local {
                    (self.events)(ClientEvent::ParticipantUpdated(v));
                    return;
                }
                let v = self.remote_dict(&participant);
                let known = {
                    let mut st = self.lock();
                    st.remotes.insert(participant.id.clone(), participant).is_some()
                };
                if known {
                    (self.events)(ClientEvent::ParticipantUpdated(v));
                }
            }
            ServerMessage::AppMessage { data, from } => {
                (self.events)(ClientEvent::AppMessage(data, from));
            }
            ServerMessage::ActiveSpeaker { participant_id } => {
                let dict = {
                    let mut st = self.lock();
                    if st.active_speaker == participant_id {
                        return;
                    }
                    st.active_speaker = participant_id.clone();
                    participant_id.and_then(|id| self.participant_dict(&st, &id))
                };
                if let Some(v) = dict {
                    (self.events)(ClientEvent::ActiveSpeakerChanged(v));
                }
            }
            ServerMessage::ParticipantCounts { present, hidden } => {
                let changed = {
                    let mut st = self.lock();
                    std::mem::replace(&mut st.counts, (present, hidden)) != (present, hidden)
                };
                if changed {
                    (self.events)(ClientEvent::ParticipantCountsUpdated(json!({"present": present, "hidden": hidden})));
                }
            }
            ServerMessage::Reply { request_id, error } => {
                let done = session.requests.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
                if let Some(d) = done {
                    d(error.map_or(Ok(()), Err));
                }
            }
            ServerMessage::ParticipantLeft { participant, reason } => {
                let v = self.remote_dict(&participant);
                let removed = {
                    let mut st = self.lock();
                    let r = st.remotes.remove(&participant.id).is_some();
                    let keys: Vec<_> = st.recv.keys().filter(|(p, _)| *p == participant.id).cloned().collect();
                    for k in keys {
                        if let Some(t) = st.recv.remove(&k) {
                            t.closed.store(true, Ordering::Release);
                        }
                    }
                    r
                };
                if removed {
                    let reason = match reason {
                        daily_proto::LeftReason::Hidden => "hidden",
                        _ => "leftCall",
                    };
                    (self.events)(ClientEvent::ParticipantLeft(v, reason.into()));
                }
            }
            ServerMessage::Left => {
                if let Some(tx) = session.left.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(());
                }
            }
            ServerMessage::CallEnded { reason } => {
                (self.events)(ClientEvent::Error(format!("the call ended: {reason}")));
                self.end_session(session.generation);
            }
            ServerMessage::Error { message, fatal } => {
                (self.events)(ClientEvent::Error(message));
                if fatal {
                    self.end_session(session.generation);
                }
            }
            _ => {}
        }
    }

    /// The server ended the session (or the connection dropped): tear down and report `left`.
    fn end_session(self: &Arc<Self>, generation: u64) {
        let inner = self.clone();
        self.rt.spawn(async move {
            let joined = inner.lock().session.is_some() && inner.lock().generation == generation;
            inner.teardown(generation).await;
            if joined {
                inner.set_state(CallState::Left);
            }
        });
    }

    async fn on_subscribe_offer(self: &Arc<Self>, session: &Arc<Session>, sdp: String, tracks: Vec<ForwardedTrack>) -> Result<(), ClientError> {
        {
            let mut st = self.lock();
            if st.generation != session.generation {
                return Ok(());
            }
            let new: HashMap<String, ForwardedTrack> = tracks.into_iter().map(|t| (t.mid.clone(), t)).collect();
            // Tracks that are no longer forwarded stop rendering.
            let gone: Vec<(String, String)> = st
                .recv
                .keys()
                .filter(|(pid, src)| !new.values().any(|t| t.participant_id == *pid && t.source.audio_source_name() == src))
                .cloned()
                .collect();
            for k in gone {
                if let Some(t) = st.recv.remove(&k) {
                    t.closed.store(true, Ordering::Release);
                }
            }
            st.forwarded = new;
            session.forward_version.fetch_add(1, Ordering::AcqRel);
        }
        let desc = webrtc::peer_connection::RTCSessionDescription::offer(sdp).map_err(werr)?;
        session.recv_pc.set_remote_description(desc).await.map_err(werr)?;
        let answer = session.recv_pc.create_answer(None).await.map_err(werr)?;
        session.recv_pc.set_local_description(answer).await.map_err(werr)?;
        let sdp = wait_local_sdp(&session.recv_pc).await?;
        tracing::debug!("receive transport negotiated");
        session
            .ws_tx
            .send(ClientMessage::SubscribeAnswer { sdp })
            .map_err(|_| ClientError::Signalling("signalling connection closed".into()))?;
        Ok(())
    }

    /// Binds the receive pipeline for `mid`: keeps `current` if it still carries the track
    /// the latest offer maps to `mid`, else starts a new one. The server reuses an inactive
    /// m-line (same mid and SSRC) for a later track, so the mapping is re-read after every
    /// subscribe offer, not only when the track first opens.
    fn bind_recv(&self, generation: u64, mid: &str, current: Option<NodeId>) -> Bind {
        let mut st = self.lock();
        if st.generation != generation {
            return Bind::Gone;
        }
        let Some(ft) = st.forwarded.get(mid).cloned() else { return Bind::Unmapped };
        let key = (ft.participant_id.clone(), ft.source.audio_source_name().to_owned());
        if let (Some(cur), Some(t)) = (current, st.recv.get(&key)) {
            if t.node == cur {
                return Bind::Keep;
            }
        }
        if let Some(old) = st.recv.remove(&key) {
            old.closed.store(true, Ordering::Release);
        }
        let channels = 1u16;
        let (prod, cons) = rtrb::RingBuffer::new(128);
        let closed = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(RecvStats::default());
        let Ok(node) = RecvNode::new(channels, cons, closed.clone(), stats.clone()) else { return Bind::Unmapped };
        let node = self.clock.add(node);
        let rt = RecvTrack { node, closed, stats, channels };
        for spec in st.renderers.iter().filter(|s| s.participant_id == key.0 && s.audio_source == key.1) {
            attach_renderer(&self.clock, &rt, spec);
        }
        st.recv.insert(key, rt);
        Bind::New(node, prod)
    }

    /// A remote track opened on the receive transport: find what it is (by mid) and feed its
    /// receive pipeline.
    async fn on_remote_track(self: Arc<Self>, session: Weak<Session>, track: Arc<dyn TrackRemote>) {
        let mut producer: Option<rtrb::Producer<InPacket>> = None;
        let mut node: Option<NodeId> = None;
        let mut mid: Option<String> = None;
        let mut ssrc: Option<u32> = None;
        let mut seen_version = u64::MAX;
        let clock = self.clock.clone();
        let (generation, version) = match session.upgrade() {
            Some(s) => (s.generation, s.forward_version.clone()),
            None => return,
        };
        while let Some(ev) = track.poll().await {
            match ev {
                TrackRemoteEvent::OnOpen(init) => {
                    let Some(session) = session.upgrade() else { return };
                    // The m-line is found by the stream's SSRC in the server's offer (RFC 8866
                    // `a=ssrc`, RFC 5576): receiver ids do not identify the m-line reliably
                    // once the transport has been renegotiated several times.
                    ssrc = Some(init.ssrc);
                    if let Some(d) = session.recv_pc.remote_description().await {
                        mid = mid_for_ssrc(&d.sdp, init.ssrc);
                    }
                    tracing::debug!(ssrc = init.ssrc, mid = ?mid, "remote track opened");
                }
                TrackRemoteEvent::OnRtpPacket(pkt) => {
                    let v = version.load(Ordering::Acquire);
                    if v != seen_version {
                        // A new offer may move this SSRC to another m-line: look it up again.
                        if let (Some(x), Some(session)) = (ssrc, session.upgrade()) {
                            if let Some(d) = session.recv_pc.remote_description().await {
                                mid = mid_for_ssrc(&d.sdp, x).or(mid);
                            }
                        }
                    }
                    let Some(m) = mid.as_deref() else { continue };
                    if v != seen_version {
                        seen_version = v;
                        let b = self.bind_recv(generation, m, node);
                        tracing::debug!(mid = m, version = v, bind = b.label(), "receive pipeline bound");
                        match b {
                            Bind::Keep => {}
                            Bind::New(n, p) => {
                                node = Some(n);
                                producer = Some(p);
                            }
                            Bind::Unmapped => {
                                node = None;
                                producer = None;
                            }
                            Bind::Gone => return,
                        }
                    }
                    let Some(p) = producer.as_mut() else { continue };
                    let len = pkt.payload.len().min(MAX_PAYLOAD);
                    if let Ok(mut slot) = p.write_chunk_uninit(1) {
                        let (a, _) = slot.as_mut_slices();
                        let cell = a[0].as_mut_ptr();
                        // SAFETY: `cell` points to one uninitialised slot we own until commit;
                        // every field is written before `commit_all` publishes it.
                        unsafe {
                            std::ptr::addr_of_mut!((*cell).seq).write(pkt.header.sequence_number);
                            std::ptr::addr_of_mut!((*cell).ts).write(pkt.header.timestamp);
                            std::ptr::addr_of_mut!((*cell).arrival_us).write(clock.now_us());
                            std::ptr::addr_of_mut!((*cell).len).write(len as u16);
                            let data = std::ptr::addr_of_mut!((*cell).data) as *mut u8;
                            std::ptr::copy_nonoverlapping(pkt.payload.as_ptr(), data, len);
                            std::ptr::write_bytes(data.add(len), 0, MAX_PAYLOAD - len);
                            slot.commit_all();
                        }
                    }
                }
                TrackRemoteEvent::OnEnded => {
                    tracing::debug!(mid = ?mid, "remote track ended");
                    break;
                }
                _ => {}
            }
        }
    }
}

/// The `a=mid` of the m-section of `sdp` that declares `a=ssrc:<ssrc>` (RFC 5576 section 4.1).
fn mid_for_ssrc(sdp: &str, ssrc: u32) -> Option<String> {
    let want = ssrc.to_string();
    let (mut mid, mut found) = (None::<&str>, false);
    for line in sdp.lines().chain(std::iter::once("m=end")) {
        if line.starts_with("m=") {
            if found {
                return mid.map(str::to_owned);
            }
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.trim());
        } else if let Some(rest) = line.strip_prefix("a=ssrc:") {
            if rest.split([' ', ':']).next() == Some(want.as_str()) {
                found = true;
            }
        }
    }
    None
}

enum Bind {
    Keep,
    New(NodeId, rtrb::Producer<InPacket>),
    Unmapped,
    Gone,
}

impl Bind {
    fn label(&self) -> &'static str {
        match self {
            Bind::Keep => "kept",
            Bind::New(..) => "new pipeline",
            Bind::Unmapped => "m-line not forwarded",
            Bind::Gone => "session gone",
        }
    }
}

fn werr(e: webrtc::error::Error) -> ClientError {
    ClientError::WebRtc(e.to_string())
}

/// Waits for ICE gathering to finish and returns the full local SDP (non-trickle signalling).
async fn wait_local_sdp(pc: &Arc<dyn PeerConnection>) -> Result<String, ClientError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(d) = pc.local_description().await {
            if d.sdp.contains("a=candidate") || Instant::now() > deadline {
                return Ok(d.sdp);
            }
        }
        if Instant::now() > deadline {
            return Err(ClientError::Timeout("ICE gathering did not finish".into()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Adds a sending audio m-line (an RTP stream with a fresh SSRC) to the send transport.
async fn add_send_track(inner: &Arc<ClientInner>, session: &Arc<Session>, key: &TrackSource) -> Result<SendTrack, ClientError> {
    use rtc::media_stream::MediaStreamTrack;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
    let ssrc = rand_u32();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        session_stream_id(inner),
        uuid::Uuid::new_v4().to_string(),
        key.audio_source_name().to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec: opus_codec(),
            ..Default::default()
        }],
    )));
    let sender = session.send_pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.map_err(werr)?;
    Ok(SendTrack {
        live: None,
        track,
        ssrc,
        seq: Arc::new(std::sync::atomic::AtomicU16::new(rand_u32() as u16)),
        sender,
        pt: Arc::new(std::sync::atomic::AtomicU8::new(0)),
    })
}

/// Starts sending `source` on the m-line `t`: a send pipe on the media clock and a task that
/// puts its Opus frames in RTP packets (same SSRC, sequence numbers continued; the new
/// stream starts with the marker bit, RFC 3551 section 4.1).
fn attach_send(
    inner: &Arc<ClientInner>,
    session: &Arc<Session>,
    t: &mut SendTrack,
    key: TrackSource,
    track_id: String,
    source: AudioSource,
    send: MicSend,
) -> Result<(), ClientError> {
    let (tx, mut rx) = out_queue();
    let pipe_id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let pipe = SendPipe::new(
        pipe_id,
        source.sample_rate(),
        source.channels(),
        send.channels,
        send.bitrate,
        send.application,
        tx,
        rx.signal.clone(),
        session.send_stats.clone(),
    )?;
    let (pt, seq, track, ssrc) = (t.pt.clone(), t.seq.clone(), t.track.clone(), t.ssrc);
    let connected = session.send_connected.clone();
    let task = inner.rt.spawn(async move {
        while let Some(f) = rx.next().await {
            let pt = pt.load(Ordering::Acquire);
            if pt == 0 || !*connected.borrow() {
                continue;
            }
            let pkt = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: f.marker,
                    payload_type: pt,
                    sequence_number: seq.fetch_add(1, Ordering::Relaxed),
                    timestamp: f.rtp_timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload: bytes::Bytes::copy_from_slice(&f.payload[..f.len as usize]),
            };
            // RFC 6464: the level lets the SFU pick the active speaker without decoding.
            // The V bit marks frames louder than VOICE_LEVEL_DBOV (no VAD on the send path).
            let level = rtc::rtp::extension::HeaderExtension::AudioLevel(
                rtc::rtp::extension::audio_level_extension::AudioLevelExtension {
                    level: f.level,
                    voice: f.level <= VOICE_LEVEL_DBOV,
                },
            );
            let _ = track.write_rtp_with_extensions(pkt, std::slice::from_ref(&level)).await;
        }
    });
    source.attach(pipe);
    t.live = Some(LiveSend { key, send, track_id, source, pipe_id, task });
    Ok(())
}

fn session_stream_id(inner: &ClientInner) -> String {
    inner.lock().local_id.clone()
}

fn opus_codec() -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

struct PcHandler {
    connected: watch::Sender<bool>,
    failed: watch::Sender<bool>,
    on_track: Option<(Weak<ClientInner>, Arc<Mutex<Weak<Session>>>, tokio::runtime::Handle)>,
    status: crate::netstats::ConnectionStatus,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PcHandler {
    async fn on_ice_gathering_state_change(&self, _state: RTCIceGatheringState) {}
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.status.on_state(state);
        match state {
            RTCPeerConnectionState::Connected => {
                let _ = self.connected.send(true);
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                let _ = self.connected.send(false);
                let _ = self.failed.send(true);
            }
            RTCPeerConnectionState::Disconnected => {
                let _ = self.connected.send(false);
            }
            _ => {}
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some((inner, session, rt)) = &self.on_track {
            if let Some(inner) = inner.upgrade() {
                let s = session.lock().unwrap_or_else(|e| e.into_inner()).clone();
                rt.spawn(inner.on_remote_track(s, track));
            }
        }
    }
}

async fn build_pc(
    loopback: bool,
    handler: Arc<PcHandler>,
    reports: &crate::netstats::ReportTable,
    ice: &IceConfig,
) -> Result<Arc<dyn PeerConnection>, ClientError> {
    use rtc::interceptor::Registry;
    use rtc::peer_connection::configuration::RTCConfigurationBuilder;
    use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
    use rtc::peer_connection::configuration::media_engine::MediaEngine;
    use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodecParameters, RtpCodecKind};
    let mut me = MediaEngine::default();
    me.register_codec(RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: 111, ..Default::default() }, RtpCodecKind::Audio)
        .map_err(werr)?;
    me.register_header_extension(
        rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability { uri: AUDIO_LEVEL_URI.to_owned() },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(werr)?;
    // RTCP sender/receiver reports only (network stats, RFC 3550 section 6.4). Not webrtc-rs's
    // defaults: NACK is not negotiated for Opus (no retransmission of audio), and the
    // transport-wide congestion control feedback (TWCC) has no consumer here, since the SFU
    // runs no bandwidth estimation for audio. Without TWCC no packet carries its header
    // extension and neither end sends or parses feedback every 100 ms.
    let registry = configure_rtcp_reports(Registry::new()).with(
        rtc::interceptor::Slot::from(crate::netstats::ReportTap::SLOT),
        crate::netstats::ReportTap::new(reports.clone()),
    );
    let se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(loopback)
        // RFC 8445 section 14.2: Ta = 50 ms between checks (webrtc-rs waits 200 ms, which
        // alone made a join take ~400 ms on loopback). 28 checks keep the 1.4 s attempt window.
        .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
        .build();
    let addr = if loopback { "127.0.0.1:0" } else { "0.0.0.0:0" };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(
                    ice.servers
                        .iter()
                        .map(|s| rtc::peer_connection::transport::RTCIceServer {
                            urls: s.urls.clone(),
                            username: s.username.clone(),
                            credential: s.credential.clone(),
                        })
                        .collect(),
                )
                .with_ice_transport_policy(if ice.relay_only {
                    rtc::peer_connection::configuration::RTCIceTransportPolicy::Relay
                } else {
                    rtc::peer_connection::configuration::RTCIceTransportPolicy::All
                })
                .build(),
        )
        .with_media_engine(me)
        .with_setting_engine(se)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![addr.to_owned()])
        .build()
        .await
        .map_err(werr)?;
    Ok(Arc::new(pc))
}

async fn run_join(inner: &Arc<ClientInner>, url: RoomUrl, token: Option<String>, generation: u64) -> Result<Value, ClientError> {
    let ws_url = url.ws_url();
    // Nagle off (`disable_nagle`): `join` and the publish offer go out back to back.
    let connect = tokio_tungstenite::connect_async_with_config(ws_url.as_str(), None, true);
    let (ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| ClientError::Timeout(format!("could not reach {ws_url} within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| ClientError::Signalling(format!("could not connect to {ws_url}: {e}")))?;
    let (mut ws_write, mut ws_read) = ws.split();
    let user_name = {
        let st = inner.lock();
        if st.user_name.is_empty() { None } else { Some(st.user_name.clone()) }
    };
    let subscriptions = {
        let mut st = inner.lock();
        let rules = shapes::subscription_rules(&st.profiles, &st.subscriptions);
        st.sent_rules = Some(rules.clone());
        Some(rules)
    };
    let join = ClientMessage::Join { protocol_version: PROTOCOL_VERSION, user_name, token, subscriptions };
    ws_write.send(tokio_tungstenite::tungstenite::Message::text(join.to_json())).await.map_err(|e| ClientError::Signalling(e.to_string()))?;
    // First reply: joined (or an error).
    let joined = tokio::time::timeout(CONNECT_TIMEOUT, async {
        while let Some(m) = ws_read.next().await {
            match m {
                Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => return Ok(ServerMessage::parse(&t).map_err(|e| ClientError::Signalling(e.to_string()))?),
                Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => break,
                _ => {}
            }
        }
        Err(ClientError::Signalling("the server closed the connection while joining".into()))
    })
    .await
    .map_err(|_| ClientError::Timeout("the server did not answer the join".into()))??;
    let (room_session, me, others) = match joined {
        ServerMessage::Joined { session_id, participant, participants, .. } => (session_id, participant, participants),
        ServerMessage::Error { message, .. } => return Err(ClientError::Signalling(message)),
        other => return Err(ClientError::Signalling(format!("unexpected first message from the server: {other:?}"))),
    };

    let loopback = match url.host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => url.host == "localhost",
    };
    let (conn_tx, conn_rx) = watch::channel(false);
    let (fail_tx, mut fail_rx) = watch::channel(false);
    let reports = crate::netstats::ReportTable::default();
    let ice = inner.lock().ice.clone();
    let status = |c| crate::netstats::ConnectionStatus::new(c, inner.events.clone());
    let send_pc = build_pc(
        loopback,
        Arc::new(PcHandler { connected: conn_tx, failed: fail_tx, on_track: None, status: status("sendTransport") }),
        &reports,
        &ice,
    )
    .await?;
    let session_slot: Arc<Mutex<Weak<Session>>> = Arc::new(Mutex::new(Weak::new()));
    let (rconn_tx, _rconn_rx) = watch::channel(false);
    let (rfail_tx, _rfail_rx) = watch::channel(false);
    let recv_pc = build_pc(
        loopback,
        Arc::new(PcHandler {
            connected: rconn_tx,
            failed: rfail_tx,
            on_track: Some((Arc::downgrade(inner), session_slot.clone(), inner.rt.clone())),
            status: status("recvTransport"),
        }),
        &reports,
        &ice,
    )
    .await?;
    let (ws_tx, mut ws_rx) = mpsc::unbounded_channel::<ClientMessage>();
    let session = Arc::new(Session {
        generation,
        ws_tx,
        send_pc,
        recv_pc,
        send_tracks: tokio::sync::Mutex::new(Vec::new()),
        publish_answer: Mutex::new(None),
        left: Mutex::new(None),
        send_connected: conn_rx.clone(),
        tasks: Mutex::new(Vec::new()),
        send_stats: Arc::new(SendStats::default()),
        forward_version: Arc::new(AtomicU64::new(0)),
        requests: Mutex::new(HashMap::new()),
        next_request: AtomicU64::new(1),
        closed: AtomicBool::new(false),
    });
    *session_slot.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(&session);
    // Check and install under one lock so a concurrent leave() either sees the session (and
    // tears it down) or has already cancelled this join.
    let installed = {
        let mut st = inner.lock();
        st.generation == generation && {
            st.session = Some(session.clone());
            true
        }
    };
    if !installed {
        // `leave` ran while we were connecting: close what we built, nothing else owns it.
        let _ = session.send_pc.close().await;
        let _ = session.recv_pc.close().await;
        return Err(ClientError::Signalling("the join was cancelled by leave()".into()));
    }
    {
        let mut st = inner.lock();
        st.local_id = me.id.clone();
        st.joined_at = me.joined_at;
        if !me.user_name.is_empty() {
            st.user_name = me.user_name.clone(); // a meeting token may set the name
        }
        st.server_me = Some(me.clone());
        st.session_id = Some(room_session.clone());
        for p in others {
            st.remotes.insert(p.id.clone(), p);
        }
    }
    // Writer task.
    let writer = inner.rt.spawn(async move {
        while let Some(m) = ws_rx.recv().await {
            if ws_write.send(tokio_tungstenite::tungstenite::Message::text(m.to_json())).await.is_err() {
                break;
            }
        }
        let _ = ws_write.close().await;
    });
    // Subscribe offers are handled in order by one task.
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel::<(String, Vec<ForwardedTrack>)>();
    let sub_task = {
        let inner = inner.clone();
        let session = Arc::downgrade(&session);
        inner.rt.clone().spawn(async move {
            while let Some((sdp, tracks)) = sub_rx.recv().await {
                let Some(s) = session.upgrade() else { break };
                if let Err(e) = inner.on_subscribe_offer(&s, sdp, tracks).await {
                    (inner.events)(ClientEvent::Error(format!("receive transport negotiation failed: {e}")));
                }
            }
        })
    };
    // Reader task.
    let reader = {
        let inner = inner.clone();
        let session = Arc::downgrade(&session);
        inner.rt.clone().spawn(async move {
            while let Some(m) = ws_read.next().await {
                let Some(s) = session.upgrade() else { return };
                let text = match m {
                    Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => t,
                    Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => break,
                    _ => continue,
                };
                match ServerMessage::parse(&text) {
                    Ok(ServerMessage::SubscribeOffer { sdp, tracks }) => {
                        let _ = sub_tx.send((sdp, tracks));
                    }
                    Ok(msg) => inner.on_server_message(&s, msg),
                    Err(e) => (inner.events)(ClientEvent::Error(format!("bad message from the server: {e}"))),
                }
            }
            // The connection dropped without a leave.
            if let Some(s) = session.upgrade() {
                let leaving = inner.lock().call_state == CallState::Leaving;
                if !leaving {
                    (inner.events)(ClientEvent::NetworkConnectionStatusUpdated(
                        json!({"connection": "signalling", "event": "interrupted"}),
                    ));
                    (inner.events)(ClientEvent::Error("the signalling connection to the room server was lost".into()));
                    inner.end_session(s.generation);
                }
            }
        })
    };
    session.tasks.lock().unwrap_or_else(|e| e.into_inner()).extend([writer, sub_task, reader]);
    (inner.events)(ClientEvent::NetworkConnectionStatusUpdated(json!({"connection": "signalling", "event": "connected"})));

    // Publish what we have and wait for the send transport.
    let publishing = {
        let st = inner.lock();
        (st.mic.is_some() && st.mic_publishing) || !st.custom_tracks.is_empty()
    };
    inner.publish(&session).await?;
    if publishing {
        let mut rx = conn_rx;
        let wait = async {
            loop {
                if *rx.borrow() {
                    return Ok(());
                }
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return Err(ClientError::WebRtc("send transport closed".into())) },
                    _ = fail_rx.changed() => if *fail_rx.borrow() { return Err(ClientError::WebRtc("send transport failed to connect".into())) },
                }
            }
        };
        tokio::time::timeout(TRANSPORT_TIMEOUT, wait)
            .await
            .map_err(|_| ClientError::Timeout("the send transport did not connect".into()))??;
    }
    // Network stats every 2 s while this session lasts (teardown aborts the task).
    let weak = Arc::downgrade(inner);
    let send_stats = session.send_stats.clone();
    let sampler = inner.rt.spawn(crate::netstats::sample_every(session.send_pc.clone(), session.recv_pc.clone(), reports, move |v| {
        let Some(inner) = weak.upgrade() else { return false };
        if inner.lock().generation != generation {
            return false;
        }
        // Adaptive in-band FEC: tuned to the worst send loss of the last 30 s, off after 30 s
        // without loss. Capped at 30 %: beyond it FEC cannot recover much and costs bitrate.
        let worst = v["stats"]["worstAudioSendPacketLoss"].as_f64().unwrap_or(0.0);
        let pct = (worst * 100.0).ceil().clamp(0.0, 30.0) as u8;
        send_stats.expected_loss_pct.store(pct, Ordering::Relaxed);
        *inner.network_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, v.clone()));
        (inner.events)(ClientEvent::NetworkStatsUpdated(v));
        true
    }));
    session.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(sampler);
    Ok(json!({
        "meetingSession": {"id": room_session},
        "participants": inner.participants(),
    }))
}

#[cfg(test)]
mod tests {
    use super::mid_for_ssrc;

    #[test]
    fn mid_is_found_by_ssrc_in_its_own_section() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a1\r\na=ssrc:111 cname:x\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ssrc:222 cname:y\r\na=mid:b2\r\n";
        assert_eq!(mid_for_ssrc(sdp, 111).as_deref(), Some("a1"));
        assert_eq!(mid_for_ssrc(sdp, 222).as_deref(), Some("b2")); // a=mid after a=ssrc
        assert_eq!(mid_for_ssrc(sdp, 333), None);
        assert_eq!(mid_for_ssrc(sdp, 11), None); // no prefix match
    }
}
