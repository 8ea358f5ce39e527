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
//!
//! Errors (`errors.rs`): a careless call fails at the call, never later on a dispatcher
//! thread: `TypeError` for a wrong type (a `completion` or `callback` that is not callable is
//! refused when extracted, see `errors::Callback`; settings dicts are checked against Daily's
//! shapes by `daily_client::check`), `ValueError` for a value outside what the API or the
//! room server takes (names over `daily_proto`'s limits, unknown keys), `RuntimeError` for
//! state (before `Daily.init()`, after `release()` / `Daily.deinit()`). Every `#[pymethods]`
//! body that can fail runs under `errors::guard`, so a Rust panic surfaces as `RuntimeError`
//! rather than PyO3's `PanicException` (a `BaseException` that `except Exception` misses); a
//! unit test scans the sources for methods without it. Every completion fires exactly once:
//! `dispatch::Pending` fires with an error if the core drops it unreported, and completions
//! of a released client go to the process's dispatcher instead of being lost.

use daily_client::CallState;
use pyo3::prelude::*;

mod audio;
mod client;
mod convert;
mod devices;
mod dispatch;
mod errors;
mod events;
mod logs;
mod process;
mod recorder;
mod rooms;
mod server;
mod sound;
mod recording;
mod unsupported;
mod video;
mod video_client;

pub use audio::{AudioData, CustomAudioSource, CustomAudioTrack};
pub use client::CallClient;
pub use devices::{NativeVad, VirtualMicrophoneDevice, VirtualSpeakerDevice};
pub use events::EventHandler;
pub use process::{Daily, LogLevel};
pub use recorder::_AudioRecorder;
pub use server::_RoomServer;
pub use video::{CustomVideoSource, CustomVideoTrack, VideoFrame, VirtualCameraDevice};

/// The native module of the `daily` package (Rust, PyO3): the same classes as `import daily`,
/// whose docstrings are the reference. `daily.pyi` beside it types them for type checkers.
///
/// Errors, everywhere: a careless call fails at the call, never later on a callback thread.
/// `TypeError` for an argument of the wrong type (a `completion` or `callback` that is not
/// callable, a settings value of the wrong type), `ValueError` for a value outside what the
/// API or the room server takes, `RuntimeError` for the object's state (before `Daily.init()`,
/// after `release()` or `Daily.deinit()`) and for internal errors.
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
    m.add_class::<sound::SystemMicrophoneDevice>()?;
    m.add_class::<sound::SystemSpeakerDevice>()?;
    m.add_class::<NativeVad>()?;
    m.add_class::<VideoFrame>()?;
    m.add_class::<CustomVideoSource>()?;
    m.add_class::<CustomVideoTrack>()?;
    m.add_class::<VirtualCameraDevice>()?;
    m.add_class::<_RoomServer>()?;
    m.add_class::<_AudioRecorder>()?;
    let _ = CallState::Initialized;
    Ok(())
}
