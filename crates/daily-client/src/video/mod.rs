//! Video: sources the application writes frames to, the encoder thread of each published video
//! track, and the receive pipeline (frame assembly, decoding, renderers) of each remote one.
//!
//! Video does not run on the 10 ms media clock: a frame is tens of kilobytes and milliseconds of
//! work to encode or decode, so each published video track has an encoder thread and each
//! received one a decoder thread, both fed through one-slot or small bounded hand-offs that drop
//! frames rather than queue them (the newest frame is the one worth showing). The codec work
//! itself (colour conversion, VP8, RTP payload format) is in the IO-free `daily-video` crate.

mod receive;
mod send;
mod source;

pub(crate) use receive::{REPAIR_WAIT, VideoFeed, VideoRecv, VideoRendererSpec};
pub(crate) use send::{KeyframeTable, MIN_VIDEO_BITRATE, RtpOut, VideoSendStats, VideoSender, VideoSenderConfig};
pub use source::{VideoFrameRef, VideoSource};

/// Largest RTP payload of a video packet, in bytes: a 1200-byte payload plus RTP, SRTP and
/// header-extension overhead stays under a 1280-byte IPv6 minimum MTU path with room for a
/// TURN wrapper (libwebrtc uses the same budget).
pub(crate) const MAX_VIDEO_PAYLOAD: usize = 1200;
