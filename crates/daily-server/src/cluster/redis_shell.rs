//! The Redis IO of cluster mode: one [`Cluster`] per server, shared by the heartbeat task and
//! the REST handlers. Decisions live in the IO-free core (`mod.rs`); this file only reads and
//! writes keys.
//!
//! Keys (all under [`KEY_PREFIX`]):
//! - `daily:node:{id}`: the node's [`NodeInfo`] as JSON, set with a TTL of [`NODE_TTL`] at every
//!   heartbeat, so a dead node's entry expires by itself;
//! - `daily:nodes`: the set of node ids ever registered and not yet seen expired; readers drop
//!   ids whose entry has expired (a set because Redis cannot list keys cheaply: `KEYS` blocks
//!   the server and `SCAN` walks the whole key space);
//! - `daily:rooms`: hash, room name -> its [`RoomRecord`] as JSON (REST-created rooms; created
//!   with `HSETNX`, so two nodes creating one name cannot both win); `daily:room_seq`: the
//!   creation counter that orders listings;
//! - `daily:room_node`: hash, room name -> id of the node it lives on (`HSETNX`: the first
//!   assignment wins, atomically); `daily:node:{id}:rooms`: set of the rooms assigned to a node,
//!   what placement counts (fresh, unlike the heartbeat's copy).
//!
//! Assignments change only through two Lua scripts ([`ASSIGN`], [`RELEASE`]), each a
//! compare-and-set run atomically by Redis, so the map and the per-node sets agree and two
//! nodes re-placing one room cannot both win.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::{
    AD_HOC_RELEASE_AFTER, ClusterError, HEARTBEAT_INTERVAL, KEY_PREFIX, NODE_TTL, NodeInfo, Placement, cpu_fraction,
    stat_ticks,
};
use crate::driver::Request;
use crate::rooms::{MAX_CLUSTER_ROOMS, PageQuery, RoomRecord};

/// How long one Redis command may take before it counts as failed: a stalled Redis must not
/// stall a REST request or the heartbeat for long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long start-up waits for the first connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `HGET room_node room`; if it is `ARGV[2]` (or absent and `ARGV[2]` is empty), assign the
/// room to `ARGV[3]` and move it between the per-node sets (KEYS[2]: the old node's, KEYS[3]:
/// the new node's). Returns the room's node after the call (the new one, or whoever won).
const ASSIGN: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur == false and ARGV[2] == '') or cur == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  if cur then redis.call('SREM', KEYS[2], ARGV[1]) end
  redis.call('SADD', KEYS[3], ARGV[1])
  return ARGV[3]
end
return cur
";

/// Drops the room's assignment if it is still `ARGV[2]`, and the room from that node's set
/// (KEYS[2]) either way. Returns 1 if the assignment was dropped.
const RELEASE: &str = r"
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
";

static ASSIGN_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ASSIGN));
static RELEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RELEASE));

/// Shared between the [`crate::RoomServer`] handle and the cluster tasks: whether this node is
/// draining, and a nudge for the heartbeat to publish it now rather than at the next tick.
#[derive(Default)]
pub(crate) struct DrainFlag {
    draining: AtomicBool,
    kick: Notify,
}

