//! Surviving network outages while in a call: the signalling connection is resumed and the
//! media transports are ICE-restarted, both without leaving the call.
//!
//! - **Signalling.** When the socket closes (or the shell finds it silent, `session.rs`) in a
//!   call the server can resume (it gave a `resumeToken`), the core asks the shell to
//!   reconnect ([`TransportCommand::Reconnect`]), which sends `resume` first on the new socket.
//!   Attempts repeat every [`RECONNECT_INTERVAL`] until [`RESUME_LIMIT`] after the loss; then
//!   the call ends with `on_error` and `left`, never silently. The server keeps our participant
//!   meanwhile (`daily_proto::DEFAULT_RESUME_GRACE_SECS`), so others see us stay; `resumed`
//!   brings the room as it is now, and who joined, changed or left meanwhile is announced.
//!   Requests waiting for a reply when the link dropped complete with an error (their message
//!   or its reply may be lost); what is sent while the link is down is queued and goes out on
//!   the resumed link, after `resume`.
//! - **Media.** A transport reported interrupted (ICE consent lost, RFC 7675) for
//!   [`ICE_RESTART_AFTER`] while signalling is up is ICE-restarted (RFC 8445 section 2.4): the
//!   send transport with a new offer, the receive transport by asking the server
//!   (`restartIce`); again every [`ICE_RESTART_INTERVAL`] while it stays down, and the call
//!   ends after [`MEDIA_LOST_LIMIT`]. After a resume, interrupted transports restart at once.
//!   (Short outages need none of this: ICE consent resumes by itself when packets flow again.)

use super::{CallCore, Phase, SourceHandle, TransportCommand};
use crate::ClientError;
use crate::call::roster::Announce;
use crate::call::types::{ClientEvent, Connection, Participant};
use daily_proto::{ClientMessage, PROTOCOL_VERSION, ParticipantInfo};
use std::time::{Duration, Instant};

/// How long after losing the signalling connection the client keeps trying to resume the
/// session before it ends the call (`on_error`, then `left`). The server keeps a participant
/// whose signalling dropped for its resume grace (60 s) but drops it 35 s after the last
/// datagram from its transports (`daily_server::DEAD_MEDIA_GRACE`): past that a resume is
/// refused, so trying longer only delays the error. A 30 s outage is resumed either way.
pub const RESUME_LIMIT: Duration = Duration::from_secs(35);
/// Time between reconnection attempts while the signalling connection is down.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a transport stays interrupted, with signalling up, before it is ICE-restarted.
/// Longer than a short outage that ICE consent survives by itself.
pub const ICE_RESTART_AFTER: Duration = Duration::from_secs(3);
/// Time between ICE restarts of a transport that stays interrupted.
pub const ICE_RESTART_INTERVAL: Duration = Duration::from_secs(5);
/// How long a transport may stay interrupted before the call ends with an error.
pub const MEDIA_LOST_LIMIT: Duration = Duration::from_secs(45);

/// The state of the signalling connection during a call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) enum Link {
    /// Connected (or no call).
    #[default]
    Up,
    /// Lost at `since`; the next attempt is due at `retry_at` (`None`: one is under way).
    Down { since: Instant, retry_at: Option<Instant> },
    /// Reconnected and `resume` sent; waiting for `resumed` until `deadline`.
    Resuming { since: Instant, deadline: Instant },
}

/// What the core knows about the media transports' health.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MediaHealth {
    /// Since when each transport (send, receive) has been interrupted.
    pub interrupted: [Option<Instant>; 2],
    /// When each was last ICE-restarted.
    pub restarted: [Option<Instant>; 2],
}

fn index(c: Connection) -> Option<usize> {
    match c {
        Connection::SendTransport => Some(0),
        Connection::RecvTransport => Some(1),
        Connection::Signalling => None,
    }
}

impl<S: SourceHandle> CallCore<S> {
    /// The signalling connection of `generation` was lost in a call. Returns false when the
    /// session cannot be resumed (the caller ends the call).
    pub(super) fn link_lost(&mut self, now: Instant) -> bool {
        if self.resume_token.is_none() {
            return false;
        }
        match self.link {
            Link::Up => {
                self.emit(ClientEvent::NetworkConnectionStatusUpdated { connection: Connection::Signalling, connected: false });
                self.fail_requests(ClientError::Signalling("the connection to the room server was lost before the reply".into()));
                self.link = Link::Down { since: now, retry_at: None };
                self.reconnect();
            }
            Link::Resuming { since, .. } => self.link = Link::Down { since, retry_at: Some(now + RECONNECT_INTERVAL) },
            Link::Down { .. } => {}
        }
        true
    }

    fn reconnect(&mut self) {
        let (Some(url), Some(token), Some(session_id)) = (self.url.clone(), self.resume_token.clone(), self.session_id.clone()) else {
            return;
        };
        let resume = ClientMessage::Resume { protocol_version: PROTOCOL_VERSION, session_id, participant_id: self.local_id.clone(), resume_token: token };
        self.transport(TransportCommand::Reconnect { generation: self.generation, url, resume });
    }

    /// A new signalling connection of `generation` is open and `resume` was sent on it.
    pub fn handle_signalling_reopened(&mut self, now: Instant, generation: u64) {
        if !self.is_live(generation) {
            return; // the session ended meanwhile; its teardown closes the new socket too
        }
        if let Link::Down { since, .. } = self.link {
            self.link = Link::Resuming { since, deadline: now + super::CONNECT_TIMEOUT };
        }
    }

