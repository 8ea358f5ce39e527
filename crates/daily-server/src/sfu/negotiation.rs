//! Negotiation. Send transport: the client's `publishOffer` is answered and its track list
//! checked against the m-lines. Receive transport: the server offers (`subscribeOffer`) one
//! `m=audio` line per track the participant should receive (every other visible member's
//! published tracks that `canSend` allows and its subscription rules want), reuses inactive
//! m-lines for new tracks, and forwards on an m-line once the `subscribeAnswer` accepted it.

use std::time::Instant;

use daily_proto::{
    ForwardedTrack, MAX_TRACK_NAME_BYTES, MediaInfo, PublishedTrack, ServerMessage, TrackSource,
};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};

use super::seq::SeqMap;
use super::transport::{Inbound, Side};
use super::{ConnId, MAX_TRACKS_PER_PARTICIPANT, Sfu};

/// Video packets kept for resending per subscriber stream, and for how long (str0m's defaults).
const RTX_CACHE_PACKETS: usize = 2000;
const RTX_CACHE_AGE: std::time::Duration = std::time::Duration::from_secs(3);
/// Share of a subscriber stream's bytes in the last second that resends may take before str0m
/// drops the queued ones (str0m's default: 0.15).
const RTX_RATIO_CAP: f32 = 0.5;

/// A forwarded track: `(publisher, published track)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TrackKey {
    pub(super) publisher: ConnId,
    pub(super) track: PublishedTrack,
}

/// One `m=` line of a receive transport.
pub(super) struct Slot {
    pub(super) mid: Mid,
    /// Audio or video: an m-line carries one kind for its life (RFC 8866 section 5.14).
    pub(super) kind: MediaKind,
    /// The track this m-line carries (or will once the offer is answered).
    pub(super) track: Option<TrackKey>,
    /// The client answered an offer listing `track` on this m-line: forward now.
    pub(super) live: bool,
    /// The m-line exists in the negotiated session (it can be reused when free).
    negotiated: bool,
    /// Our sequence numbers on this m-line's stream, following the publisher's gaps.
    pub(super) seq: SeqMap,
}

