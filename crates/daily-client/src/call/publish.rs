//! The send side of a session on webrtc-rs: the send transport's m-lines and what each
//! carries, the (re)negotiation that makes it carry exactly what the core listed, the task
//! per published track that puts Opus frames from the media clock into RTP packets, and the
//! construction of both peer connections.

use super::client::ClientInner;
use super::core::SendTrackSpec;
use super::session::{Session, Transports, wait_local_sdp, werr};
use super::settings::{SendSettings, VideoSendSettings};
use super::types::IceConfig;
use crate::ClientError;
use crate::MediaSource;
use crate::send::{SendPipe, out_queue, rand_u32};
use crate::SourceHandle;
use crate::source::AudioSource;
use crate::video::{VideoSendStats, VideoSender, VideoSenderConfig};
use daily_proto::{ClientMessage, PublishedTrack, TrackSource};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RtpSender;

/// The payload type our offers and answers give VP8 (Chromium's too).
const VP8_PT: u8 = 96;
/// RTX (RFC 4588) for VP8: retransmissions travel on their own SSRC with this payload type.
/// 97 is what the SFU (str0m) offers too.
const VP8_RTX_PT: u8 = 97;
/// Frames at or above this level (in -dBov, RFC 6464) carry the voice-activity bit.
const VOICE_LEVEL_DBOV: u8 = 50;
/// The RFC 6464 client-to-mixer audio level header extension.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// How long a publish waits for the server's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// One sending m-line of the send transport and its RTP stream (SSRC, sequence numbers).
///
/// An m-line is never removed once added: when what it carries goes away it turns dormant
/// (`live` is `None`, nothing sent) and the next track to publish takes it over, keeping its
/// SSRC. Removing a transceiver and adding another makes webrtc-rs reuse the m-line with a new
/// SSRC, which str0m then did not always accept (a re-published microphone stayed silent in
/// some runs of `tests/republish.rs`).
pub(crate) struct SendTrack {
    live: Option<LiveSend>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    /// Next RTP sequence number, continued across the streams the m-line carries.
    seq: Arc<std::sync::atomic::AtomicU16>,
    sender: Arc<dyn RtpSender>,
    pt: Arc<std::sync::atomic::AtomicU8>,
    /// An `m=video` line (VP8) rather than `m=audio` (Opus); an m-line keeps its kind.
    video: bool,
    /// Set by the transport's RTCP tap when the server asks for a keyframe (PLI/FIR).
    keyframe: Arc<std::sync::atomic::AtomicBool>,
}

/// What a send m-line currently carries.
struct LiveSend {
    key: TrackSource,
    /// Encoder settings the pipe was built with (a change rebuilds the pipe).
    send: SendSettings,
    video_send: VideoSendSettings,
    track_id: String,
    source: MediaSource,
    running: Running,
}

/// The media work behind a live m-line.
enum Running {
    /// An Opus send pipe on the media clock and the task that packetizes its frames.
    Audio { source: AudioSource, pipe_id: u64, task: tokio::task::JoinHandle<()> },
    /// A video encoder thread and its network task.
    Video(VideoSender),
}

impl SendTrack {
    /// Stops carrying anything (the m-line stays, dormant).
    pub(crate) fn detach(&mut self) {
        if let Some(l) = self.live.take() {
            match l.running {
                Running::Audio { source, pipe_id, task } => {
                    source.detach(pipe_id);
                    task.abort();
                }
                Running::Video(v) => v.stop(),
            }
        }
    }

    /// Counters of the video encoder this m-line runs, if any.
    pub(crate) fn video_stats(&self) -> Option<(&TrackSource, &Arc<VideoSendStats>)> {
        match &self.live {
            Some(LiveSend { key, running: Running::Video(v), .. }) => Some((key, &v.stats)),
            _ => None,
        }
    }
}

