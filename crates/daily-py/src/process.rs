//! Process-wide state: the shared engine and dispatchers (`Daily.init`), the custom audio
//! tracks by id, and the `Daily` and `LogLevel` classes.

use crate::client::ClientState;
use crate::devices::{self, NativeVad, VirtualMicrophoneDevice, VirtualSpeakerDevice};
use crate::dispatch::Dispatcher;
use crate::errors::{guard, to_py_err};
use crate::logs;
use daily_client::Engine;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub(crate) struct Global {
    pub(crate) engine: Engine,
    pub(crate) completions: Arc<Dispatcher>,
    /// Audio renderer callbacks of every client (see [`Completer::post_audio`]).
    pub(crate) renderers: Arc<Dispatcher>,
    /// Which `Daily.init()` this is (objects remember the one they were made under).
    pub(crate) epoch: u64,
}

static GLOBAL: Mutex<Option<Arc<Global>>> = Mutex::new(None);
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Every `CallClient` made since the last `init`, for `deinit` to end their calls.
static CLIENTS: Mutex<Vec<Weak<ClientState>>> = Mutex::new(Vec::new());

/// The message of every call on an object of a deinitialised engine.
pub(crate) const DEINITIALISED: &str = "daily was deinitialised (Daily.deinit() was called); objects made before it cannot be used";

pub(crate) fn global() -> PyResult<Arc<Global>> {
    GLOBAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| PyRuntimeError::new_err("Daily.init() must be called first"))
}

/// The engine the object made under `epoch` belongs to; `RuntimeError` once that engine was
/// deinitialised (even if `init` was called again since).
pub(crate) fn global_of(epoch: u64) -> PyResult<Arc<Global>> {
    match GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        Some(g) if g.epoch == epoch => Ok(g),
        _ => Err(PyRuntimeError::new_err(DEINITIALISED)),
    }
}

pub(crate) fn register_client(c: Weak<ClientState>) {
    let mut v = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    v.retain(|w| w.strong_count() > 0);
    v.push(c);
}

/// Most network worker threads `Daily.init` starts. The network side (signalling, ICE/DTLS,
/// RTP of every client) is I/O bound and its heaviest work (Opus) runs on the media clock,
/// not here: tokio's own default is one thread per core, and 64 covers the largest machines
/// while keeping a typo (`10**12` aborted the process allocating thread stacks) an error.
pub(crate) const MAX_WORKER_THREADS: i64 = 64;

fn worker_threads_arg(v: &Bound<'_, PyAny>) -> PyResult<usize> {
    if !v.is_instance_of::<PyInt>() || v.is_instance_of::<PyBool>() {
        let t = v.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!("worker_threads must be an int, got {t}")));
    }
    let n: Option<i64> = v.extract().ok();
    match n {
        Some(n) if (1..=MAX_WORKER_THREADS).contains(&n) => Ok(n as usize),
        _ => Err(PyValueError::new_err(format!("worker_threads must be between 1 and {MAX_WORKER_THREADS}, got {v}"))),
    }
}

/// Log verbosity for `Daily.init(log_level=...)` and `Daily.set_log_level`, daily-python's
/// values: `LogLevel.Off` (0, the default), `Error` (1), `Warn` (2), `Info` (3), `Debug` (4),
/// `Trace` (5); `int(level)` gives the number. Not constructible: use the class attributes.
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

/// Process-wide set-up, as in daily-python: `Daily.init()` before making clients, sources or
/// devices, `Daily.deinit()` at the end, and the factories of virtual devices and VADs. Not
/// constructible: static methods only.
#[pyclass(module = "daily", frozen)]
pub struct Daily;

#[pymethods]
impl Daily {
    /// Starts the shared engine: `worker_threads` network threads (an int from 1 to 64) plus
    /// one 10 ms media clock, for every client in the process, and sets the log level (see
    /// `set_log_level`; default `LogLevel.Off`). A second call is a no-op (the real SDK
    /// aborts). Raises `TypeError` for a `worker_threads` that is not an int and `ValueError`
    /// outside 1-64 (checked even when already initialised).
    #[staticmethod]
    #[pyo3(signature = (worker_threads=None, log_level=LogLevel::Off), text_signature = "(worker_threads=2, log_level=...)")]
    fn init(py: Python<'_>, worker_threads: Option<&Bound<'_, PyAny>>, log_level: LogLevel) -> PyResult<()> {
        guard(|| {
            let worker_threads = match worker_threads {
                None => 2,
                Some(w) => worker_threads_arg(w)?,
            };
            let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_some() {
                return Ok(());
            }
            logs::set_level(log_level as u8);
            let engine = py.detach(|| Engine::start(worker_threads)).map_err(to_py_err)?;
            let completions = Dispatcher::start("daily-completions".into())?;
            let renderers = Dispatcher::start("daily-renderers".into())?;
            let epoch = EPOCH.fetch_add(1, Ordering::AcqRel) + 1;
            *g = Some(Arc::new(Global { engine, completions, renderers, epoch }));
            Ok(())
        })
    }

