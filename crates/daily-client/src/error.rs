//! The crate's one error type. Every completion and fallible call returns it; the Python
//! binding maps it to exceptions and completion strings in one place (`daily-py`'s
//! `errors.rs`). Variants carry structured fields; `Display` gives daily-python's wording.

/// Errors of the client crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A caller passed a value outside what the API accepts.
    #[error("{0}")]
    InvalidArgument(String),
    /// The engine is not running (never initialised, or shut down).
    #[error("the engine is not initialised (call Daily.init() first)")]
    NotInitialized,
    /// A caller passed a value of the wrong type (daily-python raises `TypeError`); the
    /// message names the argument or dict key.
    #[error("{0}")]
    WrongType(String),
    /// The object was released.
    #[error("this object has been released")]
    Released,
    /// The call is in a state where this cannot be done (e.g. `join` while joined).
    #[error("cannot {action}: the call is {state}")]
    InvalidState {
        /// What was asked (`"join"`).
        action: &'static str,
        /// The call state (`"joined"`).
        state: &'static str,
    },
    /// A call that needs a joined call was made outside one (daily-python's wording).
    #[error("cannot {action}: not in a call")]
    NotInCall {
        /// What was asked (`"send an app message"`).
        action: &'static str,
    },
    /// The call ended before the request was answered.
    #[error("the call ended before the server answered")]
    CallEnded,
    /// `leave()` (or `release()`) cancelled a join in progress.
    #[error("the join was cancelled by leave()")]
    Cancelled,
    /// The room server refused a request (its reason).
    #[error("{0}")]
    Refused(String),
    /// A feature this SDK or its room server does not offer (the message says which).
    #[error("{0}")]
    Unsupported(String),
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
    Media(#[from] daily_media::MediaError),
    /// Something took too long.
    #[error("timed out: {0}")]
    Timeout(String),
}