/// Taps every audio send pipe of the transport for a recording that starts. Waits (at most
/// 2 s) for a publish in progress to finish with the tracks.
pub(crate) fn tap_senders(t: &Transports, link: &Arc<crate::record::RecLink>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let tracks = loop {
        match t.send_tracks.try_lock() {
            Ok(g) => break g,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => {
                tracing::warn!("a publish held the send tracks for 2 s: the recording misses what they send until they change");
                return;
            }
        }
    };
    for st in tracks.iter() {
        if let Some(LiveSend { running: Running::Audio { source, pipe_id, .. }, .. }) = &st.live {
            source.add_tap(*pipe_id, link.make_tap(crate::record::Track::Bot, source.sample_rate(), source.channels()));
        }
    }
}

/// Video send counters of the transport's tracks, by source name (`send_stats()["video"]`).
pub(crate) fn video_send_stats(t: &Transports) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    if let Ok(tracks) = t.send_tracks.try_lock() {
        for (key, s) in tracks.iter().filter_map(SendTrack::video_stats) {
            out.insert(
                key.source_name().to_owned(),
                serde_json::json!({
                    "framesEncoded": s.frames_encoded.load(Ordering::Relaxed),
                    "keyframes": s.keyframes.load(Ordering::Relaxed),
                    "framesSkipped": s.frames_skipped.load(Ordering::Relaxed),
                    "framesDropped": s.frames_dropped.load(Ordering::Relaxed),
                    "bytes": s.bytes.load(Ordering::Relaxed),
                    "bitrate": s.bitrate.load(Ordering::Relaxed),
                }),
            );
        }
    }
    out
}

/// (Re)negotiates the send transport so it carries exactly `want`; with `ice_restart`, the
/// offer carries new ICE credentials (RFC 8445 section 2.4, RFC 8829 section 4.1.10).
pub(crate) async fn publish(
    inner: &Arc<ClientInner>,
    session: &Session,
    t: &Transports,
    want: Vec<SendTrackSpec<MediaSource>>,
    ice_restart: bool,
) -> Result<(), ClientError> {
    let mut tracks = t.send_tracks.lock().await;
    let ignore_levels: Vec<TrackSource> = want.iter().filter(|w| w.ignore_level).map(|w| w.key.clone()).collect();
    // Detach what is no longer wanted as it is (source, id or settings changed).
    for st in tracks.iter_mut() {
        let same = st.live.as_ref().is_some_and(|l| {
            want.iter().any(|w| {
                w.key == l.key && w.track_id == l.track_id && w.source.same_source(&l.source) && w.send == l.send && w.video == l.video_send
            })
        });
        if !same {
            st.detach();
        }
    }
    for w in want {
        if tracks.iter().any(|st| st.live.as_ref().is_some_and(|l| l.key == w.key)) {
            continue;
        }
        // A dormant m-line of the same kind if there is one, else a new one.
        let video = w.key.is_video();
        let i = match tracks.iter().position(|st| st.live.is_none() && st.video == video) {
            Some(i) => i,
            None => {
                tracks.push(add_send_track(inner, t, &w.key).await?);
                tracks.len() - 1
            }
        };
        attach_send(inner, session, t, &mut tracks[i], w)?;
    }
    // Nothing was ever published: no send transport is needed yet (an offer without
    // m-lines carries no ICE credentials).
    if tracks.is_empty() && t.send_pc.local_description().await.is_none() {
        return Ok(());
    }
    let options = ice_restart.then(|| rtc::peer_connection::configuration::RTCOfferOptions { ice_restart: true, ..Default::default() });
    let offer = t.send_pc.create_offer(options).await.map_err(werr)?;
    t.send_pc.set_local_description(offer).await.map_err(werr)?;
    let sdp = wait_local_sdp(&t.send_pc, &t.send_gathered).await?;
    let mut published = Vec::new();
    for tr in t.send_pc.get_transceivers().await {
        let Ok(Some(sender)) = tr.sender().await else { continue };
        if let Some(l) = tracks.iter().find(|st| st.sender.id() == sender.id()).and_then(|st| st.live.as_ref()) {
            if let Ok(Some(mid)) = tr.mid().await {
                published.push(PublishedTrack {
                    mid,
                    track_id: l.track_id.clone(),
                    source: l.key.clone(),
                    ignore_audio_level: ignore_levels.contains(&l.key),
                });
            }
        }
    }
    let (tx, rx) = oneshot::channel();
    *session.publish_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    session
        .ws_tx
        .send(ClientMessage::PublishOffer { sdp, tracks: published })
        .map_err(|_| ClientError::Signalling("signalling connection closed".into()))?;
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, rx)
        .await
        .map_err(|_| ClientError::Timeout("the server did not answer the publish offer".into()))?
        .map_err(|_| ClientError::Signalling("signalling connection closed".into()))?;
    let desc = webrtc::peer_connection::RTCSessionDescription::answer(answer).map_err(werr)?;
    t.send_pc.set_remote_description(desc).await.map_err(werr)?;
    tracing::debug!(m_lines = tracks.len(), published = tracks.iter().filter(|st| st.live.is_some()).count(), "send transport negotiated");
    for st in tracks.iter() {
        if let Ok(params) = st.sender.get_parameters().await {
            if let Some(c) = params.rtp_parameters.codecs.first() {
                st.pt.store(c.payload_type, Ordering::Release);
            }
        }
    }
    Ok(())
}

