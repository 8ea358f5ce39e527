//! Rooms and participants: joining, messages in, leaving, and what everybody in a room is
//! told about it (`participantJoined`/`Updated`/`Left`, `participantCounts`, app messages).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use daily_proto::{
    LeftReason, MediaInfo, ParticipantInfo, Permissions, PublishedTrack, ServerMessage,
    SubscriptionRules,
};
use str0m::change::SdpPendingOffer;
use str0m::media::Mid;

use super::limits::Bucket;
use super::negotiation::Slot;
use super::resume::new_resume_token;
use super::transport::Transport;
use super::{ConnId, MAX_PARTICIPANTS_PER_ROOM, MAX_USER_NAME_BYTES, Sfu};
use crate::auth::Grant;

pub(super) struct Participant {
    pub(super) room: String,
    pub(super) info: ParticipantInfo,
    pub(super) send: Option<Transport>,
    pub(super) recv: Option<Transport>,
    /// Tracks of the last accepted `publishOffer`, with their parsed mids.
    pub(super) published: Vec<(Mid, PublishedTrack)>,
    pub(super) slots: Vec<Slot>,
    /// The subscribe offer awaiting `subscribeAnswer`.
    pub(super) pending: Option<SdpPendingOffer>,
    /// The forwarded track set changed since the last subscribe offer.
    pub(super) needs_negotiation: bool,
    /// Which remote tracks this participant wants.
    pub(super) rules: SubscriptionRules,
    /// Smoothed loudness of its level-bearing tracks (dB above -127 dBov) and when it was
    /// last updated, for the active speaker.
    pub(super) loudness: f32,
    pub(super) loud_at: Option<Instant>,
    /// The secret `joined` gave, for `resume` (`resume.rs`).
    pub(super) resume_token: String,
    /// When its signalling connection dropped without `leave`; `None` while attached.
    pub(super) detached_at: Option<Instant>,
    /// `restartIce` asked for: the next subscribe offer restarts ICE.
    pub(super) restart_ice: bool,
    /// The outstanding subscribe offer was lost with a connection: offer again (merged).
    pub(super) reoffer: bool,
    /// Rate limits (`limits.rs`): app messages, participant updates.
    pub(super) app_bucket: Bucket,
    pub(super) update_bucket: Bucket,
    /// When a keyframe was last asked for on each of its video m-lines (`keyframe.rs`).
    pub(super) keyframe_asked: Vec<(Mid, Instant)>,
}

impl Participant {
    /// Whether others see this participant (`hasPresence`).
    pub(super) fn visible(&self) -> bool {
        self.info.permissions.has_presence
    }
}

