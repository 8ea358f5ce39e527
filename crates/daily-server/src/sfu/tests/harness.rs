//! A room of in-memory participants around one [`Sfu`], on a virtual clock.
//!
//! Each [`Client`] is what a real client is to the server: a signalling connection (messages
//! go through their JSON form, as on the WebSocket) and two str0m `Rtc`s, the send transport
//! (it offers, `publishOffer`) and the receive transport (it answers the SFU's
//! `subscribeOffer`). Datagrams travel through a queue in memory, never a socket; the clock is
//! an `Instant` that only [`World::step`] moves. The loop is str0m's `tests/common.rs`
//! `progress()` turned into a network of many peers: deliver what is in flight at the current
//! instant; when nothing is, jump to the earliest deadline (the SFU's `poll_timeout`, each
//! peer's `Output::Timeout`, each talker's next frame) and fire everything due.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daily_proto::{
    ClientMessage, ForwardedTrack, PublishedTrack, ServerMessage, SubscriptionRules, TrackSource,
};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use crate::auth::Grant;

mod outage;
use crate::sfu::{Command, ConnId, Outbound, Sfu};

/// One Opus frame: 20 ms at 48 kHz.
pub(super) const FRAME: u64 = 960;
const FRAME_INTERVAL: Duration = Duration::from_millis(20);

/// Where the SFU's one socket is "bound".
const SFU_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 3478);

/// Bound on the steps of one run, so a bug that stops the clock fails instead of hanging.
const MAX_STEPS: usize = 2_000_000;

/// A frame a receive transport delivered.
#[derive(Debug, Clone)]
pub(super) struct Received {
    pub mid: Mid,
    /// RTP time at 48 kHz, as str0m extends it.
    pub rtp_time: u64,
    /// RTP sequence number (extended), as the SFU wrote it.
    pub seq: u64,
    pub payload: Vec<u8>,
    pub audio_level: Option<i8>,
}

/// One str0m peer connection at its own address.
pub(super) struct Peer {
    pub rtc: Rtc,
    addr: SocketAddr,
    timeout: Instant,
    pub connected: bool,
    pub received: Vec<Received>,
    /// Fraction lost of each receiver report this peer sent (its receive side), in order.
    pub loss_reported: Vec<f32>,
    /// Cumulative packets lost, from the last receiver report this peer got about what it
    /// sends (its send side: the SFU's view of the upstream leg).
    pub lost_at_far_end: Option<u64>,
    /// RTP datagrams delivered to this peer.
    pub rtp_in: u64,
    /// Keyframe requests (PLI/FIR) the far end sent about what this peer sends.
    pub keyframe_requests: Vec<(Mid, str0m::media::KeyframeRequestKind)>,
}

impl Peer {
    /// A peer at `addr`; `rtp_mode` for a receive transport, which then records RTP packets
    /// as they arrive, as a jitter buffer sees them (str0m's frame mode would reorder and
    /// depacketize first).
    fn new(now: Instant, addr: SocketAddr, rtp_mode: bool) -> Peer {
        let mut rtc = RtcConfig::new()
            .set_rtp_mode(rtp_mode)
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"));
        Peer {
            rtc,
            addr,
            timeout: now,
            connected: false,
            received: Vec::new(),
            loss_reported: Vec::new(),
            lost_at_far_end: None,
            rtp_in: 0,
            keyframe_requests: Vec::new(),
        }
    }

