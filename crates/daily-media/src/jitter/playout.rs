//! Playout of the [`JitterBuffer`]: starting and stopping, decoding, concealment, and the
//! 10 ms steps that shrink the delay.

use super::{FRAMES_PER_MS, JitterBuffer, Playout, SHRINK_NEED, XFADE};
use crate::codec::MAX_PACKET_BYTES;
use crate::{FRAME_10MS_48K, OPUS_FRAME_20MS};

/// Opus frame durations, and so PLC lengths, are multiples of 2.5 ms (RFC 6716 section 2.1.4).
const GRANULE: usize = 120;
/// Concealment is generated in steps of at most one packet time.
const PLC_CHUNK: usize = OPUS_FRAME_20MS;
/// At most one 10 ms drop per second of loud audio: there a drop is a skip a listener may hear.
const SHRINK_INTERVAL_US: u64 = 1_000_000;
/// 10 ms of decoded audio whose samples all stay within this (about -42 dBFS) is a pause that
/// can be dropped to shrink the delay without being heard.
const QUIET_PEAK: i16 = 256;
/// Shortest observation window before a pause is dropped: the window's lowest buffer level
/// must show the spare delay over at least this long.
const QUIET_SHRINK_INTERVAL_US: u64 = 200_000;

enum Next {
    Decode(usize),
    Gap(usize, usize),
    Empty,
}

impl JitterBuffer {
    pub(super) fn try_start(&mut self, now_us: u64) -> bool {
        let Some(first) = self.earliest_slot() else {
            return false;
        };
        let s = self.slots[first];
        let span_ms = self.queued_span() as f32 / FRAMES_PER_MS;
        let waited_ms = now_us.saturating_sub(s.arrival_us) as f32 / 1000.0;
        if span_ms < self.target_ms && waited_ms < self.target_ms {
            return false;
        }
        self.playing = true;
        self.next_ts = s.ext_ts;
        self.waited = 0;
        self.pcm_len = 0;
        self.window_min_ms = f32::MAX;
        self.window_start_us = now_us;
        // Audio queued before playout starts (packets that arrived together while the
        // transport came up) is a backlog, not jitter: start at the target instead of
        // shrinking it away 10 ms per second later, which would shift the stream mid-speech.
        // More than one packet beyond the target cannot be arrival jitter of a single packet
        // (pairs arriving together are); skip down to the target, the level the steady state
        // returns to anyway.
        let target = ((self.target_ms * FRAMES_PER_MS) as usize).max(self.packet_frames);
        if self.level_frames() > target + self.packet_frames {
            self.skip_to(target);
        }
        true
    }

    pub(super) fn go_idle(&mut self) {
        if self.playing {
            self.played_until = Some(self.next_ts);
        }
        self.playing = false;
        self.pcm_len = 0;
        self.waited = 0;
    }

    fn next_packet(&mut self) -> Next {
        loop {
            let Some(i) = self.earliest_slot() else {
                return Next::Empty;
            };
            let s = self.slots[i];
            if s.ext_ts < self.next_ts {
                // Overlaps audio already played (a retransmission with a new sequence number, or
                // overtaken by concealment).
                self.free(i);
                self.stats.late_dropped += 1;
                continue;
            }
            let gap = (s.ext_ts - self.next_ts) as usize;
            if gap < GRANULE {
                // Less than the smallest Opus frame: timestamp rounding, not a missing packet.
                self.next_ts = s.ext_ts;
                return Next::Decode(i);
            }
            return Next::Gap(i, gap);
        }
    }

    /// Decodes (and, if `conceal_gaps`, conceals) until the FIFO holds `need` frames. Returns
    /// false if it ran out of packets first.
    pub(super) fn fill(&mut self, need: usize, conceal_gaps: bool) -> bool {
        while self.pcm_len < need {
            match self.next_packet() {
                Next::Empty => return false,
                Next::Decode(i) => self.decode_slot(i),
                Next::Gap(i, gap) => {
                    if !conceal_gaps {
                        return false;
                    }
                    self.handle_gap(i, gap);
                }
            }
        }
        true
    }

