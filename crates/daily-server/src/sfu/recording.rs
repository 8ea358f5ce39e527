//! Server-side recording, the SFU's part: who may start and stop a recording
//! (`startRecording` / `stopRecording`), what the room is told (`recordingStarted`,
//! `recordingStopped`, `recordingError`), and the copy of every forwarded audio packet for the
//! recorder. The core does no IO here either: it queues [`RecordCmd`]s that the shell
//! (`driver.rs`) drains with [`Sfu::poll_record`] and hands to the recorder thread
//! (`crate::recorder`), which decodes, mixes and writes files off the SFU's task. What the
//! recorder reports back (a disk that filled) comes in through [`Sfu::handle_recorder_failed`].
//!
//! Rights: room owners and participants with `canAdmin: streaming` (Daily's admin kind for
//! recording and live streaming); on a server without an API key nobody can be an owner (no
//! token is valid), so there every participant may record, as anybody may in a public room
//! that has nobody to own it.

use std::sync::Arc;
use std::time::Instant;

use daily_proto::{DEFAULT_STREAM_ID, MAX_STREAM_ID_BYTES, RecordingStatus, ServerMessage};
use str0m::media::Mid;

use super::{ConnId, Sfu};

/// A recording of one room, while it runs.
pub(super) struct ActiveRecording {
    /// Our handle for the recorder (`RecordCmd::*::key`).
    pub(super) key: u64,
    pub(super) status: RecordingStatus,
    /// Audio tracks seen so far: (publisher, mid) → track index within the recording.
    tracks: Vec<(ConnId, Mid, u32)>,
}

/// Why a recording ended (stored in its metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `stopRecording`, or replaced by `force_new`.
    Stopped,
    /// The last participant left (or the room was deleted).
    CallEnded,
    /// The server is shutting down.
    ServerStopped,
}

impl StopReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StopReason::Stopped => "stopped",
            StopReason::CallEnded => "call-ended",
            StopReason::ServerStopped => "server-stopped",
        }
    }
}

/// What the SFU asks of the recorder, in order.
#[derive(Debug)]
pub(crate) enum RecordCmd {
    /// A recording starts now (`at`).
    Start {
        key: u64,
        status: RecordingStatus,
        room: String,
        session_id: String,
        at: Instant,
        participants: usize,
    },
    /// A new audio track of recording `key` (before its first packet).
    Track {
        key: u64,
        track: u32,
        participant_id: String,
        user_name: String,
        source: String,
        track_name: Option<String>,
    },
    /// One RTP packet of track `track`, as received (payload shared, not copied).
    Packet {
        key: u64,
        track: u32,
        seq: u64,
        rtp_ts: u32,
        payload: Arc<[u8]>,
        at: Instant,
    },
    /// The room now has this many participants (for `max_participants`).
    Participants { key: u64, count: usize },
    /// The recording ends now.
    Stop {
        key: u64,
        reason: StopReason,
        at: Instant,
    },
}

impl Sfu {
    /// Turns recording on (`dir` configured) and says whether every participant may record
    /// (`open`: the server has no API key).
    pub(crate) fn with_recording(mut self, enabled: bool, open: bool) -> Self {
        self.set_recording(enabled, open);
        self
    }

    pub(crate) fn set_recording(&mut self, enabled: bool, open: bool) {
        self.recording_enabled = enabled;
        self.recording_open = open;
    }

    /// Next order for the recorder.
    pub(crate) fn poll_record(&mut self) -> Option<RecordCmd> {
        self.record_out.pop_front()
    }

    fn may_record(&self, conn: ConnId) -> bool {
        self.recording_open
            || self.parts.get(&conn).is_some_and(|p| {
                p.info.is_owner
                    || p.info
                        .permissions
                        .can_admin
                        .iter()
                        .any(|k| k == "streaming")
            })
    }

    /// Why `conn` may not start or stop a recording, if it may not.
    fn recording_refusal(&self, conn: ConnId) -> Option<String> {
        if !self.recording_enabled {
            return Some(
                "recording is disabled on this server: start it with --recordings-dir DIR \
                 (RoomServer(recordings_dir=...) in Python)"
                    .into(),
            );
        }
        if !self.may_record(conn) {
            return Some(
                "only room owners and recording admins (canAdmin: streaming) may start or stop a recording"
                    .into(),
            );
        }
        None
    }

