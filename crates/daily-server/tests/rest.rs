//! The REST API (`/v1`) and the join gate against a real server on loopback: HTTP with ureq,
//! signalling with the fake client of `common`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{Client, Next, http_get};
use daily_proto::{ClientMessage, ServerMessage};
use daily_server::{MAX_BODY_BYTES, RoomServer, ServerConfig, ServerError};
use serde_json::{Value, json};

const KEY: &str = "test-api-key-0123456789";
const NOT_ALLOWED: &str = "not allowed to join this room";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn start(api_key: Option<&str>) -> RoomServer {
    RoomServer::start(ServerConfig {
        api_key: api_key.map(str::to_owned),
        ..ServerConfig::default()
    })
    .expect("server starts")
}

/// A small blocking REST client.
struct Rest {
    agent: ureq::Agent,
    base: String,
}

impl Rest {
    fn new(server: &RoomServer) -> Rest {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Rest {
            agent,
            base: server.api_url(),
        }
    }

    /// `method path` with `Authorization: <auth>` (verbatim) and a raw body.
    fn raw(&self, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if !body.is_empty() {
            req = req.header("Content-Type", "application/json");
        }
        let mut resp = self
            .agent
            .run(req.body(body.to_owned()).unwrap())
            .expect("HTTP request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text:?}"));
        (status, v)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(method, path, Some(&format!("Bearer {KEY}")), &body)
    }

    fn create_room(&self, body: Value) -> Value {
        let (status, v) = self.call("POST", "/rooms", Some(body));
        assert_eq!(status, 200, "{v}");
        v
    }

    fn token(&self, properties: Value) -> String {
        let (status, v) = self.call(
            "POST",
            "/meeting-tokens",
            Some(json!({ "properties": properties })),
        );
        assert_eq!(status, 200, "{v}");
        v["token"].as_str().expect("token").to_owned()
    }
}

fn assert_error(resp: (u16, Value), status: u16, kind: &str) -> String {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["error"], kind, "{}", resp.1);
    resp.1["info"].as_str().expect("info").to_owned()
}

/// Connects to `room` and sends `join` with `token`.
async fn join_with(
    addr: std::net::SocketAddr,
    room: &str,
    name: &str,
    token: Option<String>,
) -> Client {
    let mut c = Client::connect(addr, room).await;
    c.send(&ClientMessage::Join {
        protocol_version: 1,
        user_name: Some(name.into()),
        token,
        subscriptions: None,
    })
    .await;
    c
}

/// Joins and expects `joined`.
async fn join_ok(
    addr: std::net::SocketAddr,
    room: &str,
    name: &str,
    token: Option<String>,
) -> (Client, ServerMessage) {
    let mut c = join_with(addr, room, name, token).await;
    let joined = c.recv().await;
    assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");
    (c, joined)
}

/// Joins and expects exactly one fatal error with `message`, then the close: nothing else.
async fn join_refused(
    addr: std::net::SocketAddr,
    room: &str,
    token: Option<String>,
    message: &str,
) {
    let mut c = join_with(addr, room, "intruder", token).await;
    let msgs = c.until_closed().await;
    assert_eq!(
        msgs,
        vec![ServerMessage::Error {
            message: message.into(),
            fatal: true
        }],
        "room {room}"
    );
}

fn joined_self(m: &ServerMessage) -> &daily_proto::ParticipantInfo {
    match m {
        ServerMessage::Joined { participant, .. } => participant,
        other => panic!("{other:?}"),
    }
}

/// A JWT with any header, HS256-signed with `key` (to forge tokens the server must refuse).
fn sign(header: Value, claims: Value, key: &[u8]) -> String {
    let h = B64.encode(header.to_string());
    let c = B64.encode(claims.to_string());
    let sig = jsonwebtoken::crypto::sign(
        format!("{h}.{c}").as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(key),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{h}.{c}.{sig}")
}

#[tokio::test]
async fn without_an_api_key_rest_is_off_and_tokens_are_refused() {
    let mut server = start(None);
    assert!(!server.has_api_key());
    let rest = Rest::new(&server);
    for (method, path) in [
        ("POST", "/rooms"),
        ("GET", "/rooms"),
        ("GET", "/rooms/a"),
        ("DELETE", "/rooms/a"),
        ("POST", "/meeting-tokens"),
        ("GET", "/nothing/here"),
    ] {
        let info = assert_error(
            rest.raw(method, path, Some("Bearer anything"), ""),
            401,
            "authentication-error",
        );
        assert!(
            info.contains("no API key") && info.contains("--api-key"),
            "{info}"
        );
    }
    // Ad-hoc public rooms work as before; a token cannot be valid here.
    let addr = server.local_addr();
    let (_a, joined) = join_ok(addr, "adhoc", "alice", None).await;
    assert!(!joined_self(&joined).is_owner);
    let _ = join_ok(addr, "adhoc", "empty-token", Some(String::new())).await;
    let forged = sign(
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"o": true}),
        b"guess",
    );
    join_refused(addr, "adhoc", Some(forged), NOT_ALLOWED).await;
    server.shutdown();

    // Unusable keys are refused at start.
    for bad in ["", "with space", "naïve"] {
        assert!(matches!(
            RoomServer::start(ServerConfig {
                api_key: Some(bad.into()),
                ..ServerConfig::default()
            }),
            Err(ServerError::InvalidApiKey(_))
        ));
    }
}

