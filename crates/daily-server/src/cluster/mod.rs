//! Cluster mode (`--redis`): room servers that act as one service, coordinated through Redis.
//! LiveKit's Redis router is the model (node registry with expiring heartbeats, least-loaded
//! placement, a room -> node map); this is our own design, see `docs/scaling.md`.
//!
//! This file is the IO-free core: what a node publishes about itself ([`NodeInfo`]), which node
//! is least loaded ([`least_loaded`]), and the one error type. The Redis IO is the thin async
//! shell in `redis_shell.rs`.

pub(crate) mod bus;
mod redis_shell;
pub(crate) mod relay;

pub(crate) use redis_shell::{Cluster, CreateOutcome, DrainFlag};

use std::cmp::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often a node refreshes its registry entry.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a node's registry entry lives without a heartbeat. Four intervals: a node is
/// listed through three missed heartbeats (a busy or briefly descheduled node, a Redis round
/// trip of a few hundred ms, does not flap out of the registry) and is gone within 4 s of its
/// death (SIGKILL, power loss), well inside the 10 s the issue allows before its rooms must be
/// placed elsewhere.
pub const NODE_TTL: Duration = Duration::from_secs(4);

/// Prefix of every key this server writes, so a Redis shared with other software stays tidy.
pub const KEY_PREFIX: &str = "daily:";

/// What a node publishes about itself at every heartbeat (JSON under `daily:node:{id}`), and
/// what `GET /v1/nodes` lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Random id chosen at start (UUID v4, simple form); a restarted node is a new node.
    pub id: String,
    /// Base URL clients reach this node on (`--node-url`, default its own HTTP URL).
    pub url: String,
    /// The rooms placed on this node, sorted. Filled from the node's room set for
    /// `GET /v1/nodes`; the heartbeat entry in Redis leaves it empty, because placement reads
    /// every node's entry and those must stay small however many rooms a node holds.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// How many rooms are placed on this node (REST-created rooms and rooms with a call).
    #[serde(default)]
    pub room_count: usize,
    /// Participants in all those rooms.
    pub participants: usize,
    /// CPU time this process used over the last heartbeat interval, as a fraction of one core
    /// (1.0: one core busy; may exceed 1 with several threads).
    pub cpu: f64,
    /// Unix time of this heartbeat, in milliseconds (for operators; liveness is the key's TTL).
    pub updated_at_ms: u64,
    /// Draining (SIGTERM, [`crate::RoomServer::drain`]): the node keeps its running calls but
    /// takes no new rooms, so placement skips it.
    #[serde(default)]
    pub draining: bool,
}

/// The load order: fewer participants first (they are what costs CPU and bandwidth in an SFU),
/// then fewer rooms (each adds fixed state and future participants), then less CPU, then the
/// smaller id so the choice is deterministic when all else ties (empty nodes at start).
pub fn load_order(a: &NodeInfo, b: &NodeInfo) -> Ordering {
    a.participants
        .cmp(&b.participants)
        .then(a.room_count.cmp(&b.room_count))
        .then(a.cpu.partial_cmp(&b.cpu).unwrap_or(Ordering::Equal))
        .then(a.id.cmp(&b.id))
}

/// The least-loaded node that takes new rooms (not draining) by [`load_order`], `None` if
/// there is none.
pub fn least_loaded(nodes: &[NodeInfo]) -> Option<&NodeInfo> {
    nodes.iter().filter(|n| !n.draining).min_by(|a, b| load_order(a, b))
}

/// Where a room goes, given its current assignment and the live nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement<'a> {
    /// The room stays on its live node (draining or not: a draining node releases the rooms it
    /// does not keep, see `redis_shell.rs`).
    Keep(&'a NodeInfo),
    /// The room has no node, or its node is dead (its registry entry expired): assign it to
    /// this least-loaded node.
    Assign(&'a NodeInfo),
    /// No live node takes new rooms.
    Nowhere,
}

/// The placement rule: a room keeps a live node; a room without one goes to the least-loaded
/// live node that is not draining ([`least_loaded`]).
pub fn place<'a>(current: Option<&str>, live: &'a [NodeInfo]) -> Placement<'a> {
    if let Some(node) = current.and_then(|c| live.iter().find(|n| n.id == c)) {
        return Placement::Keep(node);
    }
    match least_loaded(live) {
        Some(n) => Placement::Assign(n),
        None => Placement::Nowhere,
    }
}

