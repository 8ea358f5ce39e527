//! `CallClient`'s video calls: custom video tracks and video renderers.

use crate::client::CallClient;
use crate::dispatch::{call_reporting, done_one};
use crate::errors::{Callback, cb, guard, to_py_err};
use crate::video::{CustomVideoTrack, MAX_PENDING_FRAMES, VideoFrame, parse_format};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn video_track(obj: &Bound<'_, PyAny>) -> PyResult<(String, daily_client::VideoSource)> {
    let t = obj.cast::<CustomVideoTrack>().map_err(|_| PyTypeError::new_err("video_track must be a CustomVideoTrack"))?;
    let t = t.get();
    Ok((t.id.clone(), t.source.clone()))
}

#[pymethods]
impl CallClient {
    /// Publishes `video_track` as custom video `track_name` (1 to 256 bytes of UTF-8, not a
    /// Daily input name such as "camera"), VP8 within the camera's `sendSettings` limits;
    /// `completion(error)`. Others see it in the participant's `media.customVideo` and render
    /// it with `video_source=track_name`. Raises `ValueError` for a bad name, `TypeError` for a
    /// `video_track` that is not a `CustomVideoTrack` or a `completion` that is not callable.
    #[pyo3(signature = (track_name, video_track, completion=None))]
    fn add_custom_video_track(&self, track_name: &str, video_track: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let (id, source) = self::video_track(video_track)?;
            daily_client::validate_custom_track_name(track_name).map_err(to_py_err)?;
            let core = self.core()?;
            core.add_custom_video_track(track_name, id, source, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Replaces the source of custom video `track_name`; `completion(error)` (an error if no
    /// such track is published). Same errors as `add_custom_video_track`.
    #[pyo3(signature = (track_name, video_track, completion=None))]
    fn update_custom_video_track(&self, track_name: &str, video_track: &Bound<'_, PyAny>, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let (id, source) = self::video_track(video_track)?;
            daily_client::validate_custom_track_name(track_name).map_err(to_py_err)?;
            let core = self.core()?;
            core.update_custom_video_track(track_name, id, source, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Stops publishing custom video `track_name`; `completion(error)`.
    #[pyo3(signature = (track_name, completion=None))]
    fn remove_custom_video_track(&self, track_name: &str, completion: Option<Callback>) -> PyResult<()> {
        guard(|| {
            let core = self.core()?;
            core.remove_custom_video_track(track_name, done_one(self.dispatcher.clone(), cb(completion)));
            Ok(())
        })
    }

    /// Calls `callback(participant_id, VideoFrame, video_source)` for every frame decoded from
    /// that participant's `video_source` (`"camera"`, `"screenVideo"` or a custom video track
    /// name), converted to `color_format` (`RGBA, BGRA, ARGB, ABGR, RGB, I420`). The renderer
    /// lasts until the participant leaves or the call ends, and applies as soon as the track
    /// is received (subscribe to it: pipecat unsubscribes cameras by default). Callbacks run
    /// on the client's completions thread; while one is slow, at most two frames wait and
    /// newer ones are dropped. `logging_interval_ms` (ms) is accepted for daily-python
    /// compatibility and not used. Raises `ValueError` for a malformed participant id (the
    /// real SDK aborts) or colour format, `TypeError` if `callback` is not callable.
    #[pyo3(signature = (participant_id, callback, video_source="camera", color_format="RGBA", logging_interval_ms=10000))]
    fn set_video_renderer(
        &self,
        participant_id: &str,
        callback: Callback,
        video_source: &str,
        color_format: &str,
        logging_interval_ms: i64,
    ) -> PyResult<()> {
        guard(|| {
            let _ = logging_interval_ms;
            if uuid::Uuid::parse_str(participant_id).is_err() {
                return Err(PyValueError::new_err(format!("participant_id must be a participant UUID, got {participant_id:?}")));
            }
            let format = parse_format(color_format)?;
            let core = self.core()?;
            let disp = self.dispatcher.clone();
            let cb = Arc::new(callback.0);
            let pid: Arc<str> = participant_id.into();
            let src: Arc<str> = video_source.into();
            let pending = Arc::new(AtomicUsize::new(0));
            let sink = Arc::new(move |f: &daily_client::VideoFrameRef<'_>| {
                if pending.load(Ordering::Acquire) >= MAX_PENDING_FRAMES {
                    return; // the callback is behind: this frame is dropped, not queued
                }
                pending.fetch_add(1, Ordering::AcqRel);
                let data = f.data.to_vec();
                let (w, h, ts, fmt) = (f.width, f.height, f.timestamp_us, f.color_format);
                let (cb, pid, src, pending) = (cb.clone(), pid.clone(), src.clone(), pending.clone());
                disp.post_video(move |py| {
                    pending.fetch_sub(1, Ordering::AcqRel);
                    let frame = VideoFrame { buffer: PyBytes::new(py, &data).unbind(), width: w, height: h, timestamp_us: ts, color_format: fmt };
                    match Py::new(py, frame) {
                        Ok(f) => call_reporting(py, &cb, (&*pid, f, &*src)),
                        Err(e) => e.write_unraisable(py, None),
                    }
                });
            });
            core.set_video_renderer(participant_id, video_source, format, sink).map_err(to_py_err)
        })
    }
}