    /// Ends every client's call and stops the shared engine. Each `CallClient` still in a
    /// call (or joining) leaves it: its handler gets `on_call_state_updated("left")` and its
    /// pending completions fire (a join in progress with an error) before `deinit` returns,
    /// which takes at most about 5 s for clients whose server does not answer. Afterwards
    /// every method of every object made before it (clients, sources, tracks, devices) raises
    /// `RuntimeError("daily was deinitialised ...")`; `Daily.init()` may be called again to
    /// make new ones. A no-op when not initialised.
    #[staticmethod]
    fn deinit(py: Python<'_>) -> PyResult<()> {
        guard(|| {
            let g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).take();
            let clients: Vec<Arc<ClientState>> =
                std::mem::take(&mut *CLIENTS.lock().unwrap_or_else(|e| e.into_inner())).iter().filter_map(Weak::upgrade).collect();
            let cores: Vec<_> = clients.iter().filter_map(|c| c.take_core_for_deinit()).collect();
            // Every client leaves at once (each waits at most ~5 s for its server), so a
            // process with many bots does not wait for them one after another.
            py.detach(|| {
                std::thread::scope(|s| {
                    for core in &cores {
                        s.spawn(move || core.release());
                    }
                })
            });
            drop(cores);
            // Their `left` events and completions are delivered before their threads stop.
            for c in &clients {
                c.dispatcher.stop(py);
            }
            devices::clear_devices();
            if let Some(g) = g {
                // The media clock stops first: sources fire their pending write completions
                // as it drops them, and those must reach a completions thread still running.
                py.detach(|| g.engine.shutdown());
                g.completions.stop(py);
                g.renderers.stop(py);
            }
            Ok(())
        })
    }

    /// Tests only: the next call into the module panics inside its guard, which must turn it
    /// into `RuntimeError`.
    #[staticmethod]
    fn _inject_panic() {
        crate::errors::inject_panic();
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
        guard(|| devices::create_microphone(&*global()?, device_name, sample_rate, channels, non_blocking))
    }

    /// Creates a virtual speaker called `device_name` that, once selected, receives the mix of
    /// every remote participant at `sample_rate` Hz (8000-48000, a multiple of 100) with 1 or
    /// 2 channels. A blocking device's `read_frames` waits until the frames are ready; a
    /// `non_blocking` one returns what is ready at once. Raises `ValueError` for bad formats,
    /// `RuntimeError` before `init`.
    #[staticmethod]
    #[pyo3(signature = (device_name, sample_rate=16000, channels=1, non_blocking=false))]
    fn create_speaker_device(device_name: &str, sample_rate: i64, channels: i64, non_blocking: bool) -> PyResult<VirtualSpeakerDevice> {
        guard(|| devices::create_speaker(&*global()?, device_name, sample_rate, channels, non_blocking))
    }

    /// Makes the speaker `device_name` the process's speaker (one at a time, as in
    /// daily-python). Raises `RuntimeError` for an unknown name.
    #[staticmethod]
    fn select_speaker_device(device_name: &str) -> PyResult<()> {
        guard(|| devices::select_speaker(&*global()?, device_name))
    }

    /// Creates a voice activity detector for 10 ms frames of `sample_rate` Hz (8000-48000, or
    /// 0 to infer it from the first frame, which must then be 10 ms long) with 1 or 2
    /// channels. The model's state is cleared after every `reset_period_ms` ms of analysed
    /// audio (0: never, the most accurate; otherwise at least 20 ms, as daily-python documents;
    /// see `daily_media::Vad` for the figures). Works without `init`. Raises `ValueError` for
    /// bad arguments.
    #[staticmethod]
    #[pyo3(signature = (reset_period_ms=1000, sample_rate=16000, channels=1))]
    fn create_native_vad(reset_period_ms: i64, sample_rate: i64, channels: i64) -> PyResult<NativeVad> {
        guard(|| NativeVad::create(reset_period_ms, sample_rate, channels))
    }

    /// Sets which logs of the Rust core reach Python's `logging` (loggers `daily.<crate>`,
    /// e.g. `daily.daily_client`, `daily.webrtc`): `LogLevel.Off` (the default) up to
    /// `LogLevel.Trace`. Works before and after `init`.
    #[staticmethod]
    fn set_log_level(log_level: LogLevel) {
        logs::set_level(log_level as u8);
    }
}
