//! Signalling messages shared by the open Daily client (`daily-client`) and room server
//! (`daily-server`). No IO: this crate only defines the JSON shapes and their (de)serialisation.
//!
//! # Transport
//! One WebSocket per participant at `ws://HOST:PORT/ws/{room}` carries JSON text frames, each an
//! object with a `"type"` tag. Media travels over two WebRTC peer connections per participant,
//! named as Daily names them:
//! - the **send transport** (`publish*` messages): the client offers, the server answers; it
//!   carries the participant's audio tracks to the SFU;
//! - the **receive transport** (`subscribe*` messages): the server offers, the client answers; it
//!   carries every other participant's tracks, forwarded by the SFU without transcoding.
//!
//! Each side only ever offers on its own transport, so offers never collide (no glare, RFC 8829
//! section 4.1.8.1 does not arise). SDPs are complete (non-trickle): candidates are gathered before
//! a description is sent. See `docs/signalling.md` for the whole protocol with a sequence.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod recording;
pub use recording::{DEFAULT_STREAM_ID, MAX_STREAM_ID_BYTES, RecordingStatus};

/// Protocol version carried in `join`; the server refuses a different major.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest signalling message either side accepts, in bytes. Larger frames close the connection.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Path prefix of the signalling WebSocket: a client joins room `R` at `/ws/R`.
pub const WS_PATH_PREFIX: &str = "/ws/";

/// Longest display name the server accepts, in bytes (UTF-8). Clients check it before sending.
pub const MAX_USER_NAME_BYTES: usize = 1024;

/// Longest custom track name the server accepts, in bytes (UTF-8). Clients check it before
/// sending.
pub const MAX_TRACK_NAME_BYTES: usize = 256;

/// How long the server keeps a participant whose signalling connection dropped without a
/// `leave`, waiting for a [`ClientMessage::Resume`], by default (seconds). Others keep seeing
/// the participant meanwhile; past it they get `participantLeft`. Configurable per server.
pub const DEFAULT_RESUME_GRACE_SECS: u64 = 60;

/// Where a published track comes from, in Daily's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum TrackSource {
    /// The participant's microphone input (a device or a custom track used as the microphone).
    Microphone,
    /// A named custom audio track (`CallClient.add_custom_audio_track(track_name, ...)`).
    #[serde(rename_all = "camelCase")]
    CustomAudio {
        /// The `track_name` the publisher gave.
        track_name: String,
    },
    /// The participant's camera input (a virtual camera or a custom video track used as the
    /// camera).
    Camera,
    /// The participant's screen share (`inputs.screenVideo`).
    ScreenVideo,
    /// A named custom video track (`CallClient.add_custom_video_track(track_name, ...)`).
    #[serde(rename_all = "camelCase")]
    CustomVideo {
        /// The `track_name` the publisher gave.
        track_name: String,
    },
}

impl TrackSource {
    /// The `audio_source` string a renderer names this source by (`"microphone"` or the track name).
    pub fn audio_source_name(&self) -> &str {
        self.source_name()
    }

    /// The name a renderer gives this source by: `"microphone"`, `"camera"`, `"screenVideo"`
    /// or the custom track's name (daily-python's `audio_source` / `video_source`).
    pub fn source_name(&self) -> &str {
        match self {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::ScreenVideo => "screenVideo",
            TrackSource::CustomAudio { track_name } | TrackSource::CustomVideo { track_name } => track_name,
        }
    }

    /// Whether the source is video (camera, screen, custom video), carried on an `m=video`
    /// line; audio sources are carried on `m=audio` lines.
    pub fn is_video(&self) -> bool {
        matches!(self, TrackSource::Camera | TrackSource::ScreenVideo | TrackSource::CustomVideo { .. })
    }

    /// Daily's media kind of the source, as `canSend` and subscription profiles name it:
    /// `microphone`, `customAudio`, `camera`, `screenVideo` or `customVideo`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            TrackSource::Microphone => "microphone",
            TrackSource::CustomAudio { .. } => "customAudio",
            TrackSource::Camera => "camera",
            TrackSource::ScreenVideo => "screenVideo",
            TrackSource::CustomVideo { .. } => "customVideo",
        }
    }

    /// The custom track's name, for the custom kinds.
    pub fn track_name(&self) -> Option<&str> {
        match self {
            TrackSource::CustomAudio { track_name } | TrackSource::CustomVideo { track_name } => Some(track_name),
            _ => None,
        }
    }
}

