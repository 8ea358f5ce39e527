//! The receive side of a session: which m-line of the receive transport carries which remote
//! track (from the server's subscribe offers), the receive pipeline (jitter buffer, PLC,
//! renderers) of each remote track on the media clock, and the task that moves each remote
//! track's RTP payloads into its pipeline's ring.

use super::client::ClientInner;
use super::session::{Session, Transports};
use crate::ClientError;
use crate::clock::{MediaClock, NodeId};
use crate::record::{RecLink, Track};
use crate::receive::{InPacket, MAX_PAYLOAD, RecvNode, RecvStats, RenderSink, Renderer};
use crate::video::{VideoFeed, VideoRecv, VideoRendererSpec};
use daily_proto::{ClientMessage, ForwardedTrack};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

pub(crate) struct RendererSpec {
    pub participant_id: String,
    pub audio_source: String,
    pub sample_rate: u32,
    pub interval_ms: u32,
    pub sink: Arc<dyn Fn(&[i16]) + Send + Sync>,
}

struct RecvTrack {
    node: NodeId,
    closed: Arc<AtomicBool>,
    stats: Arc<RecvStats>,
    channels: u16,
}

impl RecvTrack {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Receive-side state of the client (one session at a time).
#[derive(Default)]
pub(crate) struct Media {
    /// The session the pipelines belong to.
    generation: u64,
    pub renderers: Vec<RendererSpec>,
    /// Forwarded tracks of the current receive-transport offer, by mid.
    forwarded: HashMap<String, ForwardedTrack>,
    recv: HashMap<(String, String), RecvTrack>,
    /// Video renderers the application set (`set_video_renderer`).
    pub video_renderers: Vec<VideoRendererSpec>,
    /// Receive pipelines of remote video tracks, by (participant, source name).
    video: HashMap<(String, String), VideoRecv>,
    /// Recordings running on this client: new pipelines (and send pipes) get a tap of each.
    pub recorders: Vec<Arc<RecLink>>,
}

/// Taps every receive pipeline of the client for `link` and lists it for pipelines made later.
pub(crate) fn tap_receivers(inner: &ClientInner, link: &Arc<RecLink>) {
    let mut m = super::client::relock_media(inner);
    m.recorders.push(link.clone());
    for t in m.recv.values() {
        let tap = link.make_tap(Track::User, 48_000, t.channels);
        inner.clock.with_node::<RecvNode>(t.node, move |n| n.taps.add(tap));
    }
}

impl Media {
    /// A new session starts: pipelines of an older one stop.
    pub fn start(&mut self, generation: u64, clock: &MediaClock) {
        self.end(self.generation, clock);
        self.generation = generation;
    }

    /// Session `generation` ended: its pipelines stop.
    pub fn end(&mut self, generation: u64, clock: &MediaClock) {
        if generation != self.generation {
            return;
        }
        self.forwarded.clear();
        // Renderers name participants of this session, who are gone with it: a client that
        // joins and leaves again and again must not keep one per call (issue 16).
        self.renderers.clear();
        self.video_renderers.clear();
        for (_, t) in self.recv.drain() {
            t.close();
            clock.remove(t.node);
        }
        for (_, v) in self.video.drain() {
            v.close();
        }
    }

    pub fn participant_left(&mut self, generation: u64, participant_id: &str) {
        if generation != self.generation {
            return;
        }
        self.renderers.retain(|r| r.participant_id != participant_id);
        self.video_renderers.retain(|r| r.participant_id != participant_id);
        self.recv.retain(|(p, _), t| {
            let keep = p != participant_id;
            if !keep {
                t.close();
            }
            keep
        });
        self.video.retain(|(p, _), v| {
            let keep = p != participant_id;
            if !keep {
                v.close();
            }
            keep
        });
    }

    /// Adds a video renderer: to the track's pipeline now if it is received, and to every
    /// pipeline of that track started later.
    pub fn add_video_renderer(&mut self, spec: VideoRendererSpec) {
        if let Some(v) = self.video.get(&(spec.participant_id.clone(), spec.video_source.clone())) {
            v.add_renderer(spec.format, spec.sink.clone());
        }
        self.video_renderers.push(spec);
    }

    pub fn add_renderer(&mut self, clock: &MediaClock, spec: RendererSpec) {
        if let Some(rt) = self.recv.get(&(spec.participant_id.clone(), spec.audio_source.clone())) {
            attach_renderer(clock, rt, &spec);
        }
        self.renderers.push(spec);
    }

