//! The machine's sound devices (`daily-sound`, cpal) as named microphone and speaker devices:
//! `Daily.list_sound_devices`, `Daily.create_system_microphone_device`,
//! `Daily.create_system_speaker_device`.
//!
//! Why separate classes rather than a `system_device=` argument of `create_microphone_device`:
//! daily-python's device model is *named* devices that clients select by name
//! (`inputs.microphone.settings.deviceId`, `Daily.select_speaker_device`). A system device
//! keeps that model, so everything that selects a virtual device selects a system one the same
//! way; but the sound card, not the application, writes its microphone and reads its speaker,
//! so it has no `write_frames` / `read_frames` and its own life (a stream to close, an error
//! when the device goes away).

//!
//! libasound is loaded on first use, not linked (crates/daily-sound/build.rs): without it on
//! the machine, these methods raise `RuntimeError` and the rest of `daily` works.

use crate::errors::guard;
use crate::process::{Daily, global};
use crate::errors::sound_to_py_err;
use daily_sound::{StreamStats, SystemMicrophone, SystemSpeaker, list_devices};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;

fn check_name(name: &str) -> PyResult<()> {
    if name.is_empty() {
        return Err(PyValueError::new_err("device_name must not be empty"));
    }
    Ok(())
}

fn stats_dict<'py>(py: Python<'py>, s: &StreamStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("frames", s.frames)?;
    d.set_item("lostFrames", s.lost_frames)?;
    d.set_item("droppedFrames", s.dropped_frames)?;
    d.set_item("callbacks", s.callbacks)?;
    d.set_item("largestCallbackFrames", s.largest_callback_frames)?;
    d.set_item("error", s.error.clone())?;
    Ok(d)
}

#[pymethods]
impl Daily {
    /// The machine's sound devices (through cpal: ALSA on Linux, where a PulseAudio or
    /// PipeWire server shows as ALSA's `default` and `pulse` devices). A list of dicts, inputs
    /// first: `name` (what `system_device` takes), `direction` (`"input"` / `"output"`),
    /// `is_default`, `default_sample_rate` (Hz) and `default_channels` (or `None`),
    /// `sample_rate_range` (`(min_hz, max_hz)` over every supported format, or `None`) and
    /// `channel_counts`. A device that captures and plays is listed once per direction. Works
    /// without `init`; ALSA may print diagnostics to stderr while it probes devices. Raises
    /// `RuntimeError` when the sound system cannot be asked, or when ALSA's library
    /// (`libasound.so.2`, Debian's libasound2) is not on the machine: it is loaded on first use,
    /// so `import daily` does not need it.
    #[staticmethod]
    fn list_sound_devices(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
        guard(|| {
            let devices = py.detach(list_devices).map_err(sound_to_py_err)?;
            devices
                .iter()
                .map(|d| {
                    let o = PyDict::new(py);
                    o.set_item("name", &d.name)?;
                    o.set_item("direction", d.direction.as_str())?;
                    o.set_item("is_default", d.is_default)?;
                    o.set_item("default_sample_rate", d.default_sample_rate)?;
                    o.set_item("default_channels", d.default_channels)?;
                    o.set_item("sample_rate_range", d.sample_rate_range)?;
                    o.set_item("channel_counts", d.channel_counts.clone())?;
                    Ok(o)
                })
                .collect()
        })
    }

    /// Opens the system input `system_device` (a `name` from `list_sound_devices`; `"default"`
    /// is the default input) and makes it the microphone device `device_name`: select it with
    /// `{"microphone": {"isEnabled": True, "settings": {"deviceId": device_name}}}` in
    /// `client_settings["inputs"]` or `update_inputs`, as a virtual microphone. Captures mono
    /// at the device's own rate (Hz) when 8000-48000 and a multiple of 100, else at 48000.
    /// Raises `ValueError` for an unknown device (the message lists the ones there are) or an
    /// empty name, `RuntimeError` when the device cannot be opened or before `init`.
    #[staticmethod]
    #[pyo3(signature = (device_name, system_device="default"))]
    fn create_system_microphone_device(py: Python<'_>, device_name: &str, system_device: &str) -> PyResult<SystemMicrophoneDevice> {
        guard(|| {
            check_name(device_name)?;
            let g = global()?;
            let mic = py.detach(|| SystemMicrophone::open(&g.engine, Some(system_device))).map_err(sound_to_py_err)?;
            let track_id = uuid::Uuid::new_v4().to_string();
            daily_client::sources::register_microphone(device_name, &track_id, mic.source());
            Ok(SystemMicrophoneDevice {
                name: device_name.to_owned(),
                system_device: mic.device_name().to_owned(),
                sample_rate: mic.sample_rate(),
                mic: Held(Mutex::new(Some(mic))),
            })
        })
    }

