//! The registry of rooms created through the REST API (`POST /v1/rooms`), without IO. Rooms
//! joined by URL without being created are not here: they stay ad-hoc public rooms that exist
//! while somebody is in them. A registered room carries what the join gate enforces — privacy,
//! `exp`, `max_participants` — and the rest of its `properties`, kept and echoed as given.
//!
//! Shapes follow Daily's room object (docs.daily.co, "Create room", "Get room info", "List
//! rooms"): `{id, name, api_created, privacy, url, created_at, config}`.

use std::collections::HashMap;
use std::num::NonZero;

use daily_proto::is_valid_room_name;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;
use time::format_description::well_known::iso8601::{Config, EncodedConfig, TimePrecision};

use crate::auth::{Grant, unix_seconds};
use crate::sfu::MAX_PARTICIPANTS_PER_ROOM;

/// Most rooms the registry holds; creating more is refused (bounds memory: each room's
/// properties are at most one request body).
pub const MAX_API_ROOMS: usize = 1000;

/// Most REST rooms a cluster holds (`--redis`). They live in Redis, 932 bytes each with their
/// index entries as measured (so about 93 MB at the cap, `docs/scaling.md`), and `GET /v1/rooms`
/// reads one page at a time.
pub const MAX_CLUSTER_ROOMS: usize = 100_000;

/// Default and largest `limit` of `GET /v1/rooms` (Daily's).
pub const PAGE_LIMIT: usize = 100;

/// Which page of `GET /v1/rooms`: Daily's `limit`, `starting_after` and `ending_before`, whose
/// cursors are room ids, in the listing's order (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// At most this many rooms (1 to [`PAGE_LIMIT`]).
    pub limit: usize,
    /// Only rooms listed after (older than) the room with this id.
    pub starting_after: Option<String>,
    /// Only rooms listed before (newer than) the room with this id.
    pub ending_before: Option<String>,
}

impl PageQuery {
    /// From the query string's pairs; unknown keys are ignored. `Err` says what is wrong.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<PageQuery, String> {
        let mut q = PageQuery { limit: PAGE_LIMIT, starting_after: None, ending_before: None };
        for (k, v) in pairs {
            match k {
                "limit" => match v.parse::<usize>() {
                    Ok(n) if (1..=PAGE_LIMIT).contains(&n) => q.limit = n,
                    _ => return Err(format!("limit must be 1 to {PAGE_LIMIT}, got {v:?}")),
                },
                "starting_after" if !v.is_empty() => q.starting_after = Some(v.to_owned()),
                "ending_before" if !v.is_empty() => q.ending_before = Some(v.to_owned()),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The indices of `ids` (room ids, newest first) on the page `q` asks for: after
/// `starting_after`, before `ending_before`, at most `limit`; with only `ending_before`, the
/// `limit` rooms just before it. `Err` when a cursor names no room.
pub fn page_range(ids: &[&str], q: &PageQuery) -> Result<std::ops::Range<usize>, String> {
    let pos = |id: &str, what: &str| {
        ids.iter()
            .position(|x| *x == id)
            .ok_or_else(|| format!("{what}: no room with id {id:?}"))
    };
    let after = q.starting_after.as_deref().map(|id| pos(id, "starting_after")).transpose()?;
    let before = q.ending_before.as_deref().map(|id| pos(id, "ending_before")).transpose()?;
    Ok(match (after, before) {
        (None, None) => 0..q.limit.min(ids.len()),
        (Some(a), None) => (a + 1)..(a + 1 + q.limit).min(ids.len()),
        (None, Some(b)) => b.saturating_sub(q.limit)..b,
        (Some(a), Some(b)) => (a + 1)..(a + 1 + q.limit).min(b).max(a + 1),
    })
}

/// Length of generated room names (Daily generates 20-character names; 20 base-16 characters of
/// a UUID4 are 80 random bits, not guessable).
const GENERATED_NAME_LEN: usize = 20;

/// Who may join a room (Daily's `privacy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// Anybody with the URL.
    Public,
    /// Only holders of a valid meeting token.
    Private,
}

impl Privacy {
    /// Daily's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Public => "public",
            Privacy::Private => "private",
        }
    }
}

