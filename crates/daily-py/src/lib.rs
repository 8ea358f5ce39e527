//! `daily.daily`: the PyO3 module. Validation, conversion and GIL handling only; the behaviour
//! lives in `daily-client` and `daily-server`.
//!
//! Threads: Python callbacks (events, completions, audio renderers) run on dispatcher threads
//! that take the GIL, never on the media clock or the network threads. Each `CallClient` has
//! two: one for its events, in order, and one for its completions. A completion waits until
//! the events emitted before it have started (so a state event is dispatched before the
//! completion it causes) but never for a handler to finish, so an event handler may block
//! waiting for a completion (daily-python deadlocks there). Source completions share one
//! process-wide dispatcher, and so do audio renderer callbacks (a client whose renderer
//! callback blocks moves to its own completions thread). A dispatcher runs the jobs queued
//! behind the one it woke for under the same GIL attach.

use daily_client::{AudioSource, CallClient as CoreClient, CallState, ClientError, ClientEvent, Engine, JoinSettings};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

mod devices;
mod events;
mod logs;
mod rooms;
mod unsupported;
mod video;

pub use devices::{NativeVad, VirtualMicrophoneDevice, VirtualSpeakerDevice};
pub use video::{CustomVideoSource, CustomVideoTrack, VideoFrame, VirtualCameraDevice};

// ---------------------------------------------------------------------------------------------
// Errors and conversions

fn to_py_err(e: ClientError) -> PyErr {
    match e {
        ClientError::InvalidArgument(m) => PyValueError::new_err(m),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

pub(crate) fn value_to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64().unwrap_or(0.0).into_pyobject(py)?.into_any().unbind()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(value_to_py(py, x)?)?;
            }
            l.into_any().unbind()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, value_to_py(py, x)?)?;
            }
            d.into_any().unbind()
        }
    })
}

/// Converts a Python value to JSON: dicts with string keys, lists, tuples, sets (as lists),
/// str, bool, int, finite float and None. Anything else raises `TypeError`; nesting deeper
/// than 64 levels raises `ValueError`.
pub(crate) fn py_to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    py_to_value_depth(obj, 0)
}