#[tokio::test]
async fn every_endpoint_needs_the_key() {
    let server = start(Some(KEY));
    let rest = Rest::new(&server);
    let endpoints = [
        ("POST", "/rooms", r#"{"name":"x"}"#),
        ("GET", "/rooms", ""),
        ("GET", "/rooms/x", ""),
        ("DELETE", "/rooms/x", ""),
        ("POST", "/meeting-tokens", r#"{"properties":{}}"#),
        ("GET", "/unknown", ""),
    ];
    let wrong = format!("Bearer {KEY}x");
    let basic = format!("Basic {KEY}");
    for (method, path, body) in endpoints {
        for auth in [None, Some(KEY), Some(basic.as_str()), Some(wrong.as_str())] {
            assert_error(
                rest.raw(method, path, auth, body),
                401,
                "authentication-error",
            );
        }
    }
    // Nothing was created by the refused requests.
    let (status, v) = rest.call("GET", "/rooms", None);
    assert_eq!((status, v["total_count"].as_u64()), (200, Some(0)));
    // An unknown path with the key: 404 in Daily's shape.
    assert_error(rest.call("GET", "/unknown", None), 404, "not-found");
}

#[tokio::test]
async fn rooms_create_list_get_delete() {
    let server = start(Some(KEY));
    let rest = Rest::new(&server);
    let exp = now() as f64 + 3600.5;
    let room = rest.create_room(json!({
        "name": "standup",
        "privacy": "private",
        "properties": {"exp": exp, "max_participants": 5, "enable_chat": true, "geo": null},
    }));
    assert_eq!(room["name"], "standup");
    assert_eq!(room["privacy"], "private");
    assert_eq!(room["api_created"], true);
    assert_eq!(room["url"], server.room_url("standup"));
    assert_eq!(room["id"].as_str().unwrap().len(), 36);
    assert_eq!(
        room["config"],
        json!({"exp": exp, "max_participants": 5, "enable_chat": true})
    );
    let created = room["created_at"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with(".000Z") && created.as_bytes()[10] == b'T',
        "{created}"
    );

    // Defaults: generated name, public, empty config; an empty body is allowed.
    let (status, generated) = rest.raw("POST", "/rooms", Some(&format!("Bearer {KEY}")), "");
    assert_eq!(status, 200, "{generated}");
    let gen_name = generated["name"].as_str().unwrap().to_owned();
    assert!(daily_proto::is_valid_room_name(&gen_name) && gen_name.len() >= 16);
    assert_eq!(generated["privacy"], "public");
    assert_eq!(generated["config"], json!({}));

    // Bad input: 400 invalid-request-error, never a panic.
    for body in [
        json!({"name": "standup"}),
        json!({"name": "bad name!"}),
        json!({"name": "x".repeat(129)}),
        json!({"privacy": "secret"}),
        json!({"privcy": "private"}),
        json!({"properties": {"exp": "tomorrow"}}),
        json!({"properties": {"max_participants": 0}}),
        json!([1, 2]),
    ] {
        assert_error(
            rest.call("POST", "/rooms", Some(body)),
            400,
            "invalid-request-error",
        );
    }
    let auth = format!("Bearer {KEY}");
    for raw in [
        "{not json",
        "\"just a string\"",
        "{\"name\": \"a\"} trailing",
    ] {
        assert_error(
            rest.raw("POST", "/rooms", Some(&auth), raw),
            400,
            "invalid-request-error",
        );
    }
    let big = format!(
        r#"{{"properties":{{"blob":"{}"}}}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    assert_error(
        rest.raw("POST", "/rooms", Some(&auth), &big),
        413,
        "invalid-request-error",
    );

    // List (newest first) and get.
    let (status, list) = rest.call("GET", "/rooms", None);
    assert_eq!(status, 200);
    assert_eq!(list["total_count"], 2);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![gen_name.as_str(), "standup"]);
    let (status, got) = rest.call("GET", "/rooms/standup", None);
    assert_eq!((status, &got), (200, &room));
    assert_error(rest.call("GET", "/rooms/nope", None), 404, "not-found");
    assert_error(
        rest.call("GET", "/rooms/bad%20name", None),
        404,
        "not-found",
    );

    // The public room page does not count a private room's members.
    let (status, body) = http_get(server.local_addr(), "/standup");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, v["privacy"].as_str()), (200, Some("private")));
    assert!(v.get("participants").is_none(), "{v}");
    let (_, body) = http_get(server.local_addr(), &format!("/{gen_name}"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["participants"], 0);

    // Delete.
    let (status, v) = rest.call("DELETE", "/rooms/standup", None);
    assert_eq!(
        (status, v),
        (200, json!({"deleted": true, "name": "standup"}))
    );
    assert_error(rest.call("GET", "/rooms/standup", None), 404, "not-found");
    assert_error(
        rest.call("DELETE", "/rooms/standup", None),
        404,
        "not-found",
    );
    let (_, list) = rest.call("GET", "/rooms", None);
    assert_eq!(list["total_count"], 1);
}

