//! Video classes: `VideoFrame`, `CustomVideoSource`, `CustomVideoTrack`, `VirtualCameraDevice`,
//! and the frame handling behind `CallClient.set_video_renderer`.
//!
//! Frames written are converted to I420 on the writer's thread (GIL released) and encoded as
//! VP8 by the published track's encoder thread (`daily_client::VideoSource`); a writer faster
//! than the encoder or the network loses frames, never memory. Frames received are decoded on
//! a thread per remote track and converted to the renderer's colour format there; the Python
//! callback runs on the client's completions thread, with at most [`MAX_PENDING_FRAMES`]
//! waiting per renderer (older frames are not queued behind a slow callback: new ones are
//! dropped and counted until it catches up).

use crate::devices::Borrowed;
use crate::errors::{guard, to_py_err};
use crate::process::global;
use daily_client::{ColorFormat, VideoSource};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Largest accepted width or height in pixels (8K). Bounds the frame-size arithmetic and turns
/// a typo into a clear error rather than a multi-gigabyte expectation.
pub(crate) const MAX_DIMENSION: i64 = 8192;

/// Frames handed to a renderer's callback and not yet delivered; beyond it frames are dropped.
pub(crate) const MAX_PENDING_FRAMES: usize = 2;

const VALID_FORMATS: &str = "RGBA, BGRA, ARGB, ABGR, RGB, I420";

/// Parses a colour format name (exact, upper case, as daily-python). `ValueError` otherwise.
pub(crate) fn parse_format(name: &str) -> PyResult<ColorFormat> {
    ColorFormat::parse(name).ok_or_else(|| PyValueError::new_err(format!("invalid color format {name:?}: valid formats are {VALID_FORMATS}")))
}

/// Checks a frame geometry: width and height in 1..=8192 and a known colour format. Odd sizes
/// are accepted in every format: I420's chroma planes then round up (ceil(w/2) x ceil(h/2), as
/// libyuv and libvpx lay them out), and VP8 codes any size (RFC 6386 section 9.1).
fn check_geometry(width: i64, height: i64, color_format: &str) -> PyResult<(u32, u32, ColorFormat)> {
    for (name, v) in [("width", width), ("height", height)] {
        if !(1..=MAX_DIMENSION).contains(&v) {
            return Err(PyValueError::new_err(format!("{name} must be between 1 and {MAX_DIMENSION} pixels, got {v}")));
        }
    }
    Ok((width as u32, height as u32, parse_format(color_format)?))
}

/// Writes one frame to `source` (size checked, conversion with the GIL released).
fn write(py: Python<'_>, source: &VideoSource, frame: &Bound<'_, PyAny>) -> PyResult<()> {
    let f = Borrowed::frame(frame)?;
    let data = f.bytes();
    if data.len() != source.frame_size() {
        return Err(PyValueError::new_err(format!(
            "frame size mismatch: expected {} bytes for {}x{} {}, got {}",
            source.frame_size(),
            source.width(),
            source.height(),
            source.color_format().as_str(),
            data.len()
        )));
    }
    py.detach(|| source.write_frame(data)).map_err(to_py_err)
}

/// A received video frame, decoded from VP8 (RFC 6386, RTP payload RFC 7741) and converted to
/// the renderer's colour format, as a video renderer's callback gets it
/// (`CallClient.set_video_renderer`). Not constructible.
#[pyclass(module = "daily", frozen)]
pub struct VideoFrame {
    pub(crate) buffer: Py<PyBytes>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) timestamp_us: i64,
    pub(crate) color_format: ColorFormat,
}

#[pymethods]
impl VideoFrame {
    /// The pixels, laid out as `color_format` says (`width * height * 4` bytes for the 32-bit
    /// formats, `* 3` for RGB, planar Y, U, V for I420).
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
    /// The frame's RTP timestamp as microseconds since the track's first frame.
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

/// Video written by the application for a `CustomVideoTrack` (or used as the camera).
///
/// Each `write_frame` replaces the frame before it if the encoder has not taken it yet, so a
/// writer faster than the encoder (or the network) loses frames, not memory or latency. A
/// source that stops writing keeps its track alive: its last frame is sent again every second.
///
/// `width` and `height` in pixels (1-8192; odd sizes are fine), `color_format` one of
/// `RGBA, BGRA, ARGB, ABGR, RGB, I420` (exact, upper case, as daily-python). Raises
/// `ValueError` otherwise. Works without `Daily.init()`.
#[pyclass(module = "daily", frozen)]
pub struct CustomVideoSource {
    pub(crate) source: VideoSource,
}

#[pymethods]
impl CustomVideoSource {
    // Documented on the struct: PyO3 shows the class docstring, not this one, in help().
    #[new]
    #[pyo3(signature = (width, height, color_format="RGBA"))]
    fn new(width: i64, height: i64, color_format: &str) -> PyResult<Self> {
        guard(|| {
            let (width, height, format) = check_geometry(width, height, color_format)?;
            Ok(CustomVideoSource { source: VideoSource::new(width, height, format).map_err(to_py_err)? })
        })
    }
    /// Width in pixels.
    #[getter]
    fn width(&self) -> u32 {
        self.source.width()
    }
    /// Height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.source.height()
    }
    /// The colour format frames must have.
    #[getter]
    fn color_format(&self) -> &'static str {
        self.source.color_format().as_str()
    }
    /// Writes one frame from any C-contiguous buffer and returns at once. Its size must be
    /// `width * height * 4` bytes for RGBA/BGRA/ARGB/ABGR, `* 3` for RGB, and
    /// `width * height + 2 * ceil(width / 2) * ceil(height / 2)` for I420: `ValueError` giving the expected and actual sizes
    /// otherwise, `TypeError` for a non-buffer.
    fn write_frame(&self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(|| write(py, &self.source, frame))
    }
    fn __repr__(&self) -> String {
        format!("CustomVideoSource(width={}, height={}, color_format={:?})", self.source.width(), self.source.height(), self.source.color_format().as_str())
    }
}

