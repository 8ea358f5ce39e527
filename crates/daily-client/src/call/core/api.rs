//! The API calls of [`CallCore`]: settings updates, custom tracks, requests answered by the
//! server (app messages, permissions, ejections) and what each outputs.

use crate::call::settings::Settings;
use super::{CONNECT_TIMEOUT, CallCore, CompletionId, CustomTrack, Group, LEAVE_TIMEOUT, Phase, SourceHandle, Target, TransportCommand};
use crate::ClientError;
use crate::call::types::{CallState, ClientEvent, IceConfig, InputChange, JoinSettings};
use daily_proto::{ClientMessage, DEFAULT_STREAM_ID, MAX_APP_MESSAGE_BYTES, MAX_STREAM_ID_BYTES, PermissionsUpdate, RoomUrl};
use serde_json::{Value, json};
use std::time::Instant;

impl<S: SourceHandle> CallCore<S> {
    // ---- API calls ----

    /// `join(meeting_url, meeting_token, client_settings)`. Outputs `joining`, then asks the
    /// transports to connect; `done` completes with Daily's join data once joined.
    pub fn handle_join(&mut self, now: Instant, meeting_url: &str, token: Option<String>, settings: JoinSettings<S>, done: CompletionId) {
        let url = match RoomUrl::parse(meeting_url) {
            Ok(u) => u,
            Err(e) => return self.complete(done, Err(ClientError::InvalidArgument(e.to_string()))),
        };
        if matches!(self.state, CallState::Joining | CallState::Joined | CallState::Leaving) {
            let state = self.state.as_str();
            return self.complete(done, Err(ClientError::InvalidState { action: "join", state }));
        }
        // Each patch applies whole or not at all; the inputs patch can only fail for not being
        // a dict, so checking that first makes the pair atomic without copying the settings.
        let (inputs, publishing) = (&settings.client_settings["inputs"], &settings.client_settings["publishing"]);
        if let Err(e) = Settings::check_dict(inputs, "input settings").and_then(|_| self.settings.apply_publishing(publishing)) {
            return self.complete(done, Err(e));
        }
        let _ = self.settings.apply_inputs(inputs);
        self.generation += 1;
        self.mic = settings.microphone;
        self.settings.sync_mic_enabled(self.mic.is_some());
        self.camera = settings.camera;
        self.screen = settings.screen_video;
        self.settings.sync_enabled("camera", self.camera.is_some());
        self.settings.sync_enabled("screenVideo", self.screen.is_some());
        self.roster.clear();
        self.token = token;
        self.url = Some(url.clone());
        self.join_done = Some(done);
        self.set_state(CallState::Joining);
        self.phase = Phase::Connecting { deadline: now + CONNECT_TIMEOUT };
        self.transport(TransportCommand::Connect { generation: self.generation, url });
    }

    /// `leave()`. Completes at once when not in a call; cancels a join in progress (its
    /// completion fails with [`ClientError::Cancelled`]).
    pub fn handle_leave(&mut self, now: Instant, done: CompletionId) {
        match self.state {
            CallState::Initialized | CallState::Left => self.ok(done),
            CallState::Joining => {
                if matches!(self.phase, Phase::AwaitJoined { .. } | Phase::Media { .. }) {
                    self.signal(ClientMessage::Leave);
                }
                self.fail_join(ClientError::Cancelled, false);
                self.ok(done);
            }
            // The server already ended the call and the transports are closing: `left`
            // follows their teardown.
            CallState::Joined if matches!(self.phase, Phase::TearingDown { .. }) => self.leave_waiters.push(done),
            CallState::Joined => {
                self.set_state(CallState::Leaving);
                self.signal(ClientMessage::Leave);
                self.phase = Phase::Leaving { deadline: now + LEAVE_TIMEOUT };
                self.leave_waiters.push(done);
            }
            CallState::Leaving => self.leave_waiters.push(done),
        }
    }

    /// `set_user_name(name)`: kept, and sent to the room when connected.
    pub fn handle_set_user_name(&mut self, name: &str) {
        self.user_name = name.to_owned();
        if matches!(self.phase, Phase::AwaitJoined { .. } | Phase::Media { .. } | Phase::InCall) {
            self.signal(ClientMessage::SetUserName { user_name: name.to_owned() });
        }
    }

