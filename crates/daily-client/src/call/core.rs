//! [`CallCore`]: everything a call knows and decides, with no IO. It holds the participants,
//! Daily's settings, the sources to publish, pending requests and completions, and the order
//! of events. It is driven by `handle_*` calls (API calls, server messages, transport
//! reports, the time) and drained by [`CallCore::poll_output`] (events, completions,
//! signalling to send, commands for the transports) and [`CallCore::poll_timeout`]. It never
//! reads a clock, spawns a task or touches a socket: the shell in `client.rs` / `session.rs`
//! does that and carries out what it asks. `tests.rs` drives it on a virtual clock.
//!
//! Guarantees (daily-python's contract, `spec/API.md`):
//! - every completion is output exactly once, whatever happens to the call;
//! - the state event a call causes is output before its completion;
//! - each remote participant gets exactly one `ParticipantJoined` per call, before any
//!   `ParticipantUpdated` / `ParticipantLeft` of it (see `roster.rs`).

use super::roster::Roster;
use super::settings::{SendSettings, Settings, VideoSendSettings};
use super::types::{CallState, ClientEvent, Connection, IceConfig, Participant};
use crate::ClientError;
use daily_proto::{
    ClientMessage, ForwardedTrack, MediaInfo, PROTOCOL_VERSION, ParticipantInfo, RoomUrl, SubscriptionRules, TrackSource,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

mod api;
mod link;
mod messages;

pub use link::{ICE_RESTART_AFTER, ICE_RESTART_INTERVAL, MEDIA_LOST_LIMIT, RECONNECT_INTERVAL, RESUME_LIMIT};

/// How long `join` waits for the signalling connection, and then for the server's answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `join` waits for the media transports to connect.
pub const TRANSPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `leave` waits for the server's `left` before closing anyway.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the shell may take to close a session's transports.
pub const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// A source of audio the core can ask the transports to publish: a cheap handle compared by
/// identity (`AudioSource` in the shell, plain numbers in tests).
pub trait SourceHandle: Clone + Send + 'static {
    /// Whether `self` and `other` are the same source.
    fn same_source(&self, other: &Self) -> bool;
}

/// Identifies a completion the shell holds (the callback itself stays in the shell).
pub type CompletionId = u64;

/// One track the send transport must carry.
#[derive(Debug, Clone)]
pub struct SendTrackSpec<S> {
    /// Which of the participant's tracks it is.
    pub key: TrackSource,
    /// The application's track id (UUID of a `CustomAudioTrack`, or a device name).
    pub track_id: String,
    /// Where its audio comes from.
    pub source: S,
    /// Encoder settings.
    pub send: SendSettings,
    /// The track never makes this participant the active speaker.
    pub ignore_level: bool,
    /// Encoder limits of a video track (`publishing.camera/screenVideo.sendSettings`).
    pub video: VideoSendSettings,
}

/// What the core asks the transports (webrtc-rs, the signalling socket) to do. Each command
/// names the session (`generation`) it belongs to; commands of a session that has ended are
/// to be ignored by the shell.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportCommand<S> {
    /// Open the signalling connection; report [`CallCore::handle_signalling_open`] or
    /// [`CallCore::handle_join_failed`], then every message and the close.
    Connect { generation: u64, url: RoomUrl },
    /// The server accepted the join: build both peer connections, publish `tracks` and wait
    /// for the send transport; report [`CallCore::handle_media_ready`] or
    /// [`CallCore::handle_join_failed`].
    StartMedia { generation: u64, loopback: bool, ice: IceConfig, tracks: Vec<SendTrackSpec<S>> },
    /// Renegotiate the send transport to carry exactly `tracks`; report
    /// [`CallCore::handle_publish_done`] with `done`.
    Publish { generation: u64, tracks: Vec<SendTrackSpec<S>>, done: CompletionId },
    /// The server's answer to our latest publish offer.
    PublishAnswer { generation: u64, sdp: String },
    /// A new offer for the receive transport and what its m-lines carry.
    Subscribe { generation: u64, sdp: String, tracks: Vec<ForwardedTrack> },
    /// A remote participant left: stop rendering its tracks.
    ParticipantLeft { generation: u64, participant_id: String },
    /// Close everything of session `generation`; report [`CallCore::handle_teardown_done`].
    Teardown { generation: u64 },
    /// The signalling connection of `generation` was lost in a call: open a new one to the
    /// same room, send `resume` on it first, and from then on send the session's signalling
    /// there (what was queued meanwhile after `resume`); report
    /// [`CallCore::handle_signalling_reopened`] or [`CallCore::handle_reconnect_failed`].
    /// The old connection's reports are no longer delivered.
    Reconnect { generation: u64, url: RoomUrl, resume: ClientMessage },
    /// Restart ICE on the send transport (RFC 8445 section 2.4): a new offer with new ICE
    /// credentials, carrying `tracks`, as a publish without a completion.
    RestartIce { generation: u64, tracks: Vec<SendTrackSpec<S>> },
}

