//! The real-time halves: cpal data callbacks that move 16-bit PCM between a device buffer and
//! a wait-free SPSC ring (`rtrb`). They convert the sample type and the channel layout in
//! place, and take no lock, allocate nothing and cannot panic (no indexing; the channel count
//! is checked to be at least 1 before a callback is built).

use crate::status::Status;
use cpal::{FromSample, Sample, SizedSample};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The mono mix of one interleaved device frame, as 16-bit PCM (the mean of its channels).
fn mix<T>(frame: &[T]) -> i16
where
    T: Sample,
    i16: FromSample<T>,
{
    let n = frame.len().max(1) as i32;
    let sum: i32 = frame.iter().map(|s| i32::from(i16::from_sample(*s))).sum();
    (sum / n) as i16
}

/// An input callback: each device frame becomes one mono 16-bit sample in `ring`. Frames the
/// ring has no room for are counted as lost (the pump thread fell behind by the ring's length).
pub(crate) fn capture<T>(
    mut ring: rtrb::Producer<i16>,
    channels: usize,
    status: Arc<Status>,
) -> impl FnMut(&[T], &cpal::InputCallbackInfo) + Send + 'static
where
    T: SizedSample,
    i16: FromSample<T>,
{
    let channels = channels.max(1);
    move |data: &[T], _| {
        let frames = data.len() / channels;
        status.callback(frames);
        let n = frames.min(ring.slots());
        if let Ok(chunk) = ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(data.chunks_exact(channels).map(mix::<T>));
        }
        if n < frames {
            status
                .lost_frames
                .fetch_add((frames - n) as u64, Ordering::Relaxed);
        }
    }
}

/// Writes one frame of (left, right) to a device frame of any channel count: mono gets their
/// mean, stereo and wider get left and right in the first two channels and silence elsewhere.
fn put<T>(frame: &mut [T], l: i16, r: i16)
where
    T: Sample + FromSample<i16>,
{
    match frame {
        [m] => *m = T::from_sample(((i32::from(l) + i32::from(r)) / 2) as i16),
        [a, b, rest @ ..] => {
            *a = T::from_sample(l);
            *b = T::from_sample(r);
            rest.fill(T::EQUILIBRIUM);
        }
        [] => {}
    }
}

/// What an output callback plays from and to.
pub(crate) struct Output {
    /// Interleaved 16-bit PCM of `ring_channels` channels, filled by the pump.
    pub ring: rtrb::Consumer<i16>,
    /// 1 or 2.
    pub ring_channels: usize,
    /// The device's channel count.
    pub channels: usize,
    /// Frames kept beyond one period before playback (re)starts.
    pub margin_frames: usize,
}

/// An output callback: plays interleaved 16-bit PCM of `ring_channels` (1 or 2) channels from
/// `ring`, silence when it runs dry.
///
/// The ring is filled 10 ms at a time by the pump while the device drains it a period at a
/// time (often 20-50 ms at once), so a callback that took whatever was there would run dry
/// now and then mid-period and play a gap. Instead playback is *primed*: it starts (and, after
/// running dry, restarts) only once the ring holds this callback's whole period plus
/// `margin_frames`, which costs that much latency once and leaves the period's jitter absorbed.
/// Frames played as silence for lack of audio after priming, while the speaker is live, are
/// counted as lost.
pub(crate) fn playback<T>(
    out: Output,
    status: Arc<Status>,
) -> impl FnMut(&mut [T], &cpal::OutputCallbackInfo) + Send + 'static
where
    T: SizedSample + FromSample<i16>,
{
    let Output {
        mut ring,
        ring_channels,
        channels,
        margin_frames,
    } = out;
    let channels = channels.max(1);
    let rc = ring_channels.clamp(1, 2);
    let mut primed = false;
    move |data: &mut [T], _| {
        let frames = data.len() / channels;
        status.callback(frames);
        let ready = ring.slots() / rc;
        if !primed && ready >= frames + margin_frames {
            primed = true;
        }
        let n = if primed { frames.min(ready) } else { 0 };
        let mut played = 0;
        if n > 0
            && let Ok(chunk) = ring.read_chunk(n * rc)
        {
            let (a, b) = chunk.as_slices();
            let mut it = a.iter().chain(b.iter()).copied();
            for frame in data.chunks_exact_mut(channels).take(n) {
                let l = it.next().unwrap_or(0);
                let r = if rc == 2 { it.next().unwrap_or(0) } else { l };
                put(frame, l, r);
                played += 1;
            }
            chunk.commit_all();
        }
        for s in data.iter_mut().skip(played * channels) {
            *s = T::EQUILIBRIUM;
        }
        if primed && played < frames {
            primed = false;
            if status.live.load(Ordering::Relaxed) {
                status
                    .lost_frames
                    .fetch_add((frames - played) as u64, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_averages_channels_of_any_sample_type() {
        assert_eq!(mix(&[1000i16, 3000]), 2000);
        assert_eq!(mix(&[0.5f32]), 16384);
        assert_eq!(mix(&[i32::MIN, i32::MIN]), i16::MIN);
    }

    #[test]
    fn put_maps_stereo_to_any_layout() {
        let mut mono = [0i16];
        put(&mut mono, 100, 300);
        assert_eq!(mono, [200]);
        let mut quad = [7i16; 4];
        put(&mut quad, 1, 2);
        assert_eq!(quad, [1, 2, 0, 0]);
        let mut f = [1.0f32; 2];
        put(&mut f, i16::MIN, 0);
        assert_eq!(f, [-1.0, 0.0]);
    }

    #[test]
    fn playback_waits_for_a_period_then_plays_and_counts_what_it_lacks() {
        let (mut prod, cons) = rtrb::RingBuffer::new(16);
        let status = Arc::new(Status::default());
        status.live.store(true, Ordering::Relaxed);
        let mut cb = playback::<f32>(
            Output {
                ring: cons,
                ring_channels: 1,
                channels: 2,
                margin_frames: 0,
            },
            status.clone(),
        );
        let t = cpal::StreamInstant::new(0, 0);
        let info = cpal::OutputCallbackInfo::new(cpal::OutputStreamTimestamp {
            callback: t,
            playback: t,
        });
        let mut out = [9.0f32; 8];
        for s in [16384i16, -16384] {
            prod.push(s).unwrap();
        }
        // 2 frames ready, the period is 4: not primed yet, silence, nothing lost.
        cb(&mut out, &info);
        assert_eq!(out, [0.0; 8]);
        assert_eq!(status.lost_frames.load(Ordering::Relaxed), 0);
        for s in [0i16, 0, 16384, 16384] {
            prod.push(s).unwrap();
        }
        // 6 frames ready: primed, plays a whole period (mono duplicated to stereo).
        cb(&mut out, &info);
        assert_eq!(out, [0.5, 0.5, -0.5, -0.5, 0.0, 0.0, 0.0, 0.0]);
        // 2 frames left for a period of 4: plays them, 2 frames of silence counted as lost.
        cb(&mut out, &info);
        assert_eq!(out, [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(status.lost_frames.load(Ordering::Relaxed), 2);
        assert_eq!(status.frames.load(Ordering::Relaxed), 12);
    }
}
