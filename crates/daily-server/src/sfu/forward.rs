//! Forwarding: RTP packets a publisher's send transport received are written, one by one, to
//! each subscriber's receive transport on the m-line that carries that track (str0m's RTP
//! mode, `StreamTx::write_rtp`). No transcoding: the payload (shared, not copied), RTP
//! timestamp, marker bit (start of talkspurt) and audio level are carried over. SSRC and
//! payload type are the outgoing stream's own; its sequence numbers are ours but advance by
//! the publisher's (`seq.rs`), so a packet lost upstream is a gap every receiver sees and
//! conceals, and reports in its packets-lost count (RFC 7667 section 3.7's SSRC rewrite,
//! without hiding loss).

use std::time::Instant;

use str0m::media::MediaKind;
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};

use super::transport::Inbound;
use super::{ConnId, Sfu};

impl Sfu {
    /// Writes the packets received from `publisher` (`media`, emptied) to every subscriber's
    /// m-line for that track, at once (no batching). Allocation-light: the target list is a
    /// scratch vector kept across calls, payloads are reference-counted.
    pub(super) fn forward(&mut self, now: Instant, publisher: ConnId, media: &mut Vec<Inbound>) {
        if media.is_empty() {
            return;
        }
        if self
            .parts
            .get(&publisher)
            .and_then(|p| self.rooms.get(&p.room))
            .is_some_and(|r| !r.recordings.is_empty())
        {
            self.record_packets(publisher, media);
        }
        let mut targets = std::mem::take(&mut self.fwd_targets);
        targets.clear();
        self.fwd_levels.clear();
        if let Some(p) = self.parts.get(&publisher)
            && let Some(room) = self.rooms.get(&p.room)
        {
            for (i, (mid, packet)) in media.iter().enumerate() {
                let Some((_, track)) = p.published.iter().find(|(m, _)| m == mid) else {
                    tracing::debug!(%mid, "media on an m-line that publishes no track");
                    continue;
                };
                if !p.info.permissions.may_send(&track.source) {
                    continue; // canSend forbids it: forward nothing, not even levels.
                }
                if !track.ignore_audio_level
                    && let Some(level) = packet.header.ext_vals.audio_level
                {
                    self.fwd_levels.push(level);
                }
                for c in room.members.iter().filter(|c| **c != publisher) {
                    let Some(s) = self.parts.get(c) else { continue };
                    let found = s.slots.iter().position(|s| {
                        s.live
                            && s.track
                                .as_ref()
                                .is_some_and(|k| k.publisher == publisher && k.track == *track)
                    });
                    if let Some(slot) = found {
                        targets.push((*c, slot, i));
                    }
                }
            }
            self.stats.frames_in += media.len() as u64;
        }
        for k in 0..self.fwd_levels.len() {
            self.observe_level(now, publisher, self.fwd_levels[k]);
        }
        let (opus_pt, vp8_pt) = (self.opus_pt, self.vp8_pt);
        for &(c, slot, i) in &targets {
            let (_, packet) = &media[i];
            let Some(s) = self.parts.get_mut(&c) else {
                continue;
            };
            let (Some(slot), Some(t)) = (s.slots.get_mut(slot), s.recv.as_mut()) else {
                continue;
            };
            if !t.rtc.is_alive() {
                continue;
            }
            let Some(seq) = slot.seq.map(*packet.seq_no) else {
                continue; // A duplicate, or too late to place.
            };
            let mut api = t.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(slot.mid, None) else {
                continue;
            };
            let h = &packet.header;
            let video = slot.kind == MediaKind::Video;
            // Only what describes the media; str0m sets the transport's own extensions (mid,
            // abs-send-time, transport-wide sequence numbers) for this leg.
            let ext_vals = ExtensionValues {
                audio_level: h.ext_vals.audio_level,
                voice_activity: h.ext_vals.voice_activity,
                ..Default::default()
            };
            tx.write_rtp(
                RtpWrite::new(
                    if video { vp8_pt } else { opus_pt },
                    SeqNo::from(seq),
                    h.timestamp,
                    packet.timestamp,
                    packet.payload.clone(),
                )
                .marker(h.marker)
                .ext_vals(ext_vals)
                // Video packets are kept for NACKs (RFC 4585 section 6.2.1) and resent, on the
                // RTX stream when one was negotiated (RFC 4588); a lost Opus packet is
                // concealed instead (too late to be worth resending).
                .nackable(video),
            );
            self.stats.frames_out += 1;
            t.drain(now, &mut self.out, &mut self.scratch_media);
            self.scratch_media.clear();
        }
        self.fwd_targets = targets;
        media.clear();
    }
}