/// One item of the core's ordered output.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output<S> {
    /// Dispatch to the application's event handler.
    Event(ClientEvent),
    /// Complete call `id` (`Value::Null` for calls without a value).
    Complete(CompletionId, Result<Value, ClientError>),
    /// Send on the signalling connection of session `generation`.
    Signal(u64, ClientMessage),
    /// Carry out a transport command.
    Transport(TransportCommand<S>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Not in a call (initialized or left).
    Idle,
    /// Waiting for the signalling connection.
    Connecting { deadline: Instant },
    /// `join` sent, waiting for `joined`.
    AwaitJoined { deadline: Instant },
    /// Accepted; the transports are starting.
    Media { deadline: Instant },
    /// In the call.
    InCall,
    /// `leave` sent, waiting for `left`.
    Leaving { deadline: Instant },
    /// The transports are closing; `left` follows.
    TearingDown { deadline: Instant },
}

#[derive(Debug)]
enum Target {
    One(CompletionId),
    Group(u64),
    /// Completes with this value on success (`start_recording`: its stream id).
    Value(CompletionId, Value),
    /// Nobody waits (subscription rules re-sent after join).
    Nobody,
}

#[derive(Debug)]
struct Group {
    remaining: usize,
    errors: Vec<String>,
    done: CompletionId,
}

#[derive(Debug, Clone)]
struct CustomTrack<S> {
    track_id: String,
    source: S,
    ignore_level: bool,
}

/// The IO-free state machine of one call client (see the module docs).
pub struct CallCore<S> {
    state: CallState,
    phase: Phase,
    /// Bumped on every join: messages and reports of an older session are ignored.
    generation: u64,
    url: Option<RoomUrl>,
    token: Option<String>,
    join_done: Option<CompletionId>,
    leave_waiters: Vec<CompletionId>,
    /// Publish completions not yet reported by the transports.
    publishes: Vec<CompletionId>,
    user_name: String,
    local_id: String,
    joined_at: u64,
    session_id: Option<String>,
    /// The local participant as the server last described it (owner, ids, permissions).
    server_me: Option<ParticipantInfo>,
    roster: Roster,
    counts: (u32, u32),
    active_speaker: Option<String>,
    /// Recordings the server announced while we were joining (`recordingStarted` statuses),
    /// reported once we are joined.
    recordings_seen: Vec<Value>,
    settings: Settings,
    mic: Option<(String, S)>,
    custom_tracks: BTreeMap<String, CustomTrack<S>>,
    /// The camera input (`inputs.camera`): a virtual camera or a custom video track.
    camera: Option<(String, S)>,
    /// The screen-share input (`inputs.screenVideo`), likewise.
    screen: Option<(String, S)>,
    custom_video: BTreeMap<String, CustomTrack<S>>,
    ice: IceConfig,
    /// The subscription rules the server has.
    sent_rules: Option<SubscriptionRules>,
    requests: BTreeMap<u64, Target>,
    groups: BTreeMap<u64, Group>,
    next_request: u64,
    network_stats: Option<Value>,
    /// Secret for resuming the session after a signalling outage (`joined.resumeToken`).
    resume_token: Option<String>,
    link: link::Link,
    health: link::MediaHealth,
    out: VecDeque<Output<S>>,
}

