//! Building a cpal stream of whatever sample type the chosen format has, around the callbacks
//! of `convert.rs`. cpal's error callback (a device unplugged, a backend failure) records the
//! error in the stream's [`Status`]; it never panics.

use crate::SoundError;
use crate::config::Chosen;
use crate::convert::{Output, capture, playback};
use crate::status::Status;
use cpal::SampleFormat;
use cpal::traits::DeviceTrait;
use std::sync::Arc;

fn stream_err<'a>(
    device: &'a str,
    direction: &'static str,
) -> impl Fn(cpal::BuildStreamError) -> SoundError + 'a {
    move |e| SoundError::Stream {
        device: device.to_owned(),
        direction,
        reason: e.to_string(),
    }
}

/// `$build!(T)` for the cpal sample type `T` of `$format`; returns [`SoundError::Format`] for
/// a format cpal added after this was written.
macro_rules! per_sample_type {
    ($format:expr, $name:expr, $build:ident) => {
        match $format {
            SampleFormat::I8 => $build!(i8),
            SampleFormat::U8 => $build!(u8),
            SampleFormat::I16 => $build!(i16),
            SampleFormat::U16 => $build!(u16),
            SampleFormat::I32 => $build!(i32),
            SampleFormat::F32 => $build!(f32),
            SampleFormat::F64 => $build!(f64),
            other => {
                return Err(SoundError::Format {
                    device: $name.to_owned(),
                    reason: format!("sample format {other:?}"),
                })
            }
        }
    };
}

/// Opens `dev` for capture; its callback writes mono 16-bit PCM into `ring`.
pub(crate) fn build_input(
    dev: &cpal::Device,
    name: &str,
    chosen: &Chosen,
    ring: rtrb::Producer<i16>,
    channels: usize,
    status: Arc<Status>,
) -> Result<cpal::Stream, SoundError> {
    let st = status.clone();
    let on_err = move |e: cpal::StreamError| st.fail(e.to_string());
    let c = &chosen.config;
    macro_rules! build {
        ($t:ty) => {
            dev.build_input_stream::<$t, _, _>(
                c,
                capture::<$t>(ring, channels, status),
                on_err,
                None,
            )
        };
    }
    let s = per_sample_type!(chosen.format, name, build);
    s.map_err(stream_err(name, "input"))
}

/// Opens `dev` for playback; its callback plays what `out` describes.
pub(crate) fn build_output(
    dev: &cpal::Device,
    name: &str,
    chosen: &Chosen,
    out: Output,
    status: Arc<Status>,
) -> Result<cpal::Stream, SoundError> {
    let st = status.clone();
    let on_err = move |e: cpal::StreamError| st.fail(e.to_string());
    let c = &chosen.config;
    macro_rules! build {
        ($t:ty) => {
            dev.build_output_stream::<$t, _, _>(c, playback::<$t>(out, status), on_err, None)
        };
    }
    let s = per_sample_type!(chosen.format, name, build);
    s.map_err(stream_err(name, "output"))
}
