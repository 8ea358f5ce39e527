//! The REST API's recordings (`docs/rest-api.md`, "Recordings"), in Daily's shapes: list,
//! one recording, an access link, the files themselves, delete. Everything needs the API key
//! as a bearer, except a file fetched with the access link's own signed, expiring token
//! (`?token=`, `auth.rs`). The metadata comes from the recorder's catalog
//! (`recorder/catalog.rs`), never from the SFU.
// Handlers return early with a finished `Response`.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::recorder::catalog::Catalog;
use crate::rest::{authorize, bad_request, error};

/// Default and largest `limit` of `GET /v1/recordings` (Daily's).
const LIST_LIMIT: usize = 100;
/// Default lifetime of an access link, in seconds (Daily's `valid_for_secs` default).
const LINK_SECS: u64 = 3600;
/// Longest lifetime of an access link, in seconds (Daily's maximum, 12 hours).
const LINK_MAX_SECS: u64 = 12 * 3600;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/recordings", get(list))
        .route("/v1/recordings/{id}", get(one).delete(delete))
        .route("/v1/recordings/{id}/access-link", get(access_link))
        .route("/v1/recordings/{id}/files/{name}", get(file))
}

/// `key=value` pairs of a query string (values taken as they are: every value this API reads
/// is a number, a room name, or a token, none of which needs percent-decoding).
/// The pairs of a query string, undecoded (ids and names need no percent-encoding).
pub(crate) fn query(q: &Option<String>) -> Vec<(&str, &str)> {
    q.as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn catalog(state: &AppState) -> Result<&Catalog, Response> {
    state.api.recordings.as_deref().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "not-found",
            "recording is disabled on this server (start it with --recordings-dir DIR)",
        )
    })
}

/// The catalog, for a request that carries the API key.
fn authorized_catalog<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a Catalog, Response> {
    authorize(state, headers)?;
    catalog(state)
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("recording {id:?} not found"),
    )
}

/// `GET /v1/recordings?room_name=&limit=`: newest first.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let cat = match authorized_catalog(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (mut room, mut limit) = (None, LIST_LIMIT);
    for (k, v) in query(&q) {
        match k {
            "room_name" => room = Some(v),
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=LIST_LIMIT).contains(&n) => limit = n,
                _ => return bad_request(format!("limit must be 1 to {LIST_LIMIT}, got {v:?}")),
            },
            _ => {}
        }
    }
    let (total, data) = cat.list(room, limit);
    Json(json!({ "total_count": total, "data": data })).into_response()
}

/// `GET /v1/recordings/{id}`.
async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let cat = match authorized_catalog(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match cat.get(&id) {
        Some(v) => Json(v).into_response(),
        None => not_found(&id),
    }
}

/// `DELETE /v1/recordings/{id}`: a finished recording's metadata and files.
async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let cat = match authorized_catalog(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match cat.delete(&id) {
        Ok(_) => Json(json!({ "deleted": true, "id": id })).into_response(),
        Err("in-progress") => bad_request(format!(
            "recording {id:?} is still in progress: stop it first"
        )),
        Err(_) => not_found(&id),
    }
}

/// `GET /v1/recordings/{id}/access-link?valid_for_secs=`: `{"download_link", "expires"}`, the
/// link to the mixed file; for this raw-tracks recording also `tracks`, each track's own link.
async fn access_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let key = match authorize(&state, &headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let cat = match catalog(&state) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut secs = LINK_SECS;
    for (k, v) in query(&q) {
        if k == "valid_for_secs" {
            match v.parse::<u64>() {
                Ok(n) if (1..=LINK_MAX_SECS).contains(&n) => secs = n,
                _ => {
                    return bad_request(format!(
                        "valid_for_secs must be 1 to {LINK_MAX_SECS}, got {v:?}"
                    ));
                }
            }
        }
    }
    let Some(meta) = cat.get(&id) else {
        return not_found(&id);
    };
    let expires = crate::unix_now() + secs;
    let token = key.issue_download(&id, expires);
    let link = |file: &str| {
        format!(
            "{}/v1/recordings/{id}/files/{file}?token={token}",
            state.api.base_url
        )
    };
    let tracks: Vec<Value> = meta["tracks"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|t| {
                    json!({
                        "id": t["id"],
                        "participant_id": t["participant_id"],
                        "file": t["file"],
                        "download_link": link(t["file"].as_str().unwrap_or("")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({
        "download_link": link(meta["mix"]["file"].as_str().unwrap_or("mix.ogg")),
        "expires": expires,
        "tracks": tracks,
    }))
    .into_response()
}

/// `GET /v1/recordings/{id}/files/{name}`: with the API key as a bearer, or `?token=` from
/// an access link. `audio/ogg`, as an attachment.
async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let token = query(&q)
        .into_iter()
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_owned());
    match (&state.api.key, token) {
        (Some(key), Some(t)) => {
            if !key.check_download(&t, &id, crate::unix_now()) {
                return error(
                    StatusCode::FORBIDDEN,
                    "authentication-error",
                    "the download token is invalid or has expired: get a new access link",
                );
            }
        }
        _ => {
            if let Err(r) = authorize(&state, &headers) {
                return r;
            }
        }
    }
    let cat = match catalog(&state) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(path) = cat.file(&id, &name) else {
        return error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("recording {id:?} has no file {name:?}"),
        );
    };
    // Read on the blocking pool: a disk never stalls the runtime's workers.
    let read = tokio::task::spawn_blocking(move || std::fs::read(&path)).await;
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "audio/ogg".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("recording {id:?}: {name:?} cannot be read: {e}"),
        ),
    }
}