    pub fn receive_stats(&self) -> Value {
        let mut out = serde_json::Map::new();
        for ((pid, src), t) in &self.recv {
            let e = out.entry(pid.clone()).or_insert_with(|| json!({}));
            e[src] = json!({
                "packetsReceived": t.stats.received.load(Ordering::Relaxed),
                "packetsLost": t.stats.lost.load(Ordering::Relaxed),
                "packetsLate": t.stats.late.load(Ordering::Relaxed),
                "jitterBufferDelayMs": t.stats.delay_ms.load(Ordering::Relaxed),
                "concealedMs": t.stats.concealed_ms.load(Ordering::Relaxed),
            });
        }
        for ((pid, src), v) in &self.video {
            let e = out.entry(pid.clone()).or_insert_with(|| json!({}));
            let s = &v.stats;
            e[src] = json!({
                "packetsReceived": s.packets.load(Ordering::Relaxed),
                "packetsLate": s.packets_late.load(Ordering::Relaxed),
                "framesAssembled": s.frames_assembled.load(Ordering::Relaxed),
                "framesDecoded": s.frames_decoded.load(Ordering::Relaxed),
                "framesDropped": s.frames_dropped.load(Ordering::Relaxed),
                "keyframes": s.keyframes.load(Ordering::Relaxed),
                "pliSent": s.plis.load(Ordering::Relaxed),
            });
        }
        Value::Object(out)
    }

    /// A new subscribe offer: remember what each m-line carries; tracks no longer forwarded
    /// stop rendering.
    fn offer(&mut self, generation: u64, tracks: Vec<ForwardedTrack>) -> bool {
        if generation != self.generation {
            return false;
        }
        let new: HashMap<String, ForwardedTrack> = tracks.into_iter().map(|t| (t.mid.clone(), t)).collect();
        self.recv.retain(|(pid, src), t| {
            let keep = new.values().any(|f| !f.source.is_video() && f.participant_id == *pid && f.source.source_name() == src);
            if !keep {
                t.close();
            }
            keep
        });
        self.video.retain(|(pid, src), v| {
            let keep = new.values().any(|f| f.source.is_video() && f.participant_id == *pid && f.source.source_name() == src);
            if !keep {
                v.close();
            }
            keep
        });
        self.forwarded = new;
        true
    }

    /// Binds the receive pipeline for `mid`: keeps `current` if it still carries the track
    /// the latest offer maps to `mid`, else starts a new one. The server reuses an inactive
    /// m-line (same mid and SSRC) for a later track, so the mapping is re-read after every
    /// subscribe offer, not only when the track first opens.
    fn bind(&mut self, clock: &MediaClock, generation: u64, mid: &str, current: Option<NodeId>, current_video: Option<&VideoFeed>) -> Bind {
        if self.generation != generation {
            return Bind::Gone;
        }
        let Some(ft) = self.forwarded.get(mid).cloned() else { return Bind::Unmapped };
        let key = (ft.participant_id.clone(), ft.source.source_name().to_owned());
        if ft.source.is_video() {
            return self.bind_video(key, current_video);
        }
        if let (Some(cur), Some(t)) = (current, self.recv.get(&key)) {
            if t.node == cur {
                return Bind::Keep;
            }
        }
        if let Some(old) = self.recv.remove(&key) {
            old.close();
        }
        let channels = 1u16;
        let (prod, cons) = rtrb::RingBuffer::new(128);
        let closed = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(RecvStats::default());
        let Ok(mut node) = RecvNode::new(channels, cons, closed.clone(), stats.clone()) else { return Bind::Unmapped };
        for l in self.recorders.iter().filter(|l| l.live()) {
            node.taps.add(l.make_tap(Track::User, 48_000, channels));
        }
        let node = clock.add(node);
        let rt = RecvTrack { node, closed, stats, channels };
        for spec in self.renderers.iter().filter(|s| s.participant_id == key.0 && s.audio_source == key.1) {
            attach_renderer(clock, &rt, spec);
        }
        self.recv.insert(key, rt);
        Bind::New(node, prod)
    }
}

impl Media {
    /// [`Media::bind`] for a video m-line: keeps the feed if its pipeline still renders `key`,
    /// else starts a decoder with the renderers set for `key`.
    fn bind_video(&mut self, key: (String, String), current: Option<&VideoFeed>) -> Bind {
        if let (Some(cur), Some(v)) = (current, self.video.get(&key)) {
            if cur.belongs_to(v) && !cur.is_closed() {
                return Bind::Keep;
            }
        }
        if let Some(old) = self.video.remove(&key) {
            old.close();
        }
        let Some((recv, feed)) = VideoRecv::start() else { return Bind::Unmapped };
        for spec in self.video_renderers.iter().filter(|s| s.participant_id == key.0 && s.video_source == key.1) {
            recv.add_renderer(spec.format, spec.sink.clone());
        }
        self.video.insert(key, recv);
        Bind::NewVideo(Box::new(feed))
    }
}

fn attach_renderer(clock: &MediaClock, rt: &RecvTrack, spec: &RendererSpec) {
    let sink = spec.sink.clone();
    let boxed: RenderSink = Box::new(move |pcm: &[i16]| sink(pcm));
    if let Ok(r) = Renderer::new(rt.channels, spec.sample_rate, spec.interval_ms, boxed) {
        clock.with_node::<RecvNode>(rt.node, move |n| n.renderers.push(r));
    }
}

enum Bind {
    Keep,
    New(NodeId, rtrb::Producer<InPacket>),
    NewVideo(Box<VideoFeed>),
    Unmapped,
    Gone,
}

impl Bind {
    fn label(&self) -> &'static str {
        match self {
            Bind::Keep => "kept",
            Bind::New(..) => "new pipeline",
            Bind::NewVideo(..) => "new video pipeline",
            Bind::Unmapped => "m-line not forwarded",
            Bind::Gone => "session gone",
        }
    }
}

