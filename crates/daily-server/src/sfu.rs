//! The room and SFU core: rooms, participants, their two str0m transports, negotiation and
//! forwarding. No IO: the driver (`driver.rs`) feeds it commands, UDP datagrams and timeouts, all
//! stamped with `now`, and drains [`Sfu::poll_transmit`] onto the socket after every call.
//!
//! Invariant kept throughout (str0m's "single-mutation invariant", `str0m/src/lib.rs`): every
//! mutation of an `Rtc` (input, write, SDP change) is followed by draining `poll_output` to
//! `Output::Timeout` before the next mutation of the same `Rtc`. [`Transport::drain`] does that
//! and queues the media events, which are forwarded only after the source drain finished.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daily_proto::{
    ClientMessage, ForwardedTrack, LeftReason, MAX_APP_MESSAGE_BYTES, MediaInfo, ParticipantInfo,
    Permissions, PermissionsUpdate, PublishedTrack, ServerMessage, SubscriptionRules, TrackSource,
};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaData, MediaKind, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Grant;

/// Identifies one signalling connection (and the participant it becomes).
pub(crate) type ConnId = u64;

/// Smallest size past which the deadline heap is rebuilt (see [`Sfu::rebuild_timers`]).
const TIMERS_REBUILD_MIN: usize = 1024;

/// Largest number of tracks one participant may publish at once (bounds SDP and forwarding work).
pub const MAX_TRACKS_PER_PARTICIPANT: usize = 16;

/// Largest number of participants in one room.
pub const MAX_PARTICIPANTS_PER_ROOM: usize = 200;

/// Longest display name accepted, in bytes.
pub const MAX_USER_NAME_BYTES: usize = 1024;

/// Active speaker: weight of each new RFC 6464 level in a participant's smoothed loudness
/// (one packet per 20 ms: a time constant of about 130 ms).
const SPEAKER_ALPHA: f32 = 0.15;
/// Active speaker: smoothed loudness (dB above -127 dBov) a participant needs to become the
/// speaker, i.e. louder than -55 dBov. Speech sits around -20 to -35 dBov, room noise and
/// Opus-coded silence below -60.
const SPEAKER_MIN_LOUDNESS: f32 = 72.0;
/// Active speaker: how much louder (dB) a challenger must be than a speaker who is still
/// talking, so two voices at similar levels do not flap.
const SPEAKER_MARGIN_DB: f32 = 6.0;
/// Active speaker: levels older than this no longer count (the participant stopped sending).
const SPEAKER_STALE: Duration = Duration::from_millis(300);

/// Something for the core to do, sent by a signalling connection or the server itself.
#[derive(Debug)]
pub(crate) enum Command {
    /// A connection sent a valid `join` for `room`, already admitted by the join gate
    /// (`http.rs`): `grant` is what its meeting token grants (default without one) and
    /// `max_participants` the room's own limit, if it was created with one.
    Join {
        conn: ConnId,
        room: String,
        user_name: Option<String>,
        subscriptions: SubscriptionRules,
        grant: Grant,
        max_participants: Option<usize>,
        out: mpsc::UnboundedSender<Outbound>,
    },
    /// End the call in `room` for everybody in it (the room was deleted): each gets `callEnded`
    /// with `reason`, then the socket closes.
    EndRoom { room: String, reason: String },
    /// A joined connection sent a message (anything after `join`).
    Message { conn: ConnId, msg: ClientMessage },
    /// The connection closed (socket closed, error, or after a fatal error).
    Closed { conn: ConnId },
    /// How many participants are in a room (for `GET /{room}`).
    RoomInfo {
        room: String,
        reply: oneshot::Sender<usize>,
    },
}

/// What the core tells a signalling connection.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Rare, short-lived; boxing buys nothing.
pub(crate) enum Outbound {
    /// Send this message.
    Message(ServerMessage),
    /// Close the WebSocket after the messages queued before this.
    Close,
}

/// Which of a participant's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Side {
    /// Client offers, server receives the participant's audio.
    Send,
    /// Server offers, server sends the others' audio.
    Recv,
}

/// One str0m peer connection and the deadline it asked for.
struct Transport {
    rtc: Rtc,
    timeout: Instant,
    /// Whose transport this is, for its entries in [`Outq::timers`].
    conn: ConnId,
    side: Side,
    /// The deadline [`Outq::timers`] holds a live entry for (`None` once that entry was
    /// taken by [`Sfu::handle_timeout`], so the next drain schedules again).
    scheduled: Option<Instant>,
}

/// What draining a transport produces besides media: datagrams to send and its next deadline.
#[derive(Default)]
struct Outq {
    transmits: VecDeque<Transmit>,
    /// Every transport's deadline, earliest first, so a wake-up costs O(log n) rather than a
    /// scan of every transport (at 50 bot pairs the scans and their hashing were about a fifth
    /// of the server's CPU samples). Lazy deletion: an entry is live only while it equals its transport's `scheduled`;
    /// the rest are dropped as they reach the top.
    timers: BinaryHeap<Reverse<(Instant, ConnId, Side)>>,
}

impl Transport {
    /// Drains `poll_output` to `Timeout`: datagrams go to `out`, media to `media`, and the new
    /// deadline is scheduled in `out.timers` if it changed.
    fn drain(&mut self, now: Instant, out: &mut Outq, media: &mut Vec<MediaData>) {
        self.drain_output(now, &mut out.transmits, media);
        if self.scheduled != Some(self.timeout) {
            self.scheduled = Some(self.timeout);
            out.timers.push(Reverse((self.timeout, self.conn, self.side)));
        }
    }

