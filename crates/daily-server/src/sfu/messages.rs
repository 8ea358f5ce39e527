//! Messages from a joined participant: what each one does, and the rate limits on those
//! that reach the whole room (`limits.rs`): app messages, and participant updates
//! (`setUserName`, `setSubscriptions`, `updatePermissions`, `eject`), each refused with an
//! error naming the limit once the participant's token bucket is empty.

use std::time::Instant;

use daily_proto::{ClientMessage, MAX_APP_MESSAGE_BYTES, MAX_USER_NAME_BYTES, ServerMessage};

use super::{ConnId, Sfu};

impl Sfu {
    pub(super) fn app_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        request_id: u64,
        data: serde_json::Value,
        to: Option<String>,
    ) {
        let limit = self.config.app_messages;
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        if !p.app_bucket.take(now, limit) {
            return self.reply(
                conn,
                request_id,
                Some(format!(
                    "rate limited: at most {} app messages per second",
                    limit.per_second
                )),
            );
        }
        let size = serde_json::to_string(&data).map_or(usize::MAX, |t| t.len());
        if size > MAX_APP_MESSAGE_BYTES {
            return self.reply(
                conn,
                request_id,
                Some(format!(
                    "app message of {size} bytes exceeds the limit of {MAX_APP_MESSAGE_BYTES} bytes"
                )),
            );
        }
        let msg = ServerMessage::AppMessage {
            data,
            from: p.info.id.clone(),
        };
        let room = p.room.clone();
        match to {
            Some(id) => match self.find_in_room(&room, &id) {
                Some(c) if c != conn && self.parts.get(&c).is_some_and(|o| o.visible()) => {
                    self.signals.send(c, msg);
                }
                _ => {
                    return self.reply(
                        conn,
                        request_id,
                        Some(format!("no participant {id:?} in this call")),
                    );
                }
            },
            None => {
                if let Some(r) = self.rooms.get(&room) {
                    for c in r.members.iter().filter(|c| **c != conn) {
                        if self.parts.contains_key(c) {
                            self.signals.send(*c, msg.clone());
                        }
                    }
                }
            }
        }
        self.reply(conn, request_id, None);
    }

    pub(super) fn message(&mut self, now: Instant, conn: ConnId, msg: ClientMessage) {
        if !self.parts.contains_key(&conn) {
            return; // Already removed (e.g. after a fatal error); the socket is closing.
        }
        let is_update = matches!(
            msg,
            ClientMessage::SetUserName { .. }
                | ClientMessage::SetSubscriptions { .. }
                | ClientMessage::UpdatePermissions { .. }
                | ClientMessage::Eject { .. }
                | ClientMessage::StartRecording { .. }
                | ClientMessage::StopRecording { .. }
        );
        if is_update && !self.take_update(now, conn) {
            let error = format!(
                "rate limited: at most {} participant updates per second",
                self.config.updates.per_second
            );
            return match msg {
                ClientMessage::SetSubscriptions { request_id, .. }
                | ClientMessage::UpdatePermissions { request_id, .. }
                | ClientMessage::Eject { request_id, .. }
                | ClientMessage::StartRecording { request_id, .. }
                | ClientMessage::StopRecording { request_id, .. } => {
                    self.reply(conn, request_id, Some(error))
                }
                _ => self.signals.send(
                    conn,
                    ServerMessage::Error {
                        message: error,
                        fatal: false,
                    },
                ),
            };
        }
        match msg {
            ClientMessage::Join { .. } => {
                self.fatal(now, conn, "unexpected join: already joined".into())
            }
            ClientMessage::Resume { .. } => self.fatal(
                now,
                conn,
                "unexpected resume: resume must be the first message on a new connection".into(),
            ),
            ClientMessage::RestartIce => self.restart_ice(conn),
            ClientMessage::PublishOffer { sdp, tracks } => {
                self.publish_offer(now, conn, sdp, tracks)
            }
            ClientMessage::SubscribeAnswer { sdp } => self.subscribe_answer(now, conn, sdp),
            ClientMessage::SetUserName { user_name } => {
                // Not fatal: the name is refused, the call goes on (clients check it first).
                if user_name.len() > MAX_USER_NAME_BYTES {
                    return self.signals.send(
                        conn,
                        ServerMessage::Error {
                            message: format!("userName longer than {MAX_USER_NAME_BYTES} bytes"),
                            fatal: false,
                        },
                    );
                }
                if let Some(p) = self.parts.get_mut(&conn) {
                    p.info.user_name = user_name;
                }
                self.broadcast_update(conn);
            }
            ClientMessage::Leave => self.remove(now, conn, true),
            ClientMessage::AppMessage {
                request_id,
                data,
                to,
            } => self.app_message(now, conn, request_id, data, to),
            ClientMessage::SetSubscriptions { request_id, rules } => {
                if let Some(p) = self.parts.get_mut(&conn)
                    && p.rules != rules
                {
                    p.rules = rules;
                    p.needs_negotiation = true;
                }
                self.reply(conn, request_id, None);
            }
            ClientMessage::UpdatePermissions {
                request_id,
                participant_id,
                permissions,
            } => self.update_permissions(now, conn, request_id, participant_id, permissions),
            ClientMessage::Eject {
                request_id,
                participant_ids,
            } => self.eject(now, conn, request_id, participant_ids),
            ClientMessage::StartRecording {
                request_id,
                stream_id,
                force_new,
            } => self.start_recording(now, conn, request_id, stream_id, force_new),
            ClientMessage::StopRecording {
                request_id,
                stream_id,
            } => self.stop_recording(now, conn, request_id, stream_id),
            other => self.fatal(now, conn, format!("unsupported message {other:?}")),
        }
    }

    /// Takes one of `conn`'s participant-update tokens (`limits.rs`).
    fn take_update(&mut self, now: Instant, conn: ConnId) -> bool {
        let limit = self.config.updates;
        self.parts
            .get_mut(&conn)
            .is_some_and(|p| p.update_bucket.take(now, limit))
    }
}
