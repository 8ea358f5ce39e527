//! Choosing the stream format a device is opened with.
//!
//! The device's own rate is used whenever the media clock takes it (8000-48000 Hz, a multiple
//! of 100: 44.1 and 48 kHz both qualify), so the only resampling is the one the client already
//! does between a source or speaker and Opus's 48 kHz (`daily_media::Resampler`, rubato).
//! Otherwise the first supported range that includes 48000, 44100, 32000, 24000 or 16000 Hz is
//! opened at that rate. Samples may be 8/16/32-bit integers or 32/64-bit floats; the callbacks
//! convert them to and from 16-bit PCM.

use crate::{Direction, SoundError};
use cpal::traits::DeviceTrait;
use cpal::{SampleFormat, StreamConfig};

/// Rates tried, in order, when the device's default rate is not one the clock takes.
const FALLBACK_RATES: [u32; 5] = [48_000, 44_100, 32_000, 24_000, 16_000];

/// A format to open a device with.
#[derive(Clone, Debug)]
pub(crate) struct Chosen {
    pub config: StreamConfig,
    pub format: SampleFormat,
}

fn usable_format(f: SampleFormat) -> bool {
    matches!(
        f,
        SampleFormat::I8
            | SampleFormat::U8
            | SampleFormat::I16
            | SampleFormat::U16
            | SampleFormat::I32
            | SampleFormat::F32
            | SampleFormat::F64
    )
}

fn usable_rate(rate: u32) -> bool {
    daily_media::frames_per_10ms(rate).is_ok()
}

/// The format to open `dev` with in `direction` (see the module docs).
pub(crate) fn choose(
    dev: &cpal::Device,
    name: &str,
    direction: Direction,
) -> Result<Chosen, SoundError> {
    let err = |reason: String| SoundError::Format {
        device: name.to_owned(),
        reason,
    };
    let default = match direction {
        Direction::Input => dev.default_input_config(),
        Direction::Output => dev.default_output_config(),
    };
    if let Ok(d) = &default
        && usable_format(d.sample_format())
        && usable_rate(d.sample_rate().0)
        && d.channels() > 0
    {
        return Ok(Chosen {
            config: d.config(),
            format: d.sample_format(),
        });
    }
    let ranges: Vec<cpal::SupportedStreamConfigRange> = match direction {
        Direction::Input => dev.supported_input_configs().map(|c| c.collect()),
        Direction::Output => dev.supported_output_configs().map(|c| c.collect()),
    }
    .map_err(|e| match &default {
        // (cpal gives both answers the same words; the first is enough.)
        // Neither question could be answered: the device cannot be opened at all (no sound
        // card, no sound server behind ALSA's default).
        Err(d) => SoundError::Device {
            device: name.to_owned(),
            reason: format!(
                "cannot be opened ({d}): is there a sound card, or a sound server behind ALSA?"
            ),
        },
        Ok(_) => err(e.to_string()),
    })?;
    for rate in FALLBACK_RATES {
        for r in &ranges {
            if usable_format(r.sample_format())
                && r.channels() > 0
                && (r.min_sample_rate().0..=r.max_sample_rate().0).contains(&rate)
            {
                let c = (*r).with_sample_rate(cpal::SampleRate(rate));
                return Ok(Chosen {
                    config: c.config(),
                    format: c.sample_format(),
                });
            }
        }
    }
    Err(err(match default {
        Ok(d) => format!(
            "its default is {} Hz {:?} and no supported format has 16-48 kHz with integer or float samples",
            d.sample_rate().0,
            d.sample_format()
        ),
        Err(e) => e.to_string(),
    }))
}
