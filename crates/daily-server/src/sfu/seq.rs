//! Sequence numbers of a forwarded stream that keep the publisher's gaps.
//!
//! One outgoing stream (a receive transport's m-line, one SSRC) carries one publisher's track
//! at a time, and over its life several (m-lines are reused). Its sequence numbers are ours:
//! the publisher's cannot be copied, they would jump or repeat whenever the m-line changes
//! hands. But they must not be contiguous either: a receiver tells loss from silence (DTX) by
//! the gap in sequence numbers alone (RFC 3550 section 6.4.1's "cumulative number of packets
//! lost"; libwebrtc's NetEq conceals, or decodes in-band FEC from the next packet, only for
//! missing sequence numbers, and takes a timestamp jump without one for a pause). So each
//! output advances by the publisher's own delta: gaps stay gaps, late packets keep their place.

/// A jump of more than this many sequence numbers is taken for a restart of the source (a new
/// peer connection, a new encoder), not for loss: output continues at the next number. RFC
/// 3550 appendix A.1's `MAX_DROPOUT`.
pub(super) const MAX_DROPOUT: u64 = 3000;

/// A packet at most this many behind the newest one is late (reordered) and forwarded in its
/// place; older ones are dropped. RFC 3550 appendix A.1's `MAX_MISORDER`.
pub(super) const MAX_MISORDER: u64 = 100;

/// The mapping from a publisher's (extended) sequence numbers to one outgoing stream's.
#[derive(Debug, Clone)]
pub(super) struct SeqMap {
    /// Output number of the newest packet written (the stream's history across sources).
    last_out: Option<u64>,
    /// First output number, when nothing was written yet.
    initial: u64,
    /// Newest input number of the current source (`None` until its first packet).
    last_in: Option<u64>,
    /// First output number of the current source: a late packet never reuses an older one.
    first_out: u64,
}

impl SeqMap {
    /// A stream whose first packet gets `initial` (RFC 3550 section 5.1: random).
    pub(super) fn new(initial: u16) -> SeqMap {
        SeqMap {
            last_out: None,
            // Below 2^15 so str0m's extended number starts with a zero SRTP rollover counter.
            initial: u64::from(initial & 0x7fff),
            last_in: None,
            first_out: 0,
        }
    }

    /// The stream now carries another source (or the same track anew): its first packet
    /// continues right after the last one written.
    pub(super) fn new_source(&mut self) {
        self.last_in = None;
    }

    /// The output number for input number `seq`, or `None` for a repeat of the newest packet
    /// or a packet too late to place. (str0m's RTP mode already drops repeats of any packet it
    /// has seen, `is_new_packet`; this is not relied on for that.)
    pub(super) fn map(&mut self, seq: u64) -> Option<u64> {
        let next = self.last_out.map_or(self.initial, |o| o + 1);
        let (Some(last_in), Some(last_out)) = (self.last_in, self.last_out) else {
            self.start(seq, next);
            return Some(next);
        };
        if seq > last_in {
            let delta = seq - last_in;
            if delta > MAX_DROPOUT {
                self.start(seq, next);
                return Some(next);
            }
            self.last_in = Some(seq);
            self.last_out = Some(last_out + delta);
            return self.last_out;
        }
        let behind = last_in - seq;
        if behind == 0 || behind > MAX_MISORDER {
            return None;
        }
        last_out
            .checked_sub(behind)
            .filter(|out| *out >= self.first_out)
    }

    fn start(&mut self, seq: u64, out: u64) {
        self.last_in = Some(seq);
        self.last_out = Some(out);
        self.first_out = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_stay_gaps_and_late_packets_keep_their_place() {
        let mut m = SeqMap::new(100);
        assert_eq!(m.map(5000), Some(100));
        assert_eq!(m.map(5001), Some(101));
        assert_eq!(
            m.map(5004),
            Some(104),
            "two lost upstream: two missing here"
        );
        assert_eq!(m.map(5003), Some(103), "late packet in its place");
        assert_eq!(m.map(5004), None, "duplicate");
        assert_eq!(m.map(4999), None, "before this source's first packet");
        assert_eq!(m.map(5004 - MAX_MISORDER - 1), None, "too late");
        assert_eq!(m.map(5005), Some(105));
    }

    #[test]
    fn a_new_source_or_a_restart_continues_without_a_gap() {
        let mut m = SeqMap::new(0);
        assert_eq!(m.map(10), Some(0));
        assert_eq!(m.map(11), Some(1));
        m.new_source();
        assert_eq!(m.map(60000), Some(2), "another publisher on the m-line");
        assert_eq!(m.map(59999), None, "nothing before the switch");
        assert_eq!(m.map(60002), Some(4));
        assert_eq!(m.map(60002 + MAX_DROPOUT + 1), Some(5), "restart, not loss");
        assert_eq!(m.map(60002 + MAX_DROPOUT + 2), Some(6));
    }
}