    /// Opens the system output `system_device` (`"default"`: the default output) and makes it
    /// the speaker device `device_name`: once selected with `Daily.select_speaker_device`, it
    /// plays the mix of every remote participant of every client of this process while one is
    /// in a call. Plays at the device's rate and channel count (stereo at most). Raises as
    /// `create_system_microphone_device`.
    #[staticmethod]
    #[pyo3(signature = (device_name, system_device="default"))]
    fn create_system_speaker_device(py: Python<'_>, device_name: &str, system_device: &str) -> PyResult<SystemSpeakerDevice> {
        guard(|| {
            check_name(device_name)?;
            let g = global()?;
            let out = py.detach(|| SystemSpeaker::open(&g.engine, Some(system_device))).map_err(sound_to_py_err)?;
            crate::devices::register_speaker(device_name, out.speaker());
            Ok(SystemSpeakerDevice {
                name: device_name.to_owned(),
                system_device: out.device_name().to_owned(),
                sample_rate: out.speaker().sample_rate(),
                channels: out.speaker().channels(),
                out: Held(Mutex::new(Some(out))),
            })
        })
    }
}

/// An opened system device until `close()`: what both device classes hold.
struct Held<T>(Mutex<Option<T>>);

/// The figures both kinds of system device report.
trait Reports {
    fn stats(&self) -> StreamStats;
}
impl Reports for SystemMicrophone {
    fn stats(&self) -> StreamStats {
        SystemMicrophone::stats(self)
    }
}
impl Reports for SystemSpeaker {
    fn stats(&self) -> StreamStats {
        SystemSpeaker::stats(self)
    }
}

impl<T: Reports + Send> Held<T> {
    /// The device's figures; zero counts and no error once closed.
    fn stats(&self) -> StreamStats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(T::stats).unwrap_or_default()
    }
    /// Closes the device (its stream and thread stop, off the GIL). Idempotent.
    fn close(&self, py: Python<'_>) {
        let d = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        py.detach(move || drop(d));
    }
}

/// A system input device as a microphone device (`Daily.create_system_microphone_device`).
/// Capturing runs until `close()` or until the object is garbage-collected. Not
/// constructible: made by `Daily.create_system_microphone_device`.
#[pyclass(module = "daily", frozen)]
pub struct SystemMicrophoneDevice {
    name: String,
    system_device: String,
    sample_rate: u32,
    mic: Held<SystemMicrophone>,
}

#[pymethods]
impl SystemMicrophoneDevice {
    /// The device name (the `deviceId` in input settings).
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    /// The system device captured (its name as `list_sound_devices` gives it).
    #[getter]
    fn system_device(&self) -> String {
        self.system_device.clone()
    }
    /// Sample rate in Hz (the device's).
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    /// Channel count: always 1 (the device's channels are mixed down).
    #[getter]
    fn channels(&self) -> u16 {
        1
    }
    /// The stream's error (for example `"The requested device is no longer available..."`
    /// after it was unplugged), or `None` while it runs. It is also logged as a warning on
    /// the `daily.daily_sound` logger.
    #[getter]
    fn error(&self) -> Option<String> {
        self.mic.stats().error
    }
    /// `{"frames": captured frames, "lostFrames": frames with no room left to queue,
    /// "droppedFrames": frames dropped because more than 200 ms waited (clock drift),
    /// "callbacks": device callbacks, "largestCallbackFrames": the device's real period,
    /// "error": str | None}`; frames at `sample_rate`. Zero counts after `close()`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guard(|| stats_dict(py, &self.mic.stats()))
    }
    /// Stops capturing and closes the system device; a client using it then sends silence.
    /// Idempotent.
    fn close(&self, py: Python<'_>) {
        self.mic.close(py);
    }
    fn __repr__(&self) -> String {
        format!("SystemMicrophoneDevice(name={:?}, system_device={:?}, sample_rate={})", self.name, self.system_device, self.sample_rate)
    }
}

/// A system output device as a speaker device (`Daily.create_system_speaker_device`).
/// Playing runs until `close()` or until the object is garbage-collected. Not constructible:
/// made by `Daily.create_system_speaker_device`.
#[pyclass(module = "daily", frozen)]
pub struct SystemSpeakerDevice {
    name: String,
    system_device: String,
    sample_rate: u32,
    channels: u16,
    out: Held<SystemSpeaker>,
}

#[pymethods]
impl SystemSpeakerDevice {
    /// The device name (what `Daily.select_speaker_device` takes).
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    /// The system device played to (its name as `list_sound_devices` gives it).
    #[getter]
    fn system_device(&self) -> String {
        self.system_device.clone()
    }
    /// Sample rate in Hz (the device's).
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    /// Channel count (1 or 2).
    #[getter]
    fn channels(&self) -> u16 {
        self.channels
    }
    /// The stream's error, or `None` while it runs (see `SystemMicrophoneDevice.error`).
    #[getter]
    fn error(&self) -> Option<String> {
        self.out.stats().error
    }
    /// `{"frames": frames the device played, "lostFrames": frames of silence played for lack
    /// of audio while playing a call, "droppedFrames": frames dropped beyond 200 ms of latency,
    /// "callbacks", "largestCallbackFrames", "error": str | None}` (as
    /// `SystemMicrophoneDevice.stats`); frames at `sample_rate`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guard(|| stats_dict(py, &self.out.stats()))
    }
    /// Stops playing and closes the system device. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.out.close(py);
    }
    fn __repr__(&self) -> String {
        format!("SystemSpeakerDevice(name={:?}, system_device={:?}, sample_rate={}, channels={})", self.name, self.system_device, self.sample_rate, self.channels)
    }
}