/// Adds a sending m-line (an RTP stream with a fresh SSRC) of `key`'s kind to the send
/// transport: Opus on `m=audio`, VP8 on `m=video`.
async fn add_send_track(inner: &Arc<ClientInner>, t: &Transports, key: &TrackSource) -> Result<SendTrack, ClientError> {
    use rtc::media_stream::MediaStreamTrack;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind};
    let ssrc = rand_u32();
    let video = key.is_video();
    // Video gets an RTX SSRC (`a=ssrc-group:FID`): the SFU (str0m) asks for lost packets
    // only on a stream that declares one, and webrtc-rs's NACK responder resends on it.
    let rtx = video.then(|| RTCRtpRtxParameters { ssrc: rand_u32() });
    let stream_id = inner.with_core(|c| c.local_id().to_owned());
    let (kind, codec) = if video { (RtpCodecKind::Video, vp8_codec()) } else { (RtpCodecKind::Audio, opus_codec()) };
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream_id,
        uuid::Uuid::new_v4().to_string(),
        key.source_name().to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), rtx, ..Default::default() },
            codec,
            ..Default::default()
        }],
    )));
    let sender = t.send_pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.map_err(werr)?;
    let keyframe = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if video {
        t.keyframes.lock().unwrap_or_else(|e| e.into_inner()).insert(ssrc, keyframe.clone());
    }
    Ok(SendTrack {
        live: None,
        track,
        ssrc,
        seq: Arc::new(std::sync::atomic::AtomicU16::new(rand_u32() as u16)),
        sender,
        pt: Arc::new(std::sync::atomic::AtomicU8::new(0)),
        video,
        keyframe,
    })
}

