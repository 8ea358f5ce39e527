//! [`VideoSource`]: frames written by the application (daily-python's `CustomVideoSource` and
//! `VirtualCameraDevice`), converted to I420 at once and kept in a one-frame mailbox that every
//! encoder attached to the source reads the newest frame from.

use crate::ClientError;
use daily_video::{ColorFormat, I420Buffer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// A decoded frame as a renderer gets it.
pub struct VideoFrameRef<'a> {
    /// Pixels in `color_format`'s layout (`ColorFormat::frame_size` bytes).
    pub data: &'a [u8],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The frame's RTP timestamp (90 kHz clock, RFC 7741 section 4.1) in microseconds since the
    /// stream's first frame, unwrapped.
    pub timestamp_us: i64,
    /// The layout of `data`.
    pub color_format: ColorFormat,
}

pub(crate) struct Latest {
    /// The newest frame, I420.
    pub frame: I420Buffer,
    /// Bumped by each write; 0 = nothing written yet.
    pub seq: u64,
    /// When it was written.
    pub at: Instant,
}

pub(crate) struct SourceShared {
    pub width: u32,
    pub height: u32,
    pub format: ColorFormat,
    pub latest: Mutex<Latest>,
    pub written: Condvar,
    /// Frames written.
    pub frames_written: AtomicU64,
}

impl SourceShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A source of video frames written by the application. Cheap to clone (clones are the same
/// source); a frame written replaces the one before it if no encoder took it yet, so a writer
/// faster than the encoder or the network loses frames, never memory or latency.
#[derive(Clone)]
pub struct VideoSource {
    pub(crate) shared: Arc<SourceShared>,
}

impl std::fmt::Debug for VideoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VideoSource({}x{} {})", self.shared.width, self.shared.height, self.shared.format.as_str())
    }
}

impl VideoSource {
    /// A source of `width` x `height` frames (1-8192 pixels each) in `format`.
    pub fn new(width: u32, height: u32, format: ColorFormat) -> Result<VideoSource, ClientError> {
        for (name, v) in [("width", width), ("height", height)] {
            if !(1..=8192).contains(&v) {
                return Err(ClientError::InvalidArgument(format!("{name} must be between 1 and 8192 pixels, got {v}")));
            }
        }
        Ok(VideoSource {
            shared: Arc::new(SourceShared {
                width,
                height,
                format,
                latest: Mutex::new(Latest { frame: I420Buffer::new(width, height), seq: 0, at: Instant::now() }),
                written: Condvar::new(),
                frames_written: AtomicU64::new(0),
            }),
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.shared.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.shared.height
    }

    /// The colour format frames are written in.
    pub fn color_format(&self) -> ColorFormat {
        self.shared.format
    }

    /// Bytes of one frame.
    pub fn frame_size(&self) -> usize {
        self.shared.format.frame_size(self.shared.width, self.shared.height)
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.shared.frames_written.load(Ordering::Relaxed)
    }

    /// Whether `self` and `other` are the same source.
    pub fn ptr_eq(&self, other: &VideoSource) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Writes one frame: `data` must be [`VideoSource::frame_size`] bytes in the source's
    /// format (`InvalidArgument` naming both sizes otherwise). Converted to I420 on the caller's
    /// thread (BT.601, what WebRTC encoders take); returns at once.
    pub fn write_frame(&self, data: &[u8]) -> Result<(), ClientError> {
        let s = &self.shared;
        let expected = self.frame_size();
        if data.len() != expected {
            return Err(ClientError::InvalidArgument(format!(
                "frame size mismatch: expected {expected} bytes for {}x{} {}, got {}",
                s.width,
                s.height,
                s.format.as_str(),
                data.len()
            )));
        }
        let mut latest = s.lock();
        daily_video::to_i420(data, s.format, s.width, s.height, &mut latest.frame)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        latest.seq += 1;
        latest.at = Instant::now();
        drop(latest);
        s.frames_written.fetch_add(1, Ordering::Relaxed);
        s.written.notify_all();
        Ok(())
    }
}
