//! Audio classes: `AudioData` (rendered audio), `CustomAudioSource` and `CustomAudioTrack`.

use crate::devices;
use crate::dispatch::Dispatcher;
use crate::errors::to_py_err;
use crate::errors::{Callback, cb, guard};
use crate::process::{global, global_of};
use daily_client::AudioSource;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

/// A chunk of received audio, as an audio renderer's callback gets it
/// (`CallClient.set_audio_renderer`): `num_audio_frames` frames of 16-bit PCM at `sample_rate`
/// Hz. Not constructible.
#[pyclass(module = "daily", frozen)]
pub struct AudioData {
    pub(crate) frames: Py<PyBytes>,
    pub(crate) sample_rate: u32,
    pub(crate) num_channels: u16,
    pub(crate) num_audio_frames: usize,
}

#[pymethods]
impl AudioData {
    /// Interleaved signed 16-bit little-endian PCM.
    #[getter]
    fn audio_frames(&self, py: Python<'_>) -> Py<PyBytes> {
        self.frames.clone_ref(py)
    }
    /// Always 16.
    #[getter]
    fn bits_per_sample(&self) -> u32 {
        16
    }
    /// Sample rate in Hz.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    /// Channel count (1: renderers deliver mono).
    #[getter]
    fn num_channels(&self) -> u16 {
        self.num_channels
    }
    /// Frames in `audio_frames` (one sample per channel each).
    #[getter]
    fn num_audio_frames(&self) -> usize {
        self.num_audio_frames
    }
    fn __repr__(&self) -> String {
        format!("AudioData(sample_rate={}, num_channels={}, num_audio_frames={})", self.sample_rate, self.num_channels, self.num_audio_frames)
    }
}

/// PCM written by the application and sent through a `CustomAudioTrack`, paced in real time
/// by the engine's 10 ms media clock and encoded as Opus (RFC 6716) for the call.
///
/// `sample_rate` in Hz (8000-48000, a multiple of 100), `channels` 1 or 2. With
/// `auto_silence` (default) the track sends silence while nothing is queued; without it, it
/// sends nothing. Raises `ValueError` for other rates or channel counts and `RuntimeError`
/// before `Daily.init()`.
#[pyclass(module = "daily", frozen)]
pub struct CustomAudioSource {
    source: AudioSource,
    completions: Arc<Dispatcher>,
    /// The `Daily.init()` it was made under (see `process::global_of`).
    epoch: u64,
}

#[pymethods]
impl CustomAudioSource {
    // Documented on the struct: PyO3 shows the class docstring, not this one, in help().
    #[new]
    #[pyo3(signature = (sample_rate, channels, auto_silence=true))]
    fn new(sample_rate: i64, channels: i64, auto_silence: bool) -> PyResult<Self> {
        guard(|| {
            let g = global()?;
            let (rate, ch) = devices::check_format(sample_rate, channels)?;
            let source = AudioSource::new(&g.engine, rate, ch, auto_silence).map_err(to_py_err)?;
            Ok(CustomAudioSource { source, completions: g.completions.clone(), epoch: g.epoch })
        })
    }

    /// Sample rate in Hz.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.source.sample_rate()
    }

    /// Channel count (1 or 2), of interleaved frames.
    #[getter]
    fn channels(&self) -> u16 {
        self.source.channels()
    }

    /// Queues interleaved 16-bit PCM from any C-contiguous buffer (`bytes`, `bytearray`,
    /// `memoryview`, int16 numpy array; read in place) and returns the number of frames.
    /// Without `completion`, blocks (GIL released) until the frames have been consumed in real
    /// time; with it, returns at once and calls `completion(num_frames)` once they have. Each
    /// write is padded to a multiple of 10 ms. Raises `ValueError` if the length is not a
    /// multiple of `2 * channels` bytes, `TypeError` for other input or a `completion` that
    /// is not callable, `RuntimeError` after `Daily.deinit()`.
    #[pyo3(signature = (frames, completion=None))]
    fn write_frames(&self, py: Python<'_>, frames: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<usize> {
        guard(|| {
            global_of(self.epoch)?;
            devices::write_frames(py, &self.source, &self.completions, frames, cb(completion), devices::WriteMode::Blocking)
        })
    }

    /// Drops everything queued (barge-in). Blocked writers return at once and pending
    /// completions fire now with the number of their frames actually played. Returns the
    /// number of frames dropped (padding included). Not in daily-python.
    fn clear_queue(&self) -> PyResult<u64> {
        guard(|| Ok(self.source.clear_queue()))
    }

    /// Seconds of audio queued and not yet consumed (padding included). Not in daily-python.
    #[getter]
    fn queued_duration(&self) -> f64 {
        self.source.queued_frames() as f64 / f64::from(self.source.sample_rate())
    }
}

/// A track carrying a `CustomAudioSource`, with a UUID4 `id`: name it as the microphone
/// (`{"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}` in
/// `client_settings["inputs"]` or `update_inputs`) or publish it with
/// `CallClient.add_custom_audio_track`. Raises `TypeError` unless `audio_source` is a
/// `CustomAudioSource`, `RuntimeError` after `Daily.deinit()`.
#[pyclass(module = "daily", frozen)]
pub struct CustomAudioTrack {
    pub(crate) id: String,
    pub(crate) source: AudioSource,
}

#[pymethods]
impl CustomAudioTrack {
    #[new]
    fn new(audio_source: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(|| {
            let src = audio_source
                .cast::<CustomAudioSource>()
                .map_err(|_| PyTypeError::new_err("audio_source must be a CustomAudioSource"))?;
            global_of(src.get().epoch)?;
            let id = uuid::Uuid::new_v4().to_string();
            let source = src.get().source.clone();
            daily_client::sources::register_track(&id, &source);
            Ok(CustomAudioTrack { id, source })
        })
    }

    /// The track id (a UUID4 string).
    #[getter]
    fn id(&self) -> String {
        self.id.clone()
    }
}

/// The id and source of a `CustomAudioTrack` argument; `TypeError` for anything else.
pub(crate) fn custom_audio_track(obj: &Bound<'_, PyAny>) -> PyResult<(String, AudioSource)> {
    let t = obj
        .cast::<CustomAudioTrack>()
        .map_err(|_| PyTypeError::new_err("audio_track must be a CustomAudioTrack"))?;
    let t = t.get();
    Ok((t.id.clone(), t.source.clone()))
}

impl Drop for CustomAudioTrack {
    fn drop(&mut self) {
        daily_client::sources::unregister_track(&self.id);
    }
}