/// Starts sending `w.source` on the m-line `st`: a send pipe on the media clock and a task
/// that puts its Opus frames in RTP packets (same SSRC, sequence numbers continued; the new
/// stream starts with the marker bit, RFC 3551 section 4.1).
fn attach_send(
    inner: &Arc<ClientInner>,
    session: &Session,
    t: &Transports,
    st: &mut SendTrack,
    w: SendTrackSpec<MediaSource>,
) -> Result<(), ClientError> {
    let source = match &w.source {
        MediaSource::Audio(a) => a.clone(),
        MediaSource::Video(v) => {
            let cfg = VideoSenderConfig { max_bitrate: w.video.max_bitrate, max_fps: w.video.max_fps };
            let out = crate::video::RtpOut {
                track: st.track.clone(),
                ssrc: st.ssrc,
                seq: st.seq.clone(),
                pt: st.pt.clone(),
                connected: t.send_connected.clone(),
                keyframe: st.keyframe.clone(),
                estimate: t.estimate.clone(),
            };
            // The first frame a new stream sends is a keyframe anyway; a stale request of a
            // previous stream on this m-line is void.
            st.keyframe.store(false, Ordering::Release);
            let sender = VideoSender::start(&inner.rt, v.clone(), cfg, out)?;
            let _ = session;
            st.live = Some(LiveSend { key: w.key, send: w.send, video_send: w.video, track_id: w.track_id, source: w.source, running: Running::Video(sender) });
            return Ok(());
        }
    };
    let (tx, mut rx) = out_queue();
    let pipe_id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let send: SendSettings = w.send;
    let pipe = SendPipe::new(
        pipe_id,
        source.sample_rate(),
        source.channels(),
        send.channels,
        send.bitrate,
        send.application,
        tx,
        rx.signal.clone(),
        session.send_stats.clone(),
    )?;
    let (pt, seq, track, ssrc) = (st.pt.clone(), st.seq.clone(), st.track.clone(), st.ssrc);
    let connected = t.send_connected.clone();
    let task = inner.rt.spawn(async move {
        while let Some(f) = rx.next().await {
            let pt = pt.load(Ordering::Acquire);
            if pt == 0 || !*connected.borrow() {
                continue;
            }
            let pkt = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: f.marker,
                    payload_type: pt,
                    sequence_number: seq.fetch_add(1, Ordering::Relaxed),
                    timestamp: f.rtp_timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload: bytes::Bytes::copy_from_slice(&f.payload[..f.len as usize]),
            };
            // RFC 6464: the level lets the SFU pick the active speaker without decoding.
            // The V bit marks frames louder than VOICE_LEVEL_DBOV (no VAD on the send path).
            let level = rtc::rtp::extension::HeaderExtension::AudioLevel(
                rtc::rtp::extension::audio_level_extension::AudioLevelExtension { level: f.level, voice: f.level <= VOICE_LEVEL_DBOV },
            );
            let _ = track.write_rtp_with_extensions(pkt, std::slice::from_ref(&level)).await;
        }
    });
    let mut pipe = pipe;
    for l in super::client::relock_media(inner).recorders.iter().filter(|l| l.live()) {
        pipe.taps.add(l.make_tap(crate::record::Track::Bot, source.sample_rate(), source.channels()));
    }
    source.attach(pipe);
    st.live = Some(LiveSend {
        key: w.key,
        send,
        video_send: w.video,
        track_id: w.track_id,
        source: w.source,
        running: Running::Audio { source, pipe_id, task },
    });
    Ok(())
}

/// VP8 (RFC 7741) with the feedback the SFU and receivers use: NACK for retransmission
/// (RFC 4585 section 6.2.1), PLI (section 6.3.1) and FIR (RFC 5104) for keyframes, and
/// transport-wide congestion control feedback for the bandwidth estimate.
fn vp8_codec() -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
    use rtc::rtp_transceiver::rtp_sender::RTCPFeedback;
    let fb = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() };
    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8.to_owned(),
        clock_rate: daily_video::VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli"), fb("ccm", "fir"), fb("transport-cc", "")],
    }
}

/// RTX for VP8 (RFC 4588, `apt` = VP8's payload type). Without it no video packet is ever
/// retransmitted, in either direction: str0m resends only on an RTX stream (it marks packets
/// of a payload type without one not nackable, and sends no NACK for a received stream
/// without a repair SSRC), so every lost packet cost a PLI and a keyframe.
fn vp8_rtx_codec() -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_RTX.to_owned(),
        clock_rate: daily_video::VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: format!("apt={VP8_PT}"),
        rtcp_feedback: vec![],
    }
}