/// A validated `POST /v1/rooms` body.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRoom {
    /// `name`; generated when absent.
    pub name: Option<String>,
    /// `privacy`, default public.
    pub privacy: Privacy,
    /// `properties` as given (unknown ones included).
    pub properties: Map<String, Value>,
    /// `properties.exp`, Unix seconds (fractions kept: pipecat sends `time.time() + n`).
    pub exp: Option<f64>,
    /// `properties.max_participants`.
    pub max_participants: Option<usize>,
}

impl CreateRoom {
    /// Validates a `POST /v1/rooms` body (`Value::Null` for an empty body). Unknown top-level
    /// fields are refused (a mistyped `privacy` must not silently make a public room); unknown
    /// `properties` are kept and echoed, and only `exp` and `max_participants` are enforced.
    pub fn parse(body: &Value) -> Result<CreateRoom, String> {
        let empty = Map::new();
        let obj = match body {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => return Err("the body must be a JSON object".into()),
        };
        let mut req = CreateRoom {
            name: None,
            privacy: Privacy::Public,
            properties: Map::new(),
            exp: None,
            max_participants: None,
        };
        for (k, v) in obj {
            match (k.as_str(), v) {
                (_, Value::Null) => {}
                ("name", Value::String(s)) => {
                    if !is_valid_room_name(s) {
                        return Err(format!(
                            "name {s:?} is not a valid room name (1-128 characters of A-Z a-z 0-9 - _ .)"
                        ));
                    }
                    req.name = Some(s.clone());
                }
                ("name", _) => return Err("name must be a string".into()),
                ("privacy", Value::String(s)) if s == "public" => req.privacy = Privacy::Public,
                ("privacy", Value::String(s)) if s == "private" => req.privacy = Privacy::Private,
                ("privacy", _) => return Err("privacy must be \"public\" or \"private\"".into()),
                ("properties", Value::Object(p)) => req.properties = p.clone(),
                ("properties", _) => return Err("properties must be an object".into()),
                (other, _) => {
                    return Err(format!(
                        "unknown field {other:?} (expected name, privacy, properties)"
                    ));
                }
            }
        }
        req.properties.retain(|_, v| !v.is_null());
        if let Some(v) = req.properties.get("exp") {
            unix_seconds("properties.exp", v)?;
            req.exp = v.as_f64();
        }
        if let Some(v) = req.properties.get("max_participants") {
            match v.as_u64() {
                Some(n @ 1..) if n as usize <= MAX_PARTICIPANTS_PER_ROOM => {
                    req.max_participants = Some(n as usize)
                }
                _ => {
                    return Err(format!(
                        "properties.max_participants must be an integer from 1 to {MAX_PARTICIPANTS_PER_ROOM}"
                    ));
                }
            }
        }
        Ok(req)
    }
}

/// One REST-created room (also its JSON form in Redis in cluster mode, `cluster/`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoomRecord {
    /// A UUID4.
    pub id: String,
    /// The room name (the last path segment of its URL).
    pub name: String,
    /// Who may join.
    pub privacy: Privacy,
    /// Unix seconds.
    pub created_at: u64,
    /// The `properties` given at creation.
    pub properties: Map<String, Value>,
    /// `properties.exp`.
    pub exp: Option<f64>,
    /// `properties.max_participants`.
    pub max_participants: Option<usize>,
    /// Creation order, for listing newest first.
    pub(crate) seq: u64,
}

/// A random room name for a `POST /v1/rooms` without one.
pub fn generated_name() -> String {
    uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(GENERATED_NAME_LEN)
        .collect()
}

impl RoomRecord {
    /// The record of room `name` created from `req` at `now` (Unix seconds), `seq`-th created.
    pub fn new(req: CreateRoom, name: String, now: u64, seq: u64) -> RoomRecord {
        RoomRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            privacy: req.privacy,
            created_at: now,
            properties: req.properties,
            exp: req.exp,
            max_participants: req.max_participants,
            seq,
        }
    }

    /// Whether `exp` has passed at `now` (Unix seconds): from then on joins are refused.
    pub fn expired(&self, now: u64) -> bool {
        self.exp.is_some_and(|exp| now as f64 >= exp)
    }

    /// Daily's room object; `base_url` is `http(s)://HOST:PORT` of this server.
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "api_created": true,
            "privacy": self.privacy.as_str(),
            "url": format!("{base_url}/{}", self.name),
            "created_at": iso8601(self.created_at),
            "config": self.properties,
        })
    }
}