    pub(super) fn start_recording(
        &mut self,
        now: Instant,
        conn: ConnId,
        request_id: u64,
        stream_id: Option<String>,
        force_new: bool,
    ) {
        if let Some(e) = self.recording_refusal(conn) {
            return self.reply(conn, request_id, Some(e));
        }
        let stream_id = stream_id.unwrap_or_else(|| DEFAULT_STREAM_ID.to_owned());
        if stream_id.is_empty() || stream_id.len() > MAX_STREAM_ID_BYTES {
            return self.reply(
                conn,
                request_id,
                Some(format!(
                    "stream_id must be 1 to {MAX_STREAM_ID_BYTES} bytes"
                )),
            );
        }
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let (room_name, started_by) = (p.room.clone(), p.info.id.clone());
        let running = self
            .rooms
            .get(&room_name)
            .is_some_and(|r| r.recordings.iter().any(|a| a.status.stream_id == stream_id));
        if running {
            if !force_new {
                return self.reply(
                    conn,
                    request_id,
                    Some(format!(
                        "a recording with stream id {stream_id:?} is already running (stop it, \
                         pass force_new=True, or use another stream_id)"
                    )),
                );
            }
            self.stop_one(now, &room_name, &stream_id, StopReason::Stopped);
        }
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        self.next_recording += 1;
        let key = self.next_recording;
        let status = RecordingStatus {
            stream_id: stream_id.clone(),
            instance_id: stream_id,
            recording_id: uuid::Uuid::new_v4().to_string(),
            started_by,
            kind: "raw-tracks".into(),
            layout: serde_json::json!({"preset": "audio-only"}),
            start_ts: crate::unix_now(),
        };
        room.recordings.push(ActiveRecording {
            key,
            status: status.clone(),
            tracks: Vec::new(),
        });
        let (session_id, members) = (room.session_id.clone(), room.members.clone());
        tracing::info!(room = %room_name, recording = %status.recording_id, "recording started");
        self.record_out.push_back(RecordCmd::Start {
            key,
            status: status.clone(),
            room: room_name,
            session_id,
            at: now,
            participants: members.len(),
        });
        for c in members {
            if self.parts.contains_key(&c) {
                self.signals.send(
                    c,
                    ServerMessage::RecordingStarted {
                        status: status.clone(),
                    },
                );
            }
        }
        self.reply(conn, request_id, None);
    }

    pub(super) fn stop_recording(
        &mut self,
        now: Instant,
        conn: ConnId,
        request_id: u64,
        stream_id: Option<String>,
    ) {
        if let Some(e) = self.recording_refusal(conn) {
            return self.reply(conn, request_id, Some(e));
        }
        let stream_id = stream_id.unwrap_or_else(|| DEFAULT_STREAM_ID.to_owned());
        let Some(room) = self.parts.get(&conn).map(|p| p.room.clone()) else {
            return;
        };
        if self.stop_one(now, &room, &stream_id, StopReason::Stopped) {
            self.reply(conn, request_id, None);
        } else {
            let running: Vec<String> = self.rooms.get(&room).map_or(Vec::new(), |r| {
                r.recordings
                    .iter()
                    .map(|a| format!("{:?}", a.status.stream_id))
                    .collect()
            });
            let e = if running.is_empty() {
                format!("no recording with stream id {stream_id:?}: none is running")
            } else {
                format!(
                    "no recording with stream id {stream_id:?}; running: {}",
                    running.join(", ")
                )
            };
            self.reply(conn, request_id, Some(e));
        }
    }

    /// Stops one recording of `room`, telling its members; false if there is none.
    fn stop_one(&mut self, now: Instant, room: &str, stream_id: &str, reason: StopReason) -> bool {
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        let Some(i) = r
            .recordings
            .iter()
            .position(|a| a.status.stream_id == stream_id)
        else {
            return false;
        };
        let a = r.recordings.remove(i);
        let members = r.members.clone();
        self.record_out.push_back(RecordCmd::Stop {
            key: a.key,
            reason,
            at: now,
        });
        tracing::info!(%room, recording = %a.status.recording_id, reason = reason.as_str(), "recording stopped");
        for c in members {
            if self.parts.contains_key(&c) {
                self.signals.send(
                    c,
                    ServerMessage::RecordingStopped {
                        stream_id: a.status.stream_id.clone(),
                    },
                );
            }
        }
        true
    }

