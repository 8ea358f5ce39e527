//! The public value types of a call: states, events, settings the caller passes in, and the
//! completion callback types. Events carry typed structs; [`Participant::to_value`] and
//! friends turn them into Daily's dict shapes at the edge (the Python binding, a JSON log).

use crate::{ClientError, shapes};
use daily_proto::{LeftReason, ParticipantInfo, SubscriptionRules, TrackSource};
use serde_json::{Value, json};

/// Daily's call states (daily-python's `on_call_state_updated` strings).
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

/// A participant as an event or getter shows it: what the server said of it, whether it is
/// the local participant, and which of its tracks the local client subscribes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// The server's description (ids, name, media, permissions).
    pub info: ParticipantInfo,
    /// `info.isLocal`.
    pub is_local: bool,
    /// Tracks of a remote participant the local subscription rules do not forward (shown
    /// `unsubscribed` / `receivable`); empty for the local participant.
    pub unsubscribed: Vec<TrackSource>,
}

impl Participant {
    /// A remote participant under `rules`.
    pub fn remote(info: &ParticipantInfo, rules: &SubscriptionRules) -> Participant {
        let mut unsubscribed = Vec::new();
        let mut check = |s: TrackSource| {
            if !rules.wants(&info.id, &s) {
                unsubscribed.push(s);
            }
        };
        check(TrackSource::Microphone);
        for name in info.custom_audio.keys() {
            check(TrackSource::CustomAudio { track_name: name.clone() });
        }
        check(TrackSource::Camera);
        check(TrackSource::ScreenVideo);
        for name in info.custom_video.keys() {
            check(TrackSource::CustomVideo { track_name: name.clone() });
        }
        Participant { info: info.clone(), is_local: false, unsubscribed }
    }

    /// The local participant.
    pub fn local(info: ParticipantInfo) -> Participant {
        Participant { info, is_local: true, unsubscribed: Vec::new() }
    }

    /// Daily's participant dict (`{"id", "info": {...}, "media": {...}}`).
    pub fn to_value(&self) -> Value {
        shapes::participant_dict(&self.info, self.is_local, &|s| !self.unsubscribed.contains(s))
    }
}

/// Which transport a connection-status event is about (Daily's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// The WebSocket to the room server.
    Signalling,
    /// The peer connection we publish on.
    SendTransport,
    /// The peer connection the server forwards remote tracks on.
    RecvTransport,
}

impl Connection {
    /// Daily's string.
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Signalling => "signalling",
            Connection::SendTransport => "sendTransport",
            Connection::RecvTransport => "recvTransport",
        }
    }
}

/// Events a client emits, in order. The binding maps them to `EventHandler` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// `on_call_state_updated(state)`.
    CallStateUpdated(CallState),
    /// `on_participant_joined(participant)`: once per remote participant and call, before
    /// any `ParticipantUpdated` / `ParticipantLeft` of it.
    ParticipantJoined(Participant),
    /// `on_participant_updated(participant)` (remote, or the local participant).
    ParticipantUpdated(Participant),
    /// `on_participant_left(participant, reason)`.
    ParticipantLeft(Participant, LeftReason),
    /// `on_error(message)`.
    Error(String),
    /// `on_active_speaker_changed(participant)`: the new speaker (not sent when the speaker
    /// leaves; `active_speaker()` is then `None`).
    ActiveSpeakerChanged(Participant),
    /// `on_app_message(message, sender)`: any JSON value and the sender's participant id.
    AppMessage {
        /// The message as sent.
        data: Value,
        /// The sender's participant id.
        from: String,
    },
    /// `on_participant_counts_updated({"present": n, "hidden": n})`.
    ParticipantCountsUpdated {
        /// Present participants, the local one included.
        present: u32,
        /// Hidden participants (`hasPresence: False`).
        hidden: u32,
    },
    /// `on_inputs_updated(input_settings)`: Daily's input settings dict.
    InputsUpdated(Value),
    /// `on_publishing_updated(publishing_settings)`.
    PublishingUpdated(Value),
    /// `on_subscriptions_updated(subscriptions)`.
    SubscriptionsUpdated(Value),
    /// `on_subscription_profiles_updated(profiles)`.
    SubscriptionProfilesUpdated(Value),
    /// `on_network_stats_updated(stats)` (shape in `netstats`).
    NetworkStatsUpdated(Value),
    /// `on_network_connection_status_updated({"connection", "event"})`; `connected` false
    /// means `"interrupted"`.
    NetworkConnectionStatusUpdated {
        /// Which connection.
        connection: Connection,
        /// Connected (`"connected"`) or lost (`"interrupted"`).
        connected: bool,
    },
    /// `on_recording_started(status)`: a server-side recording of the room started (or was
    /// running when we joined). `status` is [`daily_proto::RecordingStatus`] as JSON.
    RecordingStarted(Value),
    /// `on_recording_stopped(stream_id)`.
    RecordingStopped(String),
    /// `on_recording_error(stream_id, message)`; `RecordingStopped` follows.
    RecordingError {
        /// The recording's stream id.
        stream_id: String,
        /// What went wrong.
        message: String,
    },
}