/// A track offered on the send transport: which m-line (`mid`) carries which source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedTrack {
    /// The media id of the m-line in the offer (RFC 8843 section 2).
    pub mid: String,
    /// The track's id (UUID of the local `CustomAudioTrack`, or a generated one).
    pub track_id: String,
    /// What the track is.
    #[serde(flatten)]
    pub source: TrackSource,
    /// The track's RFC 6464 audio levels never make its publisher the active speaker
    /// (`add_custom_audio_track(..., ignore_audio_level=True)`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_audio_level: bool,
}

/// A track the server sends on the receive transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedTrack {
    /// The media id of the m-line in the server's offer.
    pub mid: String,
    /// Whose track it is.
    pub participant_id: String,
    /// The publisher's track id.
    pub track_id: String,
    /// What the track is.
    #[serde(flatten)]
    pub source: TrackSource,
}

/// State of one media source of a participant, as the server knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaInfo {
    /// `true` while the participant publishes this source.
    pub publishing: bool,
    /// The publisher's track id, when publishing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<String>,
}

/// What a participant may do (Daily's `permissions`). Media kinds use Daily's names:
/// `camera`, `microphone`, `screenVideo`, `screenAudio`, `customVideo`, `customAudio`; admin
/// rights: `participants`, `streaming`, `transcription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    /// `false` hides the participant from the others (counted as `hidden`).
    pub has_presence: bool,
    /// Media kinds the participant may publish; the server forwards nothing else.
    pub can_send: Vec<String>,
    /// Admin rights. `participants` lets a participant change others' permissions.
    pub can_admin: Vec<String>,
    /// Daily's `canReceive` object, kept and reported (not enforced by this server).
    pub can_receive: serde_json::Value,
}

/// Every media kind of [`Permissions::can_send`].
pub const MEDIA_KINDS: [&str; 6] =
    ["camera", "microphone", "screenVideo", "screenAudio", "customVideo", "customAudio"];

/// Every admin right of [`Permissions::can_admin`].
pub const ADMIN_KINDS: [&str; 3] = ["participants", "streaming", "transcription"];

impl Default for Permissions {
    /// Daily's defaults for a participant of a public room: present, may send everything,
    /// receive everything, administer nothing.
    fn default() -> Self {
        Permissions {
            has_presence: true,
            can_send: MEDIA_KINDS.iter().map(|s| (*s).to_owned()).collect(),
            can_admin: Vec::new(),
            can_receive: serde_json::json!({"base": {
                "camera": true, "microphone": true, "screenVideo": true, "screenAudio": true,
                "customVideo": {"*": true}, "customAudio": {"*": true},
            }}),
        }
    }
}

impl Permissions {
    /// Applies an update; fields it leaves out stay as they are.
    pub fn apply(&mut self, u: &PermissionsUpdate) {
        if let Some(v) = u.has_presence {
            self.has_presence = v;
        }
        if let Some(v) = &u.can_send {
            self.can_send = v.clone();
        }
        if let Some(v) = &u.can_admin {
            self.can_admin = v.clone();
        }
        if let Some(v) = &u.can_receive {
            self.can_receive = v.clone();
        }
    }

    /// Whether the participant may publish `source` (`microphone` or `customAudio`).
    pub fn may_send(&self, source: &TrackSource) -> bool {
        let kind = source.kind_name();
        self.can_send.iter().any(|k| k == kind)
    }
}

/// A change of [`Permissions`]: absent fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsUpdate {
    /// New `hasPresence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_presence: Option<bool>,
    /// New `canSend` (media kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_send: Option<Vec<String>>,
    /// New `canAdmin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_admin: Option<Vec<String>>,
    /// New `canReceive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_receive: Option<serde_json::Value>,
}

impl PermissionsUpdate {
    /// Checks kind names; returns a human-readable complaint for the first unknown one.
    pub fn validate(&self) -> Result<(), String> {
        for k in self.can_send.iter().flatten() {
            if !MEDIA_KINDS.contains(&k.as_str()) {
                return Err(format!("unknown canSend kind {k:?} (expected one of {})", MEDIA_KINDS.join(", ")));
            }
        }
        for k in self.can_admin.iter().flatten() {
            if !ADMIN_KINDS.contains(&k.as_str()) {
                return Err(format!("unknown canAdmin kind {k:?} (expected one of {})", ADMIN_KINDS.join(", ")));
            }
        }
        Ok(())
    }
}

