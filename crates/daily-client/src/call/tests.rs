//! Deterministic tests of [`CallCore`] on a virtual clock: no socket, no thread, no sleep.
//!
//! The join model enumerates every order in which the server's messages, our own media
//! becoming ready and an optional disruption (leave, fatal server error, lost signalling) can
//! reach the core, and checks Daily's event contract on each.

use super::core::{CallCore, CompletionId, Output, SourceHandle, TransportCommand};
use super::types::{CallState, ClientEvent, JoinSettings};
use crate::ClientError;
use daily_proto::{LeftReason, MediaInfo, ParticipantInfo, PermissionsUpdate, ServerMessage};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

impl SourceHandle for u32 {
    fn same_source(&self, other: &Self) -> bool {
        self == other
    }
}

pub(super) const URL: &str = "http://127.0.0.1:7880/room";

pub(super) fn info(id: &str, name: &str) -> ParticipantInfo {
    ParticipantInfo {
        id: id.into(),
        user_name: name.into(),
        user_id: id.into(),
        joined_at: 1,
        is_owner: false,
        microphone: MediaInfo { publishing: true, track_id: Some(format!("{id}-mic")) },
        custom_audio: BTreeMap::new(),
        camera: MediaInfo::default(),
        screen_video: MediaInfo::default(),
        custom_video: BTreeMap::new(),
        permissions: Default::default(),
    }
}

/// What the core output, flattened for checks (generations kept for debugging output).
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(super) enum Seen {
    Event(ClientEvent),
    Done(CompletionId, Result<Value, ClientError>),
    Signal(u64, String),
    Teardown(u64),
    StartMedia(u64),
    Publish(u64, CompletionId),
    Connect(u64),
    Reconnect(u64),
    RestartIce(u64),
    Other,
}

pub(super) struct Harness {
    pub core: CallCore<u32>,
    pub now: Instant,
    pub seen: Vec<Seen>,
    next_done: CompletionId,
    /// What `joined` carries as `resumeToken`.
    pub resume_token: Option<String>,
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness { core: CallCore::new("local-before-join".into(), 0), now: Instant::now(), seen: Vec::new(), next_done: 1, resume_token: None }
    }

    pub(super) fn done_id(&mut self) -> CompletionId {
        self.next_done += 1;
        self.next_done
    }

    pub(super) fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            self.seen.push(match o {
                Output::Event(e) => Seen::Event(e),
                Output::Complete(id, r) => Seen::Done(id, r),
                Output::Signal(g, m) => Seen::Signal(g, m.to_json()),
                Output::Transport(TransportCommand::Teardown { generation }) => Seen::Teardown(generation),
                Output::Transport(TransportCommand::StartMedia { generation, .. }) => Seen::StartMedia(generation),
                Output::Transport(TransportCommand::Publish { generation, done, .. }) => Seen::Publish(generation, done),
                Output::Transport(TransportCommand::Connect { generation, .. }) => Seen::Connect(generation),
                Output::Transport(TransportCommand::Reconnect { generation, .. }) => Seen::Reconnect(generation),
                Output::Transport(TransportCommand::RestartIce { generation, .. }) => Seen::RestartIce(generation),
                Output::Transport(_) => Seen::Other,
            });
        }
    }

    pub(super) fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.core.handle_timeout(self.now);
        self.drain();
    }

    /// Joins and opens signalling; returns (join completion, generation).
    pub(super) fn join_open(&mut self) -> (CompletionId, u64) {
        let d = self.done_id();
        self.core.handle_join(self.now, URL, None, JoinSettings::default(), d);
        let g = self.core.generation();
        self.core.handle_signalling_open(self.now, g);
        self.drain();
        (d, g)
    }

    pub(super) fn server(&mut self, g: u64, m: ServerMessage) {
        self.core.handle_server_message(self.now, g, m);
        self.drain();
    }

    pub(super) fn joined(&mut self, g: u64, others: Vec<ParticipantInfo>) {
        self.server(
            g,
            ServerMessage::Joined {
                room: "room".into(),
                session_id: "s1".into(),
                participant: info("me", "bot"),
                participants: others,
                resume_token: self.resume_token.clone(),
            },
        );
    }

    /// A joined call with `others` present.
    pub(super) fn in_call(&mut self, others: Vec<ParticipantInfo>) -> u64 {
        let (_, g) = self.join_open();
        self.joined(g, others);
        self.core.handle_media_ready(self.now, g);
        self.drain();
        assert_eq!(self.core.call_state(), CallState::Joined);
        g
    }

    pub(super) fn completions(&self, id: CompletionId) -> Vec<&Result<Value, ClientError>> {
        self.seen.iter().filter_map(|s| if let Seen::Done(i, r) = s { (*i == id).then_some(r) } else { None }).collect()
    }

    pub(super) fn position(&self, f: impl Fn(&Seen) -> bool) -> Option<usize> {
        self.seen.iter().position(f)
    }

    pub(super) fn state_event(&self, st: CallState) -> Option<usize> {
        self.position(|s| matches!(s, Seen::Event(ClientEvent::CallStateUpdated(x)) if *x == st))
    }

    pub(super) fn done_at(&self, id: CompletionId) -> Option<usize> {
        self.position(|s| matches!(s, Seen::Done(i, _) if *i == id))
    }
}