    /// `set_ice_config`: used from the next join on.
    pub fn handle_set_ice_config(&mut self, config: IceConfig) -> Result<(), ClientError> {
        config.validate()?;
        self.ice = config;
        Ok(())
    }

    /// `update_inputs(patch)`, and the sources `change` names for the microphone, camera and
    /// screen (`Some(None)` stops one, `None` leaves it). Outputs `InputsUpdated` before `done`.
    pub fn handle_update_inputs(&mut self, change: InputChange<S>, patch: &Value, done: CompletionId) {
        if let Err(e) = self.settings.apply_inputs(patch) {
            return self.complete(done, Err(e));
        }
        fn switch<S: SourceHandle>(slot: &mut Option<(String, S)>, to: Option<Option<(String, S)>>) -> bool {
            let Some(m) = to else { return false };
            let same = match (&*slot, &m) {
                (Some((a, s1)), Some((b, s2))) => a == b && s1.same_source(s2),
                (None, None) => true,
                _ => false,
            };
            if !same {
                *slot = m;
            }
            !same
        }
        let mut changed = switch(&mut self.mic, change.microphone);
        changed |= switch(&mut self.camera, change.camera);
        changed |= switch(&mut self.screen, change.screen_video);
        self.settings.sync_mic_enabled(self.mic.is_some());
        self.settings.sync_enabled("camera", self.camera.is_some());
        self.settings.sync_enabled("screenVideo", self.screen.is_some());
        self.emit(ClientEvent::InputsUpdated(self.settings.inputs.clone()));
        if changed { self.republish(done) } else { self.ok(done) }
    }

    /// `add_custom_audio_track` (`replace` false) or `update_custom_audio_track` (true).
    pub fn handle_custom_track(&mut self, name: &str, track_id: String, source: S, ignore_level: bool, replace: bool, done: CompletionId) {
        self.custom_track(false, name, track_id, source, ignore_level, replace, done);
    }

    /// `add_custom_video_track` (`replace` false) or `update_custom_video_track` (true).
    pub fn handle_custom_video_track(&mut self, name: &str, track_id: String, source: S, replace: bool, done: CompletionId) {
        self.custom_track(true, name, track_id, source, true, replace, done);
    }

    #[allow(clippy::too_many_arguments)]
    fn custom_track(&mut self, video: bool, name: &str, track_id: String, source: S, ignore_level: bool, replace: bool, done: CompletionId) {
        if let Err(e) = crate::call::settings::validate_custom_track_name(name) {
            return self.complete(done, Err(e));
        }
        let (kind, input) = if video { ("video", "customVideo") } else { ("audio", "customAudio") };
        let tracks = if video { &mut self.custom_video } else { &mut self.custom_tracks };
        let exists = tracks.contains_key(name);
        if exists != replace {
            let e = if replace {
                format!("no custom {kind} track named {name:?}")
            } else {
                format!("a custom {kind} track named {name:?} already exists")
            };
            return self.complete(done, Err(ClientError::InvalidArgument(e)));
        }
        tracks.insert(name.to_owned(), CustomTrack { track_id: track_id.clone(), source, ignore_level });
        self.settings.inputs[input][name] = json!({"isEnabled": true, "settings": {"customTrack": {"id": track_id}}});
        self.emit(ClientEvent::InputsUpdated(self.settings.inputs.clone()));
        self.republish(done);
    }

    /// `remove_custom_audio_track(name)`.
    pub fn handle_remove_custom_track(&mut self, name: &str, done: CompletionId) {
        self.remove_custom_track(false, name, done);
    }

    /// `remove_custom_video_track(name)`.
    pub fn handle_remove_custom_video_track(&mut self, name: &str, done: CompletionId) {
        self.remove_custom_track(true, name, done);
    }