    fn decode_slot(&mut self, i: usize) {
        let s = self.slots[i];
        self.free(i);
        if let Some(last) = self.last_decoded_seq
            && s.ext_seq > last + 1
        {
            self.stats.lost += (s.ext_seq - last - 1) as u64;
        }
        self.last_decoded_seq = Some(
            self.last_decoded_seq
                .map_or(s.ext_seq, |l| l.max(s.ext_seq)),
        );
        if self.waited > 0 {
            // We concealed while waiting for this very packet: it was late, not lost. The
            // buffer has grown by the wait; keep the target from shrinking it straight back.
            let h = self.target_ms + self.waited as f32 / FRAMES_PER_MS;
            self.peaks.record(self.now_us, h);
            self.waited = 0;
        }
        let ch = self.channels;
        let start = self.pcm_len * ch;
        let payload = &self.payloads[i * MAX_PACKET_BYTES..i * MAX_PACKET_BYTES + s.len];
        match self
            .decoder
            .decode(payload, &mut self.pcm[start..start + s.frames * ch])
        {
            Ok(n) if n > 0 => {
                let n = n.min(s.frames);
                self.concealed[self.pcm_len..self.pcm_len + n].fill(false);
                self.pcm_len += n;
            }
            _ => {
                // Corrupt payload: treat the packet as lost.
                self.stats.lost += 1;
                self.conceal(s.frames);
            }
        }
        self.next_ts = s.ext_ts + s.frames as i64;
        self.played_until = Some(self.next_ts);
    }

    fn handle_gap(&mut self, i: usize, gap: usize) {
        let s = self.slots[i];
        let seq_gap = self.last_decoded_seq.map_or(1, |last| s.ext_seq - last - 1);
        if seq_gap <= 0 || gap as f32 > self.max_delay_ms * FRAMES_PER_MS {
            // Either no packet is missing (the sender skipped this stretch: DTX, a timestamp
            // jump) or the gap is too long to conceal usefully: continue at the next packet.
            self.next_ts = s.ext_ts;
            self.waited = 0;
            return;
        }
        // Concealment already played while waiting stands in for the missing audio.
        let credit = self.waited.min(gap);
        self.next_ts += credit as i64;
        self.waited -= credit;
        let gap = gap - credit;
        if gap < GRANULE {
            self.next_ts = s.ext_ts;
            return;
        }
        let n = gap.min(PLC_CHUNK) / GRANULE * GRANULE;
        if n == gap && n == s.frames {
            // Exactly one frame is missing, and the next packet is here: libopus can rebuild it
            // from that packet's in-band FEC (LBRR) data, or falls back to PLC if there is none.
            let ch = self.channels;
            let start = self.pcm_len * ch;
            let payload = &self.payloads[i * MAX_PACKET_BYTES..i * MAX_PACKET_BYTES + s.len];
            let ok = matches!(self.decoder.decode_fec(payload, &mut self.pcm[start..start + n * ch]), Ok(m) if m == n);
            if ok {
                self.concealed[self.pcm_len..self.pcm_len + n].fill(true);
                self.pcm_len += n;
                self.stats.concealed_frames += n as u64;
            } else {
                self.conceal(n);
            }
        } else {
            self.conceal(n);
        }
        self.next_ts += n as i64;
    }

    /// Appends `frames` (rounded up to 2.5 ms) of libopus packet-loss concealment to the FIFO.
    pub(super) fn conceal(&mut self, frames: usize) {
        let ch = self.channels;
        let mut left = frames.div_ceil(GRANULE) * GRANULE;
        while left > 0 {
            let n = left.min(PLC_CHUNK);
            let range = self.pcm_len * ch..(self.pcm_len + n) * ch;
            let got = self
                .decoder
                .conceal(&mut self.pcm[range.clone()])
                .unwrap_or(0)
                .min(n);
            // libopus always fills the whole request; should it not, pad with silence.
            self.pcm[range.start + got * ch..range.end].fill(0);
            self.concealed[self.pcm_len..self.pcm_len + n].fill(true);
            self.pcm_len += n;
            self.stats.concealed_frames += n as u64;
            left -= n;
        }
    }

    /// Moves the first 10 ms of the FIFO to `out`.
    pub(super) fn emit(&mut self, out: &mut [i16]) -> Playout {
        let ch = self.channels;
        let n = FRAME_10MS_48K.min(self.pcm_len);
        let any_concealed = self.concealed[..n].iter().any(|&c| c);
        let samples = (n * ch).min(out.len());
        out[..samples].copy_from_slice(&self.pcm[..samples]);
        out[samples..].fill(0);
        self.pcm.copy_within(n * ch..self.pcm_len * ch, 0);
        self.concealed.copy_within(n..self.pcm_len, 0);
        self.pcm_len -= n;
        if any_concealed {
            Playout::Concealed
        } else {
            Playout::Audio
        }
    }