/// How long an assigned room may stay without participants on its node before the node
/// releases the assignment, if the room was not created through REST (an ad-hoc room, placed
/// when first joined). Long enough that a placement is never released between the choice and
/// the join it was made for (milliseconds apart); short enough that rooms joined once do not
/// pile up in Redis.
pub const AD_HOC_RELEASE_AFTER: Duration = Duration::from_secs(10);

/// CPU use between two readings of `/proc/self/stat`: `(utime + stime)` ticks at 100 Hz (Linux's
/// USER_HZ on every architecture we build for) over `elapsed`, as a fraction of one core.
pub fn cpu_fraction(ticks_before: u64, ticks_now: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    ticks_now.saturating_sub(ticks_before) as f64 / 100.0 / secs
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Everything that can go wrong in cluster mode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// `--redis` is not a usable Redis URL.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given (without password: it is not echoed if present).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Redis could not be reached or answered with an error.
    #[error("Redis: {0}")]
    Redis(String),
    /// A value in Redis is not what this server writes (another program's key, or a version skew).
    #[error("unexpected value under {key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        ClusterError::Redis(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, rooms: usize, participants: usize, cpu: f64) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            url: format!("http://{id}"),
            rooms: (0..rooms).map(|i| format!("r{i}")).collect(),
            room_count: rooms,
            participants,
            cpu,
            updated_at_ms: 0,
            draining: false,
        }
    }

    #[test]
    fn placement_keeps_live_nodes_and_replaces_dead_or_missing_ones() {
        let mut nodes = vec![node("a", 1, 5, 0.1), node("b", 0, 1, 0.0), node("c", 0, 0, 0.0)];
        assert_eq!(place(Some("a"), &nodes), Placement::Keep(&nodes[0]));
        assert_eq!(place(None, &nodes), Placement::Assign(&nodes[2]));
        // "x" died (its entry expired): the room goes to the least loaded.
        assert_eq!(place(Some("x"), &nodes), Placement::Assign(&nodes[2]));
        // A draining node keeps what it has but gets nothing new.
        nodes[2].draining = true;
        assert_eq!(place(Some("c"), &nodes), Placement::Keep(&nodes[2]));
        assert_eq!(place(None, &nodes), Placement::Assign(&nodes[1]));
        nodes[0].draining = true;
        nodes[1].draining = true;
        assert_eq!(place(None, &nodes), Placement::Nowhere);
        assert_eq!(place(Some("x"), &[]), Placement::Nowhere);
    }

    #[test]
    fn least_loaded_by_participants_then_rooms_then_cpu_then_id() {
        assert_eq!(least_loaded(&[]), None);
        let nodes = [node("a", 1, 5, 0.1), node("b", 3, 2, 0.9), node("c", 0, 4, 0.0)];
        assert_eq!(least_loaded(&nodes).unwrap().id, "b");
        let nodes = [node("a", 2, 2, 0.0), node("b", 1, 2, 0.9)];
        assert_eq!(least_loaded(&nodes).unwrap().id, "b");
        let nodes = [node("a", 1, 2, 0.5), node("b", 1, 2, 0.2)];
        assert_eq!(least_loaded(&nodes).unwrap().id, "b");
        let nodes = [node("b", 0, 0, 0.0), node("a", 0, 0, 0.0)];
        assert_eq!(least_loaded(&nodes).unwrap().id, "a");
        // NaN CPU (never written by us) does not panic and falls through to the id.
        let nodes = [node("b", 0, 0, f64::NAN), node("a", 0, 0, 0.0)];
        assert_eq!(least_loaded(&nodes).unwrap().id, "a");
        // Draining nodes take no new rooms, however idle.
        let mut nodes = [node("a", 0, 0, 0.0), node("b", 3, 9, 0.9)];
        nodes[0].draining = true;
        assert_eq!(least_loaded(&nodes).unwrap().id, "b");
    }

    #[test]
    fn cpu_from_proc_stat() {
        let line = "1234 (daily (x) server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3";
        assert_eq!(stat_ticks(line), Some(300));
        assert_eq!(stat_ticks("garbage"), None);
        assert_eq!(stat_ticks("1 (a) S 1"), None);
        assert!((cpu_fraction(300, 350, Duration::from_secs(1)) - 0.5).abs() < 1e-9);
        assert_eq!(cpu_fraction(300, 200, Duration::from_secs(1)), 0.0);
        assert_eq!(cpu_fraction(0, 10, Duration::ZERO), 0.0);
    }

    #[test]
    fn node_info_json_round_trip() {
        let n = node("a", 2, 3, 0.25);
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["rooms"], serde_json::json!(["r0", "r1"]));
        assert_eq!(serde_json::from_value::<NodeInfo>(v).unwrap(), n);
    }
}