impl DrainFlag {
    /// Starts draining (idempotent).
    pub(crate) fn start(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            self.kick.notify_one();
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// This node's connection to the cluster's Redis. Cheap to clone (the connection manager
/// multiplexes one connection and reconnects by itself after a failure).
#[derive(Clone)]
pub(crate) struct Cluster {
    conn: ConnectionManager,
    /// For the bus's pub/sub connection (`bus.rs`), which cannot share `conn`.
    pub(super) client: redis::Client,
    /// This node's id.
    pub id: String,
    /// The base URL clients reach this node on.
    pub url: String,
    /// Set by [`crate::RoomServer::drain`].
    pub drain: Arc<DrainFlag>,
}

fn node_key(id: &str) -> String {
    format!("{KEY_PREFIX}node:{id}")
}

fn nodes_key() -> String {
    format!("{KEY_PREFIX}nodes")
}

fn rooms_key() -> String {
    format!("{KEY_PREFIX}rooms")
}

fn room_order_key() -> String {
    format!("{KEY_PREFIX}room_order")
}

fn room_ids_key() -> String {
    format!("{KEY_PREFIX}room_ids")
}

fn room_node_key() -> String {
    format!("{KEY_PREFIX}room_node")
}

fn node_rooms_key(id: &str) -> String {
    format!("{KEY_PREFIX}node:{id}:rooms")
}

/// What became of a room creation in Redis.
pub(crate) enum CreateOutcome {
    /// Stored; the room lives on this node id (`None`: no node was live to place it).
    Created { node: Option<String> },
    /// A room of that name exists.
    Duplicate,
    /// [`MAX_API_ROOMS`] reached.
    Full,
}

impl Cluster {
    /// Connects to `redis_url` (`redis://[:password@]HOST:PORT[/db]`); fails if Redis is not
    /// reachable within [`CONNECT_TIMEOUT`] (a node that cannot register would be invisible).
    pub(crate) async fn connect(redis_url: &str, url: String, drain: Arc<DrainFlag>) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(redis_url).map_err(|e| ClusterError::InvalidUrl {
            url: redacted(redis_url),
            reason: e.to_string(),
        })?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, ConnectionManager::new(client.clone()))
            .await
            .map_err(|_| {
                ClusterError::Redis(format!(
                    "no connection to {} within {CONNECT_TIMEOUT:?}",
                    redacted(redis_url)
                ))
            })??;
        let id = uuid::Uuid::new_v4().simple().to_string();
        Ok(Cluster { conn, client, id, url, drain })
    }

    /// Runs `cmd` with [`COMMAND_TIMEOUT`].
    pub(super) async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, ClusterError> {
        let mut conn = self.conn.clone();
        bounded(cmd.query_async(&mut conn)).await
    }

    /// Publishes `info` under this node's key with a fresh TTL, and lists the node.
    pub(crate) async fn heartbeat(&self, info: &NodeInfo) -> Result<(), ClusterError> {
        let json = serde_json::to_string(info).map_err(|e| ClusterError::Redis(e.to_string()))?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(node_key(&self.id))
            .arg(json)
            .arg("PX")
            .arg(NODE_TTL.as_millis() as u64)
            .ignore()
            .cmd("SADD")
            .arg(nodes_key())
            .arg(&self.id)
            .ignore();
        self.pipe(&pipe).await
    }

    /// Removes this node from the registry (clean shutdown; a killed node expires instead).
    pub(crate) async fn deregister(&self) -> Result<(), ClusterError> {
        self.run::<()>(redis::cmd("DEL").arg(node_key(&self.id))).await?;
        self.run::<()>(redis::cmd("SREM").arg(nodes_key()).arg(&self.id)).await
    }