/// A track carrying a `CustomVideoSource`, with a UUID4 `id`. Name it as the camera
/// (`{"camera": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}`) or
/// publish it with `add_custom_video_track`. Raises `TypeError` unless `video_source` is a
/// `CustomVideoSource`.
#[pyclass(module = "daily", frozen)]
pub struct CustomVideoTrack {
    pub(crate) id: String,
    pub(crate) source: VideoSource,
}

#[pymethods]
impl CustomVideoTrack {
    // Documented on the struct: PyO3 shows the class docstring, not this one, in help().
    #[new]
    fn new(video_source: &Bound<'_, PyAny>) -> PyResult<Self> {
        guard(|| {
            let src = video_source
                .cast::<CustomVideoSource>()
                .map_err(|_| PyTypeError::new_err("video_source must be a CustomVideoSource"))?;
            let id = uuid::Uuid::new_v4().to_string();
            let source = src.get().source.clone();
            daily_client::sources::register_video_track(&id, &source);
            Ok(CustomVideoTrack { id, source })
        })
    }
    /// The track id (a UUID4 string).
    #[getter]
    fn id(&self) -> String {
        self.id.clone()
    }
}

impl Drop for CustomVideoTrack {
    fn drop(&mut self) {
        daily_client::sources::unregister_video_track(&self.id);
    }
}

/// A virtual camera (`Daily.create_camera_device`): select it as the camera input by name
/// (`{"camera": {"isEnabled": True, "settings": {"deviceId": name}}}`). Frames are sent as
/// from a `CustomVideoSource` of the same size and format. Not constructible.
#[pyclass(module = "daily", frozen)]
pub struct VirtualCameraDevice {
    name: String,
    source: VideoSource,
}

impl VirtualCameraDevice {
    /// `Daily.create_camera_device`: needs `Daily.init()` like the other devices.
    pub(crate) fn create(device_name: &str, width: i64, height: i64, color_format: &str) -> PyResult<Self> {
        global()?;
        let (width, height, format) = check_geometry(width, height, color_format)?;
        let source = VideoSource::new(width, height, format).map_err(to_py_err)?;
        daily_client::sources::register_camera(device_name, &uuid::Uuid::new_v4().to_string(), &source);
        Ok(VirtualCameraDevice { name: device_name.to_owned(), source })
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
        self.source.width()
    }
    /// Height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.source.height()
    }
    /// The colour format frames must have.
    #[getter]
    fn color_format(&self) -> &'static str {
        self.source.color_format().as_str()
    }
    /// Writes one frame from any C-contiguous buffer and returns at once. Its size in bytes
    /// follows `CustomVideoSource.write_frame`'s rule (`width * height * 4` for the 32-bit
    /// formats, `* 3` for RGB, `width * height + 2 * ceil(width / 2) * ceil(height / 2)` for
    /// I420). Raises `ValueError` for a wrong size, `TypeError` for a non-buffer.
    fn write_frame(&self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<()> {
        guard(|| write(py, &self.source, frame))
    }
    fn __repr__(&self) -> String {
        format!(
            "VirtualCameraDevice(name={:?}, width={}, height={}, color_format={:?})",
            self.name,
            self.source.width(),
            self.source.height(),
            self.source.color_format().as_str()
        )
    }
}

#[pymethods]
impl crate::process::Daily {
    /// Creates a virtual camera called `device_name` taking `width` x `height` frames (1-8192
    /// pixels each) in `color_format` (`RGBA, BGRA, ARGB, ABGR, RGB, I420`). A
    /// later camera of the same name replaces it as that name's device. Raises `ValueError` for
    /// bad arguments, `RuntimeError` before `init`.
    #[staticmethod]
    #[pyo3(signature = (device_name, width, height, color_format="RGBA"))]
    fn create_camera_device(device_name: &str, width: i64, height: i64, color_format: &str) -> PyResult<VirtualCameraDevice> {
        guard(|| VirtualCameraDevice::create(device_name, width, height, color_format))
    }
}
