//! Permissions (`updatePermissions`) and `eject`: who may change whom, and what a change
//! means for the others (presence, forwarding, the active speaker).

use std::time::Instant;

use daily_proto::{LeftReason, PermissionsUpdate, ServerMessage};

use super::rooms::Participant;
use super::{ConnId, Sfu};

impl Participant {
    /// Owners and `participants` admins may change others and eject them.
    fn is_admin(&self) -> bool {
        self.info.is_owner
            || self
                .info
                .permissions
                .can_admin
                .iter()
                .any(|k| k == "participants")
    }
}

impl Sfu {
    pub(super) fn update_permissions(
        &mut self,
        now: Instant,
        conn: ConnId,
        request_id: u64,
        participant_id: Option<String>,
        update: PermissionsUpdate,
    ) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        if let Err(e) = update.validate() {
            return self.reply(conn, request_id, Some(e));
        }
        let admin = p.is_admin();
        let room = p.room.clone();
        let target = match &participant_id {
            None => conn,
            Some(id) => match self.find_in_room(&room, id) {
                Some(c) => c,
                None => {
                    return self.reply(
                        conn,
                        request_id,
                        Some(format!("no participant {id:?} in this call")),
                    );
                }
            },
        };
        if target != conn && !admin {
            return self.reply(
                conn,
                request_id,
                Some("only room owners and participant admins (canAdmin: participants) may change other participants' permissions".into()),
            );
        }
        let Some(t) = self.parts.get(&target) else {
            return;
        };
        let old = t.info.permissions.clone();
        let mut new = old.clone();
        new.apply(&update);
        if target == conn && !admin {
            // Without admin rights a participant may only give rights up.
            let gains = (new.has_presence && !old.has_presence)
                || new.can_send.iter().any(|k| !old.can_send.contains(k))
                || new.can_admin.iter().any(|k| !old.can_admin.contains(k));
            if gains {
                return self.reply(
                    conn,
                    request_id,
                    Some("a participant may only give up its own permissions; granting needs a room owner or participant admin".into()),
                );
            }
        }
        self.reply(conn, request_id, None);
        if new == old {
            return;
        }
        if let Some(t) = self.parts.get_mut(&target) {
            t.info.permissions = new.clone();
        }
        if old.has_presence != new.has_presence {
            let Some(t) = self.parts.get(&target) else {
                return;
            };
            let info = t.info.clone();
            if let Some(r) = self.rooms.get(&room) {
                for c in r.members.iter().filter(|c| **c != target) {
                    if self.parts.contains_key(c) {
                        self.signals.send(
                            *c,
                            if new.has_presence {
                                ServerMessage::ParticipantJoined {
                                    participant: info.clone(),
                                }
                            } else {
                                ServerMessage::ParticipantLeft {
                                    participant: info.clone(),
                                    reason: LeftReason::Hidden,
                                }
                            },
                        );
                    }
                }
            }
            if !new.has_presence {
                self.clear_speaker(&room, target);
            }
            self.send_counts(&room);
        }
        self.refresh_media_info(target);
        self.broadcast_update(target);
        self.mark_room_dirty(target);
        self.negotiate_all(now);
    }

    pub(super) fn eject(&mut self, now: Instant, conn: ConnId, request_id: u64, ids: Vec<String>) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        if !p.is_admin() {
            return self.reply(
                conn,
                request_id,
                Some("only room owners and participant admins (canAdmin: participants) may eject participants".into()),
            );
        }
        let room = p.room.clone();
        let mut missing = Vec::new();
        let mut targets = Vec::new();
        for id in ids {
            match self.find_in_room(&room, &id) {
                Some(c) if c != conn => targets.push(c),
                Some(_) => missing.push(format!("{id:?} (yourself: use leave)")),
                None => missing.push(format!("{id:?}")),
            }
        }
        for c in targets {
            self.fatal(
                now,
                c,
                "you were ejected from the call by a room owner".into(),
            );
        }
        let error = (!missing.is_empty())
            .then(|| format!("not ejected, not in this call: {}", missing.join(", ")));
        self.reply(conn, request_id, error);
    }
}
