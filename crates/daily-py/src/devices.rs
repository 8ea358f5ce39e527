//! Audio input from Python buffers, virtual microphone and speaker devices, and `NativeVad`.
//!
//! PCM arrives through the buffer protocol: `bytes`, `bytearray`, `memoryview` or a
//! C-contiguous int16 numpy array are read in place (no Python-side copy); the only copy is the
//! one into the source's ring.

use crate::dispatch::{Dispatcher, call_reporting};
use crate::errors::{Callback, cb, guard, to_py_err};
use crate::process::{Global, global_of};
use daily_client::{AudioSource, SpeakerDevice};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Longest single read from a speaker device, in seconds (guards against a typo allocating
/// gigabytes).
const MAX_READ_S: usize = 600;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
}

/// Bytes borrowed from a Python object without a copy: `bytes` directly (the common case, and
/// the cheapest), anything else through the buffer protocol. Audio takes it as 16-bit PCM
/// ([`Borrowed::pcm`]), video as frames of any item type ([`Borrowed::frame`]).
pub(crate) enum Borrowed<'a, 'py> {
    Bytes(&'a Bound<'py, PyBytes>),
    Buffer(PyUntypedBuffer),
}

impl<'a, 'py> Borrowed<'a, 'py> {
    /// `bytes`, or the buffer of any other object with the buffer protocol (`TypeError`
    /// naming `expected` otherwise, and for `str`).
    fn any(obj: &'a Bound<'py, PyAny>, expected: &str) -> PyResult<Borrowed<'a, 'py>> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Borrowed::Bytes(b));
        }
        if obj.is_instance_of::<pyo3::types::PyString>() {
            return Err(PyTypeError::new_err(format!("{expected}, got str")));
        }
        let buf = PyUntypedBuffer::get(obj).map_err(|_| PyTypeError::new_err(format!("{expected}, got {}", type_name(obj))))?;
        Ok(Borrowed::Buffer(buf))
    }

    /// A video frame: `bytes` or any C-contiguous buffer, whatever its item type (the size
    /// counts in bytes). `ValueError` for a non-contiguous buffer.
    pub(crate) fn frame(obj: &'a Bound<'py, PyAny>) -> PyResult<Borrowed<'a, 'py>> {
        const EXPECTED: &str = "frame must be a buffer: bytes, bytearray, memoryview or a C-contiguous numpy array";
        let b = Self::any(obj, EXPECTED)?;
        if let Borrowed::Buffer(buf) = &b
            && !buf.is_c_contiguous()
        {
            return Err(PyValueError::new_err("frame must be C-contiguous (use numpy.ascontiguousarray)"));
        }
        Ok(b)
    }

    /// Accepts `bytes` and any C-contiguous buffer of bytes (format `B`, `b` or `c`) or of
    /// native or little-endian 16-bit integers (format `h`, `<h`, `=h`).
    pub(crate) fn pcm(obj: &'a Bound<'py, PyAny>) -> PyResult<Borrowed<'a, 'py>> {
        const EXPECTED: &str = "frames must be 16-bit PCM in a buffer: bytes, bytearray, memoryview or a C-contiguous int16 numpy array";
        let buf = match Self::any(obj, EXPECTED)? {
            Borrowed::Bytes(b) => return Ok(Borrowed::Bytes(b)),
            Borrowed::Buffer(buf) => buf,
        };
        let fmt = buf.format().to_bytes();
        let fmt = fmt.strip_prefix(b"@").or_else(|| fmt.strip_prefix(b"=")).or_else(|| fmt.strip_prefix(b"<")).unwrap_or(fmt);
        let ok = match buf.item_size() {
            1 => matches!(fmt, b"B" | b"b" | b"c"),
            2 => fmt == b"h" && cfg!(target_endian = "little"),
            _ => false,
        };
        if !ok {
            return Err(PyTypeError::new_err(format!(
                "{EXPECTED}, got {} with item format {:?} ({} bytes per item)",
                type_name(obj),
                String::from_utf8_lossy(buf.format().to_bytes()),
                buf.item_size()
            )));
        }
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("frames must be C-contiguous (use numpy.ascontiguousarray)"));
        }
        Ok(Borrowed::Buffer(buf))
    }

    /// The borrowed bytes (PCM as little-endian samples).
    pub(crate) fn bytes(&self) -> &[u8] {
        let buf = match self {
            Borrowed::Bytes(b) => return b.as_bytes(),
            Borrowed::Buffer(buf) => buf,
        };
        let len = buf.len_bytes();
        if len == 0 {
            return &[];
        }
        // SAFETY: the buffer is C-contiguous (checked in `get`) and stays exported, so its
        // memory stays valid and unmoved, for as long as `buf` lives; the slice borrows
        // `self`. A concurrent writer in another Python thread could change the bytes (not
        // the length) while we read them: that is the caller's race, as with any buffer.
        unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const u8, len) }
    }
}

