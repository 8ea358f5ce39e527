//! Client core of the open Daily SDK, for Python (through `daily-py`) and native Rust users.
//!
//! - [`Engine`]: one per process; a tokio runtime for network work, the 10 ms media clock and
//!   the source service thread, shared by every client.
//! - [`AudioSource`]: PCM written by the application, paced in real time (daily-python's
//!   `CustomAudioSource`).
//! - [`CallClient`]: joins a room on a daily-server (signalling over WebSocket, media over two
//!   webrtc-rs peer connections, Opus at 48 kHz in 20 ms frames), publishes sources and renders
//!   remote audio through a jitter buffer with packet-loss concealment.
//!
//! IO and threads live here; the signal processing lives in `daily-media`, which does none.

mod call;
mod clock;
mod engine;
mod netstats;
mod receive;
mod send;
pub mod shapes;
mod source;
mod speaker;

pub use call::{CONNECT_TIMEOUT, CallClient, CallState, ClientEvent, Done, EventSink, IceConfig, IceServer, JoinDone, JoinSettings};
pub use daily_media::OpusApplication;
pub use engine::Engine;
pub use receive::RecvStats;
pub use source::{AudioSource, WriteCompletion};
pub use speaker::{ReadCompletion, SpeakerDevice};

#[doc(hidden)]
pub use clock::on_clock_thread;

/// Frames per 10 ms at `sample_rate`, or the `InvalidArgument` error every API raises for a
/// rate outside 8000..=48000 Hz or not a multiple of 100 Hz.
pub(crate) fn frames_10ms(sample_rate: u32) -> Result<usize, ClientError> {
    daily_media::frames_per_10ms(sample_rate).map_err(|_| {
        ClientError::InvalidArgument(format!(
            "sample_rate must be a multiple of 100 Hz between 8000 and 48000, got {sample_rate}"
        ))
    })
}

/// Errors of the client crate.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A caller passed a value outside what the API accepts.
    #[error("{0}")]
    InvalidArgument(String),
    /// The engine is not running (never initialised, or shut down).
    #[error("the engine is not initialised (call Daily.init() first)")]
    NotInitialized,
    /// The object was released.
    #[error("this object has been released")]
    Released,
    /// Operating-system error (threads, sockets).
    #[error("I/O error: {0}")]
    Io(String),
    /// Signalling failed (connection, protocol).
    #[error("{0}")]
    Signalling(String),
    /// WebRTC failed.
    #[error("WebRTC error: {0}")]
    WebRtc(String),
    /// Codec or resampler failure.
    #[error("media error: {0}")]
    Media(String),
    /// Something took too long.
    #[error("timed out: {0}")]
    Timeout(String),
}
