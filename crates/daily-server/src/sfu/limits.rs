//! What the SFU tolerates, and for how long: the resume grace, liveness timeouts and the rate
//! limits on what one participant may ask of everybody else. Every figure is a documented
//! constant and a field of [`SfuConfig`] where a deployment may want another value.

use std::time::{Duration, Instant};

use daily_proto::DEFAULT_RESUME_GRACE_SECS;

/// How often the server sends a WebSocket ping on every signalling connection. Browsers and
/// WebSocket libraries answer pings by themselves (RFC 6455 section 5.5.2), so any client is
/// covered; the ping also keeps NAT and proxy mappings of an idle connection alive.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// A signalling connection on which nothing (no message, no pong) arrived for this long is
/// dead: three pings went unanswered. The participant is then detached (kept for the resume
/// grace), not removed: the client may be reconnecting.
pub const SIGNALLING_TIMEOUT: Duration = Duration::from_secs(15);

/// A detached participant (signalling dead) from whose transports no datagram arrived for
/// this long (or that has none) is removed before its resume grace ends, and the others get
/// `participantLeft`: a peer that vanished is gone about this long after its last packet. A
/// live client sends something on each transport every second or so (RTCP reports, ICE
/// consent checks), so this is only silence. Longer than 30 s so that an outage of 30 s,
/// which takes signalling and media down together, can still be resumed (issue 16's goal).
pub const DEAD_MEDIA_GRACE: Duration = Duration::from_secs(35);

/// App messages one participant may send per second, sustained (token bucket refill).
/// Chat and bot control stay far below it (a person types a message every few seconds; a bot
/// relaying transcripts sends a few per second); a flood of 1,000 per second, which issue 16 saw
/// relayed to everybody, is cut to 2 % of itself.
pub const APP_MESSAGES_PER_SECOND: u32 = 20;
/// App messages one participant may send at once after a quiet spell (token bucket depth).
pub const APP_MESSAGE_BURST: u32 = 40;

/// Participant updates (`setUserName`, `updatePermissions`, `setSubscriptions`, `eject`) one
/// participant may send per second, sustained. Each is relayed to the whole room or starts a
/// renegotiation for it, so they cost much more than an app message; a user renames or
/// changes subscriptions a few times per call.
pub const UPDATES_PER_SECOND: u32 = 5;
/// Participant updates one participant may send at once (token bucket depth).
pub const UPDATE_BURST: u32 = 10;

/// The SFU's tunables. `Default` gives the documented constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfuConfig {
    /// How long a participant whose signalling dropped without `leave` is kept for a `resume`
    /// ([`DEFAULT_RESUME_GRACE_SECS`] by default).
    pub resume_grace: Duration,
    /// See [`DEAD_MEDIA_GRACE`].
    pub dead_media_grace: Duration,
    /// See [`APP_MESSAGES_PER_SECOND`] and [`APP_MESSAGE_BURST`].
    pub app_messages: RateLimit,
    /// See [`UPDATES_PER_SECOND`] and [`UPDATE_BURST`].
    pub updates: RateLimit,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            resume_grace: Duration::from_secs(DEFAULT_RESUME_GRACE_SECS),
            dead_media_grace: DEAD_MEDIA_GRACE,
            app_messages: RateLimit {
                per_second: APP_MESSAGES_PER_SECOND,
                burst: APP_MESSAGE_BURST,
            },
            updates: RateLimit {
                per_second: UPDATES_PER_SECOND,
                burst: UPDATE_BURST,
            },
        }
    }
}

/// A token bucket's rate and depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate. 0 turns the limit off.
    pub per_second: u32,
    /// Most requests accepted at once.
    pub burst: u32,
}

/// One participant's token bucket for one kind of request, on the core's clock.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    pub(super) fn new(limit: RateLimit) -> Bucket {
        Bucket {
            tokens: f64::from(limit.burst),
            at: None,
        }
    }

    /// Takes a token if one is there.
    pub(super) fn take(&mut self, now: Instant, limit: RateLimit) -> bool {
        if limit.per_second == 0 {
            return true;
        }
        let burst = f64::from(limit.burst.max(1));
        if let Some(at) = self.at {
            let refill =
                now.saturating_duration_since(at).as_secs_f64() * f64::from(limit.per_second);
            self.tokens = (self.tokens + refill).min(burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limit = RateLimit {
            per_second: 20,
            burst: 40,
        };
        let mut b = Bucket::new(limit);
        let t0 = Instant::now();
        assert_eq!((0..100).filter(|_| b.take(t0, limit)).count(), 40);
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| b.take(t1, limit)).count(), 10);
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(
            (0..100).filter(|_| b.take(t2, limit)).count(),
            40,
            "refill capped at the burst"
        );
    }
}