fn opus_codec() -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) struct PcHandler {
    pub connected: watch::Sender<bool>,
    pub failed: watch::Sender<bool>,
    pub gathered: watch::Sender<bool>,
    /// For the receive transport: where remote tracks go.
    pub on_track: Option<(Weak<ClientInner>, u64, Arc<Mutex<Weak<Transports>>>)>,
    pub status: crate::netstats::ConnectionStatus,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PcHandler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.status.on_state(state);
        match state {
            RTCPeerConnectionState::Connected => {
                let _ = self.connected.send(true);
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                let _ = self.connected.send(false);
                let _ = self.failed.send(true);
            }
            RTCPeerConnectionState::Disconnected => {
                let _ = self.connected.send(false);
            }
            _ => {}
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some((inner, generation, transports)) = &self.on_track {
            if let Some(i) = inner.upgrade() {
                let t = transports.lock().unwrap_or_else(|e| e.into_inner()).clone();
                i.rt.spawn(super::route::on_remote_track(inner.clone(), *generation, t, track));
            }
        }
    }
}

/// How often the receive transport asks for missing video packets (str0m, the SFU, asks its
/// publishers as often: `NACK_MIN_INTERVAL`).
const NACK_INTERVAL: Duration = Duration::from_millis(33);

/// Silence from the server after which a transport is disconnected (`interrupted`).
pub const ICE_DISCONNECTED_AFTER: Duration = Duration::from_millis(1500);
/// Further silence after which it is failed (only an ICE restart revives it).
pub const ICE_FAILED_AFTER: Duration = Duration::from_secs(10);
/// How often consent is refreshed on the selected candidate pair (RFC 7675 section 5.1).
pub const ICE_CONSENT_INTERVAL: Duration = Duration::from_millis(250);

