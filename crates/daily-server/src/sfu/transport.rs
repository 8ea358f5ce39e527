//! str0m wrappers: one [`Transport`] per peer connection, its drain, and the deadline heap
//! that tells the shell when the earliest transport is due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::Mid;
use str0m::net::Transmit;
use str0m::rtp::RtpPacket;
use str0m::{Candidate, Event, IceConnectionState, Output, Rtc, RtcConfig};

use super::rooms::Participant;
use super::{ConnId, Sfu};

/// Smallest size past which the deadline heap is rebuilt (see [`Sfu::rebuild_timers`]).
pub(super) const TIMERS_REBUILD_MIN: usize = 1024;

/// The configuration every server transport is built from: Opus only, one DTLS certificate
/// shared by all of them. `None` when the certificate cannot be made.
pub(crate) fn rtc_config() -> Option<RtcConfig> {
    let provider = Arc::new(str0m::crypto::from_feature_flags());
    let cert = provider.dtls_provider.generate_certificate()?;
    Some(
        RtcConfig::new()
            .set_crypto_provider(provider)
            .set_dtls_cert(cert)
            .clear_codecs()
            .enable_opus(true, false)
            // Video: VP8 (RFC 7741), forwarded as received (no transcoding). Each publisher
            // encodes once for all subscribers, so every subscriber gets the same codec.
            .enable_vp8(true)
            // Receiver reports every second (str0m's audio default is 5 s) so a client's
            // 2 s network stats (send loss, RTT from LSR/DLSR) are never stale; a report is
            // ~50 bytes, far below RFC 3550 section 6.2's 5 % of an Opus stream.
            .set_rtcp_report_interval_audio(Duration::from_secs(1))
            // RTP mode: packets in (`Event::RtpPacket`), packets out (`StreamTx::write_rtp`),
            // with our own sequence numbers (`forward.rs`). str0m's frame mode renumbers
            // every outgoing stream contiguously, which hid upstream loss from receivers (a
            // gap became a timestamp jump their jitter buffers took for silence, so they skipped
            // audio instead of concealing it, and reported no loss: issue 16); and its
            // depacketizer held packets back behind a gap waiting for a retransmission that
            // Opus never gets. Each packet is forwarded the moment it is decrypted.
            .set_rtp_mode(true),
    )
}

/// A media packet a send transport received, with the m-line it arrived on.
pub(super) type Inbound = (Mid, RtpPacket);

/// Which of a participant's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Side {
    /// Client offers, server receives the participant's audio.
    Send,
    /// Server offers, server sends the others' audio.
    Recv,
}

/// One str0m peer connection and the deadline it asked for.
pub(super) struct Transport {
    pub(super) rtc: Rtc,
    pub(super) timeout: Instant,
    /// Whose transport this is, for its entries in [`Outq::timers`].
    conn: ConnId,
    side: Side,
    /// The deadline [`Outq::timers`] holds a live entry for (`None` once that entry was
    /// taken by [`Sfu::handle_timeout`], so the next drain schedules again).
    pub(super) scheduled: Option<Instant>,
    /// When a datagram (STUN, DTLS, RTP or RTCP) last arrived from the peer (its creation
    /// until one does). A detached participant whose transports all fell silent is dead
    /// (`resume.rs`): every client sends something each second or so (RTCP reports, ICE
    /// consent checks, RFC 7675), so silence is a better sign than str0m's ICE state, which
    /// turns `Disconnected` only after its binding retransmits run out (about 24 s, measured).
    pub(super) last_heard: Instant,
}

/// What draining a transport produces besides media: datagrams to send and its next deadline.
#[derive(Default)]
pub(super) struct Outq {
    pub(super) transmits: VecDeque<Transmit>,
    /// Every transport's deadline, earliest first, so a wake-up costs O(log n) rather than a
    /// scan of every transport (at 50 bot pairs the scans and their hashing were about a fifth
    /// of the server's CPU samples). Lazy deletion: an entry is live only while it equals its transport's `scheduled`;
    /// the rest are dropped as they reach the top.
    pub(super) timers: BinaryHeap<Reverse<(Instant, ConnId, Side)>>,
    /// PLI/FIR received on receive transports: `(subscriber, its m-line, kind)`, carried out
    /// by [`Sfu::handle_keyframe_requests`] (`keyframe.rs`).
    pub(super) keyframe_requests: Vec<(ConnId, Mid, str0m::media::KeyframeRequestKind)>,
}

