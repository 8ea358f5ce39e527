//! Listing the machine's sound devices and finding one by name, through cpal's default host
//! (ALSA on Linux, so a PulseAudio or PipeWire server appears as ALSA's `default` / `pulse`
//! devices through ALSA's pulse plugin).

use crate::SoundError;
use cpal::traits::{DeviceTrait, HostTrait};

/// Which way audio flows through a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Capture: a microphone, a line input, a sound server's monitor source.
    Input,
    /// Playback: speakers, headphones, a sound server's sink.
    Output,
}

impl Direction {
    /// `"input"` or `"output"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// One device in one direction, as [`list_devices`] describes it. A device that both captures
/// and plays (ALSA's `default`) is listed once per direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoundDevice {
    /// The name to open it by (cpal's device name; on ALSA the PCM name, e.g. `default`,
    /// `pulse`, `hw:CARD=PCH,DEV=0`).
    pub name: String,
    /// Capture or playback.
    pub direction: Direction,
    /// Whether it is the host's default device of that direction.
    pub is_default: bool,
    /// The device's preferred rate in Hz and channel count (what opening it uses when our
    /// clock takes that rate), `None` when the device does not say.
    pub default_sample_rate: Option<u32>,
    /// See `default_sample_rate`.
    pub default_channels: Option<u16>,
    /// The lowest and highest rate (Hz) of any supported format, `None` when it lists none.
    pub sample_rate_range: Option<(u32, u32)>,
    /// Every channel count some supported format has, ascending.
    pub channel_counts: Vec<u16>,
}

/// The default host's devices: inputs first, then outputs. Devices whose name cannot be read
/// are skipped. ALSA may print diagnostics to stderr while it probes devices.
pub fn list_devices() -> Result<Vec<SoundDevice>, SoundError> {
    let host = host()?;
    let mut out = Vec::new();
    for direction in [Direction::Input, Direction::Output] {
        let default = default_device(&host, direction).and_then(|d| d.name().ok());
        for dev in devices(&host, direction)? {
            let Ok(name) = dev.name() else { continue };
            out.push(describe(
                &dev,
                name.clone(),
                direction,
                default.as_deref() == Some(name.as_str()),
            ));
        }
    }
    Ok(out)
}

fn describe(
    dev: &cpal::Device,
    name: String,
    direction: Direction,
    is_default: bool,
) -> SoundDevice {
    let default = match direction {
        Direction::Input => dev.default_input_config(),
        Direction::Output => dev.default_output_config(),
    }
    .ok();
    let ranges: Vec<cpal::SupportedStreamConfigRange> = match direction {
        Direction::Input => dev.supported_input_configs().map(|c| c.collect()),
        Direction::Output => dev.supported_output_configs().map(|c| c.collect()),
    }
    .unwrap_or_default();
    let sample_rate_range = ranges.iter().fold(None, |acc: Option<(u32, u32)>, r| {
        let (lo, hi) = (r.min_sample_rate().0, r.max_sample_rate().0);
        Some(acc.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))))
    });
    let mut channel_counts: Vec<u16> = ranges.iter().map(|r| r.channels()).collect();
    channel_counts.sort_unstable();
    channel_counts.dedup();
    SoundDevice {
        name,
        direction,
        is_default,
        default_sample_rate: default.as_ref().map(|c| c.sample_rate().0),
        default_channels: default.as_ref().map(|c| c.channels()),
        sample_rate_range,
        channel_counts,
    }
}

/// cpal's default host, after loading libasound ([`SoundError::Unavailable`] without it). Every
/// path into cpal starts here.
fn host() -> Result<cpal::Host, SoundError> {
    crate::libasound::load()?;
    Ok(cpal::default_host())
}

fn default_device(host: &cpal::Host, direction: Direction) -> Option<cpal::Device> {
    match direction {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }
}

fn devices(host: &cpal::Host, direction: Direction) -> Result<Vec<cpal::Device>, SoundError> {
    let err = |e: cpal::DevicesError| SoundError::Device {
        device: "(all)".into(),
        reason: e.to_string(),
    };
    Ok(match direction {
        Direction::Input => host.input_devices().map_err(err)?.collect(),
        Direction::Output => host.output_devices().map_err(err)?.collect(),
    })
}

/// The device called `name` in `direction`; `None` or `"default"` is the host's default device
/// (on ALSA, `default` is also a device of that name: either way the same PCM is opened).
/// [`SoundError::NoDevice`] lists the names there are when none matches.
pub(crate) fn find(
    direction: Direction,
    name: Option<&str>,
) -> Result<(cpal::Device, String), SoundError> {
    let host = host()?;
    let wanted = name.unwrap_or("default");
    if wanted == "default"
        && let Some(d) = default_device(&host, direction)
    {
        let n = d.name().unwrap_or_else(|_| "default".into());
        return Ok((d, n));
    }
    let all = devices(&host, direction)?;
    let mut names = Vec::new();
    for d in all {
        match d.name() {
            Ok(n) if n == wanted => return Ok((d, n)),
            Ok(n) => names.push(n),
            Err(_) => {}
        }
    }
    Err(SoundError::NoDevice {
        direction: direction.as_str(),
        name: wanted.to_owned(),
        available: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    })
}
