//! The REST API: the subset of Daily's `/v1` that pipecat's `DailyRESTHelper` and most
//! back-ends use — rooms and meeting tokens. Shapes and error bodies follow Daily's REST
//! reference; `docs/rest-api.md` lists them. Every endpoint needs `Authorization: Bearer <API
//! key>`; a server started without a key answers 401 and says how to set one.
//!
//! The handlers only parse, authenticate and format: rules live in the IO-free [`crate::auth`]
//! and [`crate::rooms`]. The registry is shared with the join gate in `http.rs` behind one
//! mutex, held only for map operations (never across an `await`).
// Handlers return early with a finished `Response`; it is big, but built once per request.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex, MutexGuard};

use crate::recorder::catalog::Catalog;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use crate::auth::{ApiKey, AuthError, TokenProperties};
use crate::http::AppState;
use crate::cluster::CreateOutcome;
use crate::rooms::{CreateError, CreateRoom, MAX_CLUSTER_ROOMS, PageQuery, RoomRegistry, page_range};
use crate::sfu::Command;

/// Largest request body accepted, in bytes (larger: 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the REST API and the join gate share.
pub(crate) struct Api {
    /// `None`: no REST API; tokens cannot be valid.
    pub key: Option<ApiKey>,
    /// REST-created rooms.
    pub rooms: Mutex<RoomRegistry>,
    /// `http://HOST:PORT` (`https://` with TLS) of this server, for room URLs.
    pub base_url: String,
    /// Server-side recordings (`None`: recording is off), `recordings.rs`.
    pub recordings: Option<Arc<Catalog>>,
}

impl Api {
    pub(crate) fn new(key: Option<ApiKey>, base_url: String, recordings: Option<Arc<Catalog>>) -> Api {
        Api {
            key,
            rooms: Mutex::new(RoomRegistry::default()),
            base_url,
            recordings,
        }
    }

    /// The registry (a panic elsewhere while holding it leaves it consistent: every mutation
    /// is one map operation).
    pub(crate) fn rooms(&self) -> MutexGuard<'_, RoomRegistry> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/rooms", get(list_rooms).post(create_room))
        .route("/v1/rooms/{name}", get(get_room).delete(delete_room))
        .route("/v1/meeting-tokens", post(create_token))
        .merge(crate::recordings_rest::routes())
        .merge(crate::nodes_rest::routes())
        .route("/v1/{*rest}", any(unknown))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Daily's error body: `{"error": kind, "info": text}`.
pub(crate) fn error(status: StatusCode, kind: &str, info: impl Into<String>) -> Response {
    (status, Json(json!({ "error": kind, "info": info.into() }))).into_response()
}

pub(crate) fn bad_request(info: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid-request-error", info)
}

fn not_found(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("room {name:?} not found"),
    )
}

pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<ApiKey, Response> {
    let Some(key) = &state.api.key else {
        return Err(unauthorized(AuthError::NoServerKey));
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    key.check_bearer(header).map_err(unauthorized)?;
    Ok(key.clone())
}

pub(crate) fn unauthorized(e: AuthError) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "authentication-error", e.info());
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The body as JSON: `Null` when empty; 413 above [`MAX_BODY_BYTES`]; 400 when malformed.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, Response> {
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            error(
                status,
                "invalid-request-error",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            error(status, "invalid-request-error", e.body_text())
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("the request body is not valid JSON: {e}")))
}

fn room_name(path: Result<Path<String>, PathRejection>) -> Result<String, Response> {
    match path {
        Ok(Path(n)) if daily_proto::is_valid_room_name(&n) => Ok(n),
        Ok(Path(n)) => Err(not_found(&n)),
        Err(e) => Err(bad_request(e.body_text())),
    }
}

/// `POST /v1/rooms`.
async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let req = match json_body(body).and_then(|v| CreateRoom::parse(&v).map_err(bad_request)) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(cluster) = &state.cluster {
        return create_room_clustered(&state, cluster, req).await;
    }
    let mut rooms = state.api.rooms();
    match rooms.create(req, crate::unix_now()) {
        Ok(room) => {
            tracing::info!(room = %room.name, privacy = room.privacy.as_str(), "room created");
            Json(room.to_json(&state.api.base_url)).into_response()
        }
        Err(e @ CreateError::Duplicate(_)) | Err(e @ CreateError::Full) => {
            bad_request(e.to_string())
        }
    }
}