    fn drain_output(&mut self, now: Instant, out: &mut VecDeque<Transmit>, media: &mut Vec<MediaData>) {
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
                    Event::MediaData(d) => media.push(d),
                    Event::IceConnectionStateChange(s) => {
                        tracing::debug!(state = ?s, "ICE state");
                        if s == IceConnectionState::Disconnected {
                            tracing::info!("a transport lost ICE connectivity");
                        }
                    }
                    Event::Connected => tracing::debug!("transport connected (ICE + DTLS)"),
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

/// A forwarded track: `(publisher, published track)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TrackKey {
    publisher: ConnId,
    track: PublishedTrack,
}

/// One `m=` line of a receive transport.
struct Slot {
    mid: Mid,
    /// The track this m-line carries (or will once the offer is answered).
    track: Option<TrackKey>,
    /// The client answered an offer listing `track` on this m-line: forward now.
    live: bool,
    /// The m-line exists in the negotiated session (it can be reused when free).
    negotiated: bool,
}

struct Participant {
    room: String,
    info: ParticipantInfo,
    out: mpsc::UnboundedSender<Outbound>,
    send: Option<Transport>,
    recv: Option<Transport>,
    /// Tracks of the last accepted `publishOffer`, with their parsed mids.
    published: Vec<(Mid, PublishedTrack)>,
    slots: Vec<Slot>,
    /// The subscribe offer awaiting `subscribeAnswer`.
    pending: Option<SdpPendingOffer>,
    /// The forwarded track set changed since the last subscribe offer.
    needs_negotiation: bool,
    /// Which remote tracks this participant wants.
    rules: SubscriptionRules,
    /// Smoothed loudness of its level-bearing tracks (dB above -127 dBov) and when it was
    /// last updated, for the active speaker.
    loudness: f32,
    loud_at: Option<Instant>,
}

impl Participant {
    fn send_msg(&self, msg: ServerMessage) {
        // A closed channel means the connection is already gone; `Closed` follows.
        let _ = self.out.send(Outbound::Message(msg));
    }

    /// Whether others see this participant (`hasPresence`).
    fn visible(&self) -> bool {
        self.info.permissions.has_presence
    }

    /// Owners and `participants` admins may change others and eject them.
    fn is_admin(&self) -> bool {
        self.info.is_owner || self.info.permissions.can_admin.iter().any(|k| k == "participants")
    }

    /// Current loudness for the active speaker, 0 when its levels are stale.
    fn loudness_at(&self, now: Instant) -> f32 {
        match self.loud_at {
            Some(t) if now.saturating_duration_since(t) <= SPEAKER_STALE => self.loudness,
            _ => 0.0,
        }
    }

    fn transport(&self, side: Side) -> Option<&Transport> {
        match side {
            Side::Send => self.send.as_ref(),
            Side::Recv => self.recv.as_ref(),
        }
    }

    fn transport_mut(&mut self, side: Side) -> Option<&mut Transport> {
        match side {
            Side::Send => self.send.as_mut(),
            Side::Recv => self.recv.as_mut(),
        }
    }
}

struct Room {
    session_id: String,
    /// Participants in join order.
    members: Vec<ConnId>,
    /// The active speaker (RFC 6464 levels), kept through silence.
    active_speaker: Option<ConnId>,
}

/// Counters for tests and logs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SfuStats {
    pub frames_in: u64,
    pub frames_out: u64,
}