/// Why a room cannot be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// A room of that name exists.
    Duplicate(String),
    /// [`MAX_API_ROOMS`] reached.
    Full,
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Duplicate(n) => write!(f, "a room named {n:?} already exists"),
            CreateError::Full => write!(f, "this server already has {MAX_API_ROOMS} rooms"),
        }
    }
}

/// The REST-created rooms by name.
#[derive(Debug, Default)]
pub struct RoomRegistry {
    rooms: HashMap<String, RoomRecord>,
    next_seq: u64,
}

impl RoomRegistry {
    /// Registers a room created at `now` (Unix seconds).
    pub fn create(&mut self, req: CreateRoom, now: u64) -> Result<&RoomRecord, CreateError> {
        if self.rooms.len() >= MAX_API_ROOMS {
            return Err(CreateError::Full);
        }
        let name = match req.name.clone() {
            Some(n) => n,
            None => loop {
                let n = generated_name();
                if !self.rooms.contains_key(&n) {
                    break n;
                }
            },
        };
        if self.rooms.contains_key(&name) {
            return Err(CreateError::Duplicate(name));
        }
        self.next_seq += 1;
        let record = RoomRecord::new(req, name.clone(), now, self.next_seq);
        Ok(self.rooms.entry(name).or_insert(record))
    }

    /// The room called `name`.
    pub fn get(&self, name: &str) -> Option<&RoomRecord> {
        self.rooms.get(name)
    }

    /// Every room, newest first (as Daily lists them).
    pub fn list(&self) -> Vec<&RoomRecord> {
        let mut v: Vec<&RoomRecord> = self.rooms.values().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.seq));
        v
    }

    /// Removes and returns the room called `name`.
    pub fn remove(&mut self, name: &str) -> Option<RoomRecord> {
        self.rooms.remove(name)
    }
}

/// The one message for every refusal that concerns access (no token for a private room, or a
/// token that is not valid). It says nothing about the room or who is in it.
pub const NOT_ALLOWED: &str = "not allowed to join this room";

/// The refusal for a room whose `exp` passed (shown only to those allowed in).
pub const EXPIRED: &str = "this room has expired";

/// What the join gate learnt from the `join`'s meeting token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// No token (or an empty one).
    Absent,
    /// A valid token and what it grants.
    Valid(Grant),
    /// A token that is not valid (any reason, or no API key to check it with).
    Refused,
}

/// A join the gate lets through: what to tell the SFU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// What the token grants (default without one).
    pub grant: Grant,
    /// The room's `max_participants`, enforced by the SFU.
    pub max_participants: Option<usize>,
}

/// Decides a `join` to a room (`record`: its registry entry, `None` for an ad-hoc room) at
/// `now` (Unix seconds). Following Daily: a token that is present must be valid in any room; a
/// private room needs a valid token; an expired room admits nobody. Access refusals all give
/// [`NOT_ALLOWED`] and are decided before anything else, so they reveal nothing else.
pub fn admit(
    record: Option<&RoomRecord>,
    token: TokenCheck,
    now: u64,
) -> Result<Admission, &'static str> {
    let grant = match token {
        TokenCheck::Refused => return Err(NOT_ALLOWED),
        TokenCheck::Absent if record.is_some_and(|r| r.privacy == Privacy::Private) => {
            return Err(NOT_ALLOWED);
        }
        TokenCheck::Absent => Grant::default(),
        TokenCheck::Valid(g) => g,
    };
    if record.is_some_and(|r| r.expired(now)) {
        return Err(EXPIRED);
    }
    Ok(Admission {
        grant,
        max_participants: record.and_then(|r| r.max_participants),
    })
}

