//! Process-wide state: the shared engine and dispatchers (`Daily.init`), the custom audio
//! tracks by id, and the `Daily` and `LogLevel` classes.

use crate::devices::{self, NativeVad, VirtualMicrophoneDevice, VirtualSpeakerDevice};
use crate::dispatch::Dispatcher;
use crate::errors::to_py_err;
use crate::logs;
use daily_client::Engine;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

pub(crate) struct Global {
    pub(crate) engine: Engine,
    pub(crate) completions: Arc<Dispatcher>,
    /// Audio renderer callbacks of every client (see [`Completer::post_audio`]).
    pub(crate) renderers: Arc<Dispatcher>,
}

static GLOBAL: Mutex<Option<Arc<Global>>> = Mutex::new(None);
pub(crate) fn global() -> PyResult<Arc<Global>> {
    GLOBAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| PyRuntimeError::new_err("Daily.init() must be called first"))
}

/// Log verbosity (`Daily.init(log_level=...)`).
#[pyclass(eq, eq_int, from_py_object, module = "daily")]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// Process-wide set-up (static methods only).
#[pyclass(module = "daily", frozen)]
pub struct Daily;

#[pymethods]
impl Daily {
    /// Starts the shared engine: `worker_threads` network threads (>= 1) plus one 10 ms media
    /// clock, for every client in the process, and sets the log level (see `set_log_level`).
    /// A second call is a no-op (the real SDK aborts).
    #[staticmethod]
    #[pyo3(signature = (worker_threads=2, log_level=LogLevel::Off))]
    fn init(py: Python<'_>, worker_threads: i64, log_level: LogLevel) -> PyResult<()> {
        if worker_threads < 1 {
            return Err(PyValueError::new_err(format!("worker_threads must be >= 1, got {worker_threads}")));
        }
        let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_some() {
            return Ok(());
        }
        logs::set_level(log_level as u8);
        let engine = py.detach(|| Engine::start(worker_threads as usize)).map_err(to_py_err)?;
        let completions = Dispatcher::start("daily-completions".into())?;
        let renderers = Dispatcher::start("daily-renderers".into())?;
        *g = Some(Arc::new(Global { engine, completions, renderers }));
        Ok(())
    }

    /// Stops the shared engine. Objects used afterwards raise `RuntimeError`.
    #[staticmethod]
    fn deinit(py: Python<'_>) {
        let g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).take();
        devices::clear_devices();
        if let Some(g) = g {
            g.completions.stop(py);
            g.renderers.stop(py);
            py.detach(|| g.engine.shutdown());
        }
    }

    /// Creates a virtual microphone called `device_name` producing `sample_rate` Hz (8000-48000,
    /// a multiple of 100) with 1 or 2 channels. Select it with `{"microphone": {"isEnabled":
    /// True, "settings": {"deviceId": device_name}}}` in `client_settings["inputs"]` or
    /// `update_inputs`. A blocking device's `write_frames` waits until the frames are consumed;
    /// a `non_blocking` one returns at once. Re-using a name replaces what the name selects.
    /// Raises `ValueError` for bad formats, `RuntimeError` before `init`.
    #[staticmethod]
    #[pyo3(signature = (device_name, sample_rate=16000, channels=1, non_blocking=false))]
    fn create_microphone_device(device_name: &str, sample_rate: i64, channels: i64, non_blocking: bool) -> PyResult<VirtualMicrophoneDevice> {
        devices::create_microphone(&*global()?, device_name, sample_rate, channels, non_blocking)
    }

    /// Creates a virtual speaker called `device_name` that, once selected, receives the mix of
    /// every remote participant at `sample_rate` Hz with 1 or 2 channels. Raises `ValueError`
    /// for bad formats, `RuntimeError` before `init`.
    #[staticmethod]
    #[pyo3(signature = (device_name, sample_rate=16000, channels=1, non_blocking=false))]
    fn create_speaker_device(device_name: &str, sample_rate: i64, channels: i64, non_blocking: bool) -> PyResult<VirtualSpeakerDevice> {
        devices::create_speaker(&*global()?, device_name, sample_rate, channels, non_blocking)
    }

    /// Makes the speaker `device_name` the process's speaker (one at a time, as in
    /// daily-python). Raises `RuntimeError` for an unknown name.
    #[staticmethod]
    fn select_speaker_device(device_name: &str) -> PyResult<()> {
        devices::select_speaker(&*global()?, device_name)
    }

    /// Creates a voice activity detector for 10 ms frames of `sample_rate` Hz (8000-48000, or
    /// 0 to infer it from the first frame, which must then be 10 ms long) with 1 or 2
    /// channels. Works without `init`. Raises `ValueError` for bad arguments.
    #[staticmethod]
    #[pyo3(signature = (reset_period_ms=1000, sample_rate=16000, channels=1))]
    fn create_native_vad(reset_period_ms: i64, sample_rate: i64, channels: i64) -> PyResult<NativeVad> {
        NativeVad::create(reset_period_ms, sample_rate, channels)
    }

    /// Sets which logs of the Rust core reach Python's `logging` (loggers `daily.<crate>`,
    /// e.g. `daily.daily_client`, `daily.webrtc`): `LogLevel.Off` (the default) up to
    /// `LogLevel.Trace`. Works before and after `init`.
    #[staticmethod]
    fn set_log_level(log_level: LogLevel) {
        logs::set_level(log_level as u8);
    }
}