/// How `write_frames` waits.
pub(crate) enum WriteMode {
    /// Block (GIL released) until consumed.
    Blocking,
    /// Return at once; nobody is told when the frames are consumed.
    Detached,
}

/// `write_frames` for custom sources and microphone devices.
pub(crate) fn write_frames(
    py: Python<'_>,
    source: &AudioSource,
    completions: &Arc<Dispatcher>,
    frames: &Bound<'_, PyAny>,
    completion: Option<Py<PyAny>>,
    mode: WriteMode,
) -> PyResult<usize> {
    let pcm = Borrowed::pcm(frames)?;
    match (completion, mode) {
        (Some(cb), _) => {
            let disp = completions.clone();
            source
                .write_with_completion(pcm.bytes(), Box::new(move |n| disp.post(move |py| call_reporting(py, &cb, (n,)))))
                .map_err(to_py_err)
        }
        (None, WriteMode::Detached) => source.write_with_completion(pcm.bytes(), Box::new(|_| {})).map_err(to_py_err),
        (None, WriteMode::Blocking) => {
            let data = pcm.bytes();
            py.detach(|| source.write_blocking(data)).map_err(to_py_err)
        }
    }
}

pub(crate) fn check_format(sample_rate: i64, channels: i64) -> PyResult<(u32, u16)> {
    if !(1..=2).contains(&channels) {
        return Err(PyValueError::new_err(format!("channels must be 1 or 2, got {channels}")));
    }
    // The rule itself lives in daily-media (one definition for every API).
    match u32::try_from(sample_rate).ok().filter(|r| daily_media::frames_per_10ms(*r).is_ok()) {
        Some(rate) => Ok((rate, channels as u16)),
        None => Err(PyValueError::new_err(format!(
            "sample_rate must be a multiple of 100 Hz between 8000 and 48000, got {sample_rate}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Device registries

fn speakers() -> &'static Mutex<HashMap<String, SpeakerDevice>> {
    static S: OnceLock<Mutex<HashMap<String, SpeakerDevice>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Forgets every device (at `Daily.deinit`); objects the application holds keep working
/// until the engine is gone.
pub(crate) fn clear_devices() {
    daily_client::sources::clear_microphones();
    speakers().lock().unwrap_or_else(|e| e.into_inner()).clear();
}

pub(crate) fn create_microphone(g: &Global, name: &str, sample_rate: i64, channels: i64, non_blocking: bool) -> PyResult<VirtualMicrophoneDevice> {
    let (rate, ch) = check_format(sample_rate, channels)?;
    if name.is_empty() {
        return Err(PyValueError::new_err("device_name must not be empty"));
    }
    let source = AudioSource::new(&g.engine, rate, ch, true).map_err(to_py_err)?;
    let track_id = uuid::Uuid::new_v4().to_string();
    daily_client::sources::register_microphone(name, &track_id, &source);
    Ok(VirtualMicrophoneDevice { name: name.to_owned(), source, non_blocking, completions: g.completions.clone(), epoch: g.epoch })
}

pub(crate) fn create_speaker(g: &Global, name: &str, sample_rate: i64, channels: i64, non_blocking: bool) -> PyResult<VirtualSpeakerDevice> {
    let (rate, ch) = check_format(sample_rate, channels)?;
    if name.is_empty() {
        return Err(PyValueError::new_err("device_name must not be empty"));
    }
    let speaker = SpeakerDevice::new(&g.engine, rate, ch).map_err(to_py_err)?;
    speakers().lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), speaker.clone());
    Ok(VirtualSpeakerDevice { name: name.to_owned(), speaker, non_blocking, epoch: g.epoch })
}

/// Names `speaker` `name` for `select_speaker_device` (a system speaker device was opened).
pub(crate) fn register_speaker(name: &str, speaker: &SpeakerDevice) {
    speakers().lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), speaker.clone());
}

pub(crate) fn select_speaker(g: &Global, name: &str) -> PyResult<()> {
    let s = speakers().lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
    match s {
        Some(s) => {
            g.engine.select_speaker(&s);
            Ok(())
        }
        None => Err(PyRuntimeError::new_err(format!("no speaker device named {name:?} (create it with Daily.create_speaker_device)"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Classes

/// A virtual microphone (`Daily.create_microphone_device`): select it as a client's microphone
/// with `{"microphone": {"isEnabled": True, "settings": {"deviceId": name}}}` in
/// `client_settings["inputs"]` or `update_inputs`. Unlike daily-python, any number may exist,
/// one per client. Not constructible.
#[pyclass(module = "daily", frozen)]
pub struct VirtualMicrophoneDevice {
    name: String,
    source: AudioSource,
    non_blocking: bool,
    completions: Arc<Dispatcher>,
    /// The `Daily.init()` it was made under (see `process::global_of`).
    epoch: u64,
}

#[pymethods]
impl VirtualMicrophoneDevice {
    /// The device name (the `deviceId` in input settings).
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
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

    /// Queues interleaved 16-bit PCM (any C-contiguous buffer: bytes, bytearray, memoryview,
    /// int16 numpy array), padded to a multiple of 10 ms, and returns the frame count. A
    /// blocking device waits (GIL released) until the frames have been consumed in real time;
    /// a non-blocking one returns at once. `completion(num_frames)`, if given, fires once when
    /// they have been consumed. Raises `ValueError` for a length that is not a whole number of
    /// frames, `TypeError` for other input or a `completion` that is not callable, and
    /// `RuntimeError` after `Daily.deinit()`.
    #[pyo3(signature = (frames, completion=None))]
    fn write_frames(&self, py: Python<'_>, frames: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<usize> {
        guard(|| {
            global_of(self.epoch)?;
            let mode = if self.non_blocking { WriteMode::Detached } else { WriteMode::Blocking };
            write_frames(py, &self.source, &self.completions, frames, cb(completion), mode)
        })
    }

    fn __repr__(&self) -> String {
        format!("VirtualMicrophoneDevice(name={:?}, sample_rate={}, channels={})", self.name, self.source.sample_rate(), self.source.channels())
    }
}

/// A virtual speaker (`Daily.create_speaker_device`): once selected with
/// `Daily.select_speaker_device`, it receives the mix of every remote participant's audio in
/// real time while a client of this process is in a call. Not constructible.
#[pyclass(module = "daily", frozen)]
pub struct VirtualSpeakerDevice {
    name: String,
    speaker: SpeakerDevice,
    non_blocking: bool,
    epoch: u64,
}

fn pcm_to_bytes<'py>(py: Python<'py>, pcm: &[i16]) -> Bound<'py, PyBytes> {
    PyBytes::new_with(py, pcm.len() * 2, |out| {
        for (o, s) in out.chunks_exact_mut(2).zip(pcm) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        Ok(())
    })
    .unwrap_or_else(|_| PyBytes::new(py, b""))
}

#[pymethods]
impl VirtualSpeakerDevice {
    /// The device name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    /// Sample rate in Hz.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.speaker.sample_rate()
    }
    /// Channel count (1 or 2), of interleaved frames.
    #[getter]
    fn channels(&self) -> u16 {
        self.speaker.channels()
    }

    /// Reads `num_frames` frames of interleaved 16-bit PCM of the mix.
    ///
    /// - With `completion`: returns `b""` at once and calls `completion(bytes)` once the
    ///   frames are ready.
    /// - Blocking device: waits (GIL released) until they are ready and returns them.
    /// - Non-blocking device: returns what is ready now, at most `num_frames` frames.
    ///
    /// When no client is in a call, or this speaker is not the selected one, the result is
    /// `b""` at once (or whatever was still buffered); a read cut short by the call ending
    /// returns the frames it got; after `Daily.deinit()` it reads `b""` (with a `completion`:
    /// `RuntimeError`). Raises `ValueError` for a negative count and `TypeError` for a
    /// `completion` that is not callable.
    #[pyo3(signature = (num_frames, completion=None))]
    fn read_frames<'py>(&self, py: Python<'py>, num_frames: i64, completion: Option<Callback>) -> PyResult<Bound<'py, PyBytes>> {
        guard(|| self.read_frames_impl(py, num_frames, cb(completion)))
    }

    fn __repr__(&self) -> String {
        format!("VirtualSpeakerDevice(name={:?}, sample_rate={}, channels={})", self.name, self.speaker.sample_rate(), self.speaker.channels())
    }
}

impl VirtualSpeakerDevice {
    fn read_frames_impl<'py>(&self, py: Python<'py>, num_frames: i64, completion: Option<Py<PyAny>>) -> PyResult<Bound<'py, PyBytes>> {
        if num_frames < 0 {
            return Err(PyValueError::new_err(format!("num_frames must be >= 0, got {num_frames}")));
        }
        let n = num_frames as usize;
        if n > MAX_READ_S * self.speaker.sample_rate() as usize {
            return Err(PyValueError::new_err(format!("num_frames must be at most {MAX_READ_S} s of audio, got {num_frames}")));
        }
        if let Some(cb) = completion {
            let disp = global_of(self.epoch)?.completions.clone();
            self.speaker.read_with_completion(
                n,
                Box::new(move |pcm| {
                    disp.post(move |py| {
                        let b = pcm_to_bytes(py, &pcm);
                        call_reporting(py, &cb, (b,));
                    })
                }),
            );
            return Ok(PyBytes::new(py, b""));
        }
        let pcm = if self.non_blocking {
            self.speaker.read_available(n)
        } else {
            let sp = self.speaker.clone();
            py.detach(move || sp.read_blocking(n))
        };
        Ok(pcm_to_bytes(py, &pcm))
    }
}

