//! Packet slots and sequence-number bookkeeping of the [`JitterBuffer`].

use super::{JitterBuffer, SEQ_WINDOW};

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    pub(super) used: bool,
    pub(super) ext_seq: i64,
    pub(super) ext_ts: i64,
    pub(super) frames: usize,
    pub(super) len: usize,
    pub(super) arrival_us: u64,
}

/// Extends a 16-bit sequence number to the value nearest `reference` (RFC 3550 appendix A.1).
pub(super) fn unwrap16(reference: i64, v: u16) -> i64 {
    reference + i64::from(v.wrapping_sub(reference as u16) as i16)
}

/// Extends a 32-bit RTP timestamp to the value nearest `reference`.
pub(super) fn unwrap32(reference: i64, v: u32) -> i64 {
    reference + i64::from(v.wrapping_sub(reference as u32) as i32)
}

impl JitterBuffer {
    pub(super) fn earliest_slot(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.used)
            .min_by_key(|(_, s)| s.ext_ts)
            .map(|(i, _)| i)
    }

    pub(super) fn free(&mut self, i: usize) {
        self.slots[i].used = false;
        self.buffered -= 1;
    }

    /// End (timestamp + duration) of the latest queued packet at or after the playout point.
    pub(super) fn queue_end(&self, from: i64) -> Option<i64> {
        self.slots
            .iter()
            .filter(|s| s.used && s.ext_ts >= from)
            .map(|s| s.ext_ts + s.frames as i64)
            .max()
    }

    /// Span of the queued packets in frames, from the earliest start to the latest end.
    pub(super) fn queued_span(&self) -> usize {
        match self.earliest_slot() {
            Some(i) => {
                let start = self.slots[i].ext_ts;
                self.queue_end(start)
                    .map_or(0, |end| (end - start) as usize)
            }
            None => 0,
        }
    }

    /// Audio between the playout point and the end of the queue (holes included, since they
    /// will be concealed), plus what is already decoded.
    pub(super) fn level_frames(&self) -> usize {
        let queued = self
            .queue_end(self.next_ts)
            .map_or(0, |end| (end - self.next_ts).max(0) as usize);
        self.pcm_len + queued
    }

    pub(super) fn is_seen(&self, ext_seq: i64) -> bool {
        // Above the highest sequence number, the bit still belongs to a number that has slid out
        // of the window.
        if self.highest_seq.is_none_or(|h| ext_seq > h) {
            return false;
        }
        let bit = ext_seq.rem_euclid(SEQ_WINDOW) as usize;
        self.seen[bit / 64] & (1 << (bit % 64)) != 0
    }

    pub(super) fn mark_seen(&mut self, ext_seq: i64) {
        match self.highest_seq {
            Some(h) if ext_seq > h => {
                // Forget the sequence numbers that slide out of the window.
                if ext_seq - h >= SEQ_WINDOW {
                    self.seen = [0; (SEQ_WINDOW / 64) as usize];
                } else {
                    for s in h + 1..=ext_seq {
                        let bit = s.rem_euclid(SEQ_WINDOW) as usize;
                        self.seen[bit / 64] &= !(1 << (bit % 64));
                    }
                }
                self.highest_seq = Some(ext_seq);
            }
            Some(_) => {}
            None => self.highest_seq = Some(ext_seq),
        }
        let bit = ext_seq.rem_euclid(SEQ_WINDOW) as usize;
        self.seen[bit / 64] |= 1 << (bit % 64);
    }

    pub(super) fn playout_point(&self) -> Option<i64> {
        if self.playing {
            Some(self.next_ts)
        } else {
            self.played_until
        }
    }

    /// The sender's timestamps jumped backwards: drop everything queued and start over from
    /// this packet.
    pub(super) fn restart_timeline(&mut self, ext_ts: i64) {
        for s in &mut self.slots {
            s.used = false;
        }
        self.buffered = 0;
        self.go_idle();
        self.played_until = None;
        self.last_decoded_seq = None;
        self.ts_ref = Some(ext_ts);
        self.last_transit = None;
        self.min_transit = None;
        self.stalled = None;
    }
}