/// Which remote tracks a participant wants forwarded. Keys of the inner maps are audio source
/// names: `microphone`, a custom track's name, or `customAudio` for every custom track not
/// named. Lookup order: the participant's entry, then `base`, then subscribed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRules {
    /// Defaults for every remote participant.
    #[serde(default)]
    pub base: BTreeMap<String, bool>,
    /// Per remote participant id.
    #[serde(default)]
    pub participants: BTreeMap<String, BTreeMap<String, bool>>,
}

impl SubscriptionRules {
    /// Whether `source` of participant `participant_id` should be forwarded.
    pub fn wants(&self, participant_id: &str, source: &TrackSource) -> bool {
        let lookup = |m: &BTreeMap<String, bool>| match source.track_name() {
            None => m.get(source.kind_name()).copied(),
            Some(track_name) => m.get(track_name).or_else(|| m.get(source.kind_name())).copied(),
        };
        self.participants
            .get(participant_id)
            .and_then(lookup)
            .or_else(|| lookup(&self.base))
            .unwrap_or(true)
    }
}

/// Largest app message payload (serialised JSON), in bytes, as in Daily (4 KB).
pub const MAX_APP_MESSAGE_BYTES: usize = 4096;

/// A participant as the server describes it. Clients turn it into Daily's participant dict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantInfo {
    /// Participant (session) id, a UUID4 string.
    pub id: String,
    /// Display name (`set_user_name`), empty when unset.
    #[serde(default)]
    pub user_name: String,
    /// User id; equals `id` unless a meeting token names one.
    pub user_id: String,
    /// Seconds since the Unix epoch when the participant joined.
    pub joined_at: u64,
    /// Whether the participant is a room owner.
    #[serde(default)]
    pub is_owner: bool,
    /// The microphone source.
    pub microphone: MediaInfo,
    /// Custom audio tracks by name.
    #[serde(default)]
    pub custom_audio: BTreeMap<String, MediaInfo>,
    /// The camera source.
    #[serde(default)]
    pub camera: MediaInfo,
    /// The screen-share video source.
    #[serde(default)]
    pub screen_video: MediaInfo,
    /// Custom video tracks by name.
    #[serde(default)]
    pub custom_video: BTreeMap<String, MediaInfo>,
    /// What the participant may do.
    #[serde(default)]
    pub permissions: Permissions,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeftReason {
    /// The participant left (or its connection closed).
    LeftCall,
    /// The participant became hidden.
    Hidden,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum ClientMessage {
    /// First message on a new connection.
    #[serde(rename_all = "camelCase")]
    Join {
        /// Must equal [`PROTOCOL_VERSION`].
        protocol_version: u32,
        /// Display name, if set before joining.
        #[serde(default)]
        user_name: Option<String>,
        /// Meeting token (a JWT from the server's `POST /v1/meeting-tokens`): required by
        /// private rooms, refused everywhere when invalid; grants owner, name, user id and
        /// permissions. `docs/rest-api.md`.
        #[serde(default)]
        token: Option<String>,
        /// Which remote tracks to receive from the start (default: all), so the first
        /// subscribe offer already honours them. Later changes use `setSubscriptions`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subscriptions: Option<SubscriptionRules>,
    },
    /// First message on a new connection that continues a session whose signalling connection
    /// dropped without a `leave` (network outage): same participant id, tracks and
    /// subscriptions. Accepted within the server's resume grace
    /// ([`DEFAULT_RESUME_GRACE_SECS`] by default) when `resume_token` is the one `joined`
    /// gave; answered with [`ServerMessage::Resumed`], else with a fatal
    /// [`ServerMessage::Error`]. If the server still holds an older connection for the
    /// participant, that connection is closed and replaced.
    #[serde(rename_all = "camelCase")]
    Resume {
        /// Must equal [`PROTOCOL_VERSION`].
        protocol_version: u32,
        /// The room's `sessionId` from `joined` (a resumed session must be the same meeting).
        session_id: String,
        /// Our participant id from `joined`.
        participant_id: String,
        /// The secret `joined` gave ([`ServerMessage::Joined::resume_token`]).
        resume_token: String,
    },
    /// Restart ICE on the receive transport (RFC 8445 section 2.4, RFC 8829 section 4.1.10):
    /// the server answers with a new [`ServerMessage::SubscribeOffer`] carrying new ICE
    /// credentials. (The send transport restarts with a `publishOffer` that carries new ICE
    /// credentials.)
    RestartIce,
    /// Offer (full SDP) for the send transport, with the tracks its m-lines carry.
    #[serde(rename_all = "camelCase")]
    PublishOffer {
        /// SDP offer (RFC 8866), candidates included.
        sdp: String,
        /// One entry per sending m-line. An empty list publishes nothing.
        tracks: Vec<PublishedTrack>,
    },
    /// Answer to a [`ServerMessage::SubscribeOffer`].
    #[serde(rename_all = "camelCase")]
    SubscribeAnswer {
        /// SDP answer, candidates included.
        sdp: String,
    },
    /// Change the display name; others receive [`ServerMessage::ParticipantUpdated`].
    #[serde(rename_all = "camelCase")]
    SetUserName {
        /// New name.
        user_name: String,
    },
    /// Leave the call; the server replies [`ServerMessage::Left`] and closes.
    Leave,
    /// Send `data` to everybody else, or to participant `to` only. The server answers with a
    /// [`ServerMessage::Reply`] for `request_id` and delivers [`ServerMessage::AppMessage`].
    #[serde(rename_all = "camelCase")]
    AppMessage {
        /// Echoed in the reply.
        request_id: u64,
        /// Any JSON value, at most [`MAX_APP_MESSAGE_BYTES`] serialised.
        data: serde_json::Value,
        /// A participant id, or `None` for everybody.
        #[serde(default)]
        to: Option<String>,
    },
    /// Replace which remote tracks this participant wants forwarded; the server renegotiates
    /// the receive transport. Answered with a [`ServerMessage::Reply`].
    #[serde(rename_all = "camelCase")]
    SetSubscriptions {
        /// Echoed in the reply.
        request_id: u64,
        /// The new rules.
        rules: SubscriptionRules,
    },
    /// Change permissions: one's own (`participant_id` = `None`; only giving rights up is
    /// allowed unless one is an owner or has `canAdmin: participants`) or another
    /// participant's (owners and `participants` admins only).
    #[serde(rename_all = "camelCase")]
    UpdatePermissions {
        /// Echoed in the reply.
        request_id: u64,
        /// Whose permissions; `None` for the sender's own.
        #[serde(default)]
        participant_id: Option<String>,
        /// The change.
        permissions: PermissionsUpdate,
    },
    /// Remove participants from the call (owners and `participants` admins only). Each one
    /// receives a fatal [`ServerMessage::Error`] and is disconnected.
    #[serde(rename_all = "camelCase")]
    Eject {
        /// Echoed in the reply.
        request_id: u64,
        /// Participant ids.
        participant_ids: Vec<String>,
    },
    /// Start recording the room on the server (owners, `canAdmin: streaming`, or everybody
    /// when the server has no API key). Answered with a [`ServerMessage::Reply`]; on success
    /// every participant gets [`ServerMessage::RecordingStarted`] first.
    #[serde(rename_all = "camelCase")]
    StartRecording {
        /// Echoed in the reply.
        request_id: u64,
        /// The recording instance ([`DEFAULT_STREAM_ID`] when `None`, as Daily's default
        /// instance); at most [`MAX_STREAM_ID_BYTES`] bytes.
        #[serde(default)]
        stream_id: Option<String>,
        /// Stop a recording already running under this stream id and start a new one, rather
        /// than refusing.
        #[serde(default)]
        force_new: bool,
    },
    /// Stop a recording (same rights as starting one). Answered with a
    /// [`ServerMessage::Reply`]; on success every participant gets
    /// [`ServerMessage::RecordingStopped`] first.
    #[serde(rename_all = "camelCase")]
    StopRecording {
        /// Echoed in the reply.
        request_id: u64,
        /// Which recording ([`DEFAULT_STREAM_ID`] when `None`).
        #[serde(default)]
        stream_id: Option<String>,
    },
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum ServerMessage {
    /// Reply to `join`: who we are and who is already here.
    #[serde(rename_all = "camelCase")]
    Joined {
        /// The room name.
        room: String,
        /// Meeting session id (one per room lifetime).
        session_id: String,
        /// This participant, as others see it.
        participant: ParticipantInfo,
        /// Everybody else already in the room.
        participants: Vec<ParticipantInfo>,
        /// Secret for [`ClientMessage::Resume`] after a signalling outage (absent from servers
        /// that cannot resume).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
    },
    /// Reply to `resume`: the session continues. Carries the room as it is now, so the client
    /// can announce who joined, changed or left while it was away. The client then restarts
    /// ICE on both transports (a `publishOffer` with new credentials, `restartIce`).
    #[serde(rename_all = "camelCase")]
    Resumed {
        /// This participant, as others see it.
        participant: ParticipantInfo,
        /// Everybody else in the room now.
        participants: Vec<ParticipantInfo>,
        /// The active speaker now, if any.
        #[serde(default)]
        active_speaker: Option<String>,
    },
    /// Answer to the client's [`ClientMessage::PublishOffer`].
    #[serde(rename_all = "camelCase")]
    PublishAnswer {
        /// SDP answer, candidates included.
        sdp: String,
    },
    /// Offer (full SDP) for the receive transport; the client answers with `subscribeAnswer`.
    /// The server sends a new one whenever the set of forwarded tracks changes and the previous
    /// one has been answered.
    #[serde(rename_all = "camelCase")]
    SubscribeOffer {
        /// SDP offer.
        sdp: String,
        /// Which m-line carries which remote track; m-lines not listed are inactive.
        tracks: Vec<ForwardedTrack>,
    },
    /// A participant arrived.
    #[serde(rename_all = "camelCase")]
    ParticipantJoined {
        /// The newcomer.
        participant: ParticipantInfo,
    },
    /// A participant's name or media changed.
    #[serde(rename_all = "camelCase")]
    ParticipantUpdated {
        /// The participant as it is now.
        participant: ParticipantInfo,
    },
    /// A participant left.
    #[serde(rename_all = "camelCase")]
    ParticipantLeft {
        /// The participant as it was.
        participant: ParticipantInfo,
        /// Why.
        reason: LeftReason,
    },
    /// Reply to `leave`; the server closes the socket after it.
    Left,
    /// The call ended for everybody (the server is shutting down).
    #[serde(rename_all = "camelCase")]
    CallEnded {
        /// Human-readable reason.
        reason: String,
    },
    /// An app message from participant `from`.
    #[serde(rename_all = "camelCase")]
    AppMessage {
        /// The payload as sent.
        data: serde_json::Value,
        /// The sender's participant id.
        from: String,
    },
    /// The room's active speaker changed (from RFC 6464 audio levels the server sees). Stays
    /// on the last speaker through silence; `None` only until somebody first speaks or after
    /// the speaker left.
    #[serde(rename_all = "camelCase")]
    ActiveSpeaker {
        /// The participant now speaking.
        participant_id: Option<String>,
    },
    /// How many participants are present and hidden (`hasPresence: false`), the receiver
    /// included; sent on every change.
    #[serde(rename_all = "camelCase")]
    ParticipantCounts {
        /// Present participants.
        present: u32,
        /// Hidden participants.
        hidden: u32,
    },
    /// A recording of the room started (to everybody, and to a newcomer right after `joined`
    /// for each recording running).
    #[serde(rename_all = "camelCase")]
    RecordingStarted {
        /// What it is.
        status: RecordingStatus,
    },
    /// A recording stopped (by `stopRecording`, the call ending, or an error, which comes
    /// first as [`ServerMessage::RecordingError`]).
    #[serde(rename_all = "camelCase")]
    RecordingStopped {
        /// Its stream id.
        stream_id: String,
    },
    /// A recording failed (e.g. the disk filled); it stopped, and `recordingStopped` follows.
    #[serde(rename_all = "camelCase")]
    RecordingError {
        /// Its stream id.
        stream_id: String,
        /// What went wrong.
        message: String,
    },
    /// Outcome of a request that carried `request_id`.
    #[serde(rename_all = "camelCase")]
    Reply {
        /// The request's id.
        request_id: u64,
        /// `None` on success, else why it failed.
        #[serde(default)]
        error: Option<String>,
    },
    /// Something went wrong. `fatal` errors are followed by the server closing the socket.
    #[serde(rename_all = "camelCase")]
    Error {
        /// Human-readable message.
        message: String,
        /// Whether the server closes the connection after this.
        fatal: bool,
    },
}

/// Error parsing a signalling message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The frame exceeds [`MAX_MESSAGE_BYTES`].
    #[error("signalling message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Frame length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Not valid JSON or not a known message.
    #[error("malformed signalling message: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl ClientMessage {
    /// Parses one text frame, enforcing [`MAX_MESSAGE_BYTES`].
    pub fn parse(text: &str) -> Result<Self, ProtoError> {
        parse_limited(text)
    }
    /// Serialises to a JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("signalling messages always serialise")
    }
}

