//! Surviving a signalling outage (issue 16). A participant whose signalling connection ends
//! without `leave` — EOF, a socket error, no frame for [`SIGNALLING_TIMEOUT`] — is *detached*,
//! not removed: the others keep seeing it, its media keeps flowing if its transports still
//! carry any, and messages for it are dropped. A new connection whose first message is
//! `resume` with the participant's id, the room's session id and the secret `joined` gave takes
//! the participant over (same id, tracks, subscriptions and permissions) and is answered with
//! `resumed`; an older connection still open for it is closed (the shell replaces its route).
//! A detached participant is removed, and the others get `participantLeft`, at the earlier of
//! the resume grace ([`SfuConfig::resume_grace`]) and [`SfuConfig::dead_media_grace`] after the
//! last datagram from any of its transports.
//!
//! `restartIce` restarts ICE on the receive transport (RFC 8445 section 2.4) with a new
//! `subscribeOffer`; the send transport restarts when the client's `publishOffer` carries new
//! ICE credentials (str0m's `accept_offer` sees the changed ufrag and restarts its agent).
//!
//! [`SIGNALLING_TIMEOUT`]: super::limits::SIGNALLING_TIMEOUT
//! [`SfuConfig::resume_grace`]: super::limits::SfuConfig::resume_grace
//! [`SfuConfig::dead_media_grace`]: super::limits::SfuConfig::dead_media_grace

use std::time::Instant;

use daily_proto::ServerMessage;

use super::rooms::Participant;
use super::{ConnId, Sfu};

/// Why a `resume` is refused (one message for every case: it does not tell a guesser which
/// part was wrong).
pub(crate) const RESUME_REFUSED: &str =
    "cannot resume this session (it ended, the resume grace passed, or the token is wrong)";

/// 128 bits, hex: the `resumeToken` of `joined`. From the OS's generator through `uuid` (a
/// v4 UUID holds 122 random bits; a second one's random bits are folded over the first one's
/// fixed version and variant bits).
pub(super) fn new_resume_token() -> String {
    let a = uuid::Uuid::new_v4().as_u128();
    let b = uuid::Uuid::new_v4().as_u128();
    format!("{:032x}", a ^ (b >> 7) ^ (b << 64))
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Participant {
    /// When this detached participant is to be removed (`None` while attached).
    pub(super) fn detach_deadline(&self, config: &super::SfuConfig) -> Option<Instant> {
        let detached = self.detached_at?;
        let grace_end = detached + config.resume_grace;
        // Since when all its transports have been silent (a closed one counts as silent for
        // ever; none at all: silent since the detach).
        let silent_since = [self.send.as_ref(), self.recv.as_ref()]
            .into_iter()
            .flatten()
            .filter(|t| t.rtc.is_alive())
            .map(|t| t.last_heard)
            .max()
            .unwrap_or(detached);
        let media_end = silent_since + config.dead_media_grace;
        Some(grace_end.min(media_end))
    }
}

impl Sfu {
    /// The signalling connection of `conn` ended. `clean` (a close frame, a protocol
    /// violation, or the server's own decision): the participant leaves now. Otherwise
    /// (EOF, socket error, ping timeout) it is detached for a `resume`.
    pub(super) fn closed(&mut self, now: Instant, conn: ConnId, clean: bool) {
        if clean {
            return self.remove(now, conn, false);
        }
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        if p.detached_at.is_some() {
            return;
        }
        tracing::info!(participant = %p.info.id, "signalling lost; kept for a resume");
        p.detached_at = Some(now);
        self.detached.push(conn);
    }

    /// A new connection's `resume` for participant `participant_id` of `room`. On success the
    /// participant's output goes to `conn` again (the shell routes it to the new connection),
    /// starting with `resumed`.
    pub(crate) fn resume(
        &mut self,
        now: Instant,
        room: &str,
        session_id: &str,
        participant_id: &str,
        token: &str,
    ) -> Result<ConnId, String> {
        let refused = || RESUME_REFUSED.to_owned();
        let r = self.rooms.get(room).ok_or_else(refused)?;
        if r.session_id != session_id {
            return Err(refused());
        }
        let speaker = r
            .active_speaker
            .and_then(|c| self.parts.get(&c))
            .map(|p| p.info.id.clone());
        let conn = self
            .find_in_room(room, participant_id)
            .ok_or_else(refused)?;
        let members = r.members.clone();
        let Some(p) = self.parts.get_mut(&conn) else {
            return Err(refused());
        };
        if !same_secret(&p.resume_token, token) {
            return Err(refused());
        }
        let was_detached = p.detached_at.take().is_some();
        if p.pending.is_some() {
            // The offer may have died with the old connection: offer again, merged with it.
            p.reoffer = true;
            p.needs_negotiation = true;
        }
        tracing::info!(participant = %p.info.id, was_detached, "resumed");
        let participant = p.info.clone();
        self.detached.retain(|c| *c != conn);
        let participants = members
            .iter()
            .filter(|c| **c != conn)
            .filter_map(|c| self.parts.get(c))
            .filter(|o| o.visible())
            .map(|o| o.info.clone())
            .collect();
        self.signals.send(
            conn,
            ServerMessage::Resumed {
                participant,
                participants,
                active_speaker: speaker,
            },
        );
        self.negotiate_all(now);
        Ok(conn)
    }

    /// `restartIce`: the next subscribe offer carries new ICE credentials (at once, or after
    /// the answer to the outstanding one).
    pub(super) fn restart_ice(&mut self, conn: ConnId) {
        if let Some(p) = self.parts.get_mut(&conn)
            && p.recv.is_some()
        {
            p.restart_ice = true;
            p.needs_negotiation = true;
        }
    }

    /// The earliest removal deadline of a detached participant.
    pub(super) fn detached_deadline(&self) -> Option<Instant> {
        self.detached
            .iter()
            .filter_map(|c| self.parts.get(c))
            .filter_map(|p| p.detach_deadline(&self.config))
            .min()
    }

    /// Removes the detached participants whose time is up (others get `participantLeft`).
    pub(super) fn expire_detached(&mut self, now: Instant) {
        if self.detached.is_empty() {
            return;
        }
        let due: Vec<ConnId> = self
            .detached
            .iter()
            .copied()
            .filter(|c| {
                self.parts
                    .get(c)
                    .and_then(|p| p.detach_deadline(&self.config))
                    .is_some_and(|d| d <= now)
            })
            .collect();
        for conn in due {
            if let Some(p) = self.parts.get(&conn) {
                tracing::info!(participant = %p.info.id, "not resumed in time; removed");
            }
            self.remove(now, conn, false);
            self.detached.retain(|c| *c != conn);
        }
        self.negotiate_all(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_differ() {
        let (a, b) = (new_resume_token(), new_resume_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..31]));
    }
}