/// `POST /v1/rooms` in cluster mode: the room goes to Redis and is placed on a node.
async fn create_room_clustered(state: &AppState, cluster: &crate::cluster::Cluster, req: CreateRoom) -> Response {
    let name = req.name.clone().unwrap_or_else(crate::rooms::generated_name);
    let seq = match cluster.next_room_seq().await {
        Ok(s) => s,
        Err(e) => return cluster_error(e),
    };
    let record = crate::rooms::RoomRecord::new(req, name, crate::unix_now(), seq);
    match cluster.create_room(&record).await {
        Ok(CreateOutcome::Created { node }) => {
            tracing::info!(room = %record.name, privacy = record.privacy.as_str(), node = ?node, "room created");
            Json(record.to_json(&state.api.base_url)).into_response()
        }
        Ok(CreateOutcome::Duplicate) => bad_request(CreateError::Duplicate(record.name).to_string()),
        Ok(CreateOutcome::Full) => bad_request(format!("this cluster already has {MAX_CLUSTER_ROOMS} rooms")),
        Err(e) => cluster_error(e),
    }
}

/// Redis failed under a REST request: 503 with what went wrong.
pub(crate) fn cluster_error(e: crate::cluster::ClusterError) -> Response {
    tracing::warn!(error = %e, "cluster state unavailable");
    error(StatusCode::SERVICE_UNAVAILABLE, "server-error", format!("cluster state unavailable: {e}"))
}

/// `GET /v1/rooms?limit=&starting_after=&ending_before=`: one page, newest first, and the
/// number of rooms in all (Daily's paging; cursors are room ids).
async fn list_rooms(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = match PageQuery::parse(crate::recordings_rest::query(&raw)) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    if let Some(cluster) = &state.cluster {
        return match cluster.rooms_page(&q).await {
            Ok(Ok((total, rooms))) => {
                let data: Vec<Value> = rooms.iter().map(|r| r.to_json(&state.api.base_url)).collect();
                Json(json!({ "total_count": total, "data": data })).into_response()
            }
            Ok(Err(e)) => bad_request(e),
            Err(e) => cluster_error(e),
        };
    }
    let rooms = state.api.rooms();
    let all = rooms.list();
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    match page_range(&ids, &q) {
        Ok(range) => {
            let data: Vec<Value> = all[range].iter().map(|r| r.to_json(&state.api.base_url)).collect();
            Json(json!({ "total_count": all.len(), "data": data })).into_response()
        }
        Err(e) => bad_request(e),
    }
}

/// `GET /v1/rooms/{name}`.
async fn get_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let name = match room_name(path) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Some(cluster) = &state.cluster {
        return match cluster.room(&name).await {
            Ok(Some(room)) => Json(room.to_json(&state.api.base_url)).into_response(),
            Ok(None) => not_found(&name),
            Err(e) => cluster_error(e),
        };
    }
    match state.api.rooms().get(&name) {
        Some(room) => Json(room.to_json(&state.api.base_url)).into_response(),
        None => not_found(&name),
    }
}

/// `DELETE /v1/rooms/{name}`: forgets the room and ends its call for whoever is in it.
async fn delete_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let name = match room_name(path) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Some(cluster) = &state.cluster {
        // The call ends where it runs: here below, or on the room's node through the bus.
        match cluster.delete_room(&name).await {
            Ok(Some(Some(node))) if node != cluster.id => {
                let msg = crate::cluster::bus::BusMessage::EndRoom {
                    room: name.clone(),
                    reason: "the room was deleted".into(),
                };
                if let Err(e) = cluster.publish(&node, &msg).await {
                    tracing::warn!(room = %name, %node, error = %e, "cannot tell the room's node to end its call");
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return not_found(&name),
            Err(e) => return cluster_error(e),
        }
    }
    let mut rooms = state.api.rooms();
    if rooms.remove(&name).is_none() && state.cluster.is_none() {
        return not_found(&name);
    }
    // Sent under the registry lock, as the join gate sends `Join`: a join admitted before the
    // removal reaches the SFU before this and is ended with the others.
    let _ = state.cmds.send(
        Command::EndRoom {
            room: name.clone(),
            reason: "the room was deleted".into(),
        }
        .into(),
    );
    drop(rooms);
    tracing::info!(room = %name, "room deleted");
    Json(json!({ "deleted": true, "name": name })).into_response()
}

/// `POST /v1/meeting-tokens`: body `{"properties": {...}}`.
async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match authorize(&state, &headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let body = match json_body(body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let properties = match &body {
        Value::Null => None,
        Value::Object(o) => {
            if let Some(other) = o.keys().find(|k| k.as_str() != "properties") {
                return bad_request(format!(
                    "unknown field {other:?}: token properties go in \"properties\""
                ));
            }
            o.get("properties").filter(|v| !v.is_null())
        }
        _ => return bad_request("the body must be a JSON object"),
    };
    match TokenProperties::parse(properties) {
        Ok(p) => Json(json!({ "token": key.issue(&p, crate::unix_now()) })).into_response(),
        Err(e) => bad_request(e),
    }
}

/// Any other `/v1/...` path.
async fn unknown(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    error(
        StatusCode::NOT_FOUND,
        "not-found",
        "this server implements /v1/rooms, /v1/meeting-tokens and /v1/recordings only",
    )
}
