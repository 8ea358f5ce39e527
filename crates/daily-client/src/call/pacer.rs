//! The send transport's pacer, run ahead of the bandwidth estimate.
//!
//! webrtc-rs's congestion control (`configure_congestion_control`) sets its pacer's rate to
//! the GCC estimate itself. Our video encoder targets that same estimate, and audio, RTP/SRTP
//! and UDP/IP overhead, retransmissions and keyframe overshoot all come on top, so the pacer's
//! queue (4096 packets) only ever grew: measured behind a 400 kbit/s uplink, video arrived
//! 0.6-3.6 s late and kept arriving that late after the limit was lifted, and speech sent
//! alongside video became unintelligible (audio waits in the same queue). libwebrtc paces at
//! [`PACING_FACTOR`] times the estimate (`kDefaultPaceMultiplier`): the pacer smooths a
//! frame's burst of packets but never holds the stream below what it is asked to send; the
//! encoder following the estimate is what keeps the rate in check.

use rtc::interceptor::{Attribute, Interceptor, PacerBuilder, PacerInterceptor, StreamInfo, TaggedPacket};
use std::time::Instant;

/// Pacing rate over the bandwidth estimate (libwebrtc's `kDefaultPaceMultiplier`).
pub(crate) const PACING_FACTOR: f64 = 2.5;

/// webrtc-rs's [`PacerInterceptor`], with every rate it is given multiplied by
/// [`PACING_FACTOR`]. The estimate itself travels on unchanged (to the outbound RTP stats the
/// encoders read).
pub(crate) struct PacedAhead {
    inner: PacerInterceptor,
}

impl PacedAhead {
    /// A pacer for an estimator starting at `start_bps`.
    pub(crate) fn new(start_bps: f64) -> PacedAhead {
        PacedAhead { inner: PacerBuilder::new().with_target_bitrate(start_bps * PACING_FACTOR).build() }
    }
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for PacedAhead {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        let estimate = match msg.message.get(&Attribute::TargetBitrateChanged { bits_per_second: 0.0 }) {
            Some(Attribute::TargetBitrateChanged { bits_per_second }) => Some(*bits_per_second),
            _ => None,
        };
        self.inner.handle_read(msg)?;
        // The inner pacer took the estimate as its rate; it paces ahead of it instead.
        if let Some(bps) = estimate {
            self.inner.pacer_mut().set_target_bitrate(bps * PACING_FACTOR);
        }
        Ok(())
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.inner.handle_write(msg)
    }

    super::interceptor::delegate_to_inner!();
}

impl Interceptor for PacedAhead {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_local_stream(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_local_stream(info);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_remote_stream(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_remote_stream(info);
    }
}
