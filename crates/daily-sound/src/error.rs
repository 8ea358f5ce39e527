//! The one error type of this crate.

use daily_client::ClientError;

/// What can go wrong opening or running a system sound device.
#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    /// No device of that name (or no default device) in that direction. `available` lists the
    /// names there are, so the message says what to pass instead.
    #[error("no {direction} sound device named {name:?} (available: {available})")]
    NoDevice {
        direction: &'static str,
        name: String,
        available: String,
    },
    /// The sound system could not list devices or read a device's formats.
    #[error("sound device {device:?}: {reason}")]
    Device { device: String, reason: String },
    /// The device offers no format we can use (16-bit integer, 32-bit integer or float samples
    /// at a rate of 8000-48000 Hz that is a multiple of 100).
    #[error("sound device {device:?} offers no usable format: {reason}")]
    Format { device: String, reason: String },
    /// cpal could not open or start the stream.
    #[error("sound device {device:?}: cannot open the {direction} stream: {reason}")]
    Stream {
        device: String,
        direction: &'static str,
        reason: String,
    },
    /// ALSA's library (libasound.so.2) is not on this machine or could not be loaded: it is
    /// loaded at run time, on first use, so that `daily` works without it.
    #[error("system sound devices are unavailable: {reason}")]
    Unavailable { reason: String },
    /// The client side (source, speaker) refused.
    #[error(transparent)]
    Client(#[from] ClientError),
}