/// The rooms, their participants and the SFU.
pub(crate) struct Sfu {
    /// Where the UDP socket is bound: our only ICE host candidate.
    udp_addr: SocketAddr,
    rtc_config: RtcConfig,
    rooms: HashMap<String, Room>,
    /// Looked up several times per datagram; keys are our own counters, so the fast
    /// non-keyed hash is safe here (SipHash was 3 % of the server's CPU at 50 bot pairs).
    parts: HashMap<ConnId, Participant, rustc_hash::FxBuildHasher>,
    /// Last transport that accepted a datagram from this remote address (demux fast path).
    addr_cache: HashMap<SocketAddr, (ConnId, Side)>,
    out: Outq,
    /// Scratch for `handle_timeout`: the transports due in this wake-up.
    due: Vec<(ConnId, Side)>,
    /// `out.timers` is rebuilt from the transports when it grows past this many entries.
    rebuild_at: usize,
    stats: SfuStats,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sfu {
    pub(crate) fn new(udp_addr: SocketAddr, rtc_config: RtcConfig) -> Self {
        Sfu {
            udp_addr,
            rtc_config,
            rooms: HashMap::new(),
            parts: HashMap::default(),
            addr_cache: HashMap::new(),
            out: Outq::default(),
            due: Vec::new(),
            rebuild_at: TIMERS_REBUILD_MIN,
            stats: SfuStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> SfuStats {
        self.stats
    }

    /// Next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// Earliest deadline of any live transport.
    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        if self.out.timers.len() > self.rebuild_at {
            self.rebuild_timers();
        }
        while let Some(&Reverse((at, conn, side))) = self.out.timers.peek() {
            if self.is_scheduled(at, conn, side) {
                return Some(at);
            }
            self.out.timers.pop();
        }
        None
    }

    /// Whether `(at, conn, side)` is the live entry of a live transport.
    fn is_scheduled(&self, at: Instant, conn: ConnId, side: Side) -> bool {
        self.parts
            .get(&conn)
            .and_then(|p| p.transport(side))
            .is_some_and(|t| t.scheduled == Some(at) && t.rtc.is_alive())
    }

    /// Drops the stale entries: one live entry per live transport. Bounds the heap when
    /// deadlines keep moving later (each move leaves a stale entry behind until its time).
    fn rebuild_timers(&mut self) {
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

    fn new_transport(&mut self, now: Instant, conn: ConnId, side: Side) -> Transport {
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
        Transport { rtc, timeout: now, conn, side, scheduled: Some(now) }
    }

    pub(crate) fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Join {
                conn,
                room,
                user_name,
                subscriptions,
                grant,
                max_participants,
                out,
            } => self.join(now, conn, room, user_name, subscriptions, grant, max_participants, out),
            Command::EndRoom { room, reason } => self.end_room(now, &room, &reason),
            Command::Message { conn, msg } => self.message(now, conn, msg),
            Command::Closed { conn } => self.remove(now, conn, false),
            Command::RoomInfo { room, reply } => {
                let n = self.rooms.get(&room).map_or(0, |r| r.members.len());
                let _ = reply.send(n);
            }
        }
        self.negotiate_all(now);
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        _now: Instant,
        conn: ConnId,
        room_name: String,
        user_name: Option<String>,
        subscriptions: SubscriptionRules,
        grant: Grant,
        max_participants: Option<usize>,
        out: mpsc::UnboundedSender<Outbound>,
    ) {
        let fatal = |message: String| {
            let _ = out.send(Outbound::Message(ServerMessage::Error {
                message,
                fatal: true,
            }));
            let _ = out.send(Outbound::Close);
        };
        if self.parts.contains_key(&conn) {
            return fatal("already joined".into());
        }
        // A token's user name wins over the one in `join` (Daily: the token sets it).
        let user_name = grant.user_name.or(user_name).unwrap_or_default();
        if user_name.len() > MAX_USER_NAME_BYTES {
            return fatal(format!("userName longer than {MAX_USER_NAME_BYTES} bytes"));
        }
        let room = self.rooms.entry(room_name.clone()).or_insert_with(|| Room {
            session_id: uuid::Uuid::new_v4().to_string(),
            members: Vec::new(),
            active_speaker: None,
        });
        // Checked here, not in the gate, so concurrent joins cannot overshoot the limit.
        let limit = max_participants.map_or(MAX_PARTICIPANTS_PER_ROOM, |m| {
            m.min(MAX_PARTICIPANTS_PER_ROOM)
        });
        if room.members.len() >= limit {
            return fatal(format!("room is full ({limit} participants)"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut permissions = Permissions::default();
        if let Some(update) = &grant.permissions {
            permissions.apply(update);
        }
        let info = ParticipantInfo {
            id: id.clone(),
            user_name,
            user_id: grant.user_id.unwrap_or(id),
            joined_at: unix_now(),
            is_owner: grant.is_owner,
            microphone: MediaInfo {
                publishing: false,
                track_id: None,
            },
            custom_audio: Default::default(),
            permissions,
        };
        let others: Vec<ParticipantInfo> = room
            .members
            .iter()
            .filter_map(|c| self.parts.get(c))
            .filter(|p| p.visible())
            .map(|p| p.info.clone())
            .collect();
        let _ = out.send(Outbound::Message(ServerMessage::Joined {
            room: room_name.clone(),
            session_id: room.session_id.clone(),
            participant: info.clone(),
            participants: others,
        }));
        if info.permissions.has_presence {
            for c in &room.members {
                if let Some(p) = self.parts.get(c) {
                    p.send_msg(ServerMessage::ParticipantJoined {
                        participant: info.clone(),
                    });
                }
            }
        }
        let speaker = room
            .active_speaker
            .and_then(|c| self.parts.get(&c))
            .map(|p| p.info.id.clone());
        if speaker.is_some() {
            let _ = out.send(Outbound::Message(ServerMessage::ActiveSpeaker {
                participant_id: speaker,
            }));
        }
        room.members.push(conn);
        tracing::info!(room = %room_name, participant = %info.id, "joined");
        self.parts.insert(
            conn,
            Participant {
                room: room_name.clone(),
                info,
                out,
                send: None,
                recv: None,
                published: Vec::new(),
                slots: Vec::new(),
                pending: None,
                needs_negotiation: true,
                rules: subscriptions,
                loudness: 0.0,
                loud_at: None,
            },
        );
        self.send_counts(&room_name);
    }

    /// Sends `participantCounts` to every member of `room`.
    fn send_counts(&self, room: &str) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let (mut present, mut hidden) = (0u32, 0u32);
        for p in r.members.iter().filter_map(|c| self.parts.get(c)) {
            if p.visible() {
                present += 1;
            } else {
                hidden += 1;
            }
        }
        for p in r.members.iter().filter_map(|c| self.parts.get(c)) {
            p.send_msg(ServerMessage::ParticipantCounts { present, hidden });
        }
    }

    /// Answers request `request_id` of `conn`.
    fn reply(&self, conn: ConnId, request_id: u64, error: Option<String>) {
        if let Some(p) = self.parts.get(&conn) {
            p.send_msg(ServerMessage::Reply { request_id, error });
        }
    }

    /// The connection of participant `id` in `room`, if it is there.
    fn find_in_room(&self, room: &str, id: &str) -> Option<ConnId> {
        self.rooms
            .get(room)?
            .members
            .iter()
            .copied()
            .find(|c| self.parts.get(c).is_some_and(|p| p.info.id == id))
    }

    fn app_message(&mut self, conn: ConnId, request_id: u64, data: serde_json::Value, to: Option<String>) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let size = serde_json::to_string(&data).map_or(usize::MAX, |t| t.len());
        if size > MAX_APP_MESSAGE_BYTES {
            return self.reply(
                conn,
                request_id,
                Some(format!(
                    "app message of {size} bytes exceeds the limit of {MAX_APP_MESSAGE_BYTES} bytes"
                )),
            );
        }
        let msg = ServerMessage::AppMessage {
            data,
            from: p.info.id.clone(),
        };
        let room = p.room.clone();
        match to {
            Some(id) => match self.find_in_room(&room, &id) {
                Some(c) if c != conn && self.parts.get(&c).is_some_and(|o| o.visible()) => {
                    if let Some(o) = self.parts.get(&c) {
                        o.send_msg(msg);
                    }
                }
                _ => {
                    return self.reply(
                        conn,
                        request_id,
                        Some(format!("no participant {id:?} in this call")),
                    );
                }
            },
            None => {
                if let Some(r) = self.rooms.get(&room) {
                    for c in r.members.iter().filter(|c| **c != conn) {
                        if let Some(o) = self.parts.get(c) {
                            o.send_msg(msg.clone());
                        }
                    }
                }
            }
        }
        self.reply(conn, request_id, None);
    }

    fn update_permissions(
        &mut self,
        now: Instant,
        conn: ConnId,
        request_id: u64,
        participant_id: Option<String>,
        update: PermissionsUpdate,
    ) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        if let Err(e) = update.validate() {
            return self.reply(conn, request_id, Some(e));
        }
        let admin = p.is_admin();
        let room = p.room.clone();
        let target = match &participant_id {
            None => conn,
            Some(id) => match self.find_in_room(&room, id) {
                Some(c) => c,
                None => {
                    return self.reply(
                        conn,
                        request_id,
                        Some(format!("no participant {id:?} in this call")),
                    );
                }
            },
        };
        if target != conn && !admin {
            return self.reply(
                conn,
                request_id,
                Some("only room owners and participant admins (canAdmin: participants) may change other participants' permissions".into()),
            );
        }
        let Some(t) = self.parts.get(&target) else {
            return;
        };
        let old = t.info.permissions.clone();
        let mut new = old.clone();
        new.apply(&update);
        if target == conn && !admin {
            // Without admin rights a participant may only give rights up.
            let gains = (new.has_presence && !old.has_presence)
                || new.can_send.iter().any(|k| !old.can_send.contains(k))
                || new.can_admin.iter().any(|k| !old.can_admin.contains(k));
            if gains {
                return self.reply(
                    conn,
                    request_id,
                    Some("a participant may only give up its own permissions; granting needs a room owner or participant admin".into()),
                );
            }
        }
        self.reply(conn, request_id, None);
        if new == old {
            return;
        }
        if let Some(t) = self.parts.get_mut(&target) {
            t.info.permissions = new.clone();
        }
        if old.has_presence != new.has_presence {
            let Some(t) = self.parts.get(&target) else {
                return;
            };
            let info = t.info.clone();
            if let Some(r) = self.rooms.get(&room) {
                for c in r.members.iter().filter(|c| **c != target) {
                    if let Some(o) = self.parts.get(c) {
                        o.send_msg(if new.has_presence {
                            ServerMessage::ParticipantJoined {
                                participant: info.clone(),
                            }
                        } else {
                            ServerMessage::ParticipantLeft {
                                participant: info.clone(),
                                reason: LeftReason::Hidden,
                            }
                        });
                    }
                }
            }
            if !new.has_presence {
                self.clear_speaker(&room, target);
            }
            self.send_counts(&room);
        }
        self.refresh_media_info(target);
        self.broadcast_update(target);
        self.mark_room_dirty(target);
        self.negotiate_all(now);
    }

    fn eject(&mut self, now: Instant, conn: ConnId, request_id: u64, ids: Vec<String>) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        if !p.is_admin() {
            return self.reply(
                conn,
                request_id,
                Some("only room owners and participant admins (canAdmin: participants) may eject participants".into()),
            );
        }
        let room = p.room.clone();
        let mut missing = Vec::new();
        let mut targets = Vec::new();
        for id in ids {
            match self.find_in_room(&room, &id) {
                Some(c) if c != conn => targets.push(c),
                Some(_) => missing.push(format!("{id:?} (yourself: use leave)")),
                None => missing.push(format!("{id:?}")),
            }
        }
        for c in targets {
            self.fatal(now, c, "you were ejected from the call by a room owner".into());
        }
        let error = (!missing.is_empty())
            .then(|| format!("not ejected, not in this call: {}", missing.join(", ")));
        self.reply(conn, request_id, error);
    }