impl<S: SourceHandle> CallCore<S> {
    /// A client that has not joined. `local_id` is the participant id shown before the
    /// server assigns one; `joined_at` is a Unix time in seconds.
    pub fn new(local_id: String, joined_at: u64) -> Self {
        CallCore {
            state: CallState::Initialized,
            phase: Phase::Idle,
            generation: 0,
            url: None,
            token: None,
            join_done: None,
            leave_waiters: Vec::new(),
            publishes: Vec::new(),
            user_name: String::new(),
            local_id,
            joined_at,
            session_id: None,
            server_me: None,
            roster: Roster::default(),
            counts: (0, 0),
            active_speaker: None,
            recordings_seen: Vec::new(),
            settings: Settings::new(),
            mic: None,
            custom_tracks: BTreeMap::new(),
            camera: None,
            screen: None,
            custom_video: BTreeMap::new(),
            ice: IceConfig::default(),
            sent_rules: None,
            requests: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_request: 1,
            network_stats: None,
            resume_token: None,
            link: link::Link::Up,
            health: link::MediaHealth::default(),
            out: VecDeque::new(),
        }
    }

    // ---- output ----

    /// The next output, in the order it must be carried out.
    pub fn poll_output(&mut self) -> Option<Output<S>> {
        self.out.pop_front()
    }

