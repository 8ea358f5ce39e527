//! Delay estimation of the [`JitterBuffer`]: the RFC 3550 jitter estimate, remembered late
//! events ([`Peaks`]) and the target delay they give.

use super::JitterBuffer;
use crate::codec::MAX_PACKET_FRAMES;

/// Late-packet events remembered (see [`Peaks`]).
const PEAKS: usize = 8;
/// A late event older than this is forgotten.
const PEAK_MEMORY_US: u64 = 20_000_000;
/// Two late events further apart than this are not a pattern: the older ones are forgotten.
const PEAK_MAX_PERIOD_US: u64 = 10_000_000;
/// A packet this much later (ms) than the fastest recent one is remembered as a peak even if
/// the buffer covered it: one packet time.
const PEAK_MIN_MS: f32 = 20.0;
/// How fast the fastest-transit floor forgets, in 48 kHz ticks per packet (1 ms per second of
/// 20 ms packets): far above clock drift, far below a stall.
const MIN_TRANSIT_CREEP: f64 = 0.96;
/// How long a single late event's boost is held before it decays.
const PEAK_HOLD_US: u64 = 1_000_000;
/// Decay of the boost once its hold has ended, in ms per second.
const BOOST_DECAY_MS_PER_S: f32 = 20.0;
/// Multiple of the jitter estimate the target delay covers.
const JITTER_FACTOR: f32 = 4.0;

impl JitterBuffer {
    /// RFC 3550 section 6.4.1 / appendix A.8: J += (|D| - J) / 16, with D the change in relative
    /// transit time between consecutive packets, in timestamp units.
    ///
    /// Two departures from the RFC, both to measure network jitter rather than sender
    /// behaviour: only packets that advance the sequence are used (a reordered packet's lateness
    /// is handled by the late-packet boost instead of inflating J for every packet around it),
    /// and D is not taken across a timestamp gap longer than one maximal packet, where the
    /// sender paused (DTX, mute) or jumped its timestamps and the transit change means nothing.
    pub(super) fn update_jitter(&mut self, ext_ts: i64, now_us: u64) {
        let arrival = now_us as f64 * 0.048; // µs to 48 kHz ticks
        let transit = arrival - ext_ts as f64;
        let mut continuous = false;
        if let Some((last_ts, last_transit)) = self.last_transit {
            let dts = ext_ts - last_ts;
            if dts > 0 && dts <= MAX_PACKET_FRAMES as i64 {
                continuous = true;
                let d = (transit - last_transit).abs();
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some((ext_ts, transit));
        self.stats.jitter_ms = (self.jitter / 48.0) as f32;

        // Delay relative to the fastest recent packet (NetEq's "relative arrival delay"): a
        // stall shows here even when the buffer was deep enough to ride it out, so a pattern
        // of stalls keeps being remembered while it is covered. The floor creeps up slowly so
        // that a lasting route change or clock drift does not read as delay forever.
        let floor = match self.min_transit {
            Some(m) if continuous => (m + MIN_TRANSIT_CREEP).min(transit),
            _ => transit,
        };
        self.min_transit = Some(floor);
        let relative_ms = ((transit - floor) / 48.0) as f32;
        if relative_ms >= PEAK_MIN_MS {
            self.peaks.record(
                now_us,
                (self.min_delay_ms + relative_ms).min(self.target_ms),
            );
        }
    }

    pub(super) fn update_target(&mut self) {
        let boost_ms = self.peaks.boost(self.now_us);
        let jitter_ms = (self.jitter / 48.0) as f32;
        self.target_ms = self
            .min_delay_ms
            .max(JITTER_FACTOR * jitter_ms)
            .max(boost_ms)
            .min(self.max_delay_ms);
    }

    pub(super) fn update_delay_stats(&mut self) {
        self.stats.current_delay_ms = self.level_ms.round() as u32;
        self.stats.target_delay_ms = self.target_ms.round() as u32;
    }
}

/// Remembered late-packet events ("peaks", as in WebRTC NetEq's delay peak detector): each is
/// the delay that would have covered a packet that came late, and when it came.
///
/// A single late event (a stall while another call joined, one preempted thread) holds its
/// delay for [`PEAK_HOLD_US`] and then decays at [`BOOST_DECAY_MS_PER_S`]: an isolated spike
/// costs seconds of extra delay, not the rest of the call. Late events that recur (two or more,
/// no more than [`PEAK_MAX_PERIOD_US`] apart) are a pattern: the largest is held until twice
/// the longest interval between them has passed without another, so a link (or a machine)
/// that stalls every few seconds keeps the delay that covers it. Fixed size, no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Peaks {
    /// (time µs, delay ms), oldest first; `len` valid entries.
    at: [(u64, f32); PEAKS],
    len: usize,
}

impl Peaks {
    pub(super) fn record(&mut self, now_us: u64, height_ms: f32) {
        if let Some(&(last, h)) = self.at[..self.len].last()
            && now_us.saturating_sub(last) < 100_000
        {
            // The same stall (packets of one burst, or its concealment and then its late
            // arrival): one event, at its largest.
            self.at[self.len - 1] = (last, h.max(height_ms));
            return;
        }
        if self.len > 0 && now_us.saturating_sub(self.at[self.len - 1].0) > PEAK_MAX_PERIOD_US {
            self.len = 0;
        }
        if self.len == PEAKS {
            self.at.copy_within(1.., 0);
            self.len -= 1;
        }
        self.at[self.len] = (now_us, height_ms);
        self.len += 1;
    }

    /// The delay the remembered events ask for now, in ms (0 when none).
    pub(super) fn boost(&mut self, now_us: u64) -> f32 {
        let keep_from = self.at[..self.len]
            .iter()
            .position(|&(t, _)| now_us.saturating_sub(t) <= PEAK_MEMORY_US)
            .unwrap_or(self.len);
        if keep_from > 0 {
            self.at.copy_within(keep_from..self.len, 0);
            self.len -= keep_from;
        }
        let Some(&(last, _)) = self.at[..self.len].last() else {
            return 0.0;
        };
        let peaks = &self.at[..self.len];
        let height = peaks.iter().map(|p| p.1).fold(0.0, f32::max);
        let period = peaks
            .windows(2)
            .map(|w| w[1].0.saturating_sub(w[0].0))
            .max()
            .unwrap_or(0);
        let hold = PEAK_HOLD_US.max(2 * period);
        let since = now_us.saturating_sub(last);
        if since <= hold {
            return height;
        }
        let decay = (since - hold) as f32 / 1e6 * BOOST_DECAY_MS_PER_S;
        (height - decay).max(0.0)
    }
}