    /// Drains `poll_output` to `Timeout` (str0m's rule after every mutation).
    fn drain(&mut self, net: &mut VecDeque<Datagram>) {
        loop {
            match self.rtc.poll_output().expect("client poll_output") {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => net.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) => self.received.push(Received {
                    mid: d.mid,
                    rtp_time: d.time.rebase(Frequency::FORTY_EIGHT_KHZ).numer(),
                    seq: **d.seq_range.start(),
                    payload: d.data.to_vec(),
                    audio_level: d.ext_vals.audio_level,
                }),
                Output::Event(Event::RtpPacket(p)) => {
                    let mid = self
                        .rtc
                        .direct_api()
                        .stream_rx(&p.header.ssrc)
                        .map(|s| s.mid());
                    self.received.push(Received {
                        mid: mid.expect("a packet of a known stream"),
                        rtp_time: p.time.rebase(Frequency::FORTY_EIGHT_KHZ).numer(),
                        seq: *p.seq_no,
                        payload: p.payload.to_vec(),
                        audio_level: p.header.ext_vals.audio_level,
                    });
                }
                Output::Event(Event::MediaIngressStats(s)) => {
                    if let Some(l) = s.loss {
                        self.loss_reported.push(l);
                    }
                }
                Output::Event(Event::KeyframeRequest(r)) => {
                    self.keyframe_requests.push((r.mid, r.kind));
                }
                Output::Event(Event::MediaEgressStats(s)) => {
                    if let Some(r) = s.remote {
                        self.lost_at_far_end = Some(r.packets_lost);
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
}

/// A datagram in flight.
struct Datagram {
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

/// A client sending one Opus frame every 20 ms on its microphone m-line.
struct Talk {
    mid: Mid,
    /// RFC 6464 level in -dBov (0 loudest, -127 silence), with voice activity when above -127.
    level: i8,
    next: Instant,
}

/// One participant: its signalling connection and its two transports.
pub(super) struct Client {
    pub conn: ConnId,
    /// Participant id, from `joined`.
    pub id: String,
    pub send: Peer,
    pub recv: Peer,
    pending_publish: Option<SdpPendingOffer>,
    /// Every server message except the negotiation ones the harness answers itself.
    pub inbox: Vec<ServerMessage>,
    /// Tracks listed by the last `subscribeOffer`.
    pub tracks: Vec<ForwardedTrack>,
    pub subscribe_offers: usize,
    /// The server closed the connection.
    pub closed: bool,
    pub mic: Option<Mid>,
    /// The camera m-line of its send transport, once published.
    pub camera: Option<Mid>,
    /// Video frames written so far.
    pub video_frames_sent: u64,
    talk: Option<Talk>,
    /// Frames written so far; frame `n` carries [`payload`]`(index, n)` at RTP time `n * FRAME`.
    pub frames_sent: u64,
    /// From `joined`: for a `resume`.
    pub room: String,
    pub session_id: String,
    pub resume_token: String,
    /// Its signalling connection is down (messages for it are lost, as the shell drops them).
    pub detached: bool,
    /// The SDP of the last `subscribeOffer`.
    pub last_offer: String,
    /// Its network is cut: every datagram to or from its transports is lost.
    pub cut: bool,
}

/// The payload of frame `n` of client `index`: an Opus TOC byte (config 31, 20 ms CELT FB) and
/// a counter. The SFU must not look inside.
pub(super) fn payload(index: usize, n: u64) -> Vec<u8> {
    let mut p = vec![0xf8, index as u8];
    p.extend_from_slice(&n.to_be_bytes());
    p
}

/// Which frame of which client a payload made by [`payload`] is.
pub(super) fn frame_of(payload: &[u8]) -> (usize, u64) {
    assert_eq!(payload.len(), 10, "not one of our frames: {payload:?}");
    (
        payload[1] as usize,
        u64::from_be_bytes(payload[2..10].try_into().unwrap()),
    )
}

/// The SFU, its clients and the network between them.
pub(super) struct World {
    pub now: Instant,
    pub sfu: Sfu,
    pub clients: Vec<Client>,
    net: VecDeque<Datagram>,
    /// Signalling messages clients sent, not yet handled by the SFU.
    to_sfu: VecDeque<(ConnId, ClientMessage)>,
    /// The instant timers were last fired at (to move on when a deadline does not).
    fired_at: Option<Instant>,
    /// Per client index: drop every n-th RTP packet its send transport sends to the SFU
    /// (loss on the upstream leg only), and how many of its RTP packets went so far.
    upstream_drop: Vec<(usize, u64, u64)>,
    /// RTP packets dropped by `upstream_drop`.
    pub dropped: u64,
    /// Real (not virtual) time spent inside the SFU's `handle_udp` and `handle_timeout`: what
    /// the forwarding cost measurements (`perf.rs`) divide by the frames forwarded.
    pub sfu_busy: Duration,
}

impl World {
    pub fn new() -> World {
        let config = crate::sfu::rtc_config().expect("DTLS certificate");
        World {
            now: Instant::now(),
            sfu: Sfu::new(SFU_ADDR, config),
            clients: Vec::new(),
            net: VecDeque::new(),
            to_sfu: VecDeque::new(),
            fired_at: None,
            sfu_busy: Duration::ZERO,
            upstream_drop: Vec::new(),
            dropped: 0,
        }
    }

    /// Joins `room` with the default grant and no subscription rules; returns the client's
    /// index. Panics unless the SFU answers `joined`.
    pub fn join(&mut self, room: &str, name: &str) -> usize {
        self.join_with(
            room,
            name,
            Grant::default(),
            SubscriptionRules::default(),
            None,
        )
    }

    /// Joins with a meeting token's `grant` (as the join gate would pass it) and `max_participants`.
    pub fn join_with(
        &mut self,
        room: &str,
        name: &str,
        grant: Grant,
        subscriptions: SubscriptionRules,
        max_participants: Option<usize>,
    ) -> usize {
        let index = self.clients.len();
        let host = Ipv4Addr::new(10, 0, 1, index as u8 + 1);
        let conn = index as ConnId + 1;
        self.clients.push(Client {
            conn,
            id: String::new(),
            send: Peer::new(self.now, (host, 5000).into(), false),
            recv: Peer::new(self.now, (host, 5001).into(), true),
            pending_publish: None,
            inbox: Vec::new(),
            tracks: Vec::new(),
            subscribe_offers: 0,
            closed: false,
            mic: None,
            camera: None,
            video_frames_sent: 0,
            talk: None,
            frames_sent: 0,
            room: room.to_owned(),
            session_id: String::new(),
            resume_token: String::new(),
            detached: false,
            last_offer: String::new(),
            cut: false,
        });
        self.sfu.handle_command(
            self.now,
            Command::Join {
                conn,
                room: room.to_owned(),
                user_name: Some(name.to_owned()),
                subscriptions,
                grant,
                max_participants,
            },
        );
        self.settle();
        let joined = self.clients[index].inbox.iter().find_map(|m| match m {
            ServerMessage::Joined {
                participant,
                session_id,
                resume_token,
                ..
            } => Some((
                participant.id.clone(),
                session_id.clone(),
                resume_token.clone().unwrap_or_default(),
            )),
            _ => None,
        });
        if let Some((id, session_id, token)) = joined {
            let c = &mut self.clients[index];
            (c.id, c.session_id, c.resume_token) = (id, session_id, token);
        }
        index
    }

    /// Sends a signalling message from client `index` and lets the SFU handle it.
    pub fn send(&mut self, index: usize, msg: ClientMessage) {
        let conn = self.clients[index].conn;
        self.to_sfu.push_back((conn, msg));
        self.settle();
    }

    /// Client `index` offers a microphone track on its send transport (`publishOffer`), with
    /// its camera if it has one.
    pub fn publish_mic(&mut self, index: usize) -> Mid {
        self.publish(index, MediaKind::Audio)
    }

    /// Client `index` offers a camera track (VP8 on an `m=video` line) on its send transport,
    /// with its microphone if it has one.
    pub fn publish_camera(&mut self, index: usize) -> Mid {
        self.publish(index, MediaKind::Video)
    }

    /// Adds a sending m-line of `kind` (the microphone or the camera) and offers every track
    /// client `index` has.
    fn publish(&mut self, index: usize, kind: MediaKind) -> Mid {
        let c = &mut self.clients[index];
        let mut api = c.send.rtc.sdp_api();
        let mid = api.add_media(kind, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        c.send.drain(&mut self.net);
        c.pending_publish = Some(pending);
        *(if kind == MediaKind::Audio { &mut c.mic } else { &mut c.camera }) = Some(mid);
        let track = |m: Mid, source: TrackSource, what: &str| PublishedTrack {
            mid: m.to_string(),
            track_id: format!("{what}-{}", c.id),
            ignore_audio_level: source != TrackSource::Microphone,
            source,
        };
        let tracks = [c.camera.map(|m| track(m, TrackSource::Camera, "cam")), c.mic.map(|m| track(m, TrackSource::Microphone, "mic"))]
            .into_iter()
            .flatten()
            .collect();
        self.send(
            index,
            ClientMessage::PublishOffer {
                sdp: offer.to_sdp_string(),
                tracks,
            },
        );
        mid
    }

    /// Client `index` writes one video frame (a fake VP8 keyframe of `len` bytes, split into
    /// packets by str0m) on its camera m-line, at 90 kHz RTP time `n * 3000` (30 fps).
    pub fn show(&mut self, index: usize, len: usize) {
        let now = self.now;
        let c = &mut self.clients[index];
        let mid = c.camera.expect("publish a camera before showing");
        if !c.send.connected {
            return;
        }
        let Some(writer) = c.send.rtc.writer(mid) else {
            return;
        };
        let pt = writer.payload_params().next().expect("VP8 negotiated").pt();
        let n = c.video_frames_sent;
        let mut data = vec![0u8; len.max(10)];
        data[0] = 0x10; // VP8 payload header: keyframe (P bit 0), shown
        data[1..9].copy_from_slice(&n.to_be_bytes());
        writer
            .write(pt, now, MediaTime::new(n * 3000, Frequency::NINETY_KHZ), data)
            .expect("frame written");
        c.video_frames_sent += 1;
        c.send.drain(&mut self.net);
    }

    /// Client `index` sends the SFU a keyframe request (PLI) for what it receives on `mid`.
    pub fn request_keyframe(&mut self, index: usize, mid: Mid) {
        let c = &mut self.clients[index];
        if let Some(rx) = c.recv.rtc.direct_api().stream_rx_by_mid(mid, None) {
            rx.request_keyframe(str0m::media::KeyframeRequestKind::Pli);
        }
        c.recv.drain(&mut self.net);
    }

    /// Client `index` sends a frame every 20 ms on its microphone once its send transport is
    /// connected, with RFC 6464 `level` (-dBov); `None` stops it.
    pub fn talk(&mut self, index: usize, level: Option<i8>) {
        let now = self.now;
        let c = &mut self.clients[index];
        c.talk = match (level, c.mic) {
            (Some(level), Some(mid)) => Some(Talk {
                mid,
                level,
                next: c.talk.as_ref().map_or(now, |t| t.next),
            }),
            (None, _) => None,
            (Some(_), None) => panic!("publish a microphone before talking"),
        };
    }

    /// Runs the world for `d` of virtual time, then delivers what is still in flight.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..MAX_STEPS {
            if self.now >= end && self.net.is_empty() {
                return;
            }
            self.step(end);
        }
        panic!("the world made no progress in {MAX_STEPS} steps");
    }

    /// One step: deliver what is in flight, or else move the clock to the earliest deadline
    /// (never past `limit`) and fire what is due.
    fn step(&mut self, limit: Instant) {
        if !self.net.is_empty() {
            for _ in 0..self.net.len() {
                let Some(d) = self.net.pop_front() else { break };
                self.deliver(d);
            }
            self.settle();
            return;
        }
        let next = self.next_deadline().min(limit);
        self.now = if next > self.now {
            next
        } else if self.fired_at == Some(self.now) {
            // Something stays due at this instant: move on by a millisecond.
            self.now + Duration::from_millis(1)
        } else {
            self.now
        };
        self.fired_at = Some(self.now);
        self.fire();
        self.settle();
    }

    fn next_deadline(&mut self) -> Instant {
        let mut next = self
            .sfu
            .poll_timeout()
            .unwrap_or(self.now + Duration::from_secs(1));
        for c in &self.clients {
            next = next.min(c.send.timeout).min(c.recv.timeout);
            if let Some(t) = &c.talk {
                next = next.min(t.next);
            }
        }
        next
    }

    /// Fires every deadline that has passed: the SFU's, each peer's, each talker's frame.
    fn fire(&mut self) {
        let now = self.now;
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            let t0 = Instant::now();
            self.sfu.handle_timeout(now);
            self.sfu_busy += t0.elapsed();
        }
        for (index, c) in self.clients.iter_mut().enumerate() {
            for peer in [&mut c.send, &mut c.recv] {
                if peer.timeout <= now {
                    peer.rtc
                        .handle_input(Input::Timeout(now))
                        .expect("client timeout");
                    peer.drain(&mut self.net);
                }
            }
            let Some(talk) = &mut c.talk else { continue };
            if talk.next > now {
                continue;
            }
            talk.next += FRAME_INTERVAL;
            if !c.send.connected {
                continue;
            }
            let Some(writer) = c.send.rtc.writer(talk.mid) else {
                continue;
            };
            let pt = writer
                .payload_params()
                .next()
                .expect("Opus negotiated")
                .pt();
            let n = c.frames_sent;
            writer
                .audio_level(talk.level, talk.level > -127)
                .write(
                    pt,
                    now,
                    MediaTime::new(n * FRAME, Frequency::FORTY_EIGHT_KHZ),
                    payload(index, n),
                )
                .expect("frame written");
            c.frames_sent += 1;
            c.send.drain(&mut self.net);
        }
    }

    /// Drops every `every`-th RTP packet client `index` sends to the SFU (RTCP, STUN and DTLS
    /// pass), from now on.
    pub fn drop_upstream_rtp(&mut self, index: usize, every: u64) {
        self.upstream_drop.push((index, every, 0));
    }

    /// Hands one datagram to whoever is at its destination (the SFU or a client's peer).
    fn deliver(&mut self, d: Datagram) {
        let cut = self.clients.iter().any(|c| {
            c.cut
                && [c.send.addr, c.recv.addr]
                    .iter()
                    .any(|a| *a == d.source || *a == d.destination)
        });
        if cut {
            return;
        }
        // RFC 5761 section 4: RTP and RTCP share the port; RTCP's packet types are 192-223.
        let rtp = d.contents.len() > 12
            && d.contents[0] & 0xc0 == 0x80
            && !(192..=223).contains(&d.contents[1]);
        if d.destination == SFU_ADDR && rtp {
            for (index, every, seen) in &mut self.upstream_drop {
                if self.clients[*index].send.addr == d.source {
                    *seen += 1;
                    if *seen % *every == 0 {
                        self.dropped += 1;
                        return;
                    }
                }
            }
        }
        if d.destination == SFU_ADDR {
            let t0 = Instant::now();
            self.sfu
                .handle_udp(self.now, d.source, d.destination, &d.contents);
            self.sfu_busy += t0.elapsed();
            return;
        }
        let peer = self
            .clients
            .iter_mut()
            .flat_map(|c| [&mut c.send, &mut c.recv])
            .find(|p| p.addr == d.destination);
        let Some(peer) = peer else {
            return; // Nobody there (a client that left): the datagram is lost, as on a network.
        };
        if rtp {
            peer.rtp_in += 1;
        }
        let input = Input::Receive(
            self.now,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: d.destination,
                contents: d
                    .contents
                    .as_slice()
                    .try_into()
                    .expect("STUN, DTLS, RTP or RTCP"),
            },
        );
        peer.rtc.handle_input(input).expect("client input");
        peer.drain(&mut self.net);
    }

    /// Drains the SFU (datagrams onto the network, signalling to the clients) and feeds it the
    /// clients' replies, until neither side has anything left to say.
    fn settle(&mut self) {
        loop {
            while let Some(t) = self.sfu.poll_transmit() {
                self.net.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                });
            }
            while let Some((conn, out)) = self.sfu.poll_signal() {
                self.deliver_signal(conn, out);
            }
            let Some((conn, msg)) = self.to_sfu.pop_front() else {
                return;
            };
            let msg = ClientMessage::parse(&msg.to_json()).expect("client message round-trips");
            self.sfu
                .handle_command(self.now, Command::Message { conn, msg });
        }
    }