    /// When [`CallCore::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Connecting { deadline }
            | Phase::AwaitJoined { deadline }
            | Phase::Media { deadline }
            | Phase::Leaving { deadline }
            | Phase::TearingDown { deadline } => Some(deadline),
            Phase::InCall => self.link_timeout(),
            Phase::Idle => None,
        }
    }

    fn emit(&mut self, e: ClientEvent) {
        self.out.push_back(Output::Event(e));
    }

    fn complete(&mut self, id: CompletionId, r: Result<Value, ClientError>) {
        self.out.push_back(Output::Complete(id, r));
    }

    fn ok(&mut self, id: CompletionId) {
        self.complete(id, Ok(Value::Null));
    }

    fn signal(&mut self, msg: ClientMessage) {
        self.out.push_back(Output::Signal(self.generation, msg));
    }

    fn transport(&mut self, c: TransportCommand<S>) {
        self.out.push_back(Output::Transport(c));
    }

    fn set_state(&mut self, s: CallState) {
        if self.state != s {
            self.state = s;
            self.emit(ClientEvent::CallStateUpdated(s));
        }
    }

    // ---- getters ----

    /// The current call state.
    pub fn call_state(&self) -> CallState {
        self.state
    }

    /// The session the transports must serve now (0 before the first join).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether session `generation` is current and has not ended.
    pub fn is_live(&self, generation: u64) -> bool {
        generation == self.generation && !matches!(self.phase, Phase::Idle)
    }

    /// The local participant's id (the server's once joined).
    pub fn local_id(&self) -> &str {
        &self.local_id
    }

    /// `inputs()`.
    pub fn inputs(&self) -> &Value {
        &self.settings.inputs
    }

    /// `publishing()`.
    pub fn publishing(&self) -> &Value {
        &self.settings.publishing
    }

    /// `subscriptions()`.
    pub fn subscriptions(&self) -> &Value {
        &self.settings.subscriptions
    }

    /// `subscription_profiles()`.
    pub fn subscription_profiles(&self) -> &Value {
        &self.settings.profiles
    }

    /// `participant_counts()` as `(present, hidden)`.
    pub fn counts(&self) -> (u32, u32) {
        self.counts
    }

    /// The microphone's track id, if a microphone is set.
    pub fn microphone_track_id(&self) -> Option<&str> {
        self.mic.as_ref().map(|m| m.0.as_str())
    }

    /// The latest network stats of the current session.
    pub fn network_stats(&self) -> Option<&Value> {
        self.network_stats.as_ref()
    }

    fn local_info(&self) -> ParticipantInfo {
        let me = self.server_me.as_ref();
        let permissions = me.map(|m| m.permissions.clone()).unwrap_or_default();
        let custom_audio = self
            .custom_tracks
            .iter()
            .map(|(name, t)| (name.clone(), MediaInfo { publishing: true, track_id: Some(t.track_id.clone()) }))
            .collect();
        let mic_on = self.mic.is_some()
            && self.settings.mic_publishing
            && self.state == CallState::Joined
            && permissions.may_send(&TrackSource::Microphone);
        let joined = self.state == CallState::Joined;
        let video_info = |input: &Option<(String, S)>, publishing: bool, source: TrackSource| MediaInfo {
            publishing: input.is_some() && publishing && joined && permissions.may_send(&source),
            track_id: input.as_ref().map(|c| c.0.clone()),
        };
        let camera = video_info(&self.camera, self.settings.camera_publishing, TrackSource::Camera);
        let screen_video = video_info(&self.screen, self.settings.screen_publishing, TrackSource::ScreenVideo);
        let custom_video = self
            .custom_video
            .iter()
            .map(|(name, t)| (name.clone(), MediaInfo { publishing: true, track_id: Some(t.track_id.clone()) }))
            .collect();
        ParticipantInfo {
            id: self.local_id.clone(),
            user_name: self.user_name.clone(),
            user_id: me.map_or_else(|| self.local_id.clone(), |m| m.user_id.clone()),
            joined_at: self.joined_at,
            is_owner: me.is_some_and(|m| m.is_owner),
            microphone: MediaInfo { publishing: mic_on, track_id: self.mic.as_ref().map(|m| m.0.clone()) },
            custom_audio,
            camera,
            screen_video,
            custom_video,
            permissions,
        }
    }

    /// The local participant.
    pub fn local(&self) -> Participant {
        Participant::local(self.local_info())
    }

    /// Participant `id` (local or remote) under the current subscription rules.
    pub fn participant(&self, id: &str) -> Option<Participant> {
        if id == self.local_id {
            return Some(self.local());
        }
        self.roster.get(id).map(|p| Participant::remote(p, &self.settings.rules()))
    }

    /// `participants()`: `{"local": {...}, "<id>": {...}}`.
    pub fn participants(&self) -> Value {
        let rules = self.settings.rules();
        let mut m = serde_json::Map::new();
        m.insert("local".into(), self.local().to_value());
        for p in self.roster.iter() {
            m.insert(p.id.clone(), Participant::remote(p, &rules).to_value());
        }
        Value::Object(m)
    }

    /// `active_speaker()`.
    pub fn active_speaker(&self) -> Option<Participant> {
        self.active_speaker.as_deref().and_then(|id| self.participant(id))
    }

    /// What the send transport must carry now.
    fn wanted_tracks(&self) -> Vec<SendTrackSpec<S>> {
        let mut want = Vec::new();
        if let Some((id, src)) = self.mic.as_ref().filter(|_| self.settings.mic_publishing) {
            want.push(SendTrackSpec {
                key: TrackSource::Microphone,
                track_id: id.clone(),
                source: src.clone(),
                send: self.settings.mic_send,
                ignore_level: false,
                video: VideoSendSettings::default(),
            });
        }
        for (name, t) in &self.custom_tracks {
            // Custom tracks keep our defaults; the microphone follows its send settings.
            want.push(SendTrackSpec {
                key: TrackSource::CustomAudio { track_name: name.clone() },
                track_id: t.track_id.clone(),
                source: t.source.clone(),
                send: SendSettings::default(),
                ignore_level: t.ignore_level,
                video: VideoSendSettings::default(),
            });
        }
        let video_inputs = [
            (TrackSource::Camera, &self.camera, self.settings.camera_publishing, self.settings.camera_send),
            (TrackSource::ScreenVideo, &self.screen, self.settings.screen_publishing, self.settings.screen_send),
        ];
        for (key, input, publishing, video) in video_inputs {
            if let Some((id, src)) = input.as_ref().filter(|_| publishing) {
                want.push(SendTrackSpec { key, track_id: id.clone(), source: src.clone(), send: SendSettings::default(), ignore_level: true, video });
            }
        }
        for (name, t) in &self.custom_video {
            want.push(SendTrackSpec {
                key: TrackSource::CustomVideo { track_name: name.clone() },
                track_id: t.track_id.clone(),
                source: t.source.clone(),
                send: SendSettings::default(),
                ignore_level: true,
                video: self.settings.camera_send,
            });
        }
        want
    }

    // ---- reports from the shell ----

    /// The signalling connection of `generation` is open: send `join`.
    pub fn handle_signalling_open(&mut self, now: Instant, generation: u64) {
        if generation != self.generation || !matches!(self.phase, Phase::Connecting { .. }) {
            self.transport(TransportCommand::Teardown { generation });
            return;
        }
        self.phase = Phase::AwaitJoined { deadline: now + CONNECT_TIMEOUT };
        self.emit(ClientEvent::NetworkConnectionStatusUpdated { connection: Connection::Signalling, connected: true });
        let rules = self.settings.rules();
        self.sent_rules = Some(rules.clone());
        let user_name = Some(self.user_name.clone()).filter(|n| !n.is_empty());
        self.signal(ClientMessage::Join { protocol_version: PROTOCOL_VERSION, user_name, token: self.token.clone(), subscriptions: Some(rules) });
    }

    /// The transports of `generation` could not be set up (connection refused, WebRTC
    /// failure): the join fails with `error`.
    pub fn handle_join_failed(&mut self, _now: Instant, generation: u64, error: ClientError) {
        if generation == self.generation && self.state == CallState::Joining {
            self.fail_join(error, true);
        }
    }

    /// Both transports of `generation` are up and the send transport is connected.
    pub fn handle_media_ready(&mut self, _now: Instant, generation: u64) {
        if generation != self.generation || !matches!(self.phase, Phase::Media { .. }) {
            return;
        }
        self.phase = Phase::InCall;
        self.set_state(CallState::Joined);
        // Subscriptions changed while joining (after `join` was sent): send them now.
        let rules = self.settings.rules();
        if self.sent_rules.as_ref() != Some(&rules) {
            self.sent_rules = Some(rules.clone());
            self.request("update subscriptions", Target::Nobody, move |request_id| ClientMessage::SetSubscriptions { request_id, rules });
        }
        let data = json!({
            "meetingSession": {"id": self.session_id.clone().unwrap_or_default()},
            "participants": self.participants(),
        });
        if let Some(done) = self.join_done.take() {
            self.complete(done, Ok(data));
        }
        // Everybody already here, once each, after the joined state.
        let rules = self.settings.rules();
        for id in self.roster.go_live() {
            if let Some(p) = self.roster.get(&id) {
                let p = Participant::remote(p, &rules);
                self.emit(ClientEvent::ParticipantJoined(p));
            }
        }
        // A speaker the server named while we joined, now that everybody is announced.
        if let Some(p) = self.active_speaker() {
            self.emit(ClientEvent::ActiveSpeakerChanged(p));
        }
        // Recordings running when we joined (Daily reports them to a newcomer too).
        for status in std::mem::take(&mut self.recordings_seen) {
            self.emit(ClientEvent::RecordingStarted(status));
        }
    }

    /// A publish command finished.
    pub fn handle_publish_done(&mut self, _now: Instant, done: CompletionId, result: Result<(), ClientError>) {
        if let Some(i) = self.publishes.iter().position(|d| *d == done) {
            self.publishes.swap_remove(i);
            self.complete(done, result.map(|_| Value::Null));
        }
    }

    /// A transport's connection state changed (interrupted: ICE disconnected or failed).
    pub fn handle_connection_status(&mut self, now: Instant, generation: u64, connection: Connection, connected: bool) {
        if self.is_live(generation) {
            self.media_status(now, connection, connected);
            self.emit(ClientEvent::NetworkConnectionStatusUpdated { connection, connected });
        }
    }

    /// New network stats of session `generation` (every 2 s).
    pub fn handle_network_stats(&mut self, generation: u64, stats: Value) -> bool {
        if !self.is_live(generation) {
            return false;
        }
        self.network_stats = Some(stats.clone());
        self.emit(ClientEvent::NetworkStatsUpdated(stats));
        true
    }

    /// Something of session `generation` went wrong that the application should hear of
    /// (`on_error`) without ending the call: a malformed server message, a failed
    /// renegotiation of the receive transport.
    pub fn handle_error_report(&mut self, generation: u64, message: String) {
        if self.is_live(generation) {
            self.emit(ClientEvent::Error(message));
        }
    }

    /// The signalling connection of `generation` closed (or failed).
    pub fn handle_signalling_closed(&mut self, now: Instant, generation: u64) {
        if generation != self.generation {
            return;
        }
        match self.phase {
            Phase::Connecting { .. } | Phase::AwaitJoined { .. } | Phase::Media { .. } => {
                self.fail_join(ClientError::Signalling("the server closed the connection while joining".into()), true);
            }
            Phase::InCall => {
                if self.link_lost(now) {
                    return; // resuming (`core/link.rs`)
                }
                self.emit(ClientEvent::NetworkConnectionStatusUpdated { connection: Connection::Signalling, connected: false });
                self.emit(ClientEvent::Error("the signalling connection to the room server was lost".into()));
                self.begin_teardown(now);
            }
            Phase::Leaving { .. } => self.begin_teardown(now),
            Phase::Idle | Phase::TearingDown { .. } => {}
        }
    }

    /// The transports of `generation` are closed.
    pub fn handle_teardown_done(&mut self, _now: Instant, generation: u64) {
        if generation == self.generation && matches!(self.phase, Phase::TearingDown { .. }) {
            self.finish_left();
        }
    }

    /// Deadlines: a join that takes too long fails, a leave the server does not answer
    /// closes anyway, a teardown that hangs is finished.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else { return };
        if now < deadline {
            return;
        }
        match self.phase {
            Phase::Connecting { .. } => {
                let url = self.url.as_ref().map(|u| u.ws_url()).unwrap_or_default();
                let e = ClientError::Timeout(format!("could not reach {url} within {} s", CONNECT_TIMEOUT.as_secs()));
                self.fail_join(e, true);
            }
            Phase::AwaitJoined { .. } => self.fail_join(ClientError::Timeout("the server did not answer the join".into()), true),
            Phase::Media { .. } => self.fail_join(ClientError::Timeout("the send transport did not connect".into()), true),
            Phase::Leaving { .. } => self.begin_teardown(now),
            Phase::TearingDown { .. } => self.finish_left(),
            Phase::InCall => self.link_timers(now),
            Phase::Idle => {}
        }
    }

    /// The join ends without a call: transports closed, `error` (when `report`) and `left`
    /// output, then the join's completion.
    fn fail_join(&mut self, error: ClientError, report: bool) {
        let generation = self.generation;
        self.transport(TransportCommand::Teardown { generation });
        self.end_session();
        if report {
            self.emit(ClientEvent::Error(error.to_string()));
        }
        self.set_state(CallState::Left);
        if let Some(done) = self.join_done.take() {
            self.complete(done, Err(error));
        }
        // Late reports of this session must not touch a later one.
        self.generation += 1;
    }

    fn begin_teardown(&mut self, now: Instant) {
        self.transport(TransportCommand::Teardown { generation: self.generation });
        self.fail_pending();
        self.phase = Phase::TearingDown { deadline: now + TEARDOWN_TIMEOUT };
    }

    fn finish_left(&mut self) {
        self.end_session();
        self.set_state(CallState::Left);
        for done in std::mem::take(&mut self.leave_waiters) {
            self.ok(done);
        }
    }

    /// Completes what waits on the session's server with [`ClientError::CallEnded`].
    fn fail_pending(&mut self) {
        self.fail_requests(ClientError::CallEnded);
        for done in std::mem::take(&mut self.publishes) {
            self.complete(done, Err(ClientError::CallEnded));
        }
    }

    /// Completes every request waiting for a server reply with `error`.
    fn fail_requests(&mut self, error: ClientError) {
        for (_, target) in std::mem::take(&mut self.requests) {
            self.finish_request(target, Err(error.clone()));
        }
    }

    /// Forgets what belongs to the session; the call state is left to the caller.
    fn end_session(&mut self) {
        self.fail_pending();
        self.phase = Phase::Idle;
        self.roster.clear();
        self.session_id = None;
        self.counts = (0, 0);
        self.active_speaker = None;
        self.recordings_seen.clear();
        self.network_stats = None;
        self.resume_token = None;
        self.link = link::Link::Up;
        self.health = link::MediaHealth::default();
    }

    /// `release()`: forgets the sources (after leaving).
    pub fn handle_release(&mut self) {
        self.custom_tracks.clear();
        self.mic = None;
        self.custom_video.clear();
        self.camera = None;
        self.screen = None;
    }
}