impl Sfu {
    pub(super) fn publish_offer(
        &mut self,
        now: Instant,
        conn: ConnId,
        sdp: String,
        tracks: Vec<PublishedTrack>,
    ) {
        if tracks.len() > MAX_TRACKS_PER_PARTICIPANT {
            return self.fatal(
                now,
                conn,
                format!("more than {MAX_TRACKS_PER_PARTICIPANT} tracks"),
            );
        }
        // Bound the work before str0m parses the SDP: a client keeps at most one m-line per
        // concurrent track (dormant ones are reused), so twice the track limit is plenty.
        let m_lines = sdp.lines().filter(|l| l.starts_with("m=")).count();
        if m_lines > 2 * MAX_TRACKS_PER_PARTICIPANT {
            return self.fatal(
                now,
                conn,
                format!(
                    "publishOffer has {m_lines} m-lines; at most {} are accepted",
                    2 * MAX_TRACKS_PER_PARTICIPANT
                ),
            );
        }
        // Without a codec we take, str0m 0.24 answers with an m-line that has no format, which
        // the client cannot parse: refuse such an offer plainly instead.
        let lower = sdp.to_ascii_lowercase();
        if lower.contains("m=audio") && !lower.contains("opus/48000") {
            return self.fatal(
                now,
                conn,
                "publishOffer offers no Opus codec (opus/48000, RFC 7587); this server forwards Opus audio only".into(),
            );
        }
        if lower.contains("m=video") && !lower.contains("vp8/90000") {
            return self.fatal(
                now,
                conn,
                "publishOffer offers no VP8 codec (VP8/90000, RFC 7741); this server forwards VP8 video only".into(),
            );
        }
        if m_lines == 0 {
            // A client with nothing to publish may still offer (an SDP without media): answer
            // in kind and publish nothing. str0m itself refuses offers without m-lines.
            if !tracks.is_empty() {
                return self.fatal(
                    now,
                    conn,
                    "publishOffer lists tracks but has no m-lines".into(),
                );
            }
            if !self.parts.contains_key(&conn) {
                return;
            }
            let answer =
                format!("v=0\r\no=daily-server {conn} 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
            self.signals
                .send(conn, ServerMessage::PublishAnswer { sdp: answer });
            return self.set_published(now, conn, Vec::new(), Vec::new());
        }
        let offer = match SdpOffer::from_sdp_string(&sdp) {
            Ok(o) => o,
            Err(e) => return self.fatal(now, conn, format!("invalid publishOffer SDP: {e}")),
        };
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let needs_new = p.send.as_ref().is_none_or(|t| !t.rtc.is_alive());
        let fresh = needs_new.then(|| self.new_transport(now, conn, Side::Send));
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        if let Some(f) = fresh {
            p.send = Some(f);
        }
        let Some(transport) = p.send.as_mut() else {
            return;
        };
        let answer = match transport.rtc.sdp_api().accept_offer(offer) {
            Ok(a) => a,
            Err(e) => return self.fatal(now, conn, format!("publishOffer rejected: {e}")),
        };
        let mut media = Vec::new();
        transport.drain(now, &mut self.out, &mut media);

        // Keep the listed tracks whose m-line exists and receives; first one wins on duplicates.
        let mut accepted: Vec<(Mid, PublishedTrack)> = Vec::new();
        let mut problems = Vec::new();
        for t in tracks {
            let mid = Mid::from(t.mid.as_str());
            let kind = media_kind(&t.source);
            let receiving = transport.rtc.media(mid).is_some_and(|m| {
                m.kind() == kind && *m.mid() == *t.mid && m.direction().is_receiving()
            });
            let long_name = t
                .source
                .track_name()
                .is_some_and(|n| n.len() > MAX_TRACK_NAME_BYTES);
            if long_name {
                problems.push(format!(
                    "track {:?}: trackName longer than {MAX_TRACK_NAME_BYTES} bytes",
                    t.track_id
                ));
            } else if !receiving {
                problems.push(format!(
                    "track {:?}: no sending {} m-line with mid {:?}",
                    t.track_id,
                    if kind == MediaKind::Video { "video" } else { "audio" },
                    t.mid
                ));
            } else if accepted
                .iter()
                .any(|(m, a)| *m == mid || a.source == t.source)
            {
                problems.push(format!("track {:?}: duplicate mid or source", t.track_id));
            } else {
                accepted.push((mid, t));
            }
        }
        tracing::debug!(accepted = ?accepted.iter().map(|(m, t)| (m.to_string(), t.track_id.clone())).collect::<Vec<_>>(), ?problems, "publishOffer");
        self.signals.send(
            conn,
            ServerMessage::PublishAnswer {
                sdp: answer.to_sdp_string(),
            },
        );
        for message in problems {
            self.signals.send(
                conn,
                ServerMessage::Error {
                    message,
                    fatal: false,
                },
            );
        }
        self.set_published(now, conn, accepted, media);
    }

    /// Records the tracks `conn` now publishes; updates everybody who needs to know.
    fn set_published(
        &mut self,
        now: Instant,
        conn: ConnId,
        accepted: Vec<(Mid, PublishedTrack)>,
        mut media: Vec<Inbound>,
    ) {
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        let changed = p.published != accepted;
        p.published = accepted;
        if self.refresh_media_info(conn) {
            self.broadcast_update(conn);
        }
        if changed {
            self.mark_room_dirty(conn);
        }
        self.forward(now, conn, &mut media);
    }

    /// Recomputes the media part of `conn`'s info from what it publishes and may send (a
    /// track `canSend` forbids shows as not publishing). Returns whether it changed.
    pub(super) fn refresh_media_info(&mut self, conn: ConnId) -> bool {
        let Some(p) = self.parts.get_mut(&conn) else {
            return false;
        };
        let mut info = p.info.clone();
        info.microphone = MediaInfo {
            publishing: false,
            track_id: None,
        };
        info.custom_audio.clear();
        info.camera = MediaInfo::default();
        info.screen_video = MediaInfo::default();
        info.custom_video.clear();
        for (_, t) in &p.published {
            let m = MediaInfo {
                publishing: p.info.permissions.may_send(&t.source),
                track_id: Some(t.track_id.clone()),
            };
            match &t.source {
                TrackSource::Microphone => info.microphone = m,
                TrackSource::Camera => info.camera = m,
                TrackSource::ScreenVideo => info.screen_video = m,
                TrackSource::CustomAudio { track_name } => {
                    info.custom_audio.insert(track_name.clone(), m);
                }
                TrackSource::CustomVideo { track_name } => {
                    info.custom_video.insert(track_name.clone(), m);
                }
            }
        }
        let changed = info != p.info;
        p.info = info;
        changed
    }

    /// Marks every other participant of `conn`'s room for renegotiation.
    pub(super) fn mark_room_dirty(&mut self, conn: ConnId) {
        let Some(room) = self.parts.get(&conn).map(|p| p.room.clone()) else {
            return;
        };
        let Some(members) = self.rooms.get(&room).map(|r| r.members.clone()) else {
            return;
        };
        for c in members {
            if c != conn
                && let Some(p) = self.parts.get_mut(&c)
            {
                p.needs_negotiation = true;
            }
        }
    }

    pub(super) fn subscribe_answer(&mut self, now: Instant, conn: ConnId, sdp: String) {
        let answer = match SdpAnswer::from_sdp_string(&sdp) {
            Ok(a) => a,
            Err(e) => return self.fatal(now, conn, format!("invalid subscribeAnswer SDP: {e}")),
        };
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        let (Some(pending), Some(t)) = (p.pending.take(), p.recv.as_mut()) else {
            return self.fatal(
                now,
                conn,
                "subscribeAnswer without an outstanding subscribeOffer".into(),
            );
        };
        if let Err(e) = t.rtc.sdp_api().accept_answer(pending, answer) {
            return self.fatal(now, conn, format!("subscribeAnswer rejected: {e}"));
        }
        let mut media = Vec::new();
        t.drain(now, &mut self.out, &mut media);
        let mut started = Vec::new();
        for s in &mut p.slots {
            s.negotiated = t.rtc.media(s.mid).is_some();
            let was = s.live;
            s.live = s.negotiated && s.track.is_some();
            if s.live && !was && s.kind == MediaKind::Video {
                started.push(s.mid);
            }
        }
        // str0m drops every queued resend while resends were more than 15 % of the stream's
        // bytes in the last second. A keyframe is a large part of a second's bytes, so at 5 %
        // loss on a subscriber's link the cap cut in again and again: its NACKs went
        // unanswered and each unrepaired loss cost a PLI and a keyframe (11 in 12 s, 79 % of
        // frames rendered; with the cap at RTX_RATIO_CAP: 1 and 99 %). Resends may still not
        // take over the link.
        for &mid in &started {
            if let Some(tx) = t.rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
            }
        }
        // A new subscriber of a video track can decode nothing until the next keyframe.
        for mid in started {
            self.keyframe_for_slot(now, conn, mid, KeyframeRequestKind::Pli);
        }
    }