pub(super) struct Room {
    pub(super) session_id: String,
    /// Participants in join order.
    pub(super) members: Vec<ConnId>,
    /// The active speaker (RFC 6464 levels), kept through silence.
    pub(super) active_speaker: Option<ConnId>,
    /// Recordings running (`recording.rs`).
    pub(super) recordings: Vec<super::recording::ActiveRecording>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sfu {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        _now: Instant,
        conn: ConnId,
        room_name: String,
        user_name: Option<String>,
        subscriptions: SubscriptionRules,
        grant: Grant,
        max_participants: Option<usize>,
    ) {
        if self.parts.contains_key(&conn) {
            return self.refuse(conn, "already joined".into());
        }
        // A token's user name wins over the one in `join` (Daily: the token sets it).
        let user_name = grant.user_name.or(user_name).unwrap_or_default();
        if user_name.len() > MAX_USER_NAME_BYTES {
            return self.refuse(
                conn,
                format!("userName longer than {MAX_USER_NAME_BYTES} bytes"),
            );
        }
        let room = self.rooms.entry(room_name.clone()).or_insert_with(|| Room {
            session_id: uuid::Uuid::new_v4().to_string(),
            members: Vec::new(),
            active_speaker: None,
            recordings: Vec::new(),
        });
        // Checked here, not in the gate, so concurrent joins cannot overshoot the limit.
        let limit = max_participants.map_or(MAX_PARTICIPANTS_PER_ROOM, |m| {
            m.min(MAX_PARTICIPANTS_PER_ROOM)
        });
        if room.members.len() >= limit {
            return self.refuse(conn, format!("room is full ({limit} participants)"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut permissions = Permissions::default();
        if let Some(update) = &grant.permissions {
            permissions.apply(update);
        }
        let info = ParticipantInfo {
            id: id.clone(),
            user_name,
            user_id: grant.user_id.unwrap_or(id),
            joined_at: unix_now(),
            is_owner: grant.is_owner,
            microphone: MediaInfo {
                publishing: false,
                track_id: None,
            },
            custom_audio: Default::default(),
            camera: MediaInfo::default(),
            screen_video: MediaInfo::default(),
            custom_video: Default::default(),
            permissions,
        };
        let others: Vec<ParticipantInfo> = room
            .members
            .iter()
            .filter_map(|c| self.parts.get(c))
            .filter(|p| p.visible())
            .map(|p| p.info.clone())
            .collect();
        let resume_token = new_resume_token();
        self.signals.send(
            conn,
            ServerMessage::Joined {
                room: room_name.clone(),
                session_id: room.session_id.clone(),
                participant: info.clone(),
                participants: others,
                resume_token: Some(resume_token.clone()),
            },
        );
        if info.permissions.has_presence {
            for c in &room.members {
                if self.parts.contains_key(c) {
                    self.signals.send(
                        *c,
                        ServerMessage::ParticipantJoined {
                            participant: info.clone(),
                        },
                    );
                }
            }
        }
        let speaker = room
            .active_speaker
            .and_then(|c| self.parts.get(&c))
            .map(|p| p.info.id.clone());
        if speaker.is_some() {
            self.signals.send(
                conn,
                ServerMessage::ActiveSpeaker {
                    participant_id: speaker,
                },
            );
        }
        room.members.push(conn);
        tracing::info!(room = %room_name, participant = %info.id, "joined");
        self.tell_recordings(conn, &room_name);
        self.recording_count(&room_name);
        self.parts.insert(
            conn,
            Participant {
                room: room_name.clone(),
                info,
                send: None,
                recv: None,
                published: Vec::new(),
                slots: Vec::new(),
                pending: None,
                needs_negotiation: true,
                rules: subscriptions,
                loudness: 0.0,
                loud_at: None,
                resume_token,
                detached_at: None,
                restart_ice: false,
                reoffer: false,
                app_bucket: Bucket::new(self.config.app_messages),
                update_bucket: Bucket::new(self.config.updates),
                keyframe_asked: Vec::new(),
            },
        );
        self.send_counts(&room_name);
    }

    /// A fatal error, then close: refuses a `join`, or ends a participant's connection
    /// (`fatal`, which also removes it).
    fn refuse(&mut self, conn: ConnId, message: String) {
        self.signals.send(
            conn,
            ServerMessage::Error {
                message,
                fatal: true,
            },
        );
        self.signals.close(conn);
    }

    /// Sends `participantCounts` to every member of `room`.
    pub(super) fn send_counts(&mut self, room: &str) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let (mut present, mut hidden) = (0u32, 0u32);
        for p in r.members.iter().filter_map(|c| self.parts.get(c)) {
            if p.visible() {
                present += 1;
            } else {
                hidden += 1;
            }
        }
        for c in r.members.iter().filter(|c| self.parts.contains_key(c)) {
            self.signals
                .send(*c, ServerMessage::ParticipantCounts { present, hidden });
        }
    }

    /// Answers request `request_id` of `conn`.
    pub(super) fn reply(&mut self, conn: ConnId, request_id: u64, error: Option<String>) {
        if self.parts.contains_key(&conn) {
            self.signals
                .send(conn, ServerMessage::Reply { request_id, error });
        }
    }

    /// The connection of participant `id` in `room`, if it is there.
    pub(super) fn find_in_room(&self, room: &str, id: &str) -> Option<ConnId> {
        self.rooms
            .get(room)?
            .members
            .iter()
            .copied()
            .find(|c| self.parts.get(c).is_some_and(|p| p.info.id == id))
    }

    /// Sends a fatal error, closes the connection and removes the participant.
    pub(super) fn fatal(&mut self, now: Instant, conn: ConnId, message: String) {
        if let Some(p) = self.parts.get(&conn) {
            tracing::info!(participant = %p.info.id, %message, "closing connection on a fatal error");
            self.refuse(conn, message);
        }
        self.remove(now, conn, false);
    }

    /// Sends `participantUpdated` for `conn` to everybody in its room, itself included.
    pub(super) fn broadcast_update(&mut self, conn: ConnId) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let msg = ServerMessage::ParticipantUpdated {
            participant: p.info.clone(),
        };
        if !p.visible() {
            // Hidden: only the participant itself hears about it.
            return self.signals.send(conn, msg);
        }
        if let Some(room) = self.rooms.get(&p.room) {
            for c in &room.members {
                if self.parts.contains_key(c) {
                    self.signals.send(*c, msg.clone());
                }
            }
        }
    }

    /// Removes a participant (connection closed, `leave`, or fatal error).
    pub(super) fn remove(&mut self, now: Instant, conn: ConnId, reply_left: bool) {
        let Some(mut p) = self.parts.remove(&conn) else {
            return;
        };
        self.detached.retain(|c| *c != conn);
        if reply_left {
            self.signals.send(conn, ServerMessage::Left);
            self.signals.close(conn);
        }
        self.disconnect(now, &mut p);
        self.addr_cache.retain(|_, (c, _)| *c != conn);
        tracing::info!(room = %p.room, participant = %p.info.id, "left");
        let had_tracks = !p.published.is_empty();
        let Some(room) = self.rooms.get_mut(&p.room) else {
            return;
        };
        room.members.retain(|c| *c != conn);
        if room.members.is_empty() {
            if let Some(r) = self.rooms.remove(&p.room) {
                self.end_recordings(now, r.recordings, super::StopReason::CallEnded);
            }
            return;
        }
        let was_speaker = room.active_speaker == Some(conn);
        if was_speaker {
            room.active_speaker = None;
        }
        let members = room.members.clone();
        for c in members {
            if let Some(o) = self.parts.get_mut(&c) {
                if p.visible() {
                    self.signals.send(
                        c,
                        ServerMessage::ParticipantLeft {
                            participant: p.info.clone(),
                            reason: LeftReason::LeftCall,
                        },
                    );
                }
                if was_speaker {
                    self.signals.send(
                        c,
                        ServerMessage::ActiveSpeaker {
                            participant_id: None,
                        },
                    );
                }
                if had_tracks {
                    o.needs_negotiation = true;
                }
            }
        }
        self.send_counts(&p.room);
    }

    /// Ends the call for everybody in `room` (deleted through the REST API): `callEnded`,
    /// close, transports disconnected. The room's session ends with it.
    pub(super) fn end_room(&mut self, now: Instant, room: &str, reason: &str) {
        self.stop_room_recordings(now, room, super::StopReason::CallEnded);
        let Some(r) = self.rooms.remove(room) else {
            return;
        };
        tracing::info!(%room, participants = r.members.len(), "room deleted; ending its call");
        for conn in r.members {
            let Some(mut p) = self.parts.remove(&conn) else {
                continue;
            };
            self.end_call_of(now, conn, &mut p, reason);
            self.addr_cache.retain(|_, (c, _)| *c != conn);
        }
    }

    /// Tells `conn` its call ended (`callEnded`, then the socket closes) and disconnects its
    /// transports.
    pub(super) fn end_call_of(
        &mut self,
        now: Instant,
        conn: ConnId,
        p: &mut Participant,
        reason: &str,
    ) {
        self.signals.send(
            conn,
            ServerMessage::CallEnded {
                reason: reason.to_owned(),
            },
        );
        self.signals.close(conn);
        self.disconnect(now, p);
    }

    /// Disconnects a participant's transports and queues what str0m sends on the way out.
    fn disconnect(&mut self, now: Instant, p: &mut Participant) {
        for t in [p.send.as_mut(), p.recv.as_mut()].into_iter().flatten() {
            t.rtc.disconnect();
            let mut media = Vec::new();
            t.drain(now, &mut self.out, &mut media);
        }
    }
}