    /// Ends every recording of a room that is going away (`recordingStopped` to whoever is
    /// still in it).
    pub(super) fn stop_room_recordings(&mut self, now: Instant, room: &str, reason: StopReason) {
        let ids: Vec<String> = self.rooms.get(room).map_or(Vec::new(), |r| {
            r.recordings
                .iter()
                .map(|a| a.status.stream_id.clone())
                .collect()
        });
        for id in ids {
            self.stop_one(now, room, &id, reason);
        }
    }

    /// Ends the recordings of a room the last participant left (it is already out of
    /// `members`, so nobody is told).
    pub(super) fn end_recordings(
        &mut self,
        now: Instant,
        recordings: Vec<ActiveRecording>,
        reason: StopReason,
    ) {
        for a in recordings {
            tracing::info!(recording = %a.status.recording_id, reason = reason.as_str(), "recording stopped");
            self.record_out.push_back(RecordCmd::Stop {
                key: a.key,
                reason,
                at: now,
            });
        }
    }

    /// A newcomer learns of each recording running (after `joined`).
    pub(super) fn tell_recordings(&mut self, conn: ConnId, room: &str) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        for a in &r.recordings {
            self.signals.send(
                conn,
                ServerMessage::RecordingStarted {
                    status: a.status.clone(),
                },
            );
        }
    }

    /// The participant count of `room` changed: each recording keeps its maximum.
    pub(super) fn recording_count(&mut self, room: &str) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        for a in &r.recordings {
            self.record_out.push_back(RecordCmd::Participants {
                key: a.key,
                count: r.members.len(),
            });
        }
    }

    /// The recorder could not go on with recording `key` (its files are closed): the room is
    /// told `recordingError` then `recordingStopped`.
    pub(crate) fn handle_recorder_failed(&mut self, key: u64, message: &str) {
        let found = self.rooms.iter_mut().find_map(|(name, r)| {
            let i = r.recordings.iter().position(|a| a.key == key)?;
            Some((name.clone(), r.recordings.remove(i), r.members.clone()))
        });
        let Some((room, a, members)) = found else {
            return;
        };
        tracing::warn!(%room, recording = %a.status.recording_id, %message, "recording failed");
        for c in members {
            if self.parts.contains_key(&c) {
                self.signals.send(
                    c,
                    ServerMessage::RecordingError {
                        stream_id: a.status.stream_id.clone(),
                        message: message.to_owned(),
                    },
                );
                self.signals.send(
                    c,
                    ServerMessage::RecordingStopped {
                        stream_id: a.status.stream_id.clone(),
                    },
                );
            }
        }
    }

    /// Copies the audio packets `publisher` sent (`media`, indices of audio packets in
    /// `audio`) to every recording of its room. Called on the forwarding path only when the
    /// room records.
    pub(super) fn record_packets(
        &mut self,
        publisher: ConnId,
        media: &[super::transport::Inbound],
    ) {
        let Some(p) = self.parts.get(&publisher) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&p.room) else {
            return;
        };
        for (mid, packet) in media {
            let Some((_, track)) = p.published.iter().find(|(m, _)| m == mid) else {
                continue;
            };
            if track.source.is_video() || !p.info.permissions.may_send(&track.source) {
                continue;
            }
            for a in &mut room.recordings {
                let index = match a
                    .tracks
                    .iter()
                    .find(|(c, m, _)| *c == publisher && m == mid)
                {
                    Some((_, _, i)) => *i,
                    None => {
                        let i = a.tracks.len() as u32;
                        a.tracks.push((publisher, *mid, i));
                        self.record_out.push_back(RecordCmd::Track {
                            key: a.key,
                            track: i,
                            participant_id: p.info.id.clone(),
                            user_name: p.info.user_name.clone(),
                            source: track.source.kind_name().to_owned(),
                            track_name: match &track.source {
                                daily_proto::TrackSource::CustomAudio { track_name } => {
                                    Some(track_name.clone())
                                }
                                _ => None,
                            },
                        });
                        i
                    }
                };
                self.record_out.push_back(RecordCmd::Packet {
                    key: a.key,
                    track: index,
                    seq: *packet.seq_no,
                    rtp_ts: packet.header.timestamp,
                    payload: packet.payload.clone(),
                    at: packet.timestamp,
                });
            }
        }
    }
}