    fn remove_custom_track(&mut self, video: bool, name: &str, done: CompletionId) {
        let (kind, input) = if video { ("video", "customVideo") } else { ("audio", "customAudio") };
        let tracks = if video { &mut self.custom_video } else { &mut self.custom_tracks };
        if tracks.remove(name).is_none() {
            return self.complete(done, Err(ClientError::InvalidArgument(format!("no custom {kind} track named {name:?}"))));
        }
        if let Some(o) = self.settings.inputs[input].as_object_mut() {
            o.remove(name);
        }
        self.emit(ClientEvent::InputsUpdated(self.settings.inputs.clone()));
        self.republish(done);
    }

    /// `update_publishing(patch)`. Outputs `PublishingUpdated` before `done`.
    pub fn handle_update_publishing(&mut self, patch: &Value, done: CompletionId) {
        let publish_state = |s: &Settings| {
            (s.mic_publishing, s.mic_send, s.camera_publishing, s.camera_send, s.screen_publishing, s.screen_send)
        };
        let before = publish_state(&self.settings);
        if let Err(e) = self.settings.apply_publishing(patch) {
            return self.complete(done, Err(e));
        }
        self.emit(ClientEvent::PublishingUpdated(self.settings.publishing.clone()));
        if before != publish_state(&self.settings) { self.republish(done) } else { self.ok(done) }
    }

    /// `update_subscription_profiles(patch)`.
    pub fn handle_update_subscription_profiles(&mut self, patch: &Value, done: CompletionId) {
        if let Err(e) = self.settings.apply_profiles(patch) {
            return self.complete(done, Err(e));
        }
        self.emit(ClientEvent::SubscriptionProfilesUpdated(self.settings.profiles.clone()));
        self.send_rules(done);
    }

    /// `update_subscriptions(participant_settings, profile_settings)`.
    pub fn handle_update_subscriptions(&mut self, participant_settings: &Value, profile_settings: &Value, done: CompletionId) {
        let (subs, profiles) = match self.settings.apply_subscriptions(participant_settings, profile_settings) {
            Ok(c) => c,
            Err(e) => return self.complete(done, Err(e)),
        };
        if profiles {
            self.emit(ClientEvent::SubscriptionProfilesUpdated(self.settings.profiles.clone()));
        }
        if subs {
            self.emit(ClientEvent::SubscriptionsUpdated(self.settings.subscriptions.clone()));
        }
        self.send_rules(done);
    }

    /// Sends the current rules when joined; otherwise they go with the join (or right after
    /// it completes, when they changed while joining).
    pub(super) fn send_rules(&mut self, done: CompletionId) {
        if self.state != CallState::Joined {
            return self.ok(done);
        }
        let rules = self.settings.rules();
        self.sent_rules = Some(rules.clone());
        self.request("update subscriptions", Target::One(done), move |request_id| ClientMessage::SetSubscriptions { request_id, rules });
    }

    /// `send_app_message(data, participant_id)`: to everybody when `to` is `None` or `"*"`.
    pub fn handle_send_app_message(&mut self, data: Value, to: Option<String>, done: CompletionId) {
        let size = serde_json::to_string(&data).map_or(usize::MAX, |t| t.len());
        if size > MAX_APP_MESSAGE_BYTES {
            let e = format!("app message of {size} bytes exceeds the limit of {MAX_APP_MESSAGE_BYTES} bytes");
            return self.complete(done, Err(ClientError::InvalidArgument(e)));
        }
        let to = to.filter(|t| t != "*");
        self.request("send an app message", Target::One(done), move |request_id| ClientMessage::AppMessage { request_id, data, to });
    }

    /// `update_permissions(update)` of the local participant.
    pub fn handle_update_permissions(&mut self, update: PermissionsUpdate, done: CompletionId) {
        if let Err(e) = update.validate() {
            return self.complete(done, Err(ClientError::InvalidArgument(e)));
        }
        self.request("update permissions", Target::One(done), move |request_id| ClientMessage::UpdatePermissions {
            request_id,
            participant_id: None,
            permissions: update,
        });
    }