    /// Forgets `conn` as the room's active speaker (it left or hid).
    fn clear_speaker(&mut self, room: &str, conn: ConnId) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.active_speaker != Some(conn) {
            return;
        }
        r.active_speaker = None;
        for c in &r.members {
            if let Some(o) = self.parts.get(c) {
                o.send_msg(ServerMessage::ActiveSpeaker {
                    participant_id: None,
                });
            }
        }
    }

    /// Feeds one RFC 6464 level of `conn` (in -dBov) into the active-speaker choice.
    fn observe_level(&mut self, now: Instant, conn: ConnId, level: i8) {
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        if !p.visible() {
            return;
        }
        let loud = 127.0 - f32::from(level.unsigned_abs().min(127));
        let prev = p.loudness_at(now);
        p.loudness = prev + SPEAKER_ALPHA * (loud - prev);
        p.loud_at = Some(now);
        let mine = p.loudness;
        if mine < SPEAKER_MIN_LOUDNESS {
            return;
        }
        let (id, room) = (p.info.id.clone(), p.room.clone());
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        if r.active_speaker == Some(conn) {
            return;
        }
        let current = r
            .active_speaker
            .and_then(|c| self.parts.get(&c))
            .map_or(0.0, |c| c.loudness_at(now));
        if current >= SPEAKER_MIN_LOUDNESS && mine < current + SPEAKER_MARGIN_DB {
            return;
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            r.active_speaker = Some(conn);
            tracing::debug!(room = %room, participant = %id, "active speaker");
            for c in &r.members {
                if let Some(o) = self.parts.get(c) {
                    o.send_msg(ServerMessage::ActiveSpeaker {
                        participant_id: Some(id.clone()),
                    });
                }
            }
        }
    }

    /// Sends a fatal error, closes the connection and removes the participant.
    fn fatal(&mut self, now: Instant, conn: ConnId, message: String) {
        if let Some(p) = self.parts.get(&conn) {
            tracing::info!(participant = %p.info.id, %message, "closing connection on a fatal error");
            p.send_msg(ServerMessage::Error {
                message,
                fatal: true,
            });
            let _ = p.out.send(Outbound::Close);
        }
        self.remove(now, conn, false);
    }

    fn message(&mut self, now: Instant, conn: ConnId, msg: ClientMessage) {
        if !self.parts.contains_key(&conn) {
            return; // Already removed (e.g. after a fatal error); the socket is closing.
        }
        match msg {
            ClientMessage::Join { .. } => {
                self.fatal(now, conn, "unexpected join: already joined".into())
            }
            ClientMessage::PublishOffer { sdp, tracks } => {
                self.publish_offer(now, conn, sdp, tracks)
            }
            ClientMessage::SubscribeAnswer { sdp } => self.subscribe_answer(now, conn, sdp),
            ClientMessage::SetUserName { user_name } => {
                if user_name.len() > MAX_USER_NAME_BYTES {
                    return self.fatal(
                        now,
                        conn,
                        format!("userName longer than {MAX_USER_NAME_BYTES} bytes"),
                    );
                }
                if let Some(p) = self.parts.get_mut(&conn) {
                    p.info.user_name = user_name;
                }
                self.broadcast_update(conn);
            }
            ClientMessage::Leave => self.remove(now, conn, true),
            ClientMessage::AppMessage {
                request_id,
                data,
                to,
            } => self.app_message(conn, request_id, data, to),
            ClientMessage::SetSubscriptions { request_id, rules } => {
                if let Some(p) = self.parts.get_mut(&conn) {
                    if p.rules != rules {
                        p.rules = rules;
                        p.needs_negotiation = true;
                    }
                }
                self.reply(conn, request_id, None);
            }
            ClientMessage::UpdatePermissions {
                request_id,
                participant_id,
                permissions,
            } => self.update_permissions(now, conn, request_id, participant_id, permissions),
            ClientMessage::Eject {
                request_id,
                participant_ids,
            } => self.eject(now, conn, request_id, participant_ids),
            other => self.fatal(now, conn, format!("unsupported message {other:?}")),
        }
    }

    /// Sends `participantUpdated` for `conn` to everybody in its room, itself included.
    fn broadcast_update(&self, conn: ConnId) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let msg = ServerMessage::ParticipantUpdated {
            participant: p.info.clone(),
        };
        if !p.visible() {
            // Hidden: only the participant itself hears about it.
            return p.send_msg(msg);
        }
        if let Some(room) = self.rooms.get(&p.room) {
            for c in &room.members {
                if let Some(o) = self.parts.get(c) {
                    o.send_msg(msg.clone());
                }
            }
        }
    }

    fn publish_offer(
        &mut self,
        now: Instant,
        conn: ConnId,
        sdp: String,
        tracks: Vec<PublishedTrack>,
    ) {
        if tracks.len() > MAX_TRACKS_PER_PARTICIPANT {
            return self.fatal(
                now,
                conn,
                format!("more than {MAX_TRACKS_PER_PARTICIPANT} tracks"),
            );
        }
        // Bound the work before str0m parses the SDP: a client keeps at most one m-line per
        // concurrent track (dormant ones are reused), so twice the track limit is plenty.
        let m_lines = sdp.lines().filter(|l| l.starts_with("m=")).count();
        if m_lines > 2 * MAX_TRACKS_PER_PARTICIPANT {
            return self.fatal(
                now,
                conn,
                format!(
                    "publishOffer has {m_lines} m-lines; at most {} are accepted",
                    2 * MAX_TRACKS_PER_PARTICIPANT
                ),
            );
        }
        // Without Opus str0m 0.24 answers with an m-line that has no format, which the client
        // cannot parse: refuse such an offer plainly instead.
        if m_lines > 0 && !sdp.to_ascii_lowercase().contains("opus/48000") {
            return self.fatal(
                now,
                conn,
                "publishOffer offers no Opus codec (opus/48000, RFC 7587); this server forwards Opus only".into(),
            );
        }
        if m_lines == 0 {
            // A client with nothing to publish may still offer (an SDP without media): answer
            // in kind and publish nothing. str0m itself refuses offers without m-lines.
            if !tracks.is_empty() {
                return self.fatal(
                    now,
                    conn,
                    "publishOffer lists tracks but has no m-lines".into(),
                );
            }
            let Some(p) = self.parts.get_mut(&conn) else {
                return;
            };
            let answer =
                format!("v=0\r\no=daily-server {conn} 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
            p.send_msg(ServerMessage::PublishAnswer { sdp: answer });
            return self.set_published(now, conn, Vec::new(), Vec::new());
        }
        let offer = match SdpOffer::from_sdp_string(&sdp) {
            Ok(o) => o,
            Err(e) => return self.fatal(now, conn, format!("invalid publishOffer SDP: {e}")),
        };
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let needs_new = p.send.as_ref().is_none_or(|t| !t.rtc.is_alive());
        let fresh = needs_new.then(|| self.new_transport(now, conn, Side::Send));
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        if let Some(f) = fresh {
            p.send = Some(f);
        }
        let Some(transport) = p.send.as_mut() else {
            return;
        };
        let answer = match transport.rtc.sdp_api().accept_offer(offer) {
            Ok(a) => a,
            Err(e) => return self.fatal(now, conn, format!("publishOffer rejected: {e}")),
        };
        let mut media = Vec::new();
        transport.drain(now, &mut self.out, &mut media);

        // Keep the listed tracks whose m-line exists and receives; first one wins on duplicates.
        let mut accepted: Vec<(Mid, PublishedTrack)> = Vec::new();
        let mut problems = Vec::new();
        for t in tracks {
            let mid = Mid::from(t.mid.as_str());
            let receiving = transport.rtc.media(mid).is_some_and(|m| {
                m.kind() == MediaKind::Audio && *m.mid() == *t.mid && m.direction().is_receiving()
            });
            if !receiving {
                problems.push(format!(
                    "track {:?}: no sending audio m-line with mid {:?}",
                    t.track_id, t.mid
                ));
            } else if accepted
                .iter()
                .any(|(m, a)| *m == mid || a.source == t.source)
            {
                problems.push(format!("track {:?}: duplicate mid or source", t.track_id));
            } else {
                accepted.push((mid, t));
            }
        }
        tracing::debug!(accepted = ?accepted.iter().map(|(m, t)| (m.to_string(), t.track_id.clone())).collect::<Vec<_>>(), ?problems, "publishOffer");
        p.send_msg(ServerMessage::PublishAnswer {
            sdp: answer.to_sdp_string(),
        });
        for message in problems {
            p.send_msg(ServerMessage::Error {
                message,
                fatal: false,
            });
        }
        self.set_published(now, conn, accepted, media);
    }

    /// Records the tracks `conn` now publishes; updates everybody who needs to know.
    fn set_published(
        &mut self,
        now: Instant,
        conn: ConnId,
        accepted: Vec<(Mid, PublishedTrack)>,
        media: Vec<MediaData>,
    ) {
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        let changed = p.published != accepted;
        p.published = accepted;
        if self.refresh_media_info(conn) {
            self.broadcast_update(conn);
        }
        if changed {
            self.mark_room_dirty(conn);
        }
        self.forward(now, conn, media);
    }

    /// Recomputes the media part of `conn`'s info from what it publishes and may send (a
    /// track `canSend` forbids shows as not publishing). Returns whether it changed.
    fn refresh_media_info(&mut self, conn: ConnId) -> bool {
        let Some(p) = self.parts.get_mut(&conn) else {
            return false;
        };
        let mut info = p.info.clone();
        info.microphone = MediaInfo {
            publishing: false,
            track_id: None,
        };
        info.custom_audio.clear();
        for (_, t) in &p.published {
            let m = MediaInfo {
                publishing: p.info.permissions.may_send(&t.source),
                track_id: Some(t.track_id.clone()),
            };
            match &t.source {
                TrackSource::Microphone => info.microphone = m,
                TrackSource::CustomAudio { track_name } => {
                    info.custom_audio.insert(track_name.clone(), m);
                }
            }
        }
        let changed = info != p.info;
        p.info = info;
        changed
    }

    /// Marks every other participant of `conn`'s room for renegotiation.
    fn mark_room_dirty(&mut self, conn: ConnId) {
        let Some(room) = self.parts.get(&conn).map(|p| p.room.clone()) else {
            return;
        };
        let Some(members) = self.rooms.get(&room).map(|r| r.members.clone()) else {
            return;
        };
        for c in members {
            if c != conn
                && let Some(p) = self.parts.get_mut(&c)
            {
                p.needs_negotiation = true;
            }
        }
    }

    fn subscribe_answer(&mut self, now: Instant, conn: ConnId, sdp: String) {
        let answer = match SdpAnswer::from_sdp_string(&sdp) {
            Ok(a) => a,
            Err(e) => return self.fatal(now, conn, format!("invalid subscribeAnswer SDP: {e}")),
        };
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        let (Some(pending), Some(t)) = (p.pending.take(), p.recv.as_mut()) else {
            return self.fatal(
                now,
                conn,
                "subscribeAnswer without an outstanding subscribeOffer".into(),
            );
        };
        if let Err(e) = t.rtc.sdp_api().accept_answer(pending, answer) {
            return self.fatal(now, conn, format!("subscribeAnswer rejected: {e}"));
        }
        let mut media = Vec::new();
        t.drain(now, &mut self.out, &mut media);
        for s in &mut p.slots {
            s.negotiated = t.rtc.media(s.mid).is_some();
            s.live = s.negotiated && s.track.is_some();
        }
    }

    /// Sends a subscribe offer to every participant that needs one and has none outstanding.
    fn negotiate_all(&mut self, now: Instant) {
        let dirty: Vec<ConnId> = self
            .parts
            .iter()
            .filter(|(_, p)| p.needs_negotiation && p.pending.is_none())
            .map(|(c, _)| *c)
            .collect();
        for conn in dirty {
            self.negotiate(now, conn);
        }
    }

    fn negotiate(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        let Some(room) = self.rooms.get(&p.room) else {
            return;
        };
        // What this participant should receive: every other member's published tracks.
        let mut desired: Vec<(TrackKey, String)> = Vec::new();
        for c in room.members.iter().filter(|c| **c != conn) {
            let Some(o) = self.parts.get(c) else { continue };
            if o.send.as_ref().is_none_or(|t| !t.rtc.is_alive()) {
                continue;
            }
            if !o.visible() {
                continue;
            }
            for (_, t) in &o.published {
                if !o.info.permissions.may_send(&t.source) || !p.rules.wants(&o.info.id, &t.source)
                {
                    continue;
                }
                desired.push((
                    TrackKey {
                        publisher: *c,
                        track: t.clone(),
                    },
                    o.info.id.clone(),
                ));
            }
        }
        let fresh = if p.recv.is_none() && !desired.is_empty() {
            Some(self.new_transport(now, conn, Side::Recv))
        } else {
            None
        };
        let Some(p) = self.parts.get_mut(&conn) else {
            return;
        };
        p.needs_negotiation = false;
        if let Some(f) = fresh {
            p.recv = Some(f);
        }
        let Some(t) = p.recv.as_mut() else { return };
        if !t.rtc.is_alive() {
            return;
        }
        let mut api = t.rtc.sdp_api();
        let mut freed = Vec::new();
        for s in &mut p.slots {
            if let Some(k) = &s.track
                && !desired.iter().any(|(d, _)| d == k)
            {
                s.track = None;
                s.live = false;
                if s.negotiated {
                    api.set_direction(s.mid, Direction::Inactive);
                }
                freed.push(s.mid);
            }
        }
        for (key, participant_id) in desired {
            if p.slots.iter().any(|s| s.track.as_ref() == Some(&key)) {
                continue;
            }
            if let Some(s) = p
                .slots
                .iter_mut()
                .find(|s| s.track.is_none() && s.negotiated && !freed.contains(&s.mid))
            {
                api.set_direction(s.mid, Direction::SendOnly);
                s.track = Some(key);
                s.live = false;
            } else {
                let mid = api.add_media(
                    MediaKind::Audio,
                    Direction::SendOnly,
                    Some(participant_id),
                    Some(key.track.track_id.clone()),
                    None,
                );
                p.slots.push(Slot {
                    mid,
                    track: Some(key),
                    live: false,
                    negotiated: false,
                });
            }
        }
        if !api.has_changes() {
            return;
        }
        let Some((offer, pending)) = api.apply() else {
            // Changes that need no negotiation were applied directly.
            let mut media = Vec::new();
            t.drain(now, &mut self.out, &mut media);
            return;
        };
        let mut media = Vec::new();
        t.drain(now, &mut self.out, &mut media);
        p.pending = Some(pending);
        let assigned: Vec<(Mid, TrackKey)> = p
            .slots
            .iter()
            .filter_map(|s| s.track.clone().map(|k| (s.mid, k)))
            .collect();
        let mut tracks = Vec::new();
        for (mid, k) in assigned {
            let Some(o) = self.parts.get(&k.publisher) else {
                continue;
            };
            tracks.push(ForwardedTrack {
                mid: mid.to_string(),
                participant_id: o.info.id.clone(),
                track_id: k.track.track_id,
                source: k.track.source,
            });
        }
        let Some(p) = self.parts.get(&conn) else {
            return;
        };
        tracing::debug!(participant = %p.info.id, tracks = tracks.len(), "subscribeOffer");
        p.send_msg(ServerMessage::SubscribeOffer {
            sdp: offer.to_sdp_string(),
            tracks,
        });
    }

    /// Removes a participant (connection closed, `leave`, or fatal error).
    fn remove(&mut self, now: Instant, conn: ConnId, reply_left: bool) {
        let Some(mut p) = self.parts.remove(&conn) else {
            return;
        };
        if reply_left {
            p.send_msg(ServerMessage::Left);
            let _ = p.out.send(Outbound::Close);
        }
        for t in [p.send.as_mut(), p.recv.as_mut()].into_iter().flatten() {
            t.rtc.disconnect();
            let mut media = Vec::new();
            t.drain(now, &mut self.out, &mut media);
        }
        self.addr_cache.retain(|_, (c, _)| *c != conn);
        tracing::info!(room = %p.room, participant = %p.info.id, "left");
        let had_tracks = !p.published.is_empty();
        let Some(room) = self.rooms.get_mut(&p.room) else {
            return;
        };
        room.members.retain(|c| *c != conn);
        if room.members.is_empty() {
            self.rooms.remove(&p.room);
            return;
        }
        let was_speaker = room.active_speaker == Some(conn);
        if was_speaker {
            room.active_speaker = None;
        }
        let members = room.members.clone();
        for c in members {
            if let Some(o) = self.parts.get_mut(&c) {
                if p.visible() {
                    o.send_msg(ServerMessage::ParticipantLeft {
                        participant: p.info.clone(),
                        reason: LeftReason::LeftCall,
                    });
                }
                if was_speaker {
                    o.send_msg(ServerMessage::ActiveSpeaker {
                        participant_id: None,
                    });
                }
                if had_tracks {
                    o.needs_negotiation = true;
                }
            }
        }
        self.send_counts(&p.room);
    }

    /// Ends the call for everybody in `room` (deleted through the REST API): `callEnded`,
    /// close, transports disconnected. The room's session ends with it.
    fn end_room(&mut self, now: Instant, room: &str, reason: &str) {
        let Some(r) = self.rooms.remove(room) else {
            return;
        };
        tracing::info!(%room, participants = r.members.len(), "room deleted; ending its call");
        for conn in r.members {
            let Some(mut p) = self.parts.remove(&conn) else {
                continue;
            };
            p.send_msg(ServerMessage::CallEnded {
                reason: reason.to_owned(),
            });
            let _ = p.out.send(Outbound::Close);
            for t in [p.send.as_mut(), p.recv.as_mut()].into_iter().flatten() {
                t.rtc.disconnect();
                let mut media = Vec::new();
                t.drain(now, &mut self.out, &mut media);
            }
            self.addr_cache.retain(|_, (c, _)| *c != conn);
        }
    }

    /// Ends the call for everybody: `callEnded`, close, transports disconnected.
    pub(crate) fn shutdown(&mut self, now: Instant, reason: &str) {
        for (_, mut p) in self.parts.drain() {
            p.send_msg(ServerMessage::CallEnded {
                reason: reason.to_owned(),
            });
            let _ = p.out.send(Outbound::Close);
            for t in [p.send.as_mut(), p.recv.as_mut()].into_iter().flatten() {
                t.rtc.disconnect();
                let mut media = Vec::new();
                t.drain(now, &mut self.out, &mut media);
            }
        }
        self.rooms.clear();
        self.addr_cache.clear();
    }

    /// One datagram arrived on the shared socket.
    pub(crate) fn handle_udp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Ok(contents) = data.try_into() else {
            return; // Not STUN, DTLS, RTP or RTCP.
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let cached = self.addr_cache.get(&source).copied().filter(|(c, side)| {
            self.parts
                .get(c)
                .and_then(|p| p.transport(*side))
                .is_some_and(|t| t.rtc.accepts(&input))
        });
        let target = cached.or_else(|| {
            self.parts.iter().find_map(|(c, p)| {
                [(Side::Send, p.send.as_ref()), (Side::Recv, p.recv.as_ref())]
                    .into_iter()
                    .find(|(_, t)| t.is_some_and(|t| t.rtc.is_alive() && t.rtc.accepts(&input)))
                    .map(|(side, _)| (*c, side))
            })
        });
        let Some((conn, side)) = target else {
            tracing::trace!(%source, "no transport accepts datagram");
            return;
        };
        self.addr_cache.insert(source, (conn, side));
        let Some(t) = self
            .parts
            .get_mut(&conn)
            .and_then(|p| p.transport_mut(side))
        else {
            return;
        };
        if let Err(e) = t.rtc.handle_input(input) {
            tracing::debug!(error = %e, %source, "datagram rejected");
        }
        let mut media = Vec::new();
        t.drain(now, &mut self.out, &mut media);
        if side == Side::Send {
            self.forward(now, conn, media);
        }
    }

    /// Drives every transport whose deadline passed (taken from the deadline heap, not by a
    /// scan).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        while let Some(&Reverse((at, conn, side))) = self.out.timers.peek() {
            if at > now {
                break;
            }
            self.out.timers.pop();
            if self.is_scheduled(at, conn, side) {
                due.push((conn, side));
            }
        }
        for &(conn, side) in &due {
            let Some(t) = self
                .parts
                .get_mut(&conn)
                .and_then(|p| p.transport_mut(side))
            else {
                continue;
            };
            if t.timeout > now || !t.rtc.is_alive() {
                continue; // A duplicate entry of a transport already driven above.
            }
            t.scheduled = None; // Its entry is gone: the drain below schedules the next one.
            if let Err(e) = t.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(error = %e, "timeout handling failed");
            }
            let mut media = Vec::new();
            t.drain(now, &mut self.out, &mut media);
            if side == Side::Send {
                self.forward(now, conn, media);
            }
        }
        self.due = due;
    }

    /// Writes frames received from `publisher` to every subscriber's m-line for that track, at
    /// once (no batching): payload, RTP timestamp progression, marker bit and audio level kept.
    fn forward(&mut self, now: Instant, publisher: ConnId, media: Vec<MediaData>) {
        if media.is_empty() {
            return;
        }
        let Some(p) = self.parts.get(&publisher) else {
            return;
        };
        let Some(room) = self.rooms.get(&p.room) else {
            return;
        };
        let mut targets: Vec<(ConnId, Mid, usize)> = Vec::new();
        let mut levels: Vec<i8> = Vec::new();
        for (i, data) in media.iter().enumerate() {
            let Some((_, track)) = p.published.iter().find(|(m, _)| *m == data.mid) else {
                tracing::debug!(mid = %data.mid, "media on an m-line that publishes no track");
                continue;
            };
            if !p.info.permissions.may_send(&track.source) {
                continue; // canSend forbids it: forward nothing, not even levels.
            }
            if !track.ignore_audio_level
                && let Some(level) = data.ext_vals.audio_level
            {
                levels.push(level);
            }
            for c in room.members.iter().filter(|c| **c != publisher) {
                let Some(s) = self.parts.get(c) else { continue };
                let found = s.slots.iter().find(|s| {
                    s.live
                        && s.track
                            .as_ref()
                            .is_some_and(|k| k.publisher == publisher && k.track == *track)
                });
                if let Some(slot) = found {
                    targets.push((*c, slot.mid, i));
                }
            }
        }
        self.stats.frames_in += media.len() as u64;
        for level in levels {
            self.observe_level(now, publisher, level);
        }
        for (c, mid, i) in targets {
            let data = &media[i];
            let Some(t) = self.parts.get_mut(&c).and_then(|s| s.recv.as_mut()) else {
                continue;
            };
            if !t.rtc.is_alive() {
                continue;
            }
            let Some(mut writer) = t.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            writer = writer.start_of_talkspurt(data.audio_start_of_talk_spurt);
            if let (Some(level), Some(voice)) =
                (data.ext_vals.audio_level, data.ext_vals.voice_activity)
            {
                writer = writer.audio_level(level, voice);
            }
            match writer.write(pt, data.network_time, data.time, data.data.clone()) {
                Ok(()) => self.stats.frames_out += 1,
                Err(e) => tracing::debug!(error = %e, "forwarding write failed"),
            }
            let mut unused = Vec::new();
            t.drain(now, &mut self.out, &mut unused);
        }
    }
}