#[tokio::test]
async fn meeting_token_requests_are_validated() {
    let server = start(Some(KEY));
    let rest = Rest::new(&server);
    let t = rest.token(
        json!({"room_name": "r", "is_owner": true, "exp": now() + 60,
                              "enable_screenshare": true}),
    );
    assert_eq!(t.split('.').count(), 3);
    let header: Value =
        serde_json::from_slice(&B64.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    // No body: a token without properties.
    let (status, v) = rest.call("POST", "/meeting-tokens", None);
    assert!(status == 200 && v["token"].is_string(), "{v}");
    for body in [
        json!({"properties": {"room_name": 5}}),
        json!({"properties": {"room_name": "no spaces allowed"}}),
        json!({"properties": {"is_owner": "true"}}),
        json!({"properties": {"user_name": ["x"]}}),
        json!({"properties": {"user_id": ""}}),
        json!({"properties": {"exp": "never"}}),
        json!({"properties": {"nbf": -1}}),
        json!({"properties": {"permissions": {"canSend": ["hologram"]}}}),
        json!({"properties": {"permissions": {"canAdmin": ["root"]}}}),
        json!({"properties": {"permissions": {"hasPresence": "no"}}}),
        json!({"properties": {"permissions": {"canFly": true}}}),
        json!({"properties": []}),
        json!({"room_name": "r"}),
        json!(7),
    ] {
        assert_error(
            rest.call("POST", "/meeting-tokens", Some(body)),
            400,
            "invalid-request-error",
        );
    }
    assert_error(
        rest.raw(
            "POST",
            "/meeting-tokens",
            Some(&format!("Bearer {KEY}")),
            "{\"properties\":",
        ),
        400,
        "invalid-request-error",
    );
}

#[tokio::test]
async fn private_rooms_admit_valid_tokens_only() {
    let mut server = start(Some(KEY));
    let addr = server.local_addr();
    let rest = Rest::new(&server);
    rest.create_room(json!({"name": "vault", "privacy": "private"}));
    rest.create_room(json!({"name": "other", "privacy": "private"}));

    // An owner token: owner, name and id from the token, permissions applied.
    let owner = rest.token(json!({
        "room_name": "vault", "is_owner": true, "user_name": "Boss", "user_id": "boss-1",
        "exp": now() + 600,
        "permissions": {"canSend": ["microphone"], "canAdmin": ["participants"]},
    }));
    let (mut member, joined) = join_ok(addr, "vault", "ignored", Some(owner)).await;
    let me = joined_self(&joined);
    assert!(me.is_owner);
    assert_eq!(
        (me.user_name.as_str(), me.user_id.as_str()),
        ("Boss", "boss-1")
    );
    assert_eq!(me.permissions.can_send, vec!["microphone"]);
    assert_eq!(me.permissions.can_admin, vec!["participants"]);
    assert!(me.permissions.has_presence);

    // Every refusal looks the same and reveals nothing.
    let t = now();
    let expired = rest.token(json!({"room_name": "vault", "exp": t - 10}));
    let not_yet = rest.token(json!({"room_name": "vault", "nbf": t + 3600}));
    let other_room = rest.token(json!({"room_name": "other"}));
    let other_key = sign(
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"r": "vault", "o": true}),
        b"not-the-key",
    );
    let alg_none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(r#"{"r":"vault","o":true}"#)
    );
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &json!({"r": "vault", "o": true}),
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )
    .unwrap();
    let valid = rest.token(json!({"room_name": "vault"}));
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(r#"{"r":"vault","o":true}"#),
        parts[2]
    );
    for token in [
        None,
        Some(expired),
        Some(not_yet),
        Some(other_room),
        Some(other_key),
        Some(alg_none),
        Some(hs512),
        Some(tampered),
        Some("garbage".to_owned()),
        Some("a.b.c".to_owned()),
    ] {
        join_refused(addr, "vault", token, NOT_ALLOWED).await;
    }

    // A plain valid token (no owner claim) gets in without owner rights; the member's next
    // message is that join, so none of the refused attempts was visible to it.
    let (_guest, joined) = join_ok(addr, "vault", "guest", Some(valid)).await;
    let guest = joined_self(&joined);
    assert!(!guest.is_owner);
    assert_eq!(guest.user_name, "guest");
    assert_eq!(guest.user_id, guest.id);
    match member.recv().await {
        ServerMessage::ParticipantJoined { participant } => assert_eq!(participant.id, guest.id),
        other => panic!("the member saw {other:?}"),
    }
    // A token without room_name is valid for every room (Daily's rule).
    let any_room = rest.token(json!({}));
    let _ = join_ok(addr, "other", "roamer", Some(any_room)).await;
    server.shutdown();
}