// ---------- the join model ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    /// The server's `joined` with the snapshot.
    Snapshot,
    /// Our transports are up (`handle_media_ready`).
    MediaReady,
    Joined(char),
    Updated(char),
    Left(char),
    /// The application calls `leave()`.
    Leave,
    /// A fatal server error.
    FatalError,
    /// The signalling connection drops.
    Closed,
}

/// Every order of `atoms` in which each `(a, b)` of `before` has `a` first.
fn orders(atoms: &[Atom], before: &[(Atom, Atom)]) -> Vec<Vec<Atom>> {
    fn go(rest: &mut Vec<Atom>, cur: &mut Vec<Atom>, before: &[(Atom, Atom)], out: &mut Vec<Vec<Atom>>) {
        if rest.is_empty() {
            out.push(cur.clone());
            return;
        }
        for i in 0..rest.len() {
            let a = rest[i];
            // `a` may go next only if nothing that must precede it is still waiting.
            if before.iter().any(|(x, y)| *y == a && rest.contains(x)) {
                continue;
            }
            if rest[..i].contains(&a) {
                continue; // same atom twice: one order is enough
            }
            rest.remove(i);
            cur.push(a);
            go(rest, cur, before, out);
            cur.pop();
            rest.insert(i, a);
        }
    }
    let mut out = Vec::new();
    go(&mut atoms.to_vec(), &mut Vec::new(), before, &mut out);
    out
}

struct Scenario {
    /// Participants in the join snapshot.
    snapshot: Vec<char>,
    atoms: Vec<Atom>,
}

fn pid(c: char) -> String {
    format!("p-{c}")
}

