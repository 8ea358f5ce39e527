//! A system output device playing a client's speaker.
//!
//! ```text
//!  media clock ──▶ SpeakerDevice ring ──▶ pump thread ──(i16, wait-free rtrb ring)──▶ cpal output callback
//!  (mix of remote tracks,        (blocking 10 ms reads,              (device thread: converts, maps
//!   resampled to the device)      paced by the clock)                 channels, silence when dry)
//! ```
//! The speaker runs at the device's rate with its channel count (mono or stereo; wider devices
//! get stereo in their first two channels). The latency between the clock and the device is
//! what waits in the ring; above [`MAX_QUEUED_MS`] the newest 10 ms are dropped rather than
//! queued, so drift between the two clocks cannot grow it.

use crate::config;
use crate::convert::Output;
use crate::devices::{self, Direction};
use crate::status::{Status, StreamStats};
use crate::thread::StreamThread;
use crate::{SoundError, build_output};
use daily_client::SpeakerDevice;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Capacity of the ring between the pump and the output callback, in ms.
const RING_MS: usize = 500;
/// Audio kept in the ring beyond one device period before playback starts, in ms: absorbs
/// the jitter between the pump's 10 ms writes and the device's period reads.
const MARGIN_MS: usize = 20;
/// How long the pump sleeps when no audio is ready, in ms.
const PUMP_IDLE_MS: u64 = 3;
/// Most audio waiting for the device before new audio is dropped, in ms.
const MAX_QUEUED_MS: usize = 200;

/// A system output device playing a [`SpeakerDevice`]. Select the speaker with
/// [`daily_client::Engine::select_speaker`] to hear every remote participant of every client
/// of the engine. The stream stops when this is dropped.
pub struct SystemSpeaker {
    device: String,
    speaker: SpeakerDevice,
    status: Arc<Status>,
    thread: StreamThread,
}

impl SystemSpeaker {
    /// Opens output device `name` (`None` or `"default"`: the default output) with a new
    /// speaker of `engine`, not yet selected. Errors as [`crate::SystemMicrophone::open`].
    pub fn open(
        engine: &daily_client::Engine,
        name: Option<&str>,
    ) -> Result<SystemSpeaker, SoundError> {
        let (dev, device) = devices::find(Direction::Output, name)?;
        let chosen = config::choose(&dev, &device, Direction::Output)?;
        let rate = chosen.config.sample_rate.0;
        let channels = usize::from(chosen.config.channels);
        let ring_channels = channels.min(2);
        let speaker = SpeakerDevice::new(engine, rate, ring_channels as u16)?;
        let f10 = rate as usize / 100;
        let status = Arc::new(Status::default());
        let cap = f10 * ring_channels * RING_MS / 10;
        let (mut prod, cons) = rtrb::RingBuffer::<i16>::new(cap);
        let (st, dev_name) = (status.clone(), device.clone());
        let out = Output {
            ring: cons,
            ring_channels,
            channels,
            margin_frames: f10 * MARGIN_MS / 10,
        };
        let build = move || build_output(&dev, &dev_name, &chosen, out, st);
        let (sp, st) = (speaker.clone(), status.clone());
        let max_queued = f10 * ring_channels * MAX_QUEUED_MS / 10;
        let pump = move || {
            // What is ready, never a blocking read: the pump must see `stop` within
            // milliseconds whatever the call does (a blocked read kept a device from closing).
            let pcm = sp.read_available(f10);
            st.live.store(sp.is_live(), Ordering::Relaxed);
            if pcm.is_empty() {
                // Nothing yet (the next 10 ms tick), or not selected / no call.
                std::thread::sleep(Duration::from_millis(PUMP_IDLE_MS));
                return;
            }
            let queued = cap - prod.slots();
            if queued + pcm.len() > max_queued {
                st.dropped_frames
                    .fetch_add((pcm.len() / ring_channels) as u64, Ordering::Relaxed);
                return;
            }
            if let Ok(chunk) = prod.write_chunk_uninit(pcm.len()) {
                chunk.fill_from_iter(pcm.iter().copied());
            }
        };
        let thread =
            StreamThread::spawn("daily-sound-out", &device, Direction::Output, build, pump)?;
        tracing::info!(device = %device, rate, channels, "system speaker open");
        Ok(SystemSpeaker {
            device,
            speaker,
            status,
            thread,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.device
    }

    /// The speaker the device plays (at the device's rate, 1 or 2 channels).
    pub fn speaker(&self) -> &SpeakerDevice {
        &self.speaker
    }

    /// Frames played and lost so far, and the stream's error if it failed.
    pub fn stats(&self) -> StreamStats {
        self.status.snapshot()
    }

    /// Stops playing and closes the device (also done on drop).
    pub fn close(&mut self) {
        self.thread.stop();
    }
}