/// Answers a subscribe offer of the server on the receive transport.
pub(crate) async fn on_subscribe_offer(
    inner: &Arc<ClientInner>,
    session: &Session,
    t: &Transports,
    sdp: String,
    tracks: Vec<ForwardedTrack>,
) -> Result<(), ClientError> {
    if !super::client::relock_media(inner).offer(session.generation, tracks) {
        return Ok(());
    }
    t.forward_version.fetch_add(1, Ordering::AcqRel);
    let werr = super::session::werr;
    let desc = webrtc::peer_connection::RTCSessionDescription::offer(sdp).map_err(werr)?;
    t.recv_pc.set_remote_description(desc).await.map_err(werr)?;
    let answer = t.recv_pc.create_answer(None).await.map_err(werr)?;
    t.recv_pc.set_local_description(answer).await.map_err(werr)?;
    let sdp = super::session::wait_local_sdp(&t.recv_pc, &t.recv_gathered).await?;
    tracing::debug!("receive transport negotiated");
    session
        .ws_tx
        .send(ClientMessage::SubscribeAnswer { sdp })
        .map_err(|_| ClientError::Signalling("signalling connection closed".into()))?;
    Ok(())
}

/// A remote track opened on the receive transport: find what it is (by mid) and feed its
/// receive pipeline.
pub(crate) async fn on_remote_track(inner: Weak<ClientInner>, generation: u64, transports: Weak<Transports>, track: Arc<dyn TrackRemote>) {
    let mut producer: Option<rtrb::Producer<InPacket>> = None;
    let mut node: Option<NodeId> = None;
    let mut video: Option<Box<VideoFeed>> = None;
    let mut mid: Option<String> = None;
    let mut ssrc: Option<u32> = None;
    let mut seen_version = u64::MAX;
    let Some((clock, version)) = inner.upgrade().zip(transports.upgrade()).map(|(i, t)| (i.clock.clone(), t.forward_version.clone())) else {
        return;
    };
    while let Some(ev) = track.poll().await {
        match ev {
            TrackRemoteEvent::OnOpen(init) => {
                let Some(t) = transports.upgrade() else { return };
                // The m-line is found by the stream's SSRC in the server's offer (RFC 8866
                // `a=ssrc`, RFC 5576): receiver ids do not identify the m-line reliably once
                // the transport has been renegotiated several times.
                ssrc = Some(init.ssrc);
                if let Some(d) = t.recv_pc.remote_description().await {
                    mid = mid_for_ssrc(&d.sdp, init.ssrc);
                }
                tracing::debug!(ssrc = init.ssrc, mid = ?mid, "remote track opened");
            }
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                let v = version.load(Ordering::Acquire);
                if v != seen_version {
                    // A new offer may move this SSRC to another m-line: look it up again.
                    if let (Some(x), Some(t)) = (ssrc, transports.upgrade()) {
                        if let Some(d) = t.recv_pc.remote_description().await {
                            mid = mid_for_ssrc(&d.sdp, x).or(mid);
                        }
                    }
                }
                let Some(m) = mid.as_deref() else { continue };
                if v != seen_version {
                    seen_version = v;
                    let Some(inner) = inner.upgrade() else { return };
                    let b = super::client::relock_media(&inner).bind(&clock, generation, m, node, video.as_deref());
                    tracing::debug!(mid = m, version = v, bind = b.label(), "receive pipeline bound");
                    match b {
                        Bind::Keep => {}
                        Bind::New(n, p) => {
                            node = Some(n);
                            producer = Some(p);
                            video = None;
                        }
                        Bind::NewVideo(f) => {
                            node = None;
                            producer = None;
                            video = Some(f);
                        }
                        Bind::Unmapped => {
                            node = None;
                            producer = None;
                            video = None;
                        }
                        Bind::Gone => return,
                    }
                }
                if let Some(feed) = video.as_mut() {
                    let h = &pkt.header;
                    if feed.push(std::time::Instant::now(), h.sequence_number, h.timestamp, h.marker, &pkt.payload) {
                        // RFC 4585 section 6.3.1: the sender (through the SFU) sends a keyframe.
                        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication { sender_ssrc: 0, media_ssrc: h.ssrc };
                        let _ = track.write_rtcp(vec![Box::new(pli)]).await;
                    }
                    continue;
                }
                let Some(p) = producer.as_mut() else { continue };
                let len = pkt.payload.len().min(MAX_PAYLOAD);
                if let Ok(mut slot) = p.write_chunk_uninit(1) {
                    let (a, _) = slot.as_mut_slices();
                    let cell = a[0].as_mut_ptr();
                    // SAFETY: `cell` points to one uninitialised slot we own until commit;
                    // every field is written before `commit_all` publishes it.
                    unsafe {
                        std::ptr::addr_of_mut!((*cell).seq).write(pkt.header.sequence_number);
                        std::ptr::addr_of_mut!((*cell).ts).write(pkt.header.timestamp);
                        std::ptr::addr_of_mut!((*cell).arrival_us).write(clock.now_us());
                        std::ptr::addr_of_mut!((*cell).len).write(len as u16);
                        let data = std::ptr::addr_of_mut!((*cell).data) as *mut u8;
                        std::ptr::copy_nonoverlapping(pkt.payload.as_ptr(), data, len);
                        std::ptr::write_bytes(data.add(len), 0, MAX_PAYLOAD - len);
                        slot.commit_all();
                    }
                }
            }
            TrackRemoteEvent::OnEnded => {
                tracing::debug!(mid = ?mid, "remote track ended");
                break;
            }
            _ => {}
        }
    }
}

