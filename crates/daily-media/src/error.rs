//! The crate's single error type.

/// Everything that can go wrong in `daily-media`.
///
/// Errors carry structured fields rather than preformatted strings so that callers (the client
/// crate, the Python bindings) can map them without parsing text. Only construction-time
/// errors from rubato carry a `String`: rubato's error types are not part of our public API, and
/// construction is allowed to allocate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A sample rate this crate does not handle. Rates must be whole multiples of 100 Hz (so
    /// that 10 ms is a whole number of frames) between 8 kHz and 48 kHz.
    #[error("unsupported sample rate {rate} Hz (must be a multiple of 100 Hz in 8000..=48000)")]
    UnsupportedSampleRate {
        /// The rate that was asked for, in Hz.
        rate: u32,
    },

    /// A rate libopus does not encode directly (it takes 8, 12, 16, 24 and 48 kHz).
    #[error("Opus takes input at 8, 12, 16, 24 or 48 kHz, not {rate} Hz")]
    OpusInputRate {
        /// The rate that was asked for, in Hz.
        rate: u32,
    },

    /// Only mono and stereo are supported.
    #[error("unsupported channel count {channels} (must be 1 or 2)")]
    UnsupportedChannels {
        /// The channel count that was asked for.
        channels: u16,
    },

    /// A caller-supplied buffer had the wrong length. Lengths are in samples (frames times
    /// channels) unless `what` says otherwise.
    #[error("{what}: expected {expected} samples, got {actual}")]
    BufferSize {
        /// Which buffer was wrong.
        what: &'static str,
        /// The length that was required.
        expected: usize,
        /// The length that was passed.
        actual: usize,
    },

    /// The Opus bitrate is outside what libopus accepts (500..=512000 bit/s).
    #[error("Opus bitrate {bitrate_bps} bit/s out of range 500..=512000")]
    BitrateOutOfRange {
        /// The bitrate that was asked for.
        bitrate_bps: u32,
    },

    /// libopus returned an error.
    #[error("libopus {function} failed: {description}")]
    Opus {
        /// The libopus function that failed (e.g. `opus_encode`).
        function: &'static str,
        /// libopus' description of the error code.
        description: &'static str,
    },

    /// rubato refused to build or run a resampler.
    #[error("resampler {in_rate} Hz -> {out_rate} Hz: {reason}")]
    Resampler {
        /// Input rate in Hz.
        in_rate: u32,
        /// Output rate in Hz.
        out_rate: u32,
        /// rubato's explanation.
        reason: String,
    },

    /// A configuration value is inconsistent (e.g. `min_delay_ms > max_delay_ms`).
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Not an Opus packet this crate can store: empty, longer than
    /// [`MAX_PACKET_BYTES`](crate::MAX_PACKET_BYTES), or with a TOC that does not parse
    /// (RFC 6716 section 3.1).
    #[error("invalid Opus packet of {len} bytes")]
    InvalidOpusPacket {
        /// The packet's length in bytes.
        len: usize,
    },

    /// The output of a file writer ([`OggOpusWriter`](crate::OggOpusWriter)) failed, e.g. the
    /// disk is full.
    #[error("write failed: {message}")]
    Io {
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// Its description.
        message: String,
    },
}