    /// Sends a subscribe offer to every participant that needs one and has none outstanding.
    pub(super) fn negotiate_all(&mut self, now: Instant) {
        let dirty: Vec<ConnId> = self
            .parts
            .iter()
            .filter(|(_, p)| p.needs_negotiation && (p.pending.is_none() || p.reoffer))
            .map(|(c, _)| *c)
            .collect();
        for conn in dirty {
            self.negotiate(now, conn);
        }
    }

    fn negotiate(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let Some(room) = self.rooms.get(&p.room) else {
            return;
        };
        // What this participant should receive: every other member's published tracks.
        let mut desired: Vec<(TrackKey, String)> = Vec::new();
        for c in room.members.iter().filter(|c| **c != conn) {
            let Some(o) = self.parts.get(c) else { continue };
            if o.send.as_ref().is_none_or(|t| !t.rtc.is_alive()) {
                continue;
            }
            if !o.visible() {
                continue;
            }
            for (_, t) in &o.published {
                if !o.info.permissions.may_send(&t.source) || !p.rules.wants(&o.info.id, &t.source)
                {
                    continue;
                }
                desired.push((
                    TrackKey {
                        publisher: *c,
                        track: t.clone(),
                    },
                    o.info.id.clone(),
                ));
            }
        }
        let fresh = if p.recv.is_none() && !desired.is_empty() {
            Some(self.new_transport(now, conn, Side::Recv))
        } else {
            None
        };
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        p.needs_negotiation = false;
        if let Some(f) = fresh {
            p.recv = Some(f);
        }
        let Some(t) = p.recv.as_mut() else {
            p.restart_ice = false;
            return;
        };
        if !t.rtc.is_alive() {
            return;
        }
        // Send what is queued first (str0m sends written packets on its next timeout): a
        // packet forwarded while the track was still wanted would otherwise be dropped with
        // the m-line's direction change, a gap in its sequence numbers at the switch.
        if let Err(e) = t.rtc.handle_input(str0m::Input::Timeout(now)) {
            tracing::debug!(error = %e, "timeout handling failed");
        }
        let mut media = Vec::new();
        t.drain(now, &mut self.out, &mut media);
        let mut api = t.rtc.sdp_api();
        if p.reoffer {
            // The outstanding offer was lost with a connection (`resume.rs`): its changes
            // are offered again with the new ones.
            p.reoffer = false;
            if let Some(pending) = p.pending.take() {
                api.merge(pending);
            }
        }
        if p.restart_ice {
            p.restart_ice = false;
            // Our one host candidate stays what it is; only the credentials change.
            api.ice_restart(true);
        }
        let mut freed = Vec::new();
        for s in &mut p.slots {
            if let Some(k) = &s.track
                && !desired.iter().any(|(d, _)| d == k)
            {
                s.track = None;
                s.live = false;
                s.seq.new_source();
                if s.negotiated {
                    api.set_direction(s.mid, Direction::Inactive);
                }
                freed.push(s.mid);
            }
        }
        for (key, participant_id) in desired {
            if p.slots.iter().any(|s| s.track.as_ref() == Some(&key)) {
                continue;
            }
            let kind = media_kind(&key.track.source);
            if let Some(s) = p.slots.iter_mut().find(|s| {
                s.track.is_none() && s.negotiated && s.kind == kind && !freed.contains(&s.mid)
            }) {
                api.set_direction(s.mid, Direction::SendOnly);
                s.track = Some(key);
                s.live = false;
                s.seq.new_source();
            } else {
                let mid = api.add_media(
                    kind,
                    Direction::SendOnly,
                    Some(participant_id),
                    Some(key.track.track_id.clone()),
                    None,
                );
                p.slots.push(Slot {
                    mid,
                    kind,
                    track: Some(key),
                    live: false,
                    negotiated: false,
                    seq: SeqMap::new(initial_seq()),
                });
            }
        }
        if !api.has_changes() {
            return;
        }
        let Some((offer, pending)) = api.apply() else {
            // Changes that need no negotiation were applied directly.
            let mut media = Vec::new();
            t.drain(now, &mut self.out, &mut media);
            return;
        };
        let mut media = Vec::new();
        t.drain(now, &mut self.out, &mut media);
        p.pending = Some(pending);
        let assigned: Vec<(Mid, TrackKey)> = p
            .slots
            .iter()
            .filter_map(|s| s.track.clone().map(|k| (s.mid, k)))
            .collect();
        let mut tracks = Vec::new();
        for (mid, k) in assigned {
            let Some(o) = self.parts.get(&k.publisher) else {
                continue;
            };
            tracks.push(ForwardedTrack {
                mid: mid.to_string(),
                participant_id: o.info.id.clone(),
                track_id: k.track.track_id,
                source: k.track.source,
            });
        }
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        tracing::debug!(participant = %p.info.id, tracks = tracks.len(), "subscribeOffer");
        self.signals.send(
            conn,
            ServerMessage::SubscribeOffer {
                sdp: offer.to_sdp_string(),
                tracks,
            },
        );
    }
}

/// The m-line kind that carries `source`.
pub(super) fn media_kind(source: &TrackSource) -> MediaKind {
    if source.is_video() {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

/// A random first sequence number for a new outgoing stream (RFC 3550 section 5.1).
fn initial_seq() -> u16 {
    uuid::Uuid::new_v4().as_u128() as u16
}