/// Runs one order and checks the contract; returns a description of the first violation.
fn run(snapshot: &[char], order: &[Atom]) -> Result<(), String> {
    let mut h = Harness::new();
    let (join_done, g) = h.join_open();
    let leave_done = h.done_id();
    let mut left_called = false;
    for a in order {
        match *a {
            Atom::Snapshot => h.joined(g, snapshot.iter().map(|c| info(&pid(*c), "x")).collect()),
            Atom::MediaReady => {
                h.core.handle_media_ready(h.now, g);
                h.drain();
            }
            Atom::Joined(c) => h.server(g, ServerMessage::ParticipantJoined { participant: info(&pid(c), "x") }),
            Atom::Updated(c) => h.server(g, ServerMessage::ParticipantUpdated { participant: info(&pid(c), "renamed") }),
            Atom::Left(c) => h.server(g, ServerMessage::ParticipantLeft { participant: info(&pid(c), "x"), reason: LeftReason::LeftCall }),
            Atom::Leave => {
                left_called = true;
                h.core.handle_leave(h.now, leave_done);
                h.drain();
            }
            Atom::FatalError => h.server(g, ServerMessage::Error { message: "boom".into(), fatal: true }),
            Atom::Closed => {
                h.core.handle_signalling_closed(h.now, g);
                h.drain();
            }
        }
    }
    // Let every deadline pass and every teardown finish.
    for _ in 0..4 {
        let tears: Vec<u64> = h.seen.iter().filter_map(|s| if let Seen::Teardown(g) = s { Some(*g) } else { None }).collect();
        for t in tears {
            h.core.handle_teardown_done(h.now, t);
        }
        h.drain();
        h.advance(20_000);
    }
    // 1. Every completion exactly once; the state event before it.
    let jd = h.completions(join_done);
    if jd.len() != 1 {
        return Err(format!("join completed {} times", jd.len()));
    }
    let joined_ok = jd[0].is_ok();
    let cause = if joined_ok { CallState::Joined } else { CallState::Left };
    match (h.state_event(cause), h.done_at(join_done)) {
        (Some(s), Some(d)) if s < d => {}
        other => return Err(format!("state {cause:?} not before the join completion: {other:?}")),
    }
    if left_called {
        let ld = h.completions(leave_done);
        if ld.len() != 1 || ld[0].is_err() {
            return Err(format!("leave completed {ld:?}"));
        }
        match (h.state_event(CallState::Left), h.done_at(leave_done)) {
            (Some(s), Some(d)) if s < d => {}
            other => return Err(format!("left state not before the leave completion: {other:?}")),
        }
    }
    // 2. Participant events: joined once, first, and only after our joined state.
    let joined_state = h.state_event(CallState::Joined);
    let mut announced: BTreeMap<String, usize> = BTreeMap::new();
    let mut gone: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in h.seen.iter().enumerate() {
        let Seen::Event(e) = s else { continue };
        match e {
            ClientEvent::ParticipantJoined(p) => {
                if joined_state.is_none_or(|j| i < j) {
                    return Err(format!("{} announced before our joined state", p.info.id));
                }
                *announced.entry(p.info.id.clone()).or_default() += 1;
            }
            ClientEvent::ParticipantUpdated(p) if !p.is_local => {
                if !announced.contains_key(&p.info.id) {
                    return Err(format!("{} updated before joined", p.info.id));
                }
            }
            ClientEvent::ParticipantLeft(p, _) => {
                if !announced.contains_key(&p.info.id) {
                    return Err(format!("{} left before joined", p.info.id));
                }
                *gone.entry(p.info.id.clone()).or_default() += 1;
            }
            _ => {}
        }
    }
    if let Some((id, n)) = announced.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{id} announced {n} times"));
    }
    if let Some((id, n)) = gone.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{id} left {n} times"));
    }
    // 3. A call that stays up has announced exactly who is there, each once.
    if h.core.call_state() == CallState::Joined {
        let present: Vec<String> = h.core.participants().as_object().unwrap().keys().filter(|k| *k != "local").cloned().collect();
        for p in &present {
            if announced.get(p) != Some(&1) || gone.contains_key(p) {
                return Err(format!("{p} is present but was announced {:?} times", announced.get(p)));
            }
        }
    } else if h.core.call_state() != CallState::Left {
        return Err(format!("ended in state {:?}", h.core.call_state()));
    }
    Ok(())
}

