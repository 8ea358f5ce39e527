//! Keyframe requests. A subscriber can only start decoding a video stream at a keyframe, and
//! after a loss that retransmission (NACK/RTX) did not repair it needs a new one. The SFU does
//! not encode, so it asks the publisher: once for each subscriber whose m-line goes live, and
//! for each PLI or FIR a subscriber sends (RFC 4585 section 6.3.1, RFC 5104 section 4.3.1),
//! coalesced per published track so that many subscribers losing the same packet cost the
//! publisher one keyframe, not one each.

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, Mid};

use super::{ConnId, Sfu};

/// Requests for one published track closer together than this are merged into one: a
/// keyframe is several times the size of a delta frame, and the first one answers every
/// request made while it was on its way (about one round trip plus an encode).
pub(super) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

impl Sfu {
    /// Asks `publisher` for a keyframe on the video track it sends on its send transport's
    /// m-line `mid`, unless one was asked for within [`KEYFRAME_REQUEST_INTERVAL`].
    pub(super) fn request_keyframe(&mut self, now: Instant, publisher: ConnId, mid: Mid, kind: KeyframeRequestKind) {
        let Some(p) = self.parts.get_mut(&publisher) else {
            return;
        };
        if let Some((_, at)) = p.keyframe_asked.iter().find(|(m, _)| *m == mid)
            && now.saturating_duration_since(*at) < KEYFRAME_REQUEST_INTERVAL
        {
            return;
        }
        let Some(t) = p.send.as_mut() else { return };
        if !t.rtc.is_alive() {
            return;
        }
        let mut api = t.rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(mid, None) else {
            return; // No packet yet: the stream's first frame is a keyframe anyway.
        };
        rx.request_keyframe(kind);
        p.keyframe_asked.retain(|(m, _)| *m != mid);
        p.keyframe_asked.push((mid, now));
        self.stats.keyframe_requests += 1;
        t.drain(now, &mut self.out, &mut self.scratch_media);
        self.scratch_media.clear();
    }

    /// A subscriber's m-line `slot_mid` went live or asked for a keyframe: ask the publisher
    /// of the track it carries, if it is video.
    pub(super) fn keyframe_for_slot(&mut self, now: Instant, subscriber: ConnId, slot_mid: Mid, kind: KeyframeRequestKind) {
        let Some(key) = self
            .parts
            .get(&subscriber)
            .and_then(|s| s.slots.iter().find(|s| s.mid == slot_mid))
            .and_then(|s| s.track.clone())
        else {
            return;
        };
        if !key.track.source.is_video() {
            return;
        }
        let Some(mid) = self
            .parts
            .get(&key.publisher)
            .and_then(|p| p.published.iter().find(|(_, t)| *t == key.track).map(|(m, _)| *m))
        else {
            return;
        };
        self.request_keyframe(now, key.publisher, mid, kind);
    }

    /// Carries out the keyframe requests subscribers' transports received (queued by their
    /// drains).
    pub(super) fn handle_keyframe_requests(&mut self, now: Instant) {
        while let Some((subscriber, mid, kind)) = self.out.keyframe_requests.pop() {
            self.keyframe_for_slot(now, subscriber, mid, kind);
        }
    }
}
