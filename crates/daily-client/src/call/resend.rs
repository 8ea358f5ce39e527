//! Retransmissions on the send transport, at most one per packet per round trip.
//!
//! The SFU (str0m) asks for a missing packet every 33 ms, up to five times, and webrtc-rs's NACK
//! responder resends on every ask. When the round trip is longer than 33 ms (a queue at a
//! bottleneck is enough) every loss was resent up to five times: behind a 400 kbit/s uplink the
//! resends of tail-dropped packets filled the link (400 kbit/s leaving for a 150 kbit/s
//! encoder), caused more drops, and queued in the pacer for seconds. libwebrtc's sender ignores
//! a NACK for a packet it resent less than a round trip ago (`RTPSender::ReSendPacket`); this
//! does the same in front of webrtc-rs's responder, by editing the NACKs it reads.
//!
//! Nor is a packet resent once it is older than [`MAX_RESEND_AGE`]: the receivers have given up
//! on it by then (`video::REPAIR_WAIT`) and asked for a keyframe. webrtc-rs resends anything
//! still in its 1024-packet history; when a 400 kbit/s bottleneck cut in under a 680 kbit/s
//! stream, the resends of what it dropped took the link for the next 3 s (100 KB of RTX
//! against 41 KB of new video, counted at the server) and video arrived 2-5 s late.

use crate::netstats::ReportTable;
use rtc::interceptor::{Interceptor, NackResponderBuilder, NackResponderInterceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The spacing before the far end's first reception report gives a round trip.
const DEFAULT_SPACING: Duration = Duration::from_millis(100);
/// Bounds of the spacing (a round trip of a few ms would let every repeated NACK through, which
/// is right: on such a link a repeat means the resend was lost too).
const MIN_SPACING: Duration = Duration::from_millis(20);
const MAX_SPACING: Duration = Duration::from_secs(1);
/// Packets handed to the transport longer ago than this are not resent. A NACK reaches us about
/// a round trip (plus the far end's NACK period) after the packet left, and the resend needs
/// another one-way trip, while the receiver waits `REPAIR_WAIT` from the gap's discovery: a
/// packet asked for later than that after it was written would be resent for nobody.
pub(crate) const MAX_RESEND_AGE: Duration = crate::video::REPAIR_WAIT;

/// webrtc-rs's [`NackResponderInterceptor`], told only of packets it did not resend within
/// the last round trip (read from the reception reports of that SSRC).
pub(crate) struct SpacedResends {
    inner: NackResponderInterceptor,
    reports: ReportTable,
    /// When each (SSRC, sequence number) was last resent.
    resent: HashMap<(u32, u16), Instant>,
    /// When each packet of the last MAX_RESEND_AGE was written, and the same in write order
    /// (to forget them).
    written: HashMap<(u32, u16), Instant>,
    written_order: VecDeque<((u32, u16), Instant)>,
}

impl SpacedResends {
    pub(crate) fn new(reports: ReportTable) -> SpacedResends {
        SpacedResends {
            inner: NackResponderBuilder::new().build(),
            reports,
            resent: HashMap::new(),
            written: HashMap::new(),
            written_order: VecDeque::new(),
        }
    }

    fn spacing(&self, ssrc: u32) -> Duration {
        let rtt = self.reports.lock().unwrap_or_else(|e| e.into_inner()).get(&ssrc).and_then(|r| r.rtt);
        rtt.map_or(DEFAULT_SPACING, |s| Duration::from_secs_f64(s).clamp(MIN_SPACING, MAX_SPACING))
    }

    /// `nack` without the packets resent less than a round trip before `now`, or written more
    /// than MAX_RESEND_AGE before it (or unknown).
    fn filter(&mut self, now: Instant, nack: &TransportLayerNack) -> TransportLayerNack {
        let spacing = self.spacing(nack.media_ssrc);
        let mut keep = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let key = (nack.media_ssrc, seq);
                if self.written.get(&key).is_none_or(|t| now.saturating_duration_since(*t) > MAX_RESEND_AGE) {
                    continue;
                }
                if self.resent.get(&key).is_some_and(|t| now.saturating_duration_since(*t) < spacing) {
                    continue;
                }
                self.resent.insert(key, now);
                keep.push(seq);
            }
        }
        // Entries older than any spacing can be dropped (bounded by what the far end asks for).
        if self.resent.len() > 4096 {
            self.resent.retain(|_, t| now.saturating_duration_since(*t) < MAX_SPACING);
        }
        TransportLayerNack { sender_ssrc: nack.sender_ssrc, media_ssrc: nack.media_ssrc, nacks: nack_pairs_from_sequence_numbers(&keep) }
    }
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for SpacedResends {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            for p in packets.iter_mut() {
                let filtered = match p.as_any().downcast_ref::<TransportLayerNack>() {
                    Some(nack) => self.filter(msg.now, nack),
                    None => continue,
                };
                *p = Box::new(filtered);
            }
        }
        self.inner.handle_read(msg)
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(p) = &msg.message.packet {
            let key = (p.header.ssrc, p.header.sequence_number);
            self.written.insert(key, msg.now);
            self.written_order.push_back((key, msg.now));
            while let Some(&(k, t)) = self.written_order.front() {
                if msg.now.saturating_duration_since(t) <= MAX_RESEND_AGE {
                    break;
                }
                self.written_order.pop_front();
                if self.written.get(&k) == Some(&t) {
                    self.written.remove(&k);
                }
            }
        }
        self.inner.handle_write(msg)
    }

    super::interceptor::delegate_to_inner!();
}

impl Interceptor for SpacedResends {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_local_stream(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.resent.retain(|(ssrc, _), _| *ssrc != info.ssrc);
        self.written.retain(|(ssrc, _), _| *ssrc != info.ssrc);
        self.inner.unbind_local_stream(info);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_remote_stream(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_remote_stream(info);
    }
}