fn scenarios() -> Vec<Scenario> {
    use Atom::*;
    let mut out = Vec::new();
    let b_lives = [Joined('b'), Updated('b'), Left('b')];
    // A in the snapshot, then updated and gone; B joins (and maybe leaves) around our join.
    for b in 1..=3 {
        let mut atoms = vec![Snapshot, MediaReady, Updated('a'), Left('a')];
        atoms.extend_from_slice(&b_lives[..b]);
        out.push(Scenario { snapshot: vec!['a'], atoms });
    }
    // B both in the snapshot and broadcast (a server that raced its own snapshot).
    out.push(Scenario { snapshot: vec!['a', 'b'], atoms: vec![Snapshot, MediaReady, Joined('b'), Updated('b'), Left('a')] });
    // Two newcomers around our join.
    out.push(Scenario { snapshot: vec![], atoms: vec![Snapshot, MediaReady, Joined('b'), Joined('c'), Updated('c'), Left('b')] });
    // Each disruption, anywhere.
    let mut disrupted = Vec::new();
    for s in &out {
        for d in [Leave, FatalError, Closed] {
            let mut atoms = s.atoms.clone();
            atoms.push(d);
            disrupted.push(Scenario { snapshot: s.snapshot.clone(), atoms });
        }
    }
    out.extend(disrupted);
    out
}

fn constraints(atoms: &[Atom]) -> Vec<(Atom, Atom)> {
    use Atom::*;
    let mut before = Vec::new();
    for a in atoms {
        match a {
            // The snapshot is the server's first message; media starts after it.
            MediaReady | Joined(_) | Updated(_) | Left(_) | FatalError => before.push((Snapshot, *a)),
            _ => {}
        }
        if let Updated(c) | Left(c) = a {
            if atoms.contains(&Joined(*c)) {
                before.push((Joined(*c), *a));
            }
        }
        if let Left(c) = a {
            if atoms.contains(&Updated(*c)) {
                before.push((Updated(*c), *a));
            }
        }
    }
    before
}

#[test]
fn every_interleaving_of_a_join_announces_each_participant_once_and_first() {
    let mut runs = 0;
    for s in scenarios() {
        let before = constraints(&s.atoms);
        for order in orders(&s.atoms, &before) {
            runs += 1;
            if let Err(e) = run(&s.snapshot, &order) {
                panic!("order {order:?} (snapshot {:?}): {e}", s.snapshot);
            }
        }
    }
    // The model is exhaustive, not a sample: make sure it really ran thousands of orders.
    assert!(runs > 3_000, "only {runs} orders");
}

#[test]
fn the_pipecat_race_a_caller_joining_while_we_join_is_announced_once() {
    // The order that made pipecat start two captures: the caller's broadcast arrives after
    // our snapshot, before our transports are up.
    let mut h = Harness::new();
    let (done, g) = h.join_open();
    h.joined(g, vec![]);
    h.server(g, ServerMessage::ParticipantJoined { participant: info("caller", "c") });
    h.core.handle_media_ready(h.now, g);
    h.drain();
    let joins: Vec<usize> = (0..h.seen.len())
        .filter(|i| matches!(&h.seen[*i], Seen::Event(ClientEvent::ParticipantJoined(p)) if p.info.id == "caller"))
        .collect();
    assert_eq!(joins.len(), 1, "{:?}", h.seen);
    assert!(h.done_at(done).unwrap() < joins[0], "announced after the join completes, as the snapshot is");
}

#[test]
fn a_join_that_never_connects_fails_after_the_timeout_with_left_first() {
    let mut h = Harness::new();
    let d = h.done_id();
    h.core.handle_join(h.now, URL, None, JoinSettings::default(), d);
    h.drain();
    assert!(matches!(h.seen.last(), Some(Seen::Connect(_))));
    h.advance(4_999);
    assert!(h.completions(d).is_empty());
    h.advance(1);
    let r = h.completions(d);
    assert!(matches!(r[..], [Err(ClientError::Timeout(_))]), "{r:?}");
    assert!(h.state_event(CallState::Left).unwrap() < h.done_at(d).unwrap());
    assert!(h.position(|s| matches!(s, Seen::Event(ClientEvent::Error(_)))).unwrap() < h.done_at(d).unwrap());
}

