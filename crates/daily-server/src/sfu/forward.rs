//! Forwarding: media a publisher's send transport received is written, frame by frame, to
//! each subscriber's receive transport on the m-line that carries that track. No transcoding:
//! the payload, RTP time, marker bit (start of talkspurt) and audio level are carried over;
//! str0m gives each outgoing stream its own SSRC and sequence numbers (RFC 7667 section
//! 3.7's rewrite), so a subscriber sees a contiguous stream however subscriptions change.

use std::time::Instant;

use str0m::media::{MediaData, Mid};

use super::{ConnId, Sfu};

impl Sfu {
    /// Writes frames received from `publisher` to every subscriber's m-line for that track, at
    /// once (no batching): payload, RTP timestamp progression, marker bit and audio level kept.
    pub(super) fn forward(&mut self, now: Instant, publisher: ConnId, media: Vec<MediaData>) {
        if media.is_empty() {
            return;
        }
        let Some(p) = self.parts.get(&publisher) else {
            return;
        };
        let Some(room) = self.rooms.get(&p.room) else {
            return;
        };
        let mut targets: Vec<(ConnId, Mid, usize)> = Vec::new();
        let mut levels: Vec<i8> = Vec::new();
        for (i, data) in media.iter().enumerate() {
            let Some((_, track)) = p.published.iter().find(|(m, _)| *m == data.mid) else {
                tracing::debug!(mid = %data.mid, "media on an m-line that publishes no track");
                continue;
            };
            if !p.info.permissions.may_send(&track.source) {
                continue; // canSend forbids it: forward nothing, not even levels.
            }
            if !track.ignore_audio_level
                && let Some(level) = data.ext_vals.audio_level
            {
                levels.push(level);
            }
            for c in room.members.iter().filter(|c| **c != publisher) {
                let Some(s) = self.parts.get(c) else { continue };
                let found = s.slots.iter().find(|s| {
                    s.live
                        && s.track
                            .as_ref()
                            .is_some_and(|k| k.publisher == publisher && k.track == *track)
                });
                if let Some(slot) = found {
                    targets.push((*c, slot.mid, i));
                }
            }
        }
        self.stats.frames_in += media.len() as u64;
        for level in levels {
            self.observe_level(now, publisher, level);
        }
        for (c, mid, i) in targets {
            let data = &media[i];
            let Some(t) = self.parts.get_mut(&c).and_then(|s| s.recv.as_mut()) else {
                continue;
            };
            if !t.rtc.is_alive() {
                continue;
            }
            let Some(mut writer) = t.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            writer = writer.start_of_talkspurt(data.audio_start_of_talk_spurt);
            if let (Some(level), Some(voice)) =
                (data.ext_vals.audio_level, data.ext_vals.voice_activity)
            {
                writer = writer.audio_level(level, voice);
            }
            match writer.write(pt, data.network_time, data.time, data.data.clone()) {
                Ok(()) => self.stats.frames_out += 1,
                Err(e) => tracing::debug!(error = %e, "forwarding write failed"),
            }
            let mut unused = Vec::new();
            t.drain(now, &mut self.out, &mut unused);
        }
    }
}