/// `created_at`'s format: ISO 8601 UTC with milliseconds, as Daily writes it
/// (`2019-01-26T09:01:22.000Z`).
const CREATED_AT_FORMAT: EncodedConfig = Config::DEFAULT
    .set_time_precision(TimePrecision::Second {
        decimal_digits: NonZero::new(3),
    })
    .encode();

/// Unix seconds as Daily writes `created_at` (`2019-01-26T09:01:22.000Z`).
pub fn iso8601(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Iso8601::<CREATED_AT_FORMAT>).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

#[cfg(test)]
mod page_tests {
    use super::*;

    fn q(limit: usize, after: Option<&str>, before: Option<&str>) -> PageQuery {
        PageQuery { limit, starting_after: after.map(Into::into), ending_before: before.map(Into::into) }
    }

    #[test]
    fn pages_follow_dailys_cursors() {
        let ids = ["f", "e", "d", "c", "b", "a"]; // newest first
        assert_eq!(page_range(&ids, &q(100, None, None)), Ok(0..6));
        assert_eq!(page_range(&ids, &q(2, None, None)), Ok(0..2));
        assert_eq!(page_range(&ids, &q(2, Some("e"), None)), Ok(2..4));
        assert_eq!(page_range(&ids, &q(2, Some("b"), None)), Ok(5..6));
        assert_eq!(page_range(&ids, &q(2, Some("a"), None)), Ok(6..6));
        assert_eq!(page_range(&ids, &q(2, None, Some("c"))), Ok(1..3));
        assert_eq!(page_range(&ids, &q(5, None, Some("e"))), Ok(0..1));
        assert_eq!(page_range(&ids, &q(9, Some("f"), Some("b"))), Ok(1..4));
        assert_eq!(page_range(&ids, &q(2, Some("f"), Some("b"))), Ok(1..3));
        assert_eq!(page_range(&ids, &q(2, Some("c"), Some("e"))), Ok(4..4));
        assert!(page_range(&ids, &q(2, Some("x"), None)).unwrap_err().contains("starting_after"));
        assert!(page_range(&[], &q(2, None, Some("x"))).is_err());
    }