    /// What a client does with the server's output: negotiation is answered at once, the rest
    /// kept in its inbox.
    fn deliver_signal(&mut self, conn: ConnId, out: Outbound) {
        let Some(c) = self.clients.iter_mut().find(|c| c.conn == conn) else {
            panic!("signalling for unknown connection {conn}");
        };
        assert!(!c.closed, "message after close for client {}", c.id);
        if c.detached {
            return; // No route: the shell drops it; `resumed` carries what matters.
        }
        let msg = match out {
            Outbound::Close => {
                c.closed = true;
                return;
            }
            Outbound::Message(m) => {
                ServerMessage::parse(&m.to_json()).expect("server message round-trips")
            }
        };
        match msg {
            ServerMessage::PublishAnswer { sdp } => {
                let answer = SdpAnswer::from_sdp_string(&sdp).expect("publishAnswer parses");
                let pending = c
                    .pending_publish
                    .take()
                    .expect("a publish offer outstanding");
                c.send
                    .rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .expect("publishAnswer accepted");
                c.send.drain(&mut self.net);
            }
            ServerMessage::SubscribeOffer { sdp, tracks } => {
                let offer = SdpOffer::from_sdp_string(&sdp).expect("subscribeOffer parses");
                let answer = c
                    .recv
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .expect("subscribeOffer accepted");
                c.recv.drain(&mut self.net);
                c.last_offer = sdp;
                c.tracks = tracks;
                c.subscribe_offers += 1;
                self.to_sfu.push_back((
                    conn,
                    ClientMessage::SubscribeAnswer {
                        sdp: answer.to_sdp_string(),
                    },
                ));
            }
            m => c.inbox.push(m),
        }
    }
}