    /// After a burst (e.g. a network stall flushing at once) more than `max_delay_ms` may be
    /// queued; skip whole packets to get back to the target rather than play it all late.
    pub(super) fn trim_overflow(&mut self) {
        let max =
            ((self.max_delay_ms * FRAMES_PER_MS) as usize).max(FRAME_10MS_48K) + self.packet_frames;
        if self.level_frames() <= max {
            return;
        }
        self.skip_to((self.target_ms * FRAMES_PER_MS) as usize + self.packet_frames);
    }

    /// Skips the oldest whole packets until at most `keep` frames are buffered.
    pub(super) fn skip_to(&mut self, keep: usize) {
        while self.level_frames() > keep {
            let Some(i) = self.earliest_slot() else { break };
            let s = self.slots[i];
            self.free(i);
            self.stats.discarded += 1;
            self.next_ts = self.next_ts.max(s.ext_ts + s.frames as i64);
            self.last_decoded_seq = Some(
                self.last_decoded_seq
                    .map_or(s.ext_seq, |l| l.max(s.ext_seq)),
            );
        }
    }

    /// Drops 10 ms, cross-faded, when the buffer has held clearly more than the target: after a
    /// whole second of loud audio, or after 200 ms when the 10 ms to drop are a pause.
    pub(super) fn maybe_shrink(&mut self, now_us: u64) {
        let elapsed = now_us.saturating_sub(self.window_start_us);
        if elapsed < QUIET_SHRINK_INTERVAL_US {
            return;
        }
        let full_window = elapsed >= SHRINK_INTERVAL_US;
        // The lowest level a pop saw is the margin that protected us from an underrun (a pop
        // needs 10 ms). Starting at the target T with packets of P ms, it is about T - P + 10 ms
        // (for T = P = 20: the level alternates 20 and 10 ms). If it stayed 10 ms above that
        // for the whole window, 10 ms can go without leaving less margin than at the start.
        // Using the minimum rather than an average keeps bursty arrivals (e.g. packets coming
        // in pairs) from looking like excess delay.
        // We only shrink when 20 ms (not 10) are spare: a buffer that started one packet
        // above the target (two packets arriving together) holds steady instead of losing
        // 10 ms mid-stream, which a listener hears as a skip and a recorder as a time shift.
        let packet_ms = self.packet_frames as f32 / FRAMES_PER_MS;
        let threshold = self.target_ms - packet_ms + 30.0;
        let excess = self.window_min_ms >= threshold;
        if !excess || !self.fill(SHRINK_NEED, false) {
            if full_window {
                self.window_min_ms = f32::MAX;
                self.window_start_us = now_us;
            }
            return;
        }
        // In a pause (speech has one every few seconds) 10 ms go unheard, so the delay can
        // follow a falling target within seconds; in loud audio a drop is a skip a listener
        // may hear, so at most one a second (as NetEq, which accelerates freely only in
        // low-energy signal).
        let ch = self.channels;
        let quiet = self.pcm[..(FRAME_10MS_48K + XFADE) * ch]
            .iter()
            .all(|&x| x.unsigned_abs() <= QUIET_PEAK as u16);
        if !quiet && !full_window {
            return;
        }
        self.window_min_ms = f32::MAX;
        self.window_start_us = now_us;
        let ch = self.channels;
        for j in 0..XFADE {
            let w = (j + 1) as f32 / (XFADE + 1) as f32;
            for c in 0..ch {
                let a = f32::from(self.pcm[j * ch + c]);
                let b = f32::from(self.pcm[(FRAME_10MS_48K + j) * ch + c]);
                self.pcm[j * ch + c] = (a * (1.0 - w) + b * w).round() as i16;
            }
            self.concealed[j] |= self.concealed[FRAME_10MS_48K + j];
        }
        self.pcm
            .copy_within((FRAME_10MS_48K + XFADE) * ch..self.pcm_len * ch, XFADE * ch);
        self.concealed
            .copy_within(FRAME_10MS_48K + XFADE..self.pcm_len, XFADE);
        self.pcm_len -= FRAME_10MS_48K;
    }
}
