//! Video classes: `VideoFrame`, `CustomVideoSource`, `CustomVideoTrack`, `VirtualCameraDevice`.
//!
//! Our rooms carry audio only, so these classes exist for source compatibility with
//! daily-python (pipecat imports and constructs them): they validate what they are given with
//! the same rules as daily-python (colour format, frame size) and then drop the frames. No
//! participant ever publishes or receives video through them.

use crate::errors::guard;
use crate::process::global;
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// Largest accepted width or height in pixels (8K). Bounds the frame-size arithmetic and turns
/// a typo into a clear error rather than a multi-gigabyte expectation.
pub(crate) const MAX_DIMENSION: i64 = 8192;

/// The colour formats of daily-python (`ColorFormat` in its docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColorFormat {
    Rgba,
    Bgra,
    Argb,
    Abgr,
    Rgb,
    I420,
}

const VALID_FORMATS: &str = "RGBA, BGRA, ARGB, ABGR, RGB, I420";

impl ColorFormat {
    /// Parses a format name (exact, upper case, as daily-python). `ValueError` otherwise.
    pub(crate) fn parse(name: &str) -> PyResult<ColorFormat> {
        Ok(match name {
            "RGBA" => ColorFormat::Rgba,
            "BGRA" => ColorFormat::Bgra,
            "ARGB" => ColorFormat::Argb,
            "ABGR" => ColorFormat::Abgr,
            "RGB" => ColorFormat::Rgb,
            "I420" => ColorFormat::I420,
            _ => return Err(PyValueError::new_err(format!("invalid color format {name:?}: valid formats are {VALID_FORMATS}"))),
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ColorFormat::Rgba => "RGBA",
            ColorFormat::Bgra => "BGRA",
            ColorFormat::Argb => "ARGB",
            ColorFormat::Abgr => "ABGR",
            ColorFormat::Rgb => "RGB",
            ColorFormat::I420 => "I420",
        }
    }

    /// Bytes in one `width` x `height` frame: 4 per pixel for the packed 32-bit formats, 3 for
    /// RGB, and for I420 a full-resolution Y plane plus two chroma planes subsampled 2x2
    /// (odd sizes round up, as libyuv does).
    pub(crate) fn frame_size(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        match self {
            ColorFormat::Rgba | ColorFormat::Bgra | ColorFormat::Argb | ColorFormat::Abgr => w * h * 4,
            ColorFormat::Rgb => w * h * 3,
            ColorFormat::I420 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        }
    }
}

/// Checks a frame geometry: width and height in 1..=8192 and a known colour format.
fn check_geometry(width: i64, height: i64, color_format: &str) -> PyResult<(u32, u32, ColorFormat)> {
    for (name, v) in [("width", width), ("height", height)] {
        if !(1..=MAX_DIMENSION).contains(&v) {
            return Err(PyValueError::new_err(format!("{name} must be between 1 and {MAX_DIMENSION} pixels, got {v}")));
        }
    }
    Ok((width as u32, height as u32, ColorFormat::parse(color_format)?))
}

/// Length in bytes of a frame given as any C-contiguous buffer (`bytes`, `bytearray`,
/// `memoryview`, a numpy array). `TypeError` for objects without the buffer protocol (and for
/// `str`), `ValueError` for non-contiguous buffers.
fn frame_len(frame: &Bound<'_, PyAny>) -> PyResult<usize> {
    if let Ok(b) = frame.cast::<PyBytes>() {
        return Ok(b.as_bytes().len());
    }
    const EXPECTED: &str = "frame must be a buffer: bytes, bytearray, memoryview or a C-contiguous numpy array";
    let type_name = || frame.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    if frame.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!("{EXPECTED}, got str")));
    }
    let buf = PyUntypedBuffer::get(frame).map_err(|_| PyTypeError::new_err(format!("{EXPECTED}, got {}", type_name())))?;
    if !buf.is_c_contiguous() {
        return Err(PyValueError::new_err("frame must be C-contiguous (use numpy.ascontiguousarray)"));
    }
    Ok(buf.len_bytes())
}

