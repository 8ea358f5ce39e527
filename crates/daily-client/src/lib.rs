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
mod error;
mod media_source;
mod netstats;
mod receive;
pub mod record;
mod send;
pub mod shapes;
mod source;
pub mod sources;
mod speaker;
mod tls;
mod video;

pub use call::{
    CONNECT_TIMEOUT, CallClient, CallCore, CallState, ClientEvent, CompletionId, Connection, Done, EventSink, IceConfig, IceServer,
    InputChange, JoinDone, JoinSettings, Output, Participant, SendSettings, SendTrackSpec, SourceHandle, TransportCommand, VideoSendSettings,
    check, validate_custom_track_name, validate_user_name,
};
/// The timeouts that bound how outages are detected and survived (`call/core/link.rs`).
pub mod timeouts {
    pub use crate::call::{
        ICE_CONSENT_INTERVAL, ICE_DISCONNECTED_AFTER, ICE_FAILED_AFTER, ICE_RESTART_AFTER, ICE_RESTART_INTERVAL, MEDIA_LOST_LIMIT,
        RECONNECT_INTERVAL, RESUME_LIMIT, SIGNALLING_PING_INTERVAL, SIGNALLING_SILENCE_LIMIT,
    };
}
pub use error::ClientError;
pub use daily_media::OpusApplication;
pub use engine::Engine;
pub use receive::RecvStats;
pub use media_source::MediaSource;
pub use source::{AudioSource, WriteCompletion};
pub use video::{VideoFrameRef, VideoSource};
pub use daily_video::ColorFormat;
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