/// The `a=mid` of the m-section of `sdp` that declares `a=ssrc:<ssrc>` (RFC 5576 section 4.1).
pub(crate) fn mid_for_ssrc(sdp: &str, ssrc: u32) -> Option<String> {
    let want = ssrc.to_string();
    let (mut mid, mut found) = (None::<&str>, false);
    for line in sdp.lines().chain(std::iter::once("m=end")) {
        if line.starts_with("m=") {
            if found {
                return mid.map(str::to_owned);
            }
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.trim());
        } else if let Some(rest) = line.strip_prefix("a=ssrc:") {
            if rest.split([' ', ':']).next() == Some(want.as_str()) {
                found = true;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::mid_for_ssrc;

    #[test]
    fn mid_is_found_by_ssrc_in_its_own_section() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a1\r\na=ssrc:111 cname:x\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ssrc:222 cname:y\r\na=mid:b2\r\n";
        assert_eq!(mid_for_ssrc(sdp, 111).as_deref(), Some("a1"));
        assert_eq!(mid_for_ssrc(sdp, 222).as_deref(), Some("b2")); // a=mid after a=ssrc
        assert_eq!(mid_for_ssrc(sdp, 333), None);
        assert_eq!(mid_for_ssrc(sdp, 11), None); // no prefix match
    }
}