fn py_to_value_depth(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    use pyo3::types::{PyBool, PyFloat, PyFrozenSet, PyInt, PySet, PyString, PyTuple};
    if depth > 64 {
        return Err(PyValueError::new_err("value nested deeper than 64 levels"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyValueError::new_err("integer out of the 64-bit range"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return serde_json::Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err("NaN and infinities are not JSON"));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| PyTypeError::new_err("dict keys must be str"))?;
            m.insert(key.to_str()?.to_owned(), py_to_value_depth(&v, depth + 1)?);
        }
        return Ok(Value::Object(m));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>() {
        let mut v = Vec::new();
        for x in obj.try_iter()? {
            v.push(py_to_value_depth(&x?, depth + 1)?);
        }
        return Ok(Value::Array(v));
    }
    Err(PyTypeError::new_err(format!(
        "{} is not JSON-serialisable (use dict, list, str, int, float, bool or None)",
        obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

// ---------------------------------------------------------------------------------------------
// Dispatcher threads

enum Job {
    Call(Box<dyn FnOnce(Python<'_>) + Send>),
    Stop,
}

/// Most jobs a dispatcher runs under one GIL attach.
const DISPATCH_BATCH: usize = 64;

pub(crate) struct Dispatcher {
    tx: mpsc::Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Keeps this thread's Python thread state alive between attaches. Without it every
/// `Python::try_attach` on a thread Python did not create makes a new `PyThreadState` and
/// deletes it again on release (`PyGILState_Ensure` / `PyGILState_Release` with the count going
/// 1 -> 0): with 50 bot pairs that was 7 % of the process's CPU (thread-state allocation plus
/// the kernel's mmap/munmap work), 50 times a second per renderer. One extra
/// `PyGILState_Ensure` held for the thread's life keeps the count at 1 or more, so later
/// attaches only take and drop the GIL (CPython's documented use of the GILState API).
struct ThreadStateKeeper(Option<pyo3::ffi::PyGILState_STATE>);

impl ThreadStateKeeper {
    fn new() -> Self {
        // SAFETY: called with the GIL held (inside try_attach); paired with the release in Drop.
        ThreadStateKeeper(Python::try_attach(|_py| unsafe { pyo3::ffi::PyGILState_Ensure() }))
    }
}

impl Drop for ThreadStateKeeper {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            // If the interpreter is finalising, try_attach declines and the thread state is
            // left to the interpreter's own cleanup.
            // SAFETY: the state came from this thread's PyGILState_Ensure above; GIL held here.
            let _ = Python::try_attach(|_py| unsafe { pyo3::ffi::PyGILState_Release(state) });
        }
    }
}

impl Dispatcher {
    fn start(name: String) -> PyResult<Arc<Dispatcher>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let keep = ThreadStateKeeper::new();
                let mut stop = false;
                while !stop {
                    let Ok(first) = rx.recv() else { break };
                    let Job::Call(first) = first else { break };
                    // One GIL attach for this job and those queued behind it (renderer
                    // callbacks arrive in bursts, one per tick): each attach of a contended
                    // GIL costs a hand-off between threads. Bounded so a flood cannot keep
                    // the GIL from other threads between Python calls for long. If the
                    // interpreter is finalising, the job is dropped.
                    let _ = Python::try_attach(|py| {
                        first(py);
                        for _ in 1..DISPATCH_BATCH {
                            match rx.try_recv() {
                                Ok(Job::Call(f)) => f(py),
                                Ok(Job::Stop) => {
                                    stop = true;
                                    return;
                                }
                                Err(_) => return,
                            }
                        }
                    });
                }
                drop(keep);
            })
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok(Arc::new(Dispatcher { tx, thread: Mutex::new(Some(t)) }))
    }

    fn post(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let _ = self.tx.send(Job::Call(Box::new(f)));
    }

    fn thread_id(&self) -> Option<std::thread::ThreadId> {
        self.thread.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|t| t.thread().id())
    }

    /// Stops after the queued jobs ran; joins unless called from the dispatcher itself.
    fn stop(&self, py: Python<'_>) {
        let _ = self.tx.send(Job::Stop);
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            if t.thread().id() == std::thread::current().id() {
                return;
            }
            py.detach(|| {
                let _ = t.join();
            });
        }
    }
}

/// How far a client's events thread got: events are numbered as they are posted and marked
/// when their handler starts.
#[derive(Default)]
struct EventGate {
    posted: std::sync::atomic::AtomicU64,
    started: Mutex<u64>,
    cv: std::sync::Condvar,
}

/// Longest a completion waits for the events posted before it to start. Reached only when
/// an earlier handler blocks for that long (for instance waiting, from another thread, for
/// this very completion); the completion then fires rather than deadlock.
const EVENT_GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl EventGate {
    fn mark_started(&self, seq: u64) {
        let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if seq > *s {
            *s = seq;
        }
        self.cv.notify_all();
    }

    fn wait_started(&self, seq: u64) {
        let s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.cv.wait_timeout_while(s, EVENT_GATE_WAIT, |s| *s < seq);
    }
}

/// A client's two dispatchers (events; completions and renderers) and the gate that orders
/// them. See the module docs.
pub(crate) struct Completer {
    events: Arc<Dispatcher>,
    completions: Arc<Dispatcher>,
    gate: Arc<EventGate>,
    /// The process-wide renderer dispatcher (see [`Completer::post_audio`]).
    renderers: Arc<Dispatcher>,
    render: Arc<RenderRoute>,
}

/// Where a client's renderer callbacks run: the shared renderer thread until one of them
/// blocks, then the client's own completions thread.
#[derive(Default)]
struct RenderRoute {
    /// A callback of this client took longer than [`RENDER_ISOLATE_AFTER`].
    isolated: AtomicBool,
    /// This client's callbacks queued on the shared thread and not yet run or forwarded.
    on_shared: AtomicUsize,
    /// `release()` ran: callbacks still queued are dropped, not called.
    released: AtomicBool,
}

/// A renderer callback running longer than this (wall time) moves its client off the shared
/// renderer thread for good, so that it cannot delay other clients' callbacks again. Renderer
/// callbacks come every 10-20 ms; 100 ms is far beyond a callback that hands audio on (as
/// pipecat's does) even with the GIL contended.
const RENDER_ISOLATE_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

impl Completer {
    fn start(renderers: Arc<Dispatcher>) -> PyResult<Arc<Completer>> {
        Ok(Arc::new(Completer {
            events: Dispatcher::start("daily-events".into())?,
            completions: Dispatcher::start("daily-client-completions".into())?,
            gate: Arc::new(EventGate::default()),
            renderers,
            render: Arc::new(RenderRoute::default()),
        }))
    }

    fn post_event(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let seq = self.gate.posted.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
        let gate = self.gate.clone();
        self.events.post(move |py| {
            gate.mark_started(seq);
            f(py)
        });
    }

    /// Whether the caller is this client's events thread (a call made from a handler).
    fn on_events_thread(&self) -> bool {
        self.events.thread_id() == Some(std::thread::current().id())
    }

    /// Posts a completion behind every event posted so far. `from_handler`: the call was
    /// made inside an event handler, whose thread cannot dispatch the events the call caused
    /// until the handler returns, so the completion does not wait for them.
    fn post_completion(&self, from_handler: bool, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let barrier = self.gate.posted.load(std::sync::atomic::Ordering::Acquire);
        let gate = self.gate.clone();
        self.completions.post(move |py| {
            if !from_handler {
                py.detach(|| gate.wait_started(barrier));
            }
            f(py)
        });
    }

    /// Renderer callbacks, never behind a blocked event handler. Every client's run on one
    /// shared thread, which takes the GIL once for all the callbacks due in a tick: with a
    /// thread per client (a wake-up and a GIL hand-off per client every 20 ms) those threads
    /// took 10 % of the CPU of 50 bot pairs. A client whose callback blocks ([`RENDER_ISOLATE_AFTER`]) moves to its
    /// own completions thread; its callbacks keep their order (those already queued on the
    /// shared thread are forwarded, and new ones follow them there until none is left).
    /// Called only from the engine's service thread.
    fn post_audio(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let route = &self.render;
        if route.released.load(Ordering::Acquire) {
            return;
        }
        if route.isolated.load(Ordering::Acquire) && route.on_shared.load(Ordering::Acquire) == 0 {
            self.completions.post(f);
            return;
        }
        route.on_shared.fetch_add(1, Ordering::AcqRel);
        let (route, own) = (self.render.clone(), self.completions.clone());
        self.renderers.post(move |py| {
            if route.released.load(Ordering::Acquire) {
                // Dropped: release() ran while it was queued.
            } else if route.isolated.load(Ordering::Acquire) {
                own.post(f);
            } else {
                let t0 = std::time::Instant::now();
                f(py);
                if t0.elapsed() > RENDER_ISOLATE_AFTER {
                    route.isolated.store(true, Ordering::Release);
                }
            }
            route.on_shared.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn stop(&self, py: Python<'_>) {
        self.render.released.store(true, Ordering::Release);
        self.events.stop(py);
        self.completions.stop(py);
    }

    fn stop_nowait(&self) {
        self.render.released.store(true, Ordering::Release);
        let _ = self.events.tx.send(Job::Stop);
        let _ = self.completions.tx.send(Job::Stop);
    }
}

/// Calls `f(args)`; an exception goes to `sys.unraisablehook` and the SDK carries on.
fn call_reporting<'py>(py: Python<'py>, f: &Py<PyAny>, args: impl pyo3::call::PyCallArgs<'py>) {
    if let Err(e) = f.call1(py, args) {
        e.write_unraisable(py, Some(f.bind(py)));
    }
}

// ---------------------------------------------------------------------------------------------
// Process state

struct Global {
    engine: Engine,
    completions: Arc<Dispatcher>,
    /// Audio renderer callbacks of every client (see [`Completer::post_audio`]).
    renderers: Arc<Dispatcher>,
}

static GLOBAL: Mutex<Option<Arc<Global>>> = Mutex::new(None);
static TRACKS: OnceLock<Mutex<HashMap<String, AudioSource>>> = OnceLock::new();

fn tracks() -> &'static Mutex<HashMap<String, AudioSource>> {
    TRACKS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn global() -> PyResult<Arc<Global>> {
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

// ---------------------------------------------------------------------------------------------
// Audio classes

/// A chunk of rendered audio (not constructible).
#[pyclass(module = "daily", frozen)]
pub struct AudioData {
    frames: Py<PyBytes>,
    sample_rate: u32,
    num_channels: u16,
    num_audio_frames: usize,
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
    /// Channel count.
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

/// PCM written by the application and sent through a `CustomAudioTrack`, paced in real time.
#[pyclass(module = "daily", frozen)]
pub struct CustomAudioSource {
    source: AudioSource,
    completions: Arc<Dispatcher>,
}

#[pymethods]
impl CustomAudioSource {
    /// `sample_rate` in Hz (8000-48000, a multiple of 100), `channels` 1 or 2. With
    /// `auto_silence` the track sends silence while nothing is queued.
    /// Raises `ValueError` for other rates or channel counts and `RuntimeError` before
    /// `Daily.init()`.
    #[new]
    #[pyo3(signature = (sample_rate, channels, auto_silence=true))]
    fn new(sample_rate: i64, channels: i64, auto_silence: bool) -> PyResult<Self> {
        let g = global()?;
        let (rate, ch) = devices::check_format(sample_rate, channels)?;
        let source = AudioSource::new(&g.engine, rate, ch, auto_silence).map_err(to_py_err)?;
        Ok(CustomAudioSource { source, completions: g.completions.clone() })
    }

    /// Sample rate in Hz.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.source.sample_rate()
    }

    /// Channel count.
    #[getter]
    fn channels(&self) -> u16 {
        self.source.channels()
    }

    /// Queues interleaved 16-bit PCM from any C-contiguous buffer (`bytes`, `bytearray`,
    /// `memoryview`, int16 numpy array; read in place) and returns the number of frames.
    /// Without `completion`, blocks (GIL released) until the frames have been consumed in real
    /// time; with it, returns at once and calls `completion(num_frames)` once they have. Each
    /// write is padded to a multiple of 10 ms. Raises `ValueError` if the length is not a
    /// multiple of `2 * channels` bytes, `TypeError` for other input.
    #[pyo3(signature = (frames, completion=None))]
    fn write_frames(&self, py: Python<'_>, frames: &Bound<'_, PyAny>, completion: Option<Py<PyAny>>) -> PyResult<usize> {
        devices::write_frames(py, &self.source, &self.completions, frames, completion, devices::WriteMode::Blocking)
    }

    /// Drops everything queued (barge-in). Blocked writers return at once and pending
    /// completions fire now with the number of their frames actually played. Returns the
    /// number of frames dropped (padding included). Not in daily-python.
    fn clear_queue(&self) -> u64 {
        self.source.clear_queue()
    }

    /// Seconds of audio queued and not yet consumed (padding included). Not in daily-python.
    #[getter]
    fn queued_duration(&self) -> f64 {
        self.source.queued_frames() as f64 / f64::from(self.source.sample_rate())
    }
}

/// A track carrying a `CustomAudioSource`; use its `id` in `client_settings` or pass it to
/// `add_custom_audio_track`.
#[pyclass(module = "daily", frozen)]
pub struct CustomAudioTrack {
    pub(crate) id: String,
    pub(crate) source: AudioSource,
}

#[pymethods]
impl CustomAudioTrack {
    #[new]
    fn new(audio_source: &Bound<'_, PyAny>) -> PyResult<Self> {
        let src = audio_source
            .cast::<CustomAudioSource>()
            .map_err(|_| PyTypeError::new_err("audio_source must be a CustomAudioSource"))?;
        let id = uuid::Uuid::new_v4().to_string();
        let source = src.get().source.clone();
        tracks().lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), source.clone());
        Ok(CustomAudioTrack { id, source })
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
        tracks().lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

// ---------------------------------------------------------------------------------------------
// EventHandler and CallClient

/// Base class for event handlers: subclass it and override the `on_*` methods you need.
#[pyclass(subclass, module = "daily")]
pub struct EventHandler;

#[pymethods]
impl EventHandler {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, pyo3::types::PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        EventHandler
    }
    // Base versions are no-ops; parameter names match daily-python's (keyword calls work).
    #[allow(unused_variables)]
    fn on_call_state_updated(&self, state: &Bound<'_, PyAny>) {}
    #[allow(unused_variables)]
    fn on_participant_joined(&self, participant: &Bound<'_, PyAny>) {}
    #[allow(unused_variables)]
    fn on_participant_left(&self, participant: &Bound<'_, PyAny>, reason: &Bound<'_, PyAny>) {}
    #[allow(unused_variables)]
    fn on_participant_updated(&self, participant: &Bound<'_, PyAny>) {}
    #[allow(unused_variables)]
    fn on_error(&self, message: &Bound<'_, PyAny>) {}
}

/// A participant in a call. Methods return at once and report through completions and
/// `EventHandler` events, in order. Raises `RuntimeError` before `Daily.init()` and after
/// `release()`.
#[pyclass(module = "daily", frozen)]
pub struct CallClient {
    core: Mutex<Option<Arc<CoreClient>>>,
    pub(crate) dispatcher: Arc<Completer>,
}

fn dispatch_event(py: Python<'_>, handler: &Py<PyAny>, ev: ClientEvent) {
    let val = |v: &Value| value_to_py(py, v).unwrap_or_else(|_| py.None());
    let (name, args): (&str, Vec<Py<PyAny>>) = match ev {
        ClientEvent::ActiveSpeakerChanged(v) => ("on_active_speaker_changed", vec![val(&v)]),
        ClientEvent::AppMessage(m, from) => ("on_app_message", vec![val(&m), val(&Value::String(from))]),
        ClientEvent::ParticipantCountsUpdated(v) => ("on_participant_counts_updated", vec![val(&v)]),
        ClientEvent::InputsUpdated(v) => ("on_inputs_updated", vec![val(&v)]),
        ClientEvent::PublishingUpdated(v) => ("on_publishing_updated", vec![val(&v)]),
        ClientEvent::SubscriptionsUpdated(v) => ("on_subscriptions_updated", vec![val(&v)]),
        ClientEvent::SubscriptionProfilesUpdated(v) => ("on_subscription_profiles_updated", vec![val(&v)]),
        ClientEvent::NetworkStatsUpdated(v) => ("on_network_stats_updated", vec![val(&v)]),
        ClientEvent::NetworkConnectionStatusUpdated(v) => ("on_network_connection_status_updated", vec![val(&v)]),
        ClientEvent::CallStateUpdated(s) => ("on_call_state_updated", vec![s.as_str().into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None())]),
        ClientEvent::ParticipantJoined(v) => ("on_participant_joined", vec![value_to_py(py, &v).unwrap_or_else(|_| py.None())]),
        ClientEvent::ParticipantUpdated(v) => ("on_participant_updated", vec![value_to_py(py, &v).unwrap_or_else(|_| py.None())]),
        ClientEvent::ParticipantLeft(v, r) => (
            "on_participant_left",
            vec![value_to_py(py, &v).unwrap_or_else(|_| py.None()), r.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None())],
        ),
        ClientEvent::Error(m) => ("on_error", vec![m.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None())]),
        _ => return,
    };
    let h = handler.bind(py);
    match h.getattr(name) {
        Ok(f) => {
            let args = pyo3::types::PyTuple::new(py, args);
            if let Ok(args) = args {
                if let Err(e) = f.call1(args) {
                    e.write_unraisable(py, Some(&f));
                }
            }
        }
        Err(e) => e.write_unraisable(py, Some(h)),
    }
}

impl CallClient {
    pub(crate) fn core(&self) -> PyResult<Arc<CoreClient>> {
        self.core
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("this CallClient has been released"))
    }
}

/// The microphone named by input `settings`: a custom track (`{"customTrack": {"id"}}`) or a
/// virtual microphone device (`{"deviceId": name}`); `None` when neither is given.
fn resolve_microphone(settings: &Value) -> PyResult<Option<(String, AudioSource)>> {
    if let Some(id) = settings["customTrack"]["id"].as_str() {
        let src = tracks().lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        return match src {
            Some(s) => Ok(Some((id.to_owned(), s))),
            None => Err(PyValueError::new_err(format!("the microphone settings name custom track {id:?}, which does not exist"))),
        };
    }
    if let Some(name) = settings["deviceId"].as_str() {
        return match devices::microphone(name) {
            Some(m) => Ok(Some(m)),
            None => Err(PyValueError::new_err(format!(
                "the microphone settings name device {name:?}, which does not exist (create it with Daily.create_microphone_device)"
            ))),
        };
    }
    Ok(None)
}

/// Join settings: the microphone source named by `inputs.microphone` (when enabled), and the
/// whole `client_settings` for the core to merge into `inputs()` / `publishing()`.
fn parse_join_settings(settings: &Value) -> PyResult<JoinSettings> {
    for key in ["inputs", "publishing"] {
        if !settings[key].is_null() && !settings[key].is_object() {
            return Err(PyTypeError::new_err(format!("client_settings[{key:?}] must be a dict")));
        }
    }
    let mut js = JoinSettings { client_settings: settings.clone(), ..Default::default() };
    let mic = &settings["inputs"]["microphone"];
    let enabled = match mic {
        Value::Bool(b) => *b,
        Value::Object(_) => mic["isEnabled"].as_bool().unwrap_or(true),
        _ => false,
    };
    if enabled {
        js.microphone = resolve_microphone(&mic["settings"])?;
    }
    Ok(js)
}

#[pymethods]
impl CallClient {
    #[new]
    #[pyo3(signature = (event_handler=None))]
    fn new(event_handler: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let g = global()?;
        let handler: Option<Py<PyAny>> = match event_handler {
            None => None,
            Some(h) if h.is_none() => None,
            Some(h) if h.is_instance_of::<EventHandler>() => Some(h.clone().unbind()),
            Some(h) => {
                return Err(PyTypeError::new_err(format!(
                    "event_handler must be an EventHandler instance or None, got {}",
                    h.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                )));
            }
        };
        let dispatcher = Completer::start(g.renderers.clone())?;
        let d2 = Arc::downgrade(&dispatcher);
        let handler = handler.map(Arc::new);
        let sink: daily_client::EventSink = Arc::new(move |ev: ClientEvent| {
            if let (Some(h), Some(d)) = (handler.clone(), d2.upgrade()) {
                d.post_event(move |py| dispatch_event(py, &h, ev));
            }
        });
        let core = CoreClient::new(&g.engine, sink);
        Ok(CallClient { core: Mutex::new(Some(Arc::new(core))), dispatcher })
    }

    /// Joins `meeting_url` (`http://host:port/room`). `completion(join_data, error)` fires once:
    /// at once (before `join` returns) for a malformed URL; within 5 s with an error (and an
    /// `on_error` event) when the server cannot be reached.
    #[pyo3(signature = (meeting_url, meeting_token=None, client_settings=None, completion=None))]
    fn join(
        &self,
        meeting_url: &str,
        meeting_token: Option<String>,
        client_settings: Option<&Bound<'_, PyAny>>,
        completion: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let core = self.core()?;
        let settings = match client_settings {
            Some(s) if !s.is_none() => {
                if !s.is_instance_of::<PyDict>() {
                    return Err(PyTypeError::new_err("client_settings must be a dict"));
                }
                py_to_value(s)?
            }
            _ => Value::Null,
        };
        let js = parse_join_settings(&settings)?;
        let disp = self.dispatcher.clone();
        let from_handler = disp.on_events_thread();
        core.join(
            meeting_url,
            meeting_token,
            js,
            Box::new(move |r| {
                if let Some(cb) = completion {
                    disp.post_completion(from_handler, move |py| {
                        let (data, err) = match r {
                            Ok(v) => (value_to_py(py, &v).unwrap_or_else(|_| py.None()), py.None()),
                            Err(e) => (py.None(), e.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None())),
                        };
                        call_reporting(py, &cb, (data, err));
                    });
                }
            }),
        );
        Ok(())
    }

    /// Leaves the call; `completion(error)` fires once (error is None on success).
    #[pyo3(signature = (completion=None))]
    fn leave(&self, completion: Option<Py<PyAny>>) -> PyResult<()> {
        let core = self.core()?;
        let disp = self.dispatcher.clone();
        core.leave(done_one(disp, completion));
        Ok(())
    }

    /// Leaves if needed, stops this client's threads and frees it. Every method raises
    /// `RuntimeError` afterwards. Idempotent.
    fn release(&self, py: Python<'_>) {
        let core = self.core.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(core) = core {
            py.detach(|| core.release());
            drop(core);
        }
        self.dispatcher.stop(py);
    }

    /// `{"local": participant, "<id>": participant, ...}`.
    fn participants(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        value_to_py(py, &self.core()?.participants())
    }

    /// Sets the display name others see (`info.userName`).
    fn set_user_name(&self, user_name: &str) -> PyResult<()> {
        self.core()?.set_user_name(user_name);
        Ok(())
    }

    /// Publishes `audio_track` as custom audio `track_name`; `completion(error)`.
    #[pyo3(signature = (track_name, audio_track, ignore_audio_level=None, completion=None))]
    fn add_custom_audio_track(
        &self,
        track_name: &str,
        audio_track: &Bound<'_, PyAny>,
        ignore_audio_level: Option<bool>,
        completion: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let (id, source) = custom_audio_track(audio_track)?;
        if track_name.is_empty() || matches!(track_name, "microphone" | "camera" | "screenAudio" | "screenVideo" | "customAudio" | "customVideo") {
            return Err(PyValueError::new_err(format!("invalid custom track name {track_name:?}")));
        }
        let core = self.core()?;
        core.add_custom_audio_track(
            track_name,
            id,
            source,
            ignore_audio_level.unwrap_or(false),
            done_one(self.dispatcher.clone(), completion),
        );
        Ok(())
    }

    /// Merges `input_settings` into `inputs()` and emits `on_inputs_updated` before
    /// `completion(error)`. The microphone part is applied: `{"microphone": {"isEnabled":
    /// bool, "settings": {"deviceId": name} or {"customTrack": {"id": track_id}}}}` (or
    /// `"microphone": False`) switches or stops the published microphone, in a call at once,
    /// else at the next join. Camera and screen inputs are recorded but carry nothing (our
    /// rooms are audio only). Raises `TypeError` if `input_settings` is not a dict and
    /// `ValueError` for an unknown input key, device or track.
    #[pyo3(signature = (input_settings, completion=None))]
    fn update_inputs(&self, input_settings: &Bound<'_, PyAny>, completion: Option<Py<PyAny>>) -> PyResult<()> {
        if !input_settings.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err("input_settings must be a dict"));
        }
        let core = self.core()?;
        let v = py_to_value(input_settings)?;
        const INPUTS: [&str; 6] = ["camera", "microphone", "screenVideo", "screenAudio", "customAudio", "customVideo"];
        if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| !INPUTS.contains(&k.as_str()))) {
            return Err(PyValueError::new_err(format!("unknown input {k:?} in input_settings (expected keys: {})", INPUTS.join(", "))));
        }
        let done = done_one(self.dispatcher.clone(), completion);
        let mic = &v["microphone"];
        let mic_now = match mic {
            Value::Null | Value::Bool(true) => None,
            Value::Bool(false) => Some(None),
            Value::Object(_) => {
                if mic["isEnabled"].as_bool() == Some(false) {
                    Some(None)
                } else {
                    // Enabled without naming a source: keep the current one.
                    resolve_microphone(&mic["settings"])?.map(Some)
                }
            }
            _ => return Err(PyTypeError::new_err("input_settings[\"microphone\"] must be a bool or a dict")),
        };
        core.update_inputs(mic_now, &v, done);
        Ok(())
    }

    /// Stops publishing custom audio `track_name`; `completion(error)`.
    #[pyo3(signature = (track_name, completion=None))]
    fn remove_custom_audio_track(&self, track_name: &str, completion: Option<Py<PyAny>>) -> PyResult<()> {
        let core = self.core()?;
        core.remove_custom_audio_track(track_name, done_one(self.dispatcher.clone(), completion));
        Ok(())
    }

    /// Calls `callback(participant_id, AudioData, audio_source)` every `callback_interval_ms`
    /// (a positive multiple of 10) with mono 16-bit PCM at `sample_rate` Hz (8000-48000) of
    /// that participant's `audio_source` ("microphone" or a custom track name). Raises
    /// `ValueError` for a malformed participant id, rate or interval. Callbacks of every
    /// client run on one shared thread, so keep them short (hand the audio on); a client whose
    /// callback runs longer than 100 ms gets a thread of its own from then on.
    #[pyo3(signature = (participant_id, callback, audio_source="microphone", sample_rate=16000, callback_interval_ms=20, logging_interval_ms=10000))]
    fn set_audio_renderer(
        &self,
        participant_id: &str,
        callback: Py<PyAny>,
        audio_source: &str,
        sample_rate: i64,
        callback_interval_ms: i64,
        logging_interval_ms: i64,
    ) -> PyResult<()> {
        let _ = logging_interval_ms;
        if uuid::Uuid::parse_str(participant_id).is_err() {
            return Err(PyValueError::new_err(format!("participant_id must be a participant UUID, got {participant_id:?}")));
        }
        if !(8000..=48000).contains(&sample_rate) {
            return Err(PyValueError::new_err(format!("sample_rate must be between 8000 and 48000 Hz, got {sample_rate}")));
        }
        if callback_interval_ms <= 0 || callback_interval_ms % 10 != 0 || callback_interval_ms > 10_000 {
            return Err(PyValueError::new_err(format!("callback_interval_ms must be a positive multiple of 10, got {callback_interval_ms}")));
        }
        let core = self.core()?;
        let disp = self.dispatcher.clone();
        let cb = Arc::new(callback);
        let pid: Arc<str> = participant_id.into();
        let src: Arc<str> = audio_source.into();
        let rate = sample_rate as u32;
        let sink = Arc::new(move |pcm: &[i16]| {
            let mut bytes = Vec::with_capacity(pcm.len() * 2);
            for s in pcm {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
            let (cb, pid, src, n) = (cb.clone(), pid.clone(), src.clone(), pcm.len());
            disp.post_audio(move |py| {
                let data = AudioData { frames: PyBytes::new(py, &bytes).unbind(), sample_rate: rate, num_channels: 1, num_audio_frames: n };
                match Py::new(py, data) {
                    Ok(d) => call_reporting(py, &cb, (&*pid, d, &*src)),
                    Err(e) => e.write_unraisable(py, None),
                }
            });
        });
        core.set_audio_renderer(participant_id, audio_source, rate, callback_interval_ms as u32, sink).map_err(to_py_err)?;
        Ok(())
    }

    /// Receive-side counters per remote track (packets received, lost, late; jitter-buffer
    /// delay in ms), plus send counters. Not in daily-python: our figures come from here.
    fn media_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let core = self.core()?;
        value_to_py(py, &serde_json::json!({"receive": core.receive_stats(), "send": core.send_stats()}))
    }
}

