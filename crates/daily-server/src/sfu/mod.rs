//! The room and SFU core: rooms, participants, their two str0m transports, negotiation and
//! forwarding. No IO: the shell (`driver.rs`) feeds it commands, UDP datagrams and timeouts, all
//! stamped with `now`, and after every call drains [`Sfu::poll_signal`] (signalling messages,
//! each addressed to a connection) and [`Sfu::poll_transmit`] (datagrams for the socket). The
//! core holds no channel: the shell keeps each connection's sender and routes to it, so the
//! core runs as it is in tests, with in-memory peers on a virtual clock (`tests/`).
//!
//! Invariant kept throughout (str0m's "single-mutation invariant", `str0m/src/lib.rs`): every
//! mutation of an `Rtc` (input, write, SDP change) is followed by draining `poll_output` to
//! `Output::Timeout` before the next mutation of the same `Rtc`. [`Transport::drain`] does that
//! and queues the media events, which are forwarded only after the source drain finished.
//!
//! By concern:
//! - `transport.rs`: one str0m `Rtc` per peer connection (RTP mode), its drain, the deadline
//!   heap;
//! - `rooms.rs`: joining, leaving, `participantCounts`, what the room is told;
//! - `messages.rs`: messages from joined participants, app messages, the rate limits;
//! - `permissions.rs`: `updatePermissions` and `eject`;
//! - `negotiation.rs`: publish offers (send transport), subscribe offers and answers (receive
//!   transport, one m-line per forwarded track), ICE restarts;
//! - `forward.rs`: RTP from a send transport to the subscribers' receive transports, with
//!   sequence numbers that keep the publisher's gaps (`seq.rs`);
//! - `speaker.rs`: the active speaker from RFC 6464 audio levels;
//! - `resume.rs`: participants whose signalling was lost, `resume`, `restartIce`;
//! - `recording.rs`: `startRecording` / `stopRecording`, what the room is told, and the
//!   copy of each forwarded audio packet for the recorder thread (`crate::recorder`);
//! - `limits.rs`: the tunables ([`SfuConfig`]) and timeouts, token buckets.

mod forward;
mod keyframe;
mod limits;
mod messages;
mod negotiation;
mod permissions;
mod recording;
mod resume;
mod rooms;
mod seq;
mod speaker;
#[cfg(test)]
mod tests;
mod transport;

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};

pub(crate) use recording::{RecordCmd, StopReason};
use std::net::SocketAddr;
use std::time::Instant;

use daily_proto::{ClientMessage, ServerMessage, SubscriptionRules};
use str0m::format::Codec;
use str0m::media::Pt;
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Input, RtcConfig};

use crate::auth::Grant;
use rooms::{Participant, Room};
use transport::{Inbound, Outq, Side, TIMERS_REBUILD_MIN};

// Re-exported by the crate; `SfuConfig` is carried by `ServerConfig::sfu`.
pub use limits::{
    APP_MESSAGE_BURST, APP_MESSAGES_PER_SECOND, DEAD_MEDIA_GRACE, PING_INTERVAL, RateLimit,
    SIGNALLING_TIMEOUT, SfuConfig, UPDATE_BURST, UPDATES_PER_SECOND,
};
pub(crate) use transport::rtc_config;

/// Identifies one signalling connection (and the participant it becomes).
pub(crate) type ConnId = u64;

/// Largest number of tracks one participant may publish at once (bounds SDP and forwarding work).
pub const MAX_TRACKS_PER_PARTICIPANT: usize = 16;

/// Largest number of participants in one room.
pub const MAX_PARTICIPANTS_PER_ROOM: usize = 200;

/// Longest display name accepted, in bytes.
pub use daily_proto::MAX_USER_NAME_BYTES;

/// Something for the core to do, sent by a signalling connection or the server itself.
#[derive(Debug)]
pub(crate) enum Command {
    /// A connection sent a valid `join` for `room`, already admitted by the join gate
    /// (`http.rs`): `grant` is what its meeting token grants (default without one) and
    /// `max_participants` the room's own limit, if it was created with one. What the core
    /// answers is addressed to `conn` (see [`Sfu::poll_signal`]), even when it refuses.
    Join {
        conn: ConnId,
        room: String,
        user_name: Option<String>,
        subscriptions: SubscriptionRules,
        grant: Grant,
        max_participants: Option<usize>,
    },
    /// End the call in `room` for everybody in it (the room was deleted): each gets `callEnded`
    /// with `reason`, then the socket closes.
    EndRoom { room: String, reason: String },
    /// A joined connection sent a message (anything after `join`).
    Message { conn: ConnId, msg: ClientMessage },
    /// The connection closed. `clean`: by a close frame, a protocol violation or the server
    /// itself (the participant leaves now); otherwise it was lost (EOF, socket error, ping
    /// timeout) and the participant is kept for a `resume` (`resume.rs`).
    Closed { conn: ConnId, clean: bool },
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

/// Signalling output not yet taken by [`Sfu::poll_signal`], in the order it was produced (so
/// each connection's messages keep their order).
#[derive(Default)]
struct Signals(VecDeque<(ConnId, Outbound)>);

impl Signals {
    fn send(&mut self, conn: ConnId, msg: ServerMessage) {
        self.0.push_back((conn, Outbound::Message(msg)));
    }