pub(crate) async fn build_pc(
    loopback: bool,
    handler: Arc<PcHandler>,
    reports: &crate::netstats::ReportTable,
    keyframes: &crate::video::KeyframeTable,
    ice: &IceConfig,
    congestion_control: bool,
) -> Result<Arc<dyn PeerConnection>, ClientError> {
    use rtc::interceptor::Registry;
    use rtc::peer_connection::configuration::RTCConfigurationBuilder;
    use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
    use rtc::peer_connection::configuration::media_engine::MediaEngine;
    use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodecParameters, RtpCodecKind};
    let mut me = MediaEngine::default();
    me.register_codec(RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: 111, ..Default::default() }, RtpCodecKind::Audio)
        .map_err(werr)?;
    me.register_header_extension(
        rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability { uri: AUDIO_LEVEL_URI.to_owned() },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(werr)?;
    me.register_codec(RTCRtpCodecParameters { rtp_codec: vp8_codec(), payload_type: VP8_PT, ..Default::default() }, RtpCodecKind::Video)
        .map_err(werr)?;
    me.register_codec(RTCRtpCodecParameters { rtp_codec: vp8_rtx_codec(), payload_type: VP8_RTX_PT, ..Default::default() }, RtpCodecKind::Video)
        .map_err(werr)?;
    // RTCP sender/receiver reports (network stats, RFC 3550 section 6.4) and, for video only,
    // NACK: the receive transport asks for lost packets, the send transport keeps a history to
    // resend them (RFC 4585 section 6.2.1); Opus is never retransmitted (a late packet is
    // concealed). Transport-wide congestion control (TWCC feedback, Google's congestion
    // control) runs with `congestion_control` only: on the send transport of a session that
    // publishes video from its start, to drive the video encoder's bitrate. Audio needs no
    // estimate (a few tens of kbit/s), and on the audio-only transports of 50 bot pairs the
    // TWCC numbering, feedback and pacer cost 0.94-1.13 % of a core per pair against
    // 0.84-0.95 % without (`benches/README.md`, issue 17); the SFU runs none of its own.
    //
    // NACK as `configure_nack` sets it up, but asking every NACK_INTERVAL instead of 100 ms:
    // a frame behind a gap waits for the repair at most `video::REPAIR_WAIT` (200 ms), and with
    // 100 ms rounds a repair whose NACK or retransmission was lost too needed more than that,
    // so at 5 % loss each way about one loss in eight still cost a PLI and a keyframe.
    for parameter in ["", "pli"] {
        me.register_feedback(rtc::rtp_transceiver::rtp_sender::RTCPFeedback { typ: "nack".to_owned(), parameter: parameter.to_owned() }, RtpCodecKind::Video);
    }
    let registry = configure_rtcp_reports(Registry::new())
        // At most one resend per packet per round trip (`resend.rs`).
        .with(rtc::interceptor::Slot::NackResponder, super::resend::SpacedResends::new(reports.clone()))
        .with(
            rtc::interceptor::Slot::NackGenerator,
            rtc::interceptor::NackGeneratorBuilder::new()
                .with_interval(NACK_INTERVAL)
                // No RTT-aware back-off in webrtc-rs: a packet is asked for every round until it
                // comes, each ask answered with a resend. Past REPAIR_WAIT its frame is given up.
                .with_max_nacks_per_packet((crate::video::REPAIR_WAIT.as_millis() / NACK_INTERVAL.as_millis()) as u16)
                .build(),
        );
    let registry = if congestion_control {
        // What `configure_congestion_control(.., CongestionFeedback::Twcc, ..)` sets up, with
        // our pacer in its slot: webrtc-rs's paces at the estimate itself (`pacer.rs`).
        use rtc::interceptor::{CongestionControlBuilder, Slot, TwccReceiverBuilder, TwccSenderBuilder};
        use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpHeaderExtensionCapability};
        // Daily's `startBitrate` (1 Mbit/s) to start from; the floor is our encoder's.
        const START_BPS: f64 = 1_000_000.0;
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            me.register_feedback(RTCPFeedback { typ: "transport-cc".to_owned(), parameter: String::new() }, kind);
            me.register_header_extension(RTCRtpHeaderExtensionCapability { uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned() }, kind, None)
                .map_err(werr)?;
        }
        registry
            .with(
                Slot::CongestionControl,
                CongestionControlBuilder::new(rtc::interceptor::Gcc::new(START_BPS, f64::from(crate::video::MIN_VIDEO_BITRATE), 20_000_000.0)).build(),
            )
            .with(Slot::Pacer, super::pacer::PacedAhead::new(START_BPS))
            .with(Slot::TwccSender, TwccSenderBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
    } else {
        registry
    };
    let registry = registry.with(
        rtc::interceptor::Slot::from(crate::netstats::ReportTap::SLOT),
        crate::netstats::ReportTap::new(reports.clone(), keyframes.clone()),
    );
    let se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(loopback)
        // RFC 8445 section 14.2: Ta = 50 ms between checks (webrtc-rs waits 200 ms, which
        // alone made a join take ~400 ms on loopback). 28 checks keep the 1.4 s attempt window.
        .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
        // RFC 7675 consent freshness, tightened so an outage is reported (`interrupted`)
        // within about 2 s: a consent check every 250 ms (webrtc-rs: 2 s), disconnected after
        // 1.5 s without anything from the server (5 s), failed 10 s later (25 s). Six checks
        // per timeout: at 10 % loss each way a check fails 19 % of the time, and six in a row
        // (a false `interrupted`) 5 times in 100,000; with checks every 500 ms, three in a row
        // did, and a call at 10 % loss saw one in 10 s. Recovery beyond that is an ICE restart
        // (`call/core/link.rs`).
        .with_ice_timeouts(Some(ICE_DISCONNECTED_AFTER), Some(ICE_FAILED_AFTER), Some(ICE_CONSENT_INTERVAL))
        .build();
    let addr = if loopback { "127.0.0.1:0" } else { "0.0.0.0:0" };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(
                    ice.servers
                        .iter()
                        .map(|s| rtc::peer_connection::transport::RTCIceServer {
                            urls: s.urls.clone(),
                            username: s.username.clone(),
                            credential: s.credential.clone(),
                        })
                        .collect(),
                )
                .with_ice_transport_policy(if ice.relay_only {
                    rtc::peer_connection::configuration::RTCIceTransportPolicy::Relay
                } else {
                    rtc::peer_connection::configuration::RTCIceTransportPolicy::All
                })
                .build(),
        )
        .with_media_engine(me)
        .with_setting_engine(se)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![addr.to_owned()])
        .build()
        .await
        .map_err(werr)?;
    Ok(Arc::new(pc))
}

