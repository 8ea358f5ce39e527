//! What [`CallCore`] does with each message of the room server.

use super::{CallCore, Phase, SourceHandle, TRANSPORT_TIMEOUT, TransportCommand};
use crate::ClientError;
use crate::call::roster::Announce;
use crate::call::types::{CallState, ClientEvent, Participant};
use daily_proto::ServerMessage;
use std::time::Instant;

impl<S: SourceHandle> CallCore<S> {
    /// A message from the server on the signalling connection of `generation`.
    pub fn handle_server_message(&mut self, now: Instant, generation: u64, msg: ServerMessage) {
        if generation != self.generation || matches!(self.phase, Phase::Idle | Phase::Connecting { .. }) {
            return;
        }
        if let Phase::AwaitJoined { .. } = self.phase {
            return self.on_join_reply(now, msg);
        }
        match msg {
            ServerMessage::PublishAnswer { sdp } => self.transport(TransportCommand::PublishAnswer { generation, sdp }),
            ServerMessage::SubscribeOffer { sdp, tracks } => self.transport(TransportCommand::Subscribe { generation, sdp, tracks }),
            ServerMessage::ParticipantJoined { participant } => {
                let id = participant.id.clone();
                let a = self.roster.joined(participant);
                self.announce(&id, a);
            }
            ServerMessage::ParticipantUpdated { participant } => {
                if participant.id == self.local_id {
                    self.server_me = Some(participant);
                    let me = self.local();
                    self.emit(ClientEvent::ParticipantUpdated(me));
                } else {
                    let id = participant.id.clone();
                    let a = self.roster.updated(participant);
                    self.announce(&id, a);
                }
            }
            ServerMessage::ParticipantLeft { participant, reason } => {
                let a = self.roster.left(&participant.id);
                self.transport(TransportCommand::ParticipantLeft { generation, participant_id: participant.id.clone() });
                if a == Announce::Left {
                    let p = Participant::remote(&participant, &self.settings.rules());
                    self.emit(ClientEvent::ParticipantLeft(p, reason));
                }
            }
            ServerMessage::AppMessage { data, from } => self.emit(ClientEvent::AppMessage { data, from }),
            ServerMessage::ActiveSpeaker { participant_id } => {
                if self.active_speaker != participant_id {
                    self.active_speaker = participant_id;
                    // While joining it is only recorded: the speaker may not be announced yet,
                    // and `handle_media_ready` reports it after the participants.
                    if let Some(p) = self.active_speaker().filter(|_| self.state == CallState::Joined) {
                        self.emit(ClientEvent::ActiveSpeakerChanged(p));
                    }
                }
            }
            ServerMessage::ParticipantCounts { present, hidden } => {
                if std::mem::replace(&mut self.counts, (present, hidden)) != (present, hidden) {
                    self.emit(ClientEvent::ParticipantCountsUpdated { present, hidden });
                }
            }
            ServerMessage::RecordingStarted { status } => {
                let status = serde_json::to_value(status).unwrap_or_default();
                if self.state == CallState::Joined {
                    self.emit(ClientEvent::RecordingStarted(status));
                } else {
                    self.recordings_seen.push(status); // reported once joined
                }
            }
            ServerMessage::RecordingStopped { stream_id } => {
                if self.state == CallState::Joined {
                    self.emit(ClientEvent::RecordingStopped(stream_id));
                } else {
                    self.recordings_seen.retain(|s| s["streamId"] != stream_id.as_str());
                }
            }
            ServerMessage::RecordingError { stream_id, message } => {
                if self.state == CallState::Joined {
                    self.emit(ClientEvent::RecordingError { stream_id, message });
                }
            }
            ServerMessage::Reply { request_id, error } => {
                if let Some(target) = self.requests.remove(&request_id) {
                    self.finish_request(target, error.map_or(Ok(()), |e| Err(ClientError::Refused(e))));
                }
            }
            ServerMessage::Left => {
                if let Phase::Leaving { .. } = self.phase {
                    self.begin_teardown(now);
                }
            }
            ServerMessage::CallEnded { reason } => self.ended_by_server(now, format!("the call ended: {reason}")),
            ServerMessage::Error { message, fatal } => {
                if fatal {
                    self.ended_by_server(now, message);
                } else {
                    self.emit(ClientEvent::Error(message));
                }
            }
            ServerMessage::Resumed { participant, participants, active_speaker } => {
                self.on_resumed(participant, participants, active_speaker)
            }
            ServerMessage::Joined { .. } => {}
            _ => {}
        }
    }

    fn announce(&mut self, id: &str, a: Announce) {
        let Some(p) = self.roster.get(id) else { return };
        let p = Participant::remote(p, &self.settings.rules());
        match a {
            Announce::Joined => self.emit(ClientEvent::ParticipantJoined(p)),
            Announce::Updated => self.emit(ClientEvent::ParticipantUpdated(p)),
            Announce::Left | Announce::Nothing => {}
        }
    }

    fn on_join_reply(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::Joined { session_id, participant: me, participants: others, resume_token, .. } => {
                self.resume_token = resume_token;
                self.local_id = me.id.clone();
                self.joined_at = me.joined_at;
                if !me.user_name.is_empty() {
                    self.user_name = me.user_name.clone(); // a meeting token may set the name
                }
                self.server_me = Some(me);
                self.session_id = Some(session_id);
                self.roster.snapshot(others);
                self.phase = Phase::Media { deadline: now + TRANSPORT_TIMEOUT };
                let loopback = self.url.as_ref().is_some_and(|u| match u.host.parse::<std::net::IpAddr>() {
                    Ok(ip) => ip.is_loopback(),
                    Err(_) => u.host == "localhost",
                });
                let tracks = self.wanted_tracks();
                self.transport(TransportCommand::StartMedia { generation: self.generation, loopback, ice: self.ice.clone(), tracks });
            }
            ServerMessage::Error { message, .. } => self.fail_join(ClientError::Signalling(message), true),
            other => {
                let e = ClientError::Signalling(format!("unexpected first message from the server: {other:?}"));
                self.fail_join(e, true);
            }
        }
    }

    /// The server ended our session (`callEnded`, a fatal error).
    fn ended_by_server(&mut self, now: Instant, message: String) {
        match self.phase {
            Phase::AwaitJoined { .. } | Phase::Media { .. } | Phase::Connecting { .. } => {
                self.fail_join(ClientError::Signalling(message), true);
            }
            Phase::InCall | Phase::Leaving { .. } => {
                self.emit(ClientEvent::Error(message));
                self.begin_teardown(now);
            }
            Phase::Idle | Phase::TearingDown { .. } => {}
        }
    }
}