#[test]
fn join_rules_bad_url_and_twice() {
    let mut h = Harness::new();
    let d = h.done_id();
    h.core.handle_join(h.now, "not a url", None, JoinSettings::default(), d);
    h.drain();
    assert!(matches!(h.completions(d)[..], [Err(ClientError::InvalidArgument(_))]));
    assert_eq!(h.core.call_state(), CallState::Initialized, "a bad URL changes nothing");
    h.in_call(vec![]);
    let d2 = h.done_id();
    h.core.handle_join(h.now, URL, None, JoinSettings::default(), d2);
    h.drain();
    assert!(matches!(h.completions(d2)[..], [Err(ClientError::InvalidState { action: "join", state: "joined" })]));
}

#[test]
fn requests_complete_once_even_when_the_call_ends_first() {
    let mut h = Harness::new();
    let d = h.done_id();
    h.core.handle_send_app_message(json!({"x": 1}), None, d);
    h.drain();
    assert!(matches!(h.completions(d)[..], [Err(ClientError::NotInCall { .. })]));
    let g = h.in_call(vec![info("a", "a")]);
    let (m1, m2) = (h.done_id(), h.done_id());
    h.core.handle_send_app_message(json!({"x": 1}), Some("a".into()), m1);
    h.core.handle_send_app_message(json!({"x": 2}), None, m2);
    h.drain();
    h.server(g, ServerMessage::Reply { request_id: 1, error: None });
    // Request ids are the core's own: the first sent after join is 1 unless rules were re-sent.
    let answered = h.completions(m1).len() + h.completions(m2).len();
    assert_eq!(answered, 1);
    h.core.handle_signalling_closed(h.now, g);
    h.drain();
    assert_eq!(h.completions(m1).len(), 1);
    assert_eq!(h.completions(m2).len(), 1);
    // A late reply changes nothing.
    h.server(g, ServerMessage::Reply { request_id: 2, error: None });
    assert_eq!(h.completions(m1).len() + h.completions(m2).len(), 2);
}

#[test]
fn remote_permission_updates_complete_once_with_every_refusal() {
    let mut h = Harness::new();
    let g = h.in_call(vec![info("a", "a"), info("b", "b")]);
    let d = h.done_id();
    let up = PermissionsUpdate { has_presence: Some(false), ..Default::default() };
    h.core.handle_update_remote_permissions(vec![("a".into(), up.clone()), ("b".into(), up)], d);
    h.drain();
    let ids: Vec<u64> = h
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::Signal(_, t) if t.contains("updatePermissions") => {
                serde_json::from_str::<Value>(t).ok().and_then(|v| v["requestId"].as_u64())
            }
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    h.server(g, ServerMessage::Reply { request_id: ids[0], error: Some("not allowed".into()) });
    assert!(h.completions(d).is_empty(), "waits for both answers");
    h.server(g, ServerMessage::Reply { request_id: ids[1], error: None });
    assert!(matches!(&h.completions(d)[..], [Err(ClientError::Refused(m))] if m == "not allowed"));
}

#[test]
fn a_bad_patch_changes_nothing_and_events_precede_completions() {
    let mut h = Harness::new();
    let before = h.core.publishing().clone();
    let d = h.done_id();
    h.core.handle_update_publishing(&json!({"microphone": {"sendSettings": "loud"}}), d);
    h.drain();
    assert!(matches!(h.completions(d)[..], [Err(ClientError::InvalidArgument(_))]));
    assert_eq!(h.core.publishing(), &before);
    assert!(!h.seen.iter().any(|s| matches!(s, Seen::Event(ClientEvent::PublishingUpdated(_)))));
    let d = h.done_id();
    h.core.handle_update_publishing(&json!({"microphone": {"sendSettings": "speech"}}), d);
    h.drain();
    let ev = h.position(|s| matches!(s, Seen::Event(ClientEvent::PublishingUpdated(_)))).unwrap();
    assert!(ev < h.done_at(d).unwrap());
}