/// Validates one frame for a `width` x `height` `format` source.
fn check_frame(frame: &Bound<'_, PyAny>, width: u32, height: u32, format: ColorFormat) -> PyResult<()> {
    let got = frame_len(frame)?;
    let expected = format.frame_size(width, height);
    if got != expected {
        return Err(PyValueError::new_err(format!(
            "frame size mismatch: expected {expected} bytes for {width}x{height} {}, got {got}",
            format.as_str()
        )));
    }
    Ok(())
}

/// A video frame as delivered to a video renderer (not constructible).
///
/// Our rooms carry audio only, so no renderer ever produces one; the class exists so that
/// code written for daily-python (`from daily.daily import VideoFrame`) imports and type-checks.
#[pyclass(module = "daily", frozen)]
pub struct VideoFrame {
    buffer: Py<PyBytes>,
    width: u32,
    height: u32,
    timestamp_us: i64,
    color_format: ColorFormat,
}

#[pymethods]
impl VideoFrame {
    /// The pixels, laid out as `color_format` says.
    #[getter]
    fn buffer(&self, py: Python<'_>) -> Py<PyBytes> {
        self.buffer.clone_ref(py)
    }
    /// Width in pixels.
    #[getter]
    fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.height
    }
    /// Capture time in microseconds.
    #[getter]
    fn timestamp_us(&self) -> i64 {
        self.timestamp_us
    }
    /// One of `RGBA, BGRA, ARGB, ABGR, RGB, I420`.
    #[getter]
    fn color_format(&self) -> &'static str {
        self.color_format.as_str()
    }
    fn __repr__(&self) -> String {
        format!("VideoFrame(width={}, height={}, color_format={:?}, timestamp_us={})", self.width, self.height, self.color_format.as_str(), self.timestamp_us)
    }
}

/// Video written by the application for a `CustomVideoTrack`.
///
/// Our rooms carry audio only: `write_frame` checks each frame as daily-python does and then
/// drops it; nothing is sent. `add_custom_video_track` completes with an error saying so.
#[pyclass(module = "daily", frozen)]
pub struct CustomVideoSource {
    width: u32,
    height: u32,
    color_format: ColorFormat,
}

#[pymethods]
impl CustomVideoSource {
    /// `width` and `height` in pixels (1-8192), `color_format` one of
    /// `RGBA, BGRA, ARGB, ABGR, RGB, I420`. Raises `ValueError` otherwise.
    #[new]
    #[pyo3(signature = (width, height, color_format="RGBA"))]
    fn new(width: i64, height: i64, color_format: &str) -> PyResult<Self> {
        guard(|| {
            let (width, height, color_format) = check_geometry(width, height, color_format)?;
            Ok(CustomVideoSource { width, height, color_format })
        })
    }
    /// Width in pixels.
    #[getter]
    fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.height
    }
    /// The colour format frames must have.
    #[getter]
    fn color_format(&self) -> &'static str {
        self.color_format.as_str()
    }
    /// Checks one frame from any C-contiguous buffer and drops it (audio-only rooms). Its size
    /// must be `width * height * 4` bytes for RGBA/BGRA/ARGB/ABGR, `* 3` for RGB, and
    /// `width * height + 2 * ceil(width / 2) * ceil(height / 2)` for I420: `ValueError` giving
    /// the expected and actual sizes otherwise, `TypeError` for a non-buffer.
    fn write_frame(&self, frame: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(|| {
            check_frame(frame, self.width, self.height, self.color_format)
        })
    }
    fn __repr__(&self) -> String {
        format!("CustomVideoSource(width={}, height={}, color_format={:?})", self.width, self.height, self.color_format.as_str())
    }
}

