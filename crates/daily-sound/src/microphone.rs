//! A system input device as a client's microphone.
//!
//! ```text
//!  cpal input callback ──(mono i16, wait-free rtrb ring, 1 s)──▶ pump thread
//!      (device thread: converts samples,                       (every 5 ms: whole 10 ms
//!       no lock, no allocation)                                 chunks into the AudioSource)
//!                                                                    │
//!                                       media clock ◀── AudioSource ring (the client's own)
//! ```
//! The source runs at the device's rate, mono; the clock resamples it to 48 kHz for Opus as it
//! does for any source. The device's clock and the media clock drift apart slowly: when more
//! than [`MAX_QUEUED_MS`] wait in the source, what waits is dropped (counted in
//! [`StreamStats::dropped_frames`]), so latency stays bounded.

use crate::config;
use crate::devices::{self, Direction};
use crate::status::{Status, StreamStats};
use crate::thread::StreamThread;
use crate::{SoundError, build_input};
use daily_client::AudioSource;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Capacity of the ring between the input callback and the pump, in ms.
const RING_MS: usize = 1000;
/// Most audio queued in the source before the backlog is dropped, in ms.
const MAX_QUEUED_MS: u64 = 200;
/// How often the pump moves audio, in ms.
const PUMP_MS: u64 = 5;

/// A system input device feeding an [`AudioSource`] (mono, at the device's rate). Publish the
/// source like any other: register it as a virtual microphone with
/// [`daily_client::sources::register_microphone`] and name it in `inputs.microphone.settings`
/// (`{"deviceId": ...}`), or as a custom track. The stream stops when this is dropped.
pub struct SystemMicrophone {
    device: String,
    source: AudioSource,
    status: Arc<Status>,
    sample_rate: u32,
    thread: StreamThread,
}

impl SystemMicrophone {
    /// Opens input device `name` (`None` or `"default"`: the default input) and starts
    /// capturing into a new source of `engine`. Errors: [`SoundError::NoDevice`] (listing
    /// the names there are), [`SoundError::Format`], [`SoundError::Stream`].
    pub fn open(
        engine: &daily_client::Engine,
        name: Option<&str>,
    ) -> Result<SystemMicrophone, SoundError> {
        let (dev, device) = devices::find(Direction::Input, name)?;
        let chosen = config::choose(&dev, &device, Direction::Input)?;
        let rate = chosen.config.sample_rate.0;
        let channels = usize::from(chosen.config.channels);
        let source = AudioSource::new(engine, rate, 1, true)?;
        let f10 = rate as usize / 100;
        let status = Arc::new(Status::default());
        let (prod, mut cons) = rtrb::RingBuffer::<i16>::new(f10 * RING_MS / 10);
        let (st, dev_name) = (status.clone(), device.clone());
        let build = move || build_input(&dev, &dev_name, &chosen, prod, channels, st);
        let (src, st) = (source.clone(), status.clone());
        let mut bytes = vec![0u8; f10 * 2];
        let max_queued = u64::from(rate) * MAX_QUEUED_MS / 1000;
        let pump = move || {
            while cons.slots() >= f10 {
                let Ok(chunk) = cons.read_chunk(f10) else {
                    break;
                };
                let (a, b) = chunk.as_slices();
                for (o, s) in bytes.chunks_exact_mut(2).zip(a.iter().chain(b.iter())) {
                    o.copy_from_slice(&s.to_le_bytes());
                }
                chunk.commit_all();
                // A zero-sized completion: boxing it allocates nothing.
                if src.write_with_completion(&bytes, Box::new(|_| {})).is_err() {
                    break;
                }
            }
            if src.queued_frames() > max_queued {
                let dropped = src.clear_queue();
                st.dropped_frames.fetch_add(dropped, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(PUMP_MS));
        };
        let thread = StreamThread::spawn("daily-sound-in", &device, Direction::Input, build, pump)?;
        tracing::info!(device = %device, rate, channels, "system microphone open");
        Ok(SystemMicrophone {
            device,
            source,
            status,
            sample_rate: rate,
            thread,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.device
    }

    /// The source the device feeds (mono, [`sample_rate`](Self::sample_rate) Hz).
    pub fn source(&self) -> &AudioSource {
        &self.source
    }

    /// The rate the device is captured at, in Hz (also the source's).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Frames captured and lost so far, and the stream's error if it failed (device unplugged).
    pub fn stats(&self) -> StreamStats {
        self.status.snapshot()
    }

    /// Stops capturing and closes the device (also done on drop). The source stays usable
    /// and sends silence.
    pub fn close(&mut self) {
        self.thread.stop();
    }
}