#[test]
fn a_publish_completes_once_whether_the_transport_or_the_teardown_answers_first() {
    let mut h = Harness::new();
    let g = h.in_call(vec![]);
    let d = h.done_id();
    h.core.handle_custom_track("bot", "t1".into(), 7, false, false, d);
    h.drain();
    assert!(h.seen.iter().any(|s| matches!(s, Seen::Publish(x, y) if *x == g && *y == d)));
    h.core.handle_signalling_closed(h.now, g);
    h.drain();
    assert!(matches!(h.completions(d)[..], [Err(ClientError::CallEnded)]));
    h.core.handle_publish_done(h.now, d, Ok(()));
    h.drain();
    assert_eq!(h.completions(d).len(), 1);
    // Before media exists, adding a track completes at once: it is published with the media.
    let mut h = Harness::new();
    let d = h.done_id();
    h.core.handle_custom_track("bot", "t1".into(), 7, false, false, d);
    h.drain();
    assert!(matches!(h.completions(d)[..], [Ok(_)]));
}

#[test]
fn leave_waits_for_the_server_then_the_teardown() {
    let mut h = Harness::new();
    let g = h.in_call(vec![info("a", "a")]);
    let d = h.done_id();
    h.core.handle_leave(h.now, d);
    h.drain();
    assert_eq!(h.core.call_state(), CallState::Leaving);
    assert!(h.seen.iter().any(|s| matches!(s, Seen::Signal(_, t) if t.contains("\"leave\""))));
    h.server(g, ServerMessage::Left);
    assert!(h.completions(d).is_empty(), "waits for the transports to close");
    h.core.handle_teardown_done(h.now, g);
    h.drain();
    assert_eq!(h.core.call_state(), CallState::Left);
    assert!(h.state_event(CallState::Left).unwrap() < h.done_at(d).unwrap());
    // A server that never answers: closed after LEAVE_TIMEOUT + TEARDOWN_TIMEOUT anyway.
    let mut h = Harness::new();
    h.in_call(vec![]);
    let d = h.done_id();
    h.core.handle_leave(h.now, d);
    h.drain();
    h.advance(2_000);
    h.advance(3_000);
    assert!(matches!(h.completions(d)[..], [Ok(_)]));
    assert_eq!(h.participants_count(), 0);
}

#[test]
fn an_active_speaker_named_while_joining_is_reported_after_the_participants() {
    let mut h = Harness::new();
    let (done, g) = h.join_open();
    h.joined(g, vec![info("a", "a")]);
    h.server(g, ServerMessage::ActiveSpeaker { participant_id: Some("a".into()) });
    assert!(!h.seen.iter().any(|s| matches!(s, Seen::Event(ClientEvent::ActiveSpeakerChanged(_)))));
    h.core.handle_media_ready(h.now, g);
    h.drain();
    let joined = h.position(|s| matches!(s, Seen::Event(ClientEvent::ParticipantJoined(p)) if p.info.id == "a")).unwrap();
    let speaker = h.position(|s| matches!(s, Seen::Event(ClientEvent::ActiveSpeakerChanged(p)) if p.info.id == "a")).unwrap();
    assert!(h.done_at(done).unwrap() < joined && joined < speaker);
}

#[test]
fn leave_while_the_server_ends_the_call_completes_with_the_teardown() {
    let mut h = Harness::new();
    let g = h.in_call(vec![]);
    h.server(g, ServerMessage::CallEnded { reason: "room deleted".into() });
    let d = h.done_id();
    h.core.handle_leave(h.now, d);
    h.drain();
    assert!(h.completions(d).is_empty(), "waits for the transports");
    h.core.handle_teardown_done(h.now, g);
    h.drain();
    assert!(matches!(h.completions(d)[..], [Ok(_)]));
    assert!(h.state_event(CallState::Left).unwrap() < h.done_at(d).unwrap());
    assert!(h.state_event(CallState::Leaving).is_none(), "no leave is sent on a call that ended");
}

impl Harness {
    fn participants_count(&self) -> usize {
        self.core.participants().as_object().map_or(0, |o| o.len() - 1)
    }
}
