//! The remote participants of one call and the rule that each is announced exactly once.
//!
//! Daily fires `on_participant_joined` once per remote participant, before any
//! `on_participant_updated` / `on_participant_left` of it. Participants can reach us two ways
//! while we join: in the join snapshot (`joined.participants`) and as `participantJoined`
//! broadcasts that the server sent after the snapshot but before our own join completed.
//! Everybody learnt before our join completes is announced right after the `joined` state
//! (once, whichever way they came); after that a broadcast announces at once. A participant
//! who leaves before being announced is never announced, so no `left` arrives for a
//! participant the application never saw join.

use daily_proto::ParticipantInfo;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub info: ParticipantInfo,
    /// `on_participant_joined` was emitted.
    pub announced: bool,
}

/// What a roster change means for the application.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Announce {
    /// Emit `on_participant_joined`.
    Joined,
    /// Emit `on_participant_updated`.
    Updated,
    /// Emit `on_participant_left`.
    Left,
    /// Nothing to emit (not announced yet, or unknown).
    Nothing,
}

#[derive(Debug, Default)]
pub(crate) struct Roster {
    remotes: BTreeMap<String, Remote>,
    /// Broadcasts announce at once (our join has completed).
    live: bool,
}

impl Roster {
    /// Forgets everybody (a new join or the end of a call).
    pub fn clear(&mut self) {
        self.remotes.clear();
        self.live = false;
    }

    /// The join snapshot: participants already in the room.
    pub fn snapshot(&mut self, others: Vec<ParticipantInfo>) {
        for p in others {
            self.remotes.insert(p.id.clone(), Remote { info: p, announced: false });
        }
    }

    /// Our join completed: returns the ids to announce now (in id order), marked announced.
    pub fn go_live(&mut self) -> Vec<String> {
        self.live = true;
        let mut out = Vec::new();
        for (id, r) in self.remotes.iter_mut() {
            if !r.announced {
                r.announced = true;
                out.push(id.clone());
            }
        }
        out
    }

    /// A `participantJoined` broadcast. A participant already known (from the snapshot or
    /// an earlier broadcast) is updated, never announced twice.
    pub fn joined(&mut self, p: ParticipantInfo) -> Announce {
        let live = self.live;
        match self.remotes.get_mut(&p.id) {
            Some(r) => {
                r.info = p;
                if r.announced { Announce::Updated } else { Announce::Nothing }
            }
            None => {
                self.remotes.insert(p.id.clone(), Remote { info: p, announced: live });
                if live { Announce::Joined } else { Announce::Nothing }
            }
        }
    }

    /// A `participantUpdated` broadcast about a remote participant. Unknown ids are ignored
    /// (the server announces a participant with `participantJoined` first).
    pub fn updated(&mut self, p: ParticipantInfo) -> Announce {
        match self.remotes.get_mut(&p.id) {
            Some(r) => {
                r.info = p;
                if r.announced { Announce::Updated } else { Announce::Nothing }
            }
            None => Announce::Nothing,
        }
    }

    /// A `participantLeft` broadcast: whether the application must hear of it.
    pub fn left(&mut self, id: &str) -> Announce {
        match self.remotes.remove(id) {
            Some(r) if r.announced => Announce::Left,
            _ => Announce::Nothing,
        }
    }

    pub fn get(&self, id: &str) -> Option<&ParticipantInfo> {
        self.remotes.get(id).map(|r| &r.info)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ParticipantInfo> {
        self.remotes.values().map(|r| &r.info)
    }
}

impl Roster {
    /// The room as the server describes it after a signalling outage (`resumed`): whoever
    /// left while we were away is removed, newcomers are added, and everybody whose
    /// description changed is updated. Returns what to tell the application, in id order:
    /// newcomers are announced at once (the call is live), departures only of announced
    /// participants.
    pub fn resync(&mut self, now: Vec<ParticipantInfo>) -> Vec<(Announce, ParticipantInfo)> {
        let mut out = Vec::new();
        let present: std::collections::BTreeSet<&str> = now.iter().map(|p| p.id.as_str()).collect();
        let gone: Vec<String> = self.remotes.keys().filter(|id| !present.contains(id.as_str())).cloned().collect();
        for id in gone {
            if let Some(r) = self.remotes.remove(&id)
                && r.announced
            {
                out.push((Announce::Left, r.info));
            }
        }
        for p in now {
            match self.remotes.get_mut(&p.id) {
                Some(r) if r.info == p => {}
                Some(r) => {
                    r.info = p.clone();
                    if r.announced {
                        out.push((Announce::Updated, p));
                    }
                }
                None => {
                    let live = self.live;
                    self.remotes.insert(p.id.clone(), Remote { info: p.clone(), announced: live });
                    if live {
                        out.push((Announce::Joined, p));
                    }
                }
            }
        }
        out
    }
}