impl ServerMessage {
    /// Parses one text frame, enforcing [`MAX_MESSAGE_BYTES`].
    pub fn parse(text: &str) -> Result<Self, ProtoError> {
        parse_limited(text)
    }
    /// Serialises to a JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("signalling messages always serialise")
    }
}

fn parse_limited<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ProtoError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtoError::TooLarge { len: text.len(), limit: MAX_MESSAGE_BYTES });
    }
    Ok(serde_json::from_str(text)?)
}

/// A parsed room URL: `http(s)://host[:port]/room`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUrl {
    /// `ws` or `wss`, from `http` or `https`.
    pub ws_scheme: &'static str,
    /// Host (name or address), without brackets for IPv6.
    pub host: String,
    /// Port (default 80 / 443).
    pub port: u16,
    /// Room name: 1..=128 characters from `[A-Za-z0-9_-.]`.
    pub room: String,
}

/// Why a room URL was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid meeting URL {url:?}: {reason}")]
pub struct RoomUrlError {
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl RoomUrl {
    /// Parses `http://host:port/room` (query and fragment are ignored).
    pub fn parse(url: &str) -> Result<Self, RoomUrlError> {
        let err = |reason| RoomUrlError { url: url.to_owned(), reason };
        let (ws_scheme, rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
            ("ws", r, 80)
        } else if let Some(r) = url.strip_prefix("https://") {
            ("wss", r, 443)
        } else {
            return Err(err("the scheme must be http or https"));
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_once('/').ok_or_else(|| err("no room name in the path"))?;
        let room = path.trim_end_matches('/');
        if room.is_empty() {
            return Err(err("no room name in the path"));
        }
        if !is_valid_room_name(room) {
            return Err(err("the room name must be 1-128 characters of A-Z a-z 0-9 - _ ."));
        }
        let bracketed = authority.starts_with('[');
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| err("unterminated IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| err("invalid port"))?,
                None if after.is_empty() => default_port,
                None => return Err(err("invalid host")),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| err("invalid port"))?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() || authority.contains('@') || !is_valid_host(&host, bracketed) {
            return Err(err("invalid host"));
        }
        if port == 0 {
            return Err(err("invalid port"));
        }
        Ok(RoomUrl { ws_scheme, host, port, room: room.to_owned() })
    }

    /// The signalling WebSocket URL for this room.
    pub fn ws_url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{}://{}:{}{}{}", self.ws_scheme, host, self.port, WS_PATH_PREFIX, self.room)
    }
}

/// Whether `host` can be put back into a URL unchanged: an IPv6 address inside brackets
/// (`[::1]`, no zone id), else an RFC 3986 reg-name or IPv4 address (ASCII letters, digits,
/// `-._~%!$&'()*+,;=`; no `:`, brackets, spaces or controls).
fn is_valid_host(host: &str, bracketed: bool) -> bool {
    if bracketed {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.chars().all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(c))
}

/// Whether `name` is a valid room name (`[A-Za-z0-9_-.]{1,128}`).
pub fn is_valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_url_parses_and_rejects() {
        let u = RoomUrl::parse("http://127.0.0.1:7880/demo").unwrap();
        assert_eq!(u.ws_url(), "ws://127.0.0.1:7880/ws/demo");
        assert_eq!(RoomUrl::parse("https://x.example/r?t=1").unwrap().port, 443);
        assert_eq!(RoomUrl::parse("http://[::1]:9/r").unwrap().ws_url(), "ws://[::1]:9/ws/r");
        // Hosts that would not survive a round trip through `ws_url` (found by fuzzing).
        for bad in ["http://::1/r", "http://a]:b:80/r", "http://:1]:8080/r", "http://[x]:1/r", "http://a b/r"] {
            assert_eq!(RoomUrl::parse(bad).unwrap_err().reason, "invalid host", "{bad}");
        }
        for bad in ["", "not a url", "ftp://h/r", "http://h:7880/", "http://h:99999/r", "http://h/a/b", "http://:1/r"] {
            assert!(RoomUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_round_trip() {
        let m = ClientMessage::PublishOffer {
            sdp: "v=0".into(),
            tracks: vec![PublishedTrack {
                mid: "0".into(),
                track_id: "t".into(),
                source: TrackSource::CustomAudio { track_name: "music".into() },
                ignore_audio_level: false,
            }],
        };
        let j = m.to_json();
        assert!(j.contains(r#""type":"publishOffer""#) && j.contains(r#""source":"customAudio""#), "{j}");
        assert_eq!(ClientMessage::parse(&j).unwrap(), m);
        assert!(ClientMessage::parse(r#"{"type":"nope"}"#).is_err());
        let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(matches!(ClientMessage::parse(&big), Err(ProtoError::TooLarge { .. })));
    }
}