/// Voice activity detection on 10 ms frames (`Daily.create_native_vad`), built on the
/// `earshot` model, whose score is moved by how far the frame stands above the noise floor of
/// 5 frequency bands: see `daily_media::Vad` for the model, the level feature, the look-back
/// and what `reset_period_ms` does. Works without `Daily.init()`. Not constructible: made by
/// `Daily.create_native_vad`.
#[pyclass(module = "daily", frozen)]
pub struct NativeVad {
    inner: Mutex<VadState>,
    reset_period_ms: u32,
    channels: u16,
}

struct VadState {
    vad: daily_media::Vad,
    scratch: Vec<i16>,
}

impl NativeVad {
    pub(crate) fn create(reset_period_ms: i64, sample_rate: i64, channels: i64) -> PyResult<NativeVad> {
        if !(0..=u32::MAX as i64).contains(&reset_period_ms) {
            return Err(PyValueError::new_err(format!("reset_period_ms must be >= 0, got {reset_period_ms}")));
        }
        if !(1..=2).contains(&channels) {
            return Err(PyValueError::new_err(format!("channels must be 1 or 2, got {channels}")));
        }
        if sample_rate != 0 {
            check_format(sample_rate, channels)?;
        }
        let vad = daily_media::Vad::new(reset_period_ms as u32, sample_rate as u32, channels as u16)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(NativeVad {
            inner: Mutex::new(VadState { vad, scratch: Vec::new() }),
            reset_period_ms: reset_period_ms as u32,
            channels: channels as u16,
        })
    }
}

