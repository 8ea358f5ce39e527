//! Server-side recording as participants see it (`startRecording`, `recordingStarted`,
//! `docs/signalling.md`).

use serde::{Deserialize, Serialize};

/// The stream id of a recording started without one (Daily has a default instance too; its
/// id is not documented, so this one is ours).
pub const DEFAULT_STREAM_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Longest recording stream id accepted, in bytes.
pub const MAX_STREAM_ID_BYTES: usize = 256;

/// A server-side recording as participants see it: the `status` of Daily's
/// `on_recording_started` (daily-python's `RecordingStatus`: `streamId`, `recordingId`,
/// `startedBy`, `layout`, plus daily-js's `type` and `instanceId`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStatus {
    /// The recording instance (the `stream_id` of `start_recording`).
    pub stream_id: String,
    /// Same as `stream_id` (daily-js calls it `instanceId`).
    pub instance_id: String,
    /// The recording's id in the REST API (`GET /v1/recordings/{id}`).
    pub recording_id: String,
    /// Participant id of who started it.
    pub started_by: String,
    /// Always `raw-tracks`: one Ogg/Opus file per audio track, plus a mixed file.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `{"preset": "audio-only"}`: the recording has no video layout.
    pub layout: serde_json::Value,
    /// When it started, Unix seconds.
    pub start_ts: u64,
}