#[tokio::test]
async fn public_room_rules_exp_and_capacity() {
    let server = start(Some(KEY));
    let addr = server.local_addr();
    let rest = Rest::new(&server);

    // Public rooms need no token, but a bad one is refused (as Daily does).
    rest.create_room(json!({"name": "lobby"}));
    let _a = join_ok(addr, "lobby", "a", None).await;
    join_refused(addr, "lobby", Some("not.a.token".into()), NOT_ALLOWED).await;
    join_refused(addr, "adhoc", Some("not.a.token".into()), NOT_ALLOWED).await;
    // A valid owner token makes an owner in a public or ad-hoc room too.
    let owner = rest.token(json!({"is_owner": true}));
    let (_o, joined) = join_ok(addr, "adhoc", "o", Some(owner)).await;
    assert!(joined_self(&joined).is_owner);

    // Expired room: nobody gets in.
    rest.create_room(json!({"name": "old", "properties": {"exp": now() - 1}}));
    join_refused(addr, "old", None, "this room has expired").await;
    // ... but a private expired room tells strangers only that they are not allowed.
    rest.create_room(json!({"name": "old-private", "privacy": "private",
                             "properties": {"exp": now() - 1}}));
    join_refused(addr, "old-private", None, NOT_ALLOWED).await;
    let t = rest.token(json!({"room_name": "old-private"}));
    join_refused(addr, "old-private", Some(t), "this room has expired").await;

    // max_participants.
    rest.create_room(json!({"name": "duo", "properties": {"max_participants": 2}}));
    let _p1 = join_ok(addr, "duo", "p1", None).await;
    let (mut p2, _) = join_ok(addr, "duo", "p2", None).await;
    join_refused(addr, "duo", None, "room is full (2 participants)").await;
    // A place frees up when somebody leaves.
    p2.send(&ClientMessage::Leave).await;
    assert!(matches!(p2.recv().await, ServerMessage::Left));
    let _p3 = join_ok(addr, "duo", "p3", None).await;
}

#[tokio::test]
async fn deleting_a_room_ends_its_call() {
    let server = start(Some(KEY));
    let addr = server.local_addr();
    let rest = Rest::new(&server);
    rest.create_room(json!({"name": "doomed", "privacy": "private"}));
    let token = rest.token(json!({"room_name": "doomed"}));
    let (mut a, _) = join_ok(addr, "doomed", "a", Some(token.clone())).await;
    let (mut b, _) = join_ok(addr, "doomed", "b", Some(token)).await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    // An ad-hoc room elsewhere is untouched.
    let (mut bystander, _) = join_ok(addr, "elsewhere", "c", None).await;

    let (status, _) = rest.call("DELETE", "/rooms/doomed", None);
    assert_eq!(status, 200);
    for c in [&mut a, &mut b] {
        let msgs = c.until_closed().await;
        assert!(
            matches!(msgs.as_slice(), [ServerMessage::CallEnded { reason }] if reason.contains("deleted")),
            "{msgs:?}"
        );
    }
    bystander.send(&ClientMessage::Leave).await;
    assert!(matches!(bystander.recv().await, ServerMessage::Left));
    assert!(matches!(bystander.next().await, Next::Closed));
}