impl Transport {
    /// Drains `poll_output` to `Timeout`: datagrams go to `out`, media to `media`, and the new
    /// deadline is scheduled in `out.timers` if it changed.
    pub(super) fn drain(&mut self, now: Instant, out: &mut Outq, media: &mut Vec<Inbound>) {
        self.drain_output(now, &mut out.transmits, &mut out.keyframe_requests, media);
        if self.scheduled != Some(self.timeout) {
            self.scheduled = Some(self.timeout);
            out.timers
                .push(Reverse((self.timeout, self.conn, self.side)));
        }
    }

    fn drain_output(
        &mut self,
        now: Instant,
        out: &mut VecDeque<Transmit>,
        keyframe_requests: &mut Vec<(ConnId, Mid, str0m::media::KeyframeRequestKind)>,
        media: &mut Vec<Inbound>,
    ) {
        // Bounded: str0m returns Timeout once it has nothing left; the cap only guards a bug.
        for _ in 0..100_000 {
            if !self.rtc.is_alive() {
                self.timeout = now + Duration::from_secs(3600);
                return;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => out.push_back(t),
                Ok(Output::Event(e)) => match e {
                    Event::RtpPacket(p) => {
                        // Looked up per packet: a BUNDLE stream is bound to its m-line by
                        // str0m (SSRC, or the mid header extension) before it emits one.
                        let mid = self
                            .rtc
                            .direct_api()
                            .stream_rx(&p.header.ssrc)
                            .map(|s| s.mid());
                        if let Some(mid) = mid {
                            media.push((mid, p));
                        }
                    }
                    Event::IceConnectionStateChange(s) => {
                        tracing::debug!(state = ?s, "ICE state");
                        if s == IceConnectionState::Disconnected {
                            tracing::info!("a transport lost ICE connectivity");
                        }
                    }
                    Event::Connected => tracing::debug!("transport connected (ICE + DTLS)"),
                    // Only a receive transport sends video, so only it is asked for keyframes.
                    Event::KeyframeRequest(r) if self.side == Side::Recv => {
                        tracing::debug!(mid = %r.mid, kind = ?r.kind, "keyframe request from a subscriber");
                        keyframe_requests.push((self.conn, r.mid, r.kind));
                    }
                    _ => {}
                },
                Err(e) => {
                    tracing::warn!(error = %e, "transport failed; disconnecting it");
                    self.rtc.disconnect();
                }
            }
        }
        tracing::error!("transport produced unbounded output; disconnecting it");
        self.rtc.disconnect();
    }
}

impl Participant {
    pub(super) fn transport(&self, side: Side) -> Option<&Transport> {
        match side {
            Side::Send => self.send.as_ref(),
            Side::Recv => self.recv.as_ref(),
        }
    }

    pub(super) fn transport_mut(&mut self, side: Side) -> Option<&mut Transport> {
        match side {
            Side::Send => self.send.as_mut(),
            Side::Recv => self.recv.as_mut(),
        }
    }
}

impl Sfu {
    /// Whether `(at, conn, side)` is the live entry of a live transport.
    pub(super) fn is_scheduled(&self, at: Instant, conn: ConnId, side: Side) -> bool {
        self.parts
            .get(&conn)
            .and_then(|p| p.transport(side))
            .is_some_and(|t| t.scheduled == Some(at) && t.rtc.is_alive())
    }

    /// Drops the stale entries: one live entry per live transport. Bounds the heap when
    /// deadlines keep moving later (each move leaves a stale entry behind until its time).
    pub(super) fn rebuild_timers(&mut self) {
        self.out.timers.clear();
        for p in self.parts.values_mut() {
            for t in [p.send.as_mut(), p.recv.as_mut()].into_iter().flatten() {
                t.scheduled = None;
                if t.rtc.is_alive() {
                    t.scheduled = Some(t.timeout);
                    self.out.timers.push(Reverse((t.timeout, t.conn, t.side)));
                }
            }
        }
        self.rebuild_at = (4 * self.out.timers.len()).max(TIMERS_REBUILD_MIN);
    }

    pub(super) fn new_transport(&mut self, now: Instant, conn: ConnId, side: Side) -> Transport {
        let mut rtc = self.rtc_config.clone().build(now);
        match Candidate::host(self.udp_addr, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => {
                tracing::error!(error = %e, addr = %self.udp_addr, "cannot make a host candidate")
            }
        }
        // Due at once: the first timeout starts ICE.
        self.out.timers.push(Reverse((now, conn, side)));
        Transport {
            rtc,
            timeout: now,
            conn,
            side,
            scheduled: Some(now),
            last_heard: now,
        }
    }
}