    /// The live nodes (those whose entry has not expired), sorted by id. Ids whose entry
    /// expired are dropped from the set on the way.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        let mut ids: Vec<String> = self.run(redis::cmd("SMEMBERS").arg(nodes_key())).await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| node_key(id)).collect();
        let values: Vec<Option<String>> = self.run(redis::cmd("MGET").arg(&keys)).await?;
        let mut nodes = Vec::with_capacity(ids.len());
        let mut expired = Vec::new();
        for ((id, key), value) in ids.iter().zip(&keys).zip(values) {
            match value {
                Some(json) => nodes.push(serde_json::from_str::<NodeInfo>(&json).map_err(|e| {
                    ClusterError::Corrupt {
                        key: key.clone(),
                        reason: e.to_string(),
                    }
                })?),
                None => expired.push(id.clone()),
            }
        }
        if !expired.is_empty() {
            // Best effort: another reader may do the same; a node that comes back re-adds itself.
            let _ = self.run::<()>(redis::cmd("SREM").arg(nodes_key()).arg(&expired)).await;
        }
        Ok(nodes)
    }

    /// The next creation number (orders `GET /v1/rooms`, newest first).
    pub(crate) async fn next_room_seq(&self) -> Result<u64, ClusterError> {
        self.run(redis::cmd("INCR").arg(format!("{KEY_PREFIX}room_seq"))).await
    }

    /// Stores a REST-created room unless its name is taken, indexes it for paging
    /// (`daily:room_order` by creation number, `daily:room_ids` id -> name), then places it on
    /// the least-loaded live node. The room count check is not atomic with the insert (a burst
    /// across nodes may pass [`MAX_CLUSTER_ROOMS`] by a few); the name check is (`HSETNX`).
    pub(crate) async fn create_room(&self, record: &RoomRecord) -> Result<CreateOutcome, ClusterError> {
        let count: usize = self.run(redis::cmd("HLEN").arg(rooms_key())).await?;
        if count >= MAX_CLUSTER_ROOMS {
            return Ok(CreateOutcome::Full);
        }
        let json = serde_json::to_string(record).map_err(|e| ClusterError::Redis(e.to_string()))?;
        let fresh: bool = self.run(redis::cmd("HSETNX").arg(rooms_key()).arg(&record.name).arg(json)).await?;
        if !fresh {
            return Ok(CreateOutcome::Duplicate);
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZADD")
            .arg(room_order_key())
            .arg(record.seq)
            .arg(&record.name)
            .ignore()
            .cmd("HSET")
            .arg(room_ids_key())
            .arg(&record.id)
            .arg(&record.name)
            .ignore();
        self.pipe::<()>(&pipe).await?;
        let node = self.place_room(&record.name).await?;
        Ok(CreateOutcome::Created { node: node.map(|n| n.id) })
    }

    /// Runs a pipeline with [`COMMAND_TIMEOUT`].
    async fn pipe<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, ClusterError> {
        let mut conn = self.conn.clone();
        bounded(pipe.query_async(&mut conn)).await
    }

    /// The room's node (its registry entry): the node it is assigned to if that node is live,
    /// else the least-loaded live node that is not draining, assigned atomically ([`ASSIGN`]:
    /// if another node assigned it meanwhile, that assignment stands). `None` when no node
    /// takes new rooms. Two commands when the room has a live node (`HGET`, `GET`), the rule
    /// is [`super::place`].
    pub(crate) async fn place_room(&self, room: &str) -> Result<Option<NodeInfo>, ClusterError> {
        let current: Option<String> = self.run(redis::cmd("HGET").arg(room_node_key()).arg(room)).await?;
        if let Some(id) = &current
            && let Some(node) = self.node(id).await?
        {
            return Ok(Some(node));
        }
        let mut nodes = self.nodes().await?;
        for n in nodes.iter_mut().filter(|n| !n.draining) {
            // Fresh counts: the heartbeat's copy lags by up to a second, and a burst of
            // creations must spread.
            n.room_count = self.run(redis::cmd("SCARD").arg(node_rooms_key(&n.id))).await?;
        }
        let best = match super::place(current.as_deref(), &nodes) {
            Placement::Keep(n) => return Ok(Some(n.clone())), // came back to life meanwhile
            Placement::Assign(n) => n.id.clone(),
            Placement::Nowhere => return Ok(None),
        };
        let expected = current.clone().unwrap_or_default();
        let old_set = node_rooms_key(current.as_deref().unwrap_or(&best));
        let winner: String = self
            .script(
                ASSIGN_SCRIPT
                    .key(room_node_key())
                    .key(old_set)
                    .key(node_rooms_key(&best))
                    .arg(room)
                    .arg(&expected)
                    .arg(&best),
            )
            .await?;
        if let Some(dead) = current.as_deref().filter(|_| winner == best) {
            tracing::info!(%room, from = %dead, to = %winner, "room re-placed: its node is gone");
        }
        match nodes.into_iter().find(|n| n.id == winner) {
            Some(n) => Ok(Some(n)),
            None => self.node(&winner).await,
        }
    }

    /// The live node `room` is placed on, if any (no placement is made).
    pub(crate) async fn placed_on(&self, room: &str) -> Result<Option<NodeInfo>, ClusterError> {
        match self.run::<Option<String>>(redis::cmd("HGET").arg(room_node_key()).arg(room)).await? {
            Some(id) => self.node(&id).await,
            None => Ok(None),
        }
    }

    /// The live node `id`'s registry entry, `None` if it expired.
    pub(crate) async fn node(&self, id: &str) -> Result<Option<NodeInfo>, ClusterError> {
        let key = node_key(id);
        let json: Option<String> = self.run(redis::cmd("GET").arg(&key)).await?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| ClusterError::Corrupt {
                key,
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// Drops this node's assignment of `room` ([`RELEASE`]); the next join places it afresh.
    async fn release_room(&self, room: &str) -> Result<bool, ClusterError> {
        let n: i64 = self
            .script(
                RELEASE_SCRIPT
                    .key(room_node_key())
                    .key(node_rooms_key(&self.id))
                    .arg(room)
                    .arg(&self.id),
            )
            .await?;
        Ok(n == 1)
    }

    /// Runs a prepared script with [`COMMAND_TIMEOUT`] (`EVALSHA`, falling back to `EVAL` once
    /// per Redis restart).
    async fn script<T: redis::FromRedisValue>(&self, invocation: &redis::ScriptInvocation<'_>) -> Result<T, ClusterError> {
        let mut conn = self.conn.clone();
        bounded(invocation.invoke_async(&mut conn)).await
    }

    /// The room called `name`, if it was created.
    pub(crate) async fn room(&self, name: &str) -> Result<Option<RoomRecord>, ClusterError> {
        let json: Option<String> = self.run(redis::cmd("HGET").arg(rooms_key()).arg(name)).await?;
        json.map(|j| parse_room(name, &j)).transpose()
    }

    /// The number of created rooms and the page `q` asks for, newest first, read from the
    /// creation index (`ZREVRANGEBYSCORE` ... `LIMIT`, then `HMGET`): a page costs the same
    /// however many rooms there are. Inner `Err`: a cursor names no room.
    pub(crate) async fn rooms_page(&self, q: &PageQuery) -> Result<Result<(usize, Vec<RoomRecord>), String>, ClusterError> {
        let total: usize = self.run(redis::cmd("ZCARD").arg(room_order_key())).await?;
        let bound = |id: Option<&String>, what: &'static str| {
            let id = id.cloned();
            async move {
                let Some(id) = id else { return Ok(Ok(None)) };
                let name: Option<String> = self.run(redis::cmd("HGET").arg(room_ids_key()).arg(&id)).await?;
                let score: Option<u64> = match &name {
                    Some(n) => self.run(redis::cmd("ZSCORE").arg(room_order_key()).arg(n)).await?,
                    None => None,
                };
                Ok::<_, ClusterError>(score.map(Some).ok_or_else(|| format!("{what}: no room with id {id:?}")))
            }
        };
        let after = match bound(q.starting_after.as_ref(), "starting_after").await? {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let before = match bound(q.ending_before.as_ref(), "ending_before").await? {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let key = room_order_key();
        let names: Vec<String> = match (after, before) {
            (None, None) => self.run(redis::cmd("ZREVRANGE").arg(&key).arg(0).arg(q.limit as i64 - 1)).await?,
            (Some(a), b) => {
                let min = b.map_or("-inf".to_owned(), |b| format!("({b}"));
                self.run(redis::cmd("ZREVRANGEBYSCORE").arg(&key).arg(format!("({a}")).arg(min).arg("LIMIT").arg(0).arg(q.limit))
                    .await?
            }
            (None, Some(b)) => {
                let mut v: Vec<String> = self
                    .run(redis::cmd("ZRANGEBYSCORE").arg(&key).arg(format!("({b}")).arg("+inf").arg("LIMIT").arg(0).arg(q.limit))
                    .await?;
                v.reverse();
                v
            }
        };
        if names.is_empty() {
            return Ok(Ok((total, Vec::new())));
        }
        let values: Vec<Option<String>> = self.run(redis::cmd("HMGET").arg(rooms_key()).arg(&names)).await?;
        let rooms = names
            .iter()
            .zip(values)
            .filter_map(|(n, v)| v.map(|j| parse_room(n, &j)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ok((total, rooms)))
    }

    /// Deletes the room and its placement. `None` if there was no such room, else the node it
    /// was placed on (if any), whose call in it must end.
    pub(crate) async fn delete_room(&self, name: &str) -> Result<Option<Option<String>>, ClusterError> {
        let record: Option<String> = self.run(redis::cmd("HGET").arg(rooms_key()).arg(name)).await?;
        let removed: u64 = self.run(redis::cmd("HDEL").arg(rooms_key()).arg(name)).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM").arg(room_order_key()).arg(name).ignore();
        if let Some(r) = record.as_deref().and_then(|j| parse_room(name, j).ok()) {
            pipe.cmd("HDEL").arg(room_ids_key()).arg(&r.id).ignore();
        }
        self.pipe::<()>(&pipe).await?;
        let node = self.run::<Option<String>>(redis::cmd("HGET").arg(room_node_key()).arg(name)).await?;
        if let Some(id) = &node {
            self.run::<()>(redis::cmd("SREM").arg(node_rooms_key(id)).arg(name)).await?;
            self.run::<()>(redis::cmd("HDEL").arg(room_node_key()).arg(name)).await?;
        }
        Ok((removed > 0).then_some(node))
    }

    /// The live nodes with the names of their rooms (`GET /v1/nodes`): [`Cluster::nodes`] plus
    /// one pipelined `SMEMBERS` per node.
    pub(crate) async fn nodes_with_rooms(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        let mut nodes = self.nodes().await?;
        if nodes.is_empty() {
            return Ok(nodes);
        }
        let mut pipe = redis::pipe();
        for n in &nodes {
            pipe.cmd("SMEMBERS").arg(node_rooms_key(&n.id));
        }
        let rooms: Vec<Vec<String>> = self.pipe(&pipe).await?;
        for (n, mut r) in nodes.iter_mut().zip(rooms) {
            r.sort();
            n.room_count = r.len();
            n.rooms = r;
        }
        Ok(nodes)
    }

    /// Assigns `room`, which has a call here but no node (its placement was released in the
    /// instant a participant joined), back to this node unless another took it meanwhile.
    async fn reclaim_room(&self, room: &str) -> Result<(), ClusterError> {
        let winner: String = self
            .script(
                ASSIGN_SCRIPT
                    .key(room_node_key())
                    .key(node_rooms_key(&self.id))
                    .key(node_rooms_key(&self.id))
                    .arg(room)
                    .arg("")
                    .arg(&self.id),
            )
            .await?;
        if winner != self.id {
            tracing::warn!(%room, other = %winner, "room has a call here but is placed on another node");
        }
        Ok(())
    }

    /// The rooms placed on this node.
    async fn assigned_rooms(&self) -> Result<Vec<String>, ClusterError> {
        self.run(redis::cmd("SMEMBERS").arg(node_rooms_key(&self.id))).await
    }

    /// Publishes this node's load every [`HEARTBEAT_INTERVAL`] until shutdown, then deregisters.
    /// The load comes from the SFU task (`Request::Load`); a failed heartbeat is logged (once
    /// per outage) and retried at the next tick, calls on this node go on meanwhile.
    ///
    /// Each beat also gives back assignments this node should not keep: while draining, every
    /// assigned room without participants here (so its next join places it elsewhere); always,
    /// an ad-hoc room (not created through REST) that has had no participants here for
    /// [`AD_HOC_RELEASE_AFTER`].
    pub(crate) async fn run_heartbeat(self, cmds: mpsc::UnboundedSender<Request>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cpu_mark = (Instant::now(), proc_ticks());
        let mut failing = false;
        let mut empty_since: HashMap<String, Instant> = HashMap::new();
        // Assigned rooms known to be REST rooms: asked once (`HEXISTS`), not at every beat. A
        // room leaves the assigned set when deleted, and the cache with it.
        let mut rest_rooms: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.drain.kick.notified() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            let (reply, rx) = oneshot::channel();
            if cmds.send(Request::Load { reply }).is_err() {
                break;
            }
            let Ok(live) = rx.await else { break };
            let participants = live.iter().map(|(_, n)| n).sum();
            let draining = self.drain.is_draining();
            let assigned: HashSet<String> = self.assigned_rooms().await.unwrap_or_default().into_iter().collect();
            let with_call: HashSet<&str> = live.iter().map(|(r, _)| r.as_str()).collect();
            let now = Instant::now();
            let mut release = Vec::new();
            empty_since.retain(|room, _| assigned.contains(room) && !with_call.contains(room.as_str()));
            rest_rooms.retain(|room| assigned.contains(room));
            for room in assigned.iter().filter(|r| !with_call.contains(r.as_str())) {
                let since = *empty_since.entry(room.clone()).or_insert(now);
                let ad_hoc_candidate = !rest_rooms.contains(room) && now.duration_since(since) >= AD_HOC_RELEASE_AFTER;
                if draining || ad_hoc_candidate {
                    release.push(room.clone());
                }
            }
            if !release.is_empty() {
                match self.release_rooms(&release, draining).await {
                    Ok(rest) => rest_rooms.extend(rest),
                    Err(e) => tracing::debug!(error = %e, "cannot release rooms this beat"),
                }
            }
            // Every room with a call here is placed here: normally by the join that started it;
            // one released by the beat above in the instant a participant joined is taken back.
            let unplaced: Vec<&str> = with_call.iter().copied().filter(|r| !assigned.contains(*r)).collect();
            for room in &unplaced {
                if let Err(e) = self.reclaim_room(room).await {
                    tracing::debug!(%room, error = %e, "cannot reclaim the room this beat");
                }
            }
            let room_count = assigned.len() + unplaced.len();
            let cpu_now = (Instant::now(), proc_ticks());
            let cpu = match (cpu_mark.1, cpu_now.1) {
                (Some(a), Some(b)) => cpu_fraction(a, b, cpu_now.0 - cpu_mark.0),
                _ => 0.0,
            };
            cpu_mark = cpu_now;
            let info = NodeInfo {
                id: self.id.clone(),
                url: self.url.clone(),
                participants,
                rooms: Vec::new(),
                room_count,
                cpu,
                updated_at_ms: crate::unix_now_ms(),
                draining,
            };
            match self.heartbeat(&info).await {
                Ok(()) if failing => {
                    tracing::info!(node = %self.id, "Redis reachable again, node registered");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    tracing::warn!(node = %self.id, error = %e, "heartbeat failed; retrying every second");
                    failing = true;
                }
                Err(_) => {}
            }
        }
        if let Err(e) = self.deregister().await {
            tracing::warn!(node = %self.id, error = %e, "cannot deregister; the entry expires by itself");
        }
    }

    /// Releases `rooms` (assigned here, without participants): all of them while draining,
    /// else only those not created through REST (a REST room keeps its node while it lives).
    /// Returns the REST rooms found among them (kept).
    async fn release_rooms(&self, rooms: &[String], draining: bool) -> Result<Vec<String>, ClusterError> {
        let rest: Vec<bool> = if draining {
            vec![false; rooms.len()]
        } else {
            let mut pipe = redis::pipe();
            for room in rooms {
                pipe.cmd("HEXISTS").arg(rooms_key()).arg(room);
            }
            self.pipe(&pipe).await?
        };
        let mut kept = Vec::new();
        for (room, is_rest) in rooms.iter().zip(rest) {
            if is_rest {
                kept.push(room.clone());
            } else if self.release_room(room).await? {
                tracing::debug!(%room, draining, "room released");
            }
        }
        Ok(kept)
    }
}

/// `fut` (one Redis round trip) bounded by [`COMMAND_TIMEOUT`], its error as [`ClusterError`].
async fn bounded<T>(fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, ClusterError> {
    tokio::time::timeout(COMMAND_TIMEOUT, fut)
        .await
        .map_err(|_| ClusterError::Redis(format!("no answer within {COMMAND_TIMEOUT:?}")))?
        .map_err(ClusterError::from)
}

fn parse_room(name: &str, json: &str) -> Result<RoomRecord, ClusterError> {
    serde_json::from_str(json).map_err(|e| ClusterError::Corrupt {
        key: format!("{}[{name}]", rooms_key()),
        reason: e.to_string(),
    })
}

/// This process's CPU time in clock ticks, `None` where `/proc` is unavailable.
fn proc_ticks() -> Option<u64> {
    stat_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `url` with any password replaced by `***`, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_echoed() {
        assert_eq!(super::redacted("redis://:pw@h:1/0"), "redis://***@h:1/0");
        assert_eq!(super::redacted("redis://h:1"), "redis://h:1");
    }
}
