//! The active speaker: each participant's RFC 6464 audio levels (the `ssrc-audio-level`
//! header extension its client sets) smoothed into a loudness; the loudest one above a floor
//! becomes the room's speaker, and a challenger needs a margin over a speaker still talking.

use std::time::{Duration, Instant};

use daily_proto::ServerMessage;

use super::rooms::Participant;
use super::{ConnId, Sfu};

/// Active speaker: weight of each new RFC 6464 level in a participant's smoothed loudness
/// (one packet per 20 ms: a time constant of about 130 ms).
const SPEAKER_ALPHA: f32 = 0.15;
/// Active speaker: smoothed loudness (dB above -127 dBov) a participant needs to become the
/// speaker, i.e. louder than -55 dBov. Speech sits around -20 to -35 dBov, room noise and
/// Opus-coded silence below -60.
const SPEAKER_MIN_LOUDNESS: f32 = 72.0;
/// Active speaker: how much louder (dB) a challenger must be than a speaker who is still
/// talking, so two voices at similar levels do not flap.
const SPEAKER_MARGIN_DB: f32 = 6.0;
/// Active speaker: levels older than this no longer count (the participant stopped sending).
const SPEAKER_STALE: Duration = Duration::from_millis(300);

impl Participant {
    /// Current loudness for the active speaker, 0 when its levels are stale.
    fn loudness_at(&self, now: Instant) -> f32 {
        match self.loud_at {
            Some(t) if now.saturating_duration_since(t) <= SPEAKER_STALE => self.loudness,
            _ => 0.0,
        }
    }
}

impl Sfu {
    /// Forgets `conn` as the room's active speaker (it left or hid).
    pub(super) fn clear_speaker(&mut self, room: &str, conn: ConnId) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.active_speaker != Some(conn) {
            return;
        }
        r.active_speaker = None;
        for c in &r.members {
            if self.parts.contains_key(c) {
                self.signals.send(
                    *c,
                    ServerMessage::ActiveSpeaker {
                        participant_id: None,
                    },
                );
            }
        }
    }

    /// Feeds one RFC 6464 level of `conn` (in -dBov) into the active-speaker choice.
    pub(super) fn observe_level(&mut self, now: Instant, conn: ConnId, level: i8) {
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        if !p.visible() {
            return;
        }
        let loud = 127.0 - f32::from(level.unsigned_abs().min(127));
        let prev = p.loudness_at(now);
        p.loudness = prev + SPEAKER_ALPHA * (loud - prev);
        p.loud_at = Some(now);
        let mine = p.loudness;
        if mine < SPEAKER_MIN_LOUDNESS {
            return;
        }
        let (id, room) = (p.info.id.clone(), p.room.clone());
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        if r.active_speaker == Some(conn) {
            return;
        }
        let current = r
            .active_speaker
            .and_then(|c| self.parts.get(&c))
            .map_or(0.0, |c| c.loudness_at(now));
        if current >= SPEAKER_MIN_LOUDNESS && mine < current + SPEAKER_MARGIN_DB {
            return;
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            r.active_speaker = Some(conn);
            tracing::debug!(room = %room, participant = %id, "active speaker");
            for c in &r.members {
                if self.parts.contains_key(c) {
                    self.signals.send(
                        *c,
                        ServerMessage::ActiveSpeaker {
                            participant_id: Some(id.clone()),
                        },
                    );
                }
            }
        }
    }
}
