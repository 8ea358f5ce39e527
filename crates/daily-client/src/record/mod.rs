//! Client-side recording of a call (issue 19): the audio this client receives ("user", every
//! remote track mixed) and the audio it sends ("bot"), aligned by the media clock's tick
//! numbers, mixed, resampled, cut into chunks and speaking turns, and optionally streamed to a
//! WAV or Ogg/Opus file. `daily-py`'s `AudioBufferProcessor` is built on [`Recorder`].
//!
//! - `tap.rs`: the wait-free rings that copy each tapped node's 10 ms per tick off the clock;
//! - `core.rs`: [`RecordCore`], the IO-free placement, mixing, turn and chunk logic;
//! - `recorder.rs`: [`Recorder`], the thread that drains the taps into the core;
//! - `file.rs`, `ogg.rs`: the recording files.

mod core;
mod file;
mod ogg;
mod recorder;
mod tap;
#[cfg(test)]
mod tests;

pub use self::core::{
    HORIZON_TICKS, RecordConfig, RecordCore, RecordOutput, TURN_CONFIDENCE, TURN_HANGOVER_TICKS,
    TURN_PREROLL_TICKS, TURN_START_TICKS, TURN_STOP_TICKS, Track, merge_into,
};
pub(crate) use recorder::RecLink;
pub use recorder::{RecordEvent, RecordSink, Recorder};
pub(crate) use tap::{Tap, Taps};