/// A track carrying a `CustomVideoSource`, with a UUID4 `id`.
///
/// Our rooms carry audio only: the track can be created (and named as a placeholder in
/// `client_settings`), but `add_custom_video_track` completes with an error.
#[pyclass(module = "daily", frozen)]
pub struct CustomVideoTrack {
    id: String,
    // Held so the source lives as long as the track, as in daily-python.
    _source: Py<CustomVideoSource>,
}

#[pymethods]
impl CustomVideoTrack {
    /// Raises `TypeError` unless `video_source` is a `CustomVideoSource`.
    #[new]
    fn new(video_source: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(|| {
            let src = video_source
                .cast::<CustomVideoSource>()
                .map_err(|_| PyTypeError::new_err("video_source must be a CustomVideoSource"))?;
            Ok(CustomVideoTrack { id: uuid::Uuid::new_v4().to_string(), _source: src.clone().unbind() })
        })
    }
    /// The track id (a UUID4 string).
    #[getter]
    fn id(&self) -> String {
        self.id.clone()
    }
}

/// A virtual camera (`Daily.create_camera_device`).
///
/// Our rooms carry audio only: `write_frame` checks each frame as daily-python does and then
/// drops it; selecting the camera in `client_settings` publishes no video.
#[pyclass(module = "daily", frozen)]
pub struct VirtualCameraDevice {
    name: String,
    width: u32,
    height: u32,
    color_format: ColorFormat,
}

impl VirtualCameraDevice {
    /// `Daily.create_camera_device`: needs `Daily.init()` like the other devices.
    pub(crate) fn create(device_name: &str, width: i64, height: i64, color_format: &str) -> PyResult<Self> {
        global()?;
        let (width, height, color_format) = check_geometry(width, height, color_format)?;
        Ok(VirtualCameraDevice { name: device_name.to_owned(), width, height, color_format })
    }
}

#[pymethods]
impl VirtualCameraDevice {
    /// The device name given at creation.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    /// Width in pixels.
    #[getter]
    fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.height
    }
    /// The colour format frames must have.
    #[getter]
    fn color_format(&self) -> &'static str {
        self.color_format.as_str()
    }
    /// Checks one frame (same size rule as `CustomVideoSource.write_frame`) and drops it
    /// (audio-only rooms). `ValueError` for a wrong size, `TypeError` for a non-buffer.
    fn write_frame(&self, frame: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(|| {
            check_frame(frame, self.width, self.height, self.color_format)
        })
    }
    fn __repr__(&self) -> String {
        format!("VirtualCameraDevice(name={:?}, width={}, height={}, color_format={:?})", self.name, self.width, self.height, self.color_format.as_str())
    }
}

#[pymethods]
impl crate::process::Daily {
    /// Creates a virtual camera called `device_name` taking `width` x `height` frames (1-8192
    /// pixels each) in `color_format` (`RGBA, BGRA, ARGB, ABGR, RGB, I420`). Our rooms carry
    /// audio only, so the frames written to it are checked and dropped. Raises `ValueError`
    /// for bad arguments, `RuntimeError` before `init`.
    #[staticmethod]
    #[pyo3(signature = (device_name, width, height, color_format="RGBA"))]
    fn create_camera_device(device_name: &str, width: i64, height: i64, color_format: &str) -> PyResult<VirtualCameraDevice> {
        guard(|| {
            VirtualCameraDevice::create(device_name, width, height, color_format)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ColorFormat;

    #[test]
    fn frame_sizes() {
        assert_eq!(ColorFormat::Rgba.frame_size(4, 3), 48);
        assert_eq!(ColorFormat::Rgb.frame_size(4, 3), 36);
        assert_eq!(ColorFormat::I420.frame_size(4, 4), 24);
        // Odd sizes: chroma planes round up.
        assert_eq!(ColorFormat::I420.frame_size(3, 3), 9 + 2 * 2 * 2);
        assert_eq!(ColorFormat::I420.frame_size(8192, 8192), 8192 * 8192 * 3 / 2);
    }
}