    fn close(&mut self, conn: ConnId) {
        self.0.push_back((conn, Outbound::Close));
    }
}

/// Counters for tests and logs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SfuStats {
    pub frames_in: u64,
    pub frames_out: u64,
    /// Keyframe requests sent to publishers (`keyframe.rs`).
    pub keyframe_requests: u64,
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
    signals: Signals,
    /// Scratch for `handle_timeout`: the transports due in this wake-up.
    due: Vec<(ConnId, Side)>,
    /// `out.timers` is rebuilt from the transports when it grows past this many entries.
    rebuild_at: usize,
    stats: SfuStats,
    /// The Opus payload type of every receive transport (the server offers it, the answer
    /// keeps it).
    opus_pt: Pt,
    /// The VP8 payload type of every receive transport, likewise.
    vp8_pt: Pt,
    /// Scratch for the forwarding path, kept across calls so it allocates nothing in steady
    /// state: packets of one drain, `(subscriber, slot, packet)` targets, audio levels, and
    /// what draining a receive transport yields (nothing: it only sends).
    inbound: Vec<Inbound>,
    fwd_targets: Vec<(ConnId, usize, usize)>,
    fwd_levels: Vec<i8>,
    scratch_media: Vec<Inbound>,
    config: SfuConfig,
    /// Participants whose signalling is gone, waiting for a `resume` (few: a list).
    detached: Vec<ConnId>,
    /// Recording (`recording.rs`): on at all, open to every participant, the last key given,
    /// and the orders for the recorder not yet taken by [`Sfu::poll_record`].
    recording_enabled: bool,
    recording_open: bool,
    next_recording: u64,
    record_out: VecDeque<RecordCmd>,
}

impl Sfu {
    pub(crate) fn new(udp_addr: SocketAddr, mut rtc_config: RtcConfig) -> Self {
        let opus_pt = rtc_config
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == Codec::Opus)
            .map_or(Pt::from(111), |p| p.pt());
        let vp8_pt = rtc_config
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == Codec::Vp8)
            .map_or(Pt::from(96), |p| p.pt());
        Sfu {
            udp_addr,
            rtc_config,
            rooms: HashMap::new(),
            parts: HashMap::default(),
            addr_cache: HashMap::new(),
            out: Outq::default(),
            signals: Signals::default(),
            due: Vec::new(),
            rebuild_at: TIMERS_REBUILD_MIN,
            stats: SfuStats::default(),
            opus_pt,
            vp8_pt,
            inbound: Vec::new(),
            fwd_targets: Vec::new(),
            fwd_levels: Vec::new(),
            scratch_media: Vec::new(),
            config: SfuConfig::default(),
            detached: Vec::new(),
            recording_enabled: false,
            recording_open: false,
            next_recording: 0,
            record_out: VecDeque::new(),
        }
    }

    /// Replaces the default [`SfuConfig`] (resume grace, rate limits).
    pub(crate) fn with_config(mut self, config: SfuConfig) -> Self {
        self.config = config;
        self
    }

    pub(crate) fn stats(&self) -> SfuStats {
        self.stats
    }

    /// How many participants are in `room` (0 when there is no such room).
    pub(crate) fn participant_count(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// Every room with at least one participant, and how many (unordered).
    pub(crate) fn room_loads(&self) -> Vec<(String, usize)> {
        self.rooms
            .iter()
            .filter(|(_, r)| !r.members.is_empty())
            .map(|(name, r)| (name.clone(), r.members.len()))
            .collect()
    }

    /// Next signalling output: a message for connection `ConnId`, or the order to close it.
    /// Output for a connection the shell no longer knows (it closed meanwhile) is dropped there.
    pub(crate) fn poll_signal(&mut self) -> Option<(ConnId, Outbound)> {
        self.signals.0.pop_front()
    }

    /// Next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// Earliest deadline of any live transport or detached participant.
    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        if self.out.timers.len() > self.rebuild_at {
            self.rebuild_timers();
        }
        let detached = self.detached_deadline();
        while let Some(&Reverse((at, conn, side))) = self.out.timers.peek() {
            if self.is_scheduled(at, conn, side) {
                return Some(detached.map_or(at, |d| d.min(at)));
            }
            self.out.timers.pop();
        }
        detached
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
            } => self.join(
                now,
                conn,
                room,
                user_name,
                subscriptions,
                grant,
                max_participants,
            ),
            Command::EndRoom { room, reason } => self.end_room(now, &room, &reason),
            Command::Message { conn, msg } => self.message(now, conn, msg),
            Command::Closed { conn, clean } => self.closed(now, conn, clean),
        }
        self.negotiate_all(now);
    }

    /// Ends the call for everybody: `callEnded`, close, transports disconnected.
    pub(crate) fn shutdown(&mut self, now: Instant, reason: &str) {
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.stop_room_recordings(now, &room, StopReason::ServerStopped);
        }
        let parts: Vec<_> = self.parts.drain().collect();
        for (conn, mut p) in parts {
            self.end_call_of(now, conn, &mut p, reason);
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
        t.last_heard = now;
        if let Err(e) = t.rtc.handle_input(input) {
            tracing::debug!(error = %e, %source, "datagram rejected");
        }
        let mut media = std::mem::take(&mut self.inbound);
        t.drain(now, &mut self.out, &mut media);
        if side == Side::Send {
            self.forward(now, conn, &mut media);
        }
        media.clear();
        self.inbound = media;
        if !self.out.keyframe_requests.is_empty() {
            self.handle_keyframe_requests(now);
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
            let mut media = std::mem::take(&mut self.inbound);
            t.drain(now, &mut self.out, &mut media);
            if side == Side::Send {
                self.forward(now, conn, &mut media);
            }
            media.clear();
            self.inbound = media;
        }
        self.due = due;
        if !self.out.keyframe_requests.is_empty() {
            self.handle_keyframe_requests(now);
        }
        self.expire_detached(now);
    }
}
