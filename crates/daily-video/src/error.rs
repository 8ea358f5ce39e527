//! The crate's single error type.

/// Everything that can go wrong in `daily-video`.
///
/// Fields are structured so that the client crate and the Python bindings can map errors
/// without parsing text. Only codec errors carry strings: they are libvpx's own messages, which
/// are the most useful thing to show a user and which libvpx only gives as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    /// A caller-supplied buffer has the wrong length for its format and size.
    #[error("{what}: expected {expected} bytes, got {actual}")]
    BufferSize {
        /// Which buffer was wrong (e.g. `"RGBA frame"`).
        what: &'static str,
        /// The length that `width`, `height` and the format require.
        expected: usize,
        /// The length that was passed.
        actual: usize,
    },

    /// A width or height that cannot be used: zero anywhere, or above what VP8 can code
    /// (16383 in either direction, RFC 6386 section 9.1). Odd sizes are fine everywhere: I420
    /// chroma planes are `ceil(w/2) x ceil(h/2)`.
    #[error("invalid frame size {width}x{height}: {reason}")]
    InvalidDimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A configuration value is out of range (e.g. a zero frame rate or bitrate).
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The colour conversion library refused the input (it checks what we check first, so this
    /// is not expected; the text is `yuv`'s).
    #[error("colour conversion {format}: {reason}")]
    Conversion {
        /// The packed format converted from or to (`ColorFormat::as_str`).
        format: &'static str,
        /// The conversion library's message.
        reason: String,
    },

    /// libvpx returned an error.
    #[error("libvpx {function} failed: {message}")]
    Codec {
        /// The libvpx function that failed (e.g. `vpx_codec_encode`).
        function: &'static str,
        /// libvpx's error string, and its detail when it gave one.
        message: String,
    },
}
