//! The machine's own sound devices as a client's microphone and speaker, through
//! [cpal](https://docs.rs/cpal) (ALSA on Linux; PulseAudio and PipeWire through ALSA's pulse
//! plugin).
//!
//! A thin IO shell over the client's existing machinery: [`SystemMicrophone`] feeds an
//! [`daily_client::AudioSource`] from an input device, [`SystemSpeaker`] plays a
//! [`daily_client::SpeakerDevice`] on an output device. Each device has one thread that owns
//! its cpal stream and *pumps* audio between the stream's wait-free ring and the client's
//! source or speaker; the cpal data callbacks only convert samples into or out of that ring
//! (no lock, no allocation, no panic: `convert.rs`). Devices open at their own rate when the
//! media clock takes it, so the only resampling is the client's own (`config.rs`).
//!
//! ```no_run
//! use daily_client::{Engine, sources};
//! use daily_sound::{SystemMicrophone, SystemSpeaker, list_devices};
//!
//! let engine = Engine::start(2)?;
//! for d in list_devices()? {
//!     println!("{:?} {} default={} {:?} Hz", d.direction, d.name, d.is_default, d.default_sample_rate);
//! }
//! // The default microphone as virtual microphone "mic": a client selects it with
//! // client_settings {"inputs": {"microphone": {"isEnabled": true, "settings": {"deviceId": "mic"}}}}.
//! let mic = SystemMicrophone::open(&engine, None)?;
//! sources::register_microphone("mic", "system-mic-track", mic.source());
//! // The default output plays every remote participant of every client of the engine.
//! let out = SystemSpeaker::open(&engine, Some("default"))?;
//! engine.select_speaker(out.speaker());
//! // ... join with a CallClient; drop `mic` and `out` to close the devices.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod convert;
mod devices;
mod error;
mod libasound;
mod microphone;
mod speaker;
mod status;
mod stream;
mod thread;

pub use devices::{Direction, SoundDevice, list_devices};
pub use error::SoundError;
pub use microphone::SystemMicrophone;
pub use speaker::SystemSpeaker;
pub use status::StreamStats;
pub(crate) use stream::{build_input, build_output};
