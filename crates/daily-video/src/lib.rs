//! IO-free video core of the open Daily SDK: the video counterpart of `daily-media`.
//!
//! Plain computation on buffers the caller owns: no threads (libvpx may use its own worker
//! threads inside one `encode` call when [`EncoderConfig::threads`] > 1), no sockets, no clock
//! (timestamps are passed in, on the 90 kHz RTP clock, [`VIDEO_CLOCK_RATE`]).
//!
//! # Parts
//! - [`ColorFormat`], [`I420Buffer`], [`to_i420`], [`from_i420`]: the frame formats
//!   daily-python takes and gives, converted with BT.601 limited range like WebRTC.
//! - [`VideoEncoder`] / [`VideoDecoder`]: VP8 through libvpx, real-time CBR settings. VP8 was
//!   chosen over H.264 (OpenH264) by measurement: `benches/CODEC_CHOICE.md`.
//! - [`rtp`]: the VP8 RTP payload format (RFC 7741): packetizer and frame assembler with loss
//!   handling that says when to ask for a keyframe.
//! - [`testpattern`]: a moving picture whose frame number survives coding.
//!
//! # Example: camera frames to RTP payloads and back
//! ```
//! use daily_video::*;
//!
//! let (w, h) = (320, 180);
//! let mut enc = VideoEncoder::new(EncoderConfig { width: w, height: h, fps: 30, bitrate_bps: 300_000, threads: 1 })?;
//! let mut dec = VideoDecoder::new()?;
//! let mut packetizer = rtp::Packetizer::new();
//! let mut assembler = rtp::FrameAssembler::new();
//! let (mut rgba, mut frame, mut encoded) = (Vec::new(), I420Buffer::new(w, h), EncodedFrame::default());
//! let (mut picture, mut out_rgba) = (I420Buffer::default(), Vec::new());
//! let mut seq = 0u16;
//! for n in 0..10u32 {
//!     testpattern::rgba(n, w, h, &mut rgba); // a camera frame
//!     to_i420(&rgba, ColorFormat::Rgba, w, h, &mut frame)?;
//!     let ts = n * (VIDEO_CLOCK_RATE / 30);
//!     enc.encode(&frame, ts, n == 0, &mut encoded)?;
//!     let mut packets = Vec::new();
//!     packetizer.packetize(&encoded.data, encoded.keyframe, 1200, |payload, marker| {
//!         packets.push((payload.to_vec(), marker));
//!     });
//!     // ... RTP over the network, then on the receiving side:
//!     for (payload, marker) in packets {
//!         if let Some(f) = assembler.push(seq, ts, marker, &payload) {
//!             if dec.decode(&f.data, &mut picture)? {
//!                 from_i420(&picture, ColorFormat::Rgba, &mut out_rgba)?;
//!                 assert_eq!(testpattern::read_frame_number(&out_rgba, w, h), Some(n));
//!             }
//!         }
//!         seq = seq.wrapping_add(1);
//!     }
//! }
//! assert!(!assembler.needs_keyframe());
//! # Ok::<(), VideoError>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod color;
mod error;
pub mod rtp;
pub mod testpattern;
#[cfg(test)]
mod tests;
#[allow(unsafe_code)] // the libvpx FFI; every block has a SAFETY comment
mod vpx;

pub use color::{ColorFormat, I420Buffer, from_i420, to_i420};
pub use error::VideoError;
pub use vpx::{
    DEFAULT_CPU_USED, EncodedFrame, EncoderConfig, KEYFRAME_MAX_INTERVAL, MAX_DIMENSION,
    VideoDecoder, VideoEncoder,
};

/// The RTP clock rate of every video payload format: 90 kHz (RFC 7741 section 4.1,
/// RFC 6184 section 8.1).
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