#[pymethods]
impl NativeVad {
    /// Period in ms after which a model state is wiped (0: never): no score depends on audio
    /// more than this old (the noise floor of the level feature looks back at most
    /// `min(992 ms, reset_period_ms)`). Two staggered models keep the answers warm (see
    /// `daily_media::Vad`).
    #[getter]
    fn reset_period_ms(&self) -> u32 {
        self.reset_period_ms
    }
    /// Sample rate in Hz (0 until inferred from the first frame when created with 0).
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).vad.sample_rate()
    }
    /// Channel count (1 or 2), of interleaved frames.
    #[getter]
    fn channels(&self) -> u16 {
        self.channels
    }

    /// Speech probability in [0, 1] of the first 10 ms of `frames` (interleaved 16-bit PCM in
    /// any C-contiguous buffer): the score of the model's last completed 16 ms frame (earshot's
    /// probability moved by the band levels above their noise floor), which ends
    /// 0-6 ms before the end of those 10 ms (2.5 ms more at rates other than 16 kHz). With
    /// `sample_rate=0` the first call's `frames` must be exactly 10 ms: the rate is inferred from
    /// its length. Raises `ValueError` when `frames` holds less than 10 ms or is not a whole
    /// number of frames, `TypeError` for other input.
    fn analyze_frames(&self, frames: &Bound<'_, PyAny>) -> PyResult<f32> {
        guard(|| {
            let pcm = Borrowed::pcm(frames)?;
            let b = pcm.bytes();
            let frame_bytes = 2 * self.channels as usize;
            if b.len() % frame_bytes != 0 {
                return Err(PyValueError::new_err(format!(
                    "frames must be a whole number of {}-channel 16-bit frames ({frame_bytes} bytes each), got {} bytes",
                    self.channels,
                    b.len()
                )));
            }
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let st = &mut *g;
            let rate = st.vad.sample_rate();
            // Only the first 10 ms matter once the rate is known.
            let take = if rate == 0 { b.len() / 2 } else { ((rate as usize / 100) * self.channels as usize).min(b.len() / 2) };
            st.scratch.clear();
            st.scratch.extend(b[..take * 2].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])));
            st.vad.analyze(&st.scratch).map_err(|e| PyValueError::new_err(e.to_string()))
        })
    }

    fn __repr__(&self) -> String {
        format!("NativeVad(reset_period_ms={}, sample_rate={}, channels={})", self.reset_period_ms, self.sample_rate(), self.channels)
    }
}