impl ClientEvent {
    /// `on_participant_left`'s reason string (`"leftCall"` or `"hidden"`).
    pub fn left_reason_str(reason: &LeftReason) -> &'static str {
        match reason {
            LeftReason::Hidden => "hidden",
            _ => "leftCall",
        }
    }

    /// The event's arguments as Daily's JSON values, in `EventHandler` order.
    pub fn args(&self) -> Vec<Value> {
        self.clone().into_args()
    }

    /// [`ClientEvent::args`], moving the payload instead of copying it (the edge conversion
    /// the Python binding uses).
    pub fn into_args(self) -> Vec<Value> {
        match self {
            ClientEvent::CallStateUpdated(s) => vec![json!(s.as_str())],
            ClientEvent::ParticipantJoined(p) | ClientEvent::ParticipantUpdated(p) | ClientEvent::ActiveSpeakerChanged(p) => {
                vec![p.to_value()]
            }
            ClientEvent::ParticipantLeft(p, r) => vec![p.to_value(), json!(Self::left_reason_str(&r))],
            ClientEvent::Error(m) => vec![json!(m)],
            ClientEvent::AppMessage { data, from } => vec![data, json!(from)],
            ClientEvent::ParticipantCountsUpdated { present, hidden } => vec![json!({"present": present, "hidden": hidden})],
            ClientEvent::InputsUpdated(v)
            | ClientEvent::PublishingUpdated(v)
            | ClientEvent::SubscriptionsUpdated(v)
            | ClientEvent::SubscriptionProfilesUpdated(v)
            | ClientEvent::NetworkStatsUpdated(v) => vec![v],
            ClientEvent::NetworkConnectionStatusUpdated { connection, connected } => vec![json!({
                "connection": connection.as_str(),
                "event": if connected { "connected" } else { "interrupted" },
            })],
            ClientEvent::RecordingStarted(status) => vec![status],
            ClientEvent::RecordingStopped(id) => vec![json!(id)],
            ClientEvent::RecordingError { stream_id, message } => vec![json!(stream_id), json!(message)],
        }
    }

    /// The `EventHandler` method this event calls.
    pub fn handler_name(&self) -> &'static str {
        match self {
            ClientEvent::CallStateUpdated(_) => "on_call_state_updated",
            ClientEvent::ParticipantJoined(_) => "on_participant_joined",
            ClientEvent::ParticipantUpdated(_) => "on_participant_updated",
            ClientEvent::ParticipantLeft(..) => "on_participant_left",
            ClientEvent::Error(_) => "on_error",
            ClientEvent::ActiveSpeakerChanged(_) => "on_active_speaker_changed",
            ClientEvent::AppMessage { .. } => "on_app_message",
            ClientEvent::ParticipantCountsUpdated { .. } => "on_participant_counts_updated",
            ClientEvent::InputsUpdated(_) => "on_inputs_updated",
            ClientEvent::PublishingUpdated(_) => "on_publishing_updated",
            ClientEvent::SubscriptionsUpdated(_) => "on_subscriptions_updated",
            ClientEvent::SubscriptionProfilesUpdated(_) => "on_subscription_profiles_updated",
            ClientEvent::NetworkStatsUpdated(_) => "on_network_stats_updated",
            ClientEvent::NetworkConnectionStatusUpdated { .. } => "on_network_connection_status_updated",
            ClientEvent::RecordingStarted(_) => "on_recording_started",
            ClientEvent::RecordingStopped(_) => "on_recording_stopped",
            ClientEvent::RecordingError { .. } => "on_recording_error",
        }
    }
}

/// Receives events, in order (see [`crate::CallClient`]): must not block for long.
pub type EventSink = std::sync::Arc<dyn Fn(ClientEvent) + Send + Sync>;
/// Completion with no value. Runs after every event the call caused.
pub type Done = Box<dyn FnOnce(Result<(), ClientError>) + Send>;
/// Completion with a value: `join`'s Daily join data (`{"meetingSession": {"id"},
/// "participants"}`), `start_recording`'s stream id.
pub type JoinDone = Box<dyn FnOnce(Result<Value, ClientError>) + Send>;

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
    pub fn validate(&self) -> Result<(), ClientError> {
        for s in &self.servers {
            if s.urls.is_empty() {
                return Err(ClientError::InvalidArgument("an ICE server needs at least one URL".into()));
            }
            for u in &s.urls {
                if !["stun:", "stuns:", "turn:", "turns:"].iter().any(|p| u.starts_with(p)) {
                    return Err(ClientError::InvalidArgument(format!(
                        "ICE server URL {u:?} must start with stun:, stuns:, turn: or turns:"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What to publish at join.
#[derive(Clone)]
pub struct JoinSettings<S = crate::MediaSource> {
    /// A source used as the microphone, with its track id (resolved by the caller from
    /// `inputs.microphone.settings`); `None` sends no microphone.
    pub microphone: Option<(String, S)>,
    /// A video source used as the camera (from `inputs.camera.settings`: a virtual camera's
    /// `deviceId` or a `customTrack`), with its track id; `None` sends no camera.
    pub camera: Option<(String, S)>,
    /// A video source used as the screen share (`inputs.screenVideo.settings`), likewise.
    pub screen_video: Option<(String, S)>,
    /// Daily's `client_settings` (`{"inputs": ..., "publishing": ...}`, shorthands allowed):
    /// merged into `inputs()` / `publishing()`; the microphone's `isPublishing` and
    /// `sendSettings` (`"speech"`, `"music"`, `{"channelConfig", "bitrate"}`) apply.
    pub client_settings: Value,
}

impl<S> Default for JoinSettings<S> {
    fn default() -> Self {
        JoinSettings { microphone: None, camera: None, screen_video: None, client_settings: Value::Null }
    }
}

/// The sources an `update_inputs` call switches: for each input, `None` leaves it as it is,
/// `Some(None)` stops it and `Some(Some((track_id, source)))` switches to that source.
pub struct InputChange<S = crate::MediaSource> {
    /// `inputs.microphone`.
    pub microphone: Option<Option<(String, S)>>,
    /// `inputs.camera`.
    pub camera: Option<Option<(String, S)>>,
    /// `inputs.screenVideo`.
    pub screen_video: Option<Option<(String, S)>>,
}

impl<S> Default for InputChange<S> {
    fn default() -> Self {
        InputChange { microphone: None, camera: None, screen_video: None }
    }
}