    /// The `permissions` part of `update_remote_participants`: `done` completes once, after
    /// every participant's update was answered, with the failures joined by `"; "`.
    pub fn handle_update_remote_permissions(&mut self, updates: Vec<(String, PermissionsUpdate)>, done: CompletionId) {
        if updates.is_empty() {
            return self.ok(done);
        }
        if let Some(e) = updates.iter().find_map(|(_, u)| u.validate().err()) {
            return self.complete(done, Err(ClientError::InvalidArgument(e)));
        }
        if self.state != CallState::Joined {
            return self.complete(done, Err(ClientError::NotInCall { action: "update remote participants" }));
        }
        let group = self.next_request;
        self.next_request += 1;
        self.groups.insert(group, Group { remaining: updates.len(), errors: Vec::new(), done });
        for (pid, u) in updates {
            self.request("update remote participants", Target::Group(group), move |request_id| ClientMessage::UpdatePermissions {
                request_id,
                participant_id: Some(pid),
                permissions: u,
            });
        }
    }

    /// `eject_remote_participants(ids)`.
    pub fn handle_eject(&mut self, ids: Vec<String>, done: CompletionId) {
        if ids.is_empty() {
            return self.ok(done);
        }
        self.request("eject participants", Target::One(done), move |request_id| ClientMessage::Eject { request_id, participant_ids: ids });
    }

    /// `start_recording(streaming_settings, stream_id, force_new)`: asks the server to record
    /// the room; `done` completes with the stream id (ours: [`DEFAULT_STREAM_ID`] when `None`)
    /// after the server's `recordingStarted` was output as an event. `streaming_settings`
    /// (video size, bitrates, layout) must be a dict or null; an audio-only raw-tracks
    /// recording has no use for them.
    pub fn handle_start_recording(&mut self, streaming_settings: &Value, stream_id: Option<String>, force_new: bool, done: CompletionId) {
        if !(streaming_settings.is_null() || streaming_settings.is_object()) {
            return self.complete(done, Err(ClientError::InvalidArgument("streaming_settings must be a dict or None".into())));
        }
        let id = stream_id.clone().unwrap_or_else(|| DEFAULT_STREAM_ID.to_owned());
        if id.is_empty() || id.len() > MAX_STREAM_ID_BYTES {
            let e = format!("stream_id must be 1 to {MAX_STREAM_ID_BYTES} bytes");
            return self.complete(done, Err(ClientError::InvalidArgument(e)));
        }
        self.request("start a recording", Target::Value(done, Value::String(id)), move |request_id| ClientMessage::StartRecording {
            request_id,
            stream_id,
            force_new,
        });
    }

    /// `stop_recording(stream_id)`.
    pub fn handle_stop_recording(&mut self, stream_id: Option<String>, done: CompletionId) {
        self.request("stop a recording", Target::One(done), move |request_id| ClientMessage::StopRecording { request_id, stream_id });
    }

    /// Sends a request; fails at once when not joined.
    pub(super) fn request(&mut self, action: &'static str, target: Target, make: impl FnOnce(u64) -> ClientMessage) {
        if self.state != CallState::Joined {
            return self.finish_request(target, Err(ClientError::NotInCall { action }));
        }
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(id, target);
        self.signal(make(id));
    }

    pub(super) fn finish_request(&mut self, target: Target, r: Result<(), ClientError>) {
        match target {
            Target::One(done) => self.complete(done, r.map(|_| Value::Null)),
            Target::Value(done, v) => self.complete(done, r.map(|_| v)),
            Target::Nobody => {}
            Target::Group(g) => {
                let Some(group) = self.groups.get_mut(&g) else { return };
                if let Err(e) = r {
                    group.errors.push(e.to_string());
                }
                group.remaining -= 1;
                if group.remaining == 0 {
                    if let Some(group) = self.groups.remove(&g) {
                        let r = if group.errors.is_empty() { Ok(Value::Null) } else { Err(ClientError::Refused(group.errors.join("; "))) };
                        self.complete(group.done, r);
                    }
                }
            }
        }
    }

    /// Publishes the wanted tracks now if the transports exist; otherwise they are
    /// published when the media starts.
    pub(super) fn republish(&mut self, done: CompletionId) {
        match self.phase {
            Phase::Media { .. } | Phase::InCall => {
                self.publishes.push(done);
                let tracks = self.wanted_tracks();
                self.transport(TransportCommand::Publish { generation: self.generation, tracks, done });
            }
            _ => self.ok(done),
        }
    }
}