/// A core completion that calls `completion(error)` on the client's completions thread,
/// after the events emitted before it (see [`Completer`]).
pub(crate) fn done_one(disp: Arc<Completer>, completion: Option<Py<PyAny>>) -> daily_client::Done {
    let from_handler = disp.on_events_thread();
    Box::new(move |r| {
        if let Some(cb) = completion {
            disp.post_completion(from_handler, move |py| {
                let err = match r {
                    Ok(()) => py.None(),
                    Err(e) => e.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None()),
                };
                call_reporting(py, &cb, (err,));
            });
        }
    })
}

impl Drop for CallClient {
    fn drop(&mut self) {
        let core = self.core.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(core) = core {
            core.release();
        }
        self.dispatcher.stop_nowait();
    }
}

// ---------------------------------------------------------------------------------------------
// Embedded room server

/// The room server running inside this process (see `daily.server.RoomServer`). `api_key`
/// turns on the REST API (`/v1`) and meeting tokens (`docs/rest-api.md`).
#[pyclass(module = "daily", frozen)]
pub struct _RoomServer {
    inner: Mutex<Option<daily_server::RoomServer>>,
    url: String,
}

#[pymethods]
impl _RoomServer {
    #[new]
    #[pyo3(signature = (host="127.0.0.1", port=0, api_key=None))]
    fn new(py: Python<'_>, host: &str, port: i64, api_key: Option<String>) -> PyResult<Self> {
        let host: std::net::IpAddr = host.parse().map_err(|_| PyValueError::new_err(format!("host must be an IP address, got {host:?}")))?;
        if !(0..=65535).contains(&port) {
            return Err(PyValueError::new_err(format!("port must be 0-65535, got {port}")));
        }
        if let Some(k) = &api_key {
            daily_server::validate_api_key(k).map_err(|e| PyValueError::new_err(format!("invalid api_key: {e}")))?;
        }
        let config = daily_server::ServerConfig { host, port: port as u16, api_key };
        let server = py
            .detach(|| daily_server::RoomServer::start(config))
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let url = server.url();
        Ok(_RoomServer { inner: Mutex::new(Some(server)), url })
    }

    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    fn room_url(&self, room: &str) -> PyResult<String> {
        if !daily_proto::is_valid_room_name(room) {
            return Err(PyValueError::new_err(format!("invalid room name {room:?}: use 1-128 characters of A-Z a-z 0-9 - _ .")));
        }
        Ok(format!("{}/{}", self.url, room))
    }

    fn shutdown(&self, py: Python<'_>) {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut s) = s {
            py.detach(|| s.shutdown());
        }
    }
}

#[pymodule]
fn daily(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Daily>()?;
    m.add_class::<LogLevel>()?;
    m.add_class::<EventHandler>()?;
    m.add_class::<CallClient>()?;
    m.add_class::<CustomAudioSource>()?;
    m.add_class::<CustomAudioTrack>()?;
    m.add_class::<AudioData>()?;
    m.add_class::<VirtualMicrophoneDevice>()?;
    m.add_class::<VirtualSpeakerDevice>()?;
    m.add_class::<NativeVad>()?;
    m.add_class::<VideoFrame>()?;
    m.add_class::<CustomVideoSource>()?;
    m.add_class::<CustomVideoTrack>()?;
    m.add_class::<VirtualCameraDevice>()?;
    m.add_class::<_RoomServer>()?;
    let _ = CallState::Initialized;
    Ok(())
}