    #[test]
    fn page_query_parses_dailys_parameters() {
        assert_eq!(PageQuery::parse([]), Ok(q(100, None, None)));
        assert_eq!(PageQuery::parse([("limit", "5"), ("starting_after", "a"), ("x", "y")]), Ok(q(5, Some("a"), None)));
        assert_eq!(PageQuery::parse([("ending_before", "b"), ("starting_after", "")]), Ok(q(100, None, Some("b"))));
        for bad in ["0", "101", "-1", "x"] {
            assert!(PageQuery::parse([("limit", bad)]).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<CreateRoom, String> {
        CreateRoom::parse(&v)
    }

    #[test]
    fn create_bodies() {
        let r = CreateRoom::parse(&Value::Null).unwrap();
        assert_eq!((r.name, r.privacy, r.exp), (None, Privacy::Public, None));
        // What pipecat's DailyRESTHelper sends (exp as a float, UI properties we do not use).
        let r = parse(json!({"privacy": "private", "properties": {
            "exp": 1700000300.25, "enable_chat": false, "enable_prejoin_ui": true,
            "eject_at_room_exp": true, "start_video_off": false, "geo": null,
            "max_participants": 2}}))
        .unwrap();
        assert_eq!(r.privacy, Privacy::Private);
        assert_eq!(r.exp, Some(1700000300.25));
        assert_eq!(r.max_participants, Some(2));
        assert_eq!(r.properties["enable_prejoin_ui"], json!(true));
        assert!(!r.properties.contains_key("geo"));
        for bad in [
            json!([]),
            json!("x"),
            json!({"name": "bad name"}),
            json!({"name": ""}),
            json!({"name": 5}),
            json!({"privacy": "org"}),
            json!({"privacy": true}),
            json!({"privcy": "private"}),
            json!({"properties": []}),
            json!({"properties": {"exp": "tomorrow"}}),
            json!({"properties": {"exp": -5}}),
            json!({"properties": {"max_participants": 0}}),
            json!({"properties": {"max_participants": 2.5}}),
            json!({"properties": {"max_participants": MAX_PARTICIPANTS_PER_ROOM + 1}}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry() {
        let mut reg = RoomRegistry::default();
        let a = reg
            .create(
                parse(json!({"name": "a", "privacy": "private"})).unwrap(),
                100,
            )
            .unwrap()
            .clone();
        assert_eq!((a.name.as_str(), a.privacy), ("a", Privacy::Private));
        let b = reg.create(parse(json!({})).unwrap(), 200).unwrap().clone();
        assert_eq!(b.name.len(), GENERATED_NAME_LEN);
        assert!(is_valid_room_name(&b.name));
        assert_ne!(a.id, b.id);
        assert_eq!(
            reg.create(parse(json!({"name": "a"})).unwrap(), 300),
            Err(CreateError::Duplicate("a".into()))
        );
        let names: Vec<&str> = reg.list().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec![b.name.as_str(), "a"]);
        let j = a.to_json("http://127.0.0.1:7880");
        assert_eq!(j["url"], "http://127.0.0.1:7880/a");
        assert_eq!(j["api_created"], true);
        assert_eq!(j["privacy"], "private");
        assert_eq!(j["created_at"], "1970-01-01T00:01:40.000Z");
        assert_eq!(j["config"], json!({}));
        assert!(reg.remove("a").is_some());
        assert!(reg.get("a").is_none() && reg.remove("a").is_none());
        for i in 0..MAX_API_ROOMS - 1 {
            reg.create(parse(json!({"name": format!("r{i}")})).unwrap(), 1)
                .unwrap();
        }
        assert_eq!(
            reg.create(parse(json!({})).unwrap(), 1),
            Err(CreateError::Full)
        );
    }

    #[test]
    fn expiry() {
        let mut reg = RoomRegistry::default();
        let r = reg
            .create(parse(json!({"properties": {"exp": 1000.5}})).unwrap(), 1)
            .unwrap();
        assert!(!r.expired(1000));
        assert!(r.expired(1001));
        let r = reg.create(parse(json!({})).unwrap(), 1).unwrap();
        assert!(!r.expired(u64::MAX));
    }

    #[test]
    fn gate() {
        let mut reg = RoomRegistry::default();
        let private = reg
            .create(
                parse(json!({"name": "p", "privacy": "private",
                                 "properties": {"exp": 100, "max_participants": 3}}))
                .unwrap(),
                1,
            )
            .unwrap()
            .clone();
        let public = reg
            .create(parse(json!({"name": "q"})).unwrap(), 1)
            .unwrap()
            .clone();
        let owner = Grant {
            is_owner: true,
            ..Grant::default()
        };
        // Private: a valid token only.
        assert_eq!(
            admit(Some(&private), TokenCheck::Absent, 50),
            Err(NOT_ALLOWED)
        );
        assert_eq!(
            admit(Some(&private), TokenCheck::Refused, 50),
            Err(NOT_ALLOWED)
        );
        // Access is decided first: an expired private room does not say so to strangers.
        assert_eq!(
            admit(Some(&private), TokenCheck::Absent, 500),
            Err(NOT_ALLOWED)
        );
        assert_eq!(
            admit(Some(&private), TokenCheck::Valid(owner.clone()), 50),
            Ok(Admission {
                grant: owner.clone(),
                max_participants: Some(3)
            })
        );
        assert_eq!(
            admit(Some(&private), TokenCheck::Valid(owner.clone()), 100),
            Err(EXPIRED)
        );
        // Public and ad-hoc rooms: no token is fine, a bad one is not.
        for r in [Some(&public), None] {
            assert_eq!(
                admit(r, TokenCheck::Absent, 50),
                Ok(Admission {
                    grant: Grant::default(),
                    max_participants: None
                })
            );
            assert_eq!(admit(r, TokenCheck::Refused, 50), Err(NOT_ALLOWED));
            assert_eq!(
                admit(r, TokenCheck::Valid(owner.clone()), 50)
                    .unwrap()
                    .grant,
                owner
            );
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_548_493_282), "2019-01-26T09:01:22.000Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(4_107_542_399), "2100-02-28T23:59:59.000Z");
    }
}