    /// A reconnection attempt of `generation` failed. `server_gone`: nothing listens at the
    /// server's address any more (connection refused), so the session died with the server
    /// process and the call ends at once (as it did before resumption existed: a killed
    /// server is reported within milliseconds).
    pub fn handle_reconnect_failed(&mut self, now: Instant, generation: u64, error: ClientError, server_gone: bool) {
        if !self.is_live(generation) || !matches!(self.phase, Phase::InCall) {
            return;
        }
        if server_gone {
            return self.give_up(now, format!("the room server is gone: {error}"));
        }
        if let Link::Down { since, .. } = self.link {
            tracing::debug!(%error, "reconnection attempt failed");
            self.link = Link::Down { since, retry_at: Some(now + RECONNECT_INTERVAL) };
        }
    }

    /// `resumed`: the session continues on the new connection.
    pub(super) fn on_resumed(&mut self, me: ParticipantInfo, others: Vec<ParticipantInfo>, speaker: Option<String>) {
        self.link = Link::Up;
        self.emit(ClientEvent::NetworkConnectionStatusUpdated { connection: Connection::Signalling, connected: true });
        self.server_me = Some(me);
        let rules = self.settings.rules();
        for (a, p) in self.roster.resync(others) {
            if a == Announce::Left {
                self.transport(TransportCommand::ParticipantLeft { generation: self.generation, participant_id: p.id.clone() });
            }
            let p = Participant::remote(&p, &rules);
            match a {
                Announce::Joined => self.emit(ClientEvent::ParticipantJoined(p)),
                Announce::Updated => self.emit(ClientEvent::ParticipantUpdated(p)),
                Announce::Left => self.emit(ClientEvent::ParticipantLeft(p, daily_proto::LeftReason::LeftCall)),
                Announce::Nothing => {}
            }
        }
        if self.active_speaker != speaker {
            self.active_speaker = speaker;
            if let Some(p) = self.active_speaker() {
                self.emit(ClientEvent::ActiveSpeakerChanged(p));
            }
        }
        if self.sent_rules.as_ref() != Some(&rules) {
            self.sent_rules = Some(rules.clone());
            self.request("update subscriptions", super::Target::Nobody, move |request_id| ClientMessage::SetSubscriptions { request_id, rules });
        }
        // Transports that died with the link restart now rather than after ICE_RESTART_AFTER.
        for i in 0..2 {
            if self.health.interrupted[i].is_some() {
                self.health.restarted[i] = None;
            }
        }
    }

    /// A transport's connectivity changed (`now` known).
    pub(super) fn media_status(&mut self, now: Instant, connection: Connection, connected: bool) {
        let Some(i) = index(connection) else { return };
        if connected {
            self.health.interrupted[i] = None;
            self.health.restarted[i] = None;
        } else if self.health.interrupted[i].is_none() {
            self.health.interrupted[i] = Some(now);
        }
    }

    /// The next deadline of the link and media timers, in a call.
    pub(super) fn link_timeout(&self) -> Option<Instant> {
        let link = match self.link {
            Link::Up => None,
            Link::Down { since, retry_at } => Some(retry_at.map_or(since + RESUME_LIMIT, |r| r.min(since + RESUME_LIMIT))),
            Link::Resuming { since, deadline } => Some(deadline.min(since + RESUME_LIMIT)),
        };
        let media = (0..2).filter_map(|i| {
            let since = self.health.interrupted[i]?;
            let lost = since + MEDIA_LOST_LIMIT;
            if self.link != Link::Up {
                return Some(lost);
            }
            let restart = match self.health.restarted[i] {
                Some(t) => t + ICE_RESTART_INTERVAL,
                None => since + ICE_RESTART_AFTER,
            };
            Some(restart.min(lost))
        });
        link.into_iter().chain(media).min()
    }

    /// Runs the link and media timers due at `now`, in a call.
    pub(super) fn link_timers(&mut self, now: Instant) {
        match self.link {
            Link::Down { since, .. } | Link::Resuming { since, .. } if now >= since + RESUME_LIMIT => {
                let secs = RESUME_LIMIT.as_secs();
                return self.give_up(now, format!("lost the connection to the room server for more than {secs} s"));
            }
            Link::Down { since, retry_at: Some(t) } if now >= t => {
                self.link = Link::Down { since, retry_at: None };
                self.reconnect();
            }
            Link::Resuming { since, deadline } if now >= deadline => {
                self.link = Link::Down { since, retry_at: None };
                self.reconnect();
            }
            _ => {}
        }
        for i in 0..2 {
            let Some(since) = self.health.interrupted[i] else { continue };
            if now >= since + MEDIA_LOST_LIMIT {
                let secs = MEDIA_LOST_LIMIT.as_secs();
                return self.give_up(now, format!("the media connection to the room server was lost for more than {secs} s"));
            }
        }
        if self.link != Link::Up {
            return;
        }
        let due = |i: usize, h: &MediaHealth| {
            h.interrupted[i].is_some_and(|since| match h.restarted[i] {
                Some(t) => now >= t + ICE_RESTART_INTERVAL,
                None => now >= since + ICE_RESTART_AFTER,
            })
        };
        let (send, recv) = (due(0, &self.health), due(1, &self.health));
        if send {
            self.health.restarted[0] = Some(now);
            let tracks = self.wanted_tracks();
            self.transport(TransportCommand::RestartIce { generation: self.generation, tracks });
        }
        if recv {
            self.health.restarted[1] = Some(now);
            self.signal(ClientMessage::RestartIce);
        }
    }

    /// Ends the call after an outage we could not recover from: `on_error`, then `left`.
    fn give_up(&mut self, now: Instant, message: String) {
        self.link = Link::Up;
        self.health = MediaHealth::default();
        self.emit(ClientEvent::Error(message));
        self.begin_teardown(now);
    }
}
