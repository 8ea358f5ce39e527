//! `GET /v1/nodes` (beyond Daily's API): the live nodes of a cluster (`--redis`), for
//! operators. Bearer API key like the rest of `/v1`. Shape: `{"total_count": n, "data": [{"id",
//! "url", "rooms": [names], "room_count", "participants", "cpu", "updated_at_ms", "draining"}]}`
//! sorted by id, as
//! [`crate::cluster::NodeInfo`]; a node is listed while its heartbeat entry lives
//! ([`crate::cluster::NODE_TTL`]). A server without `--redis` answers 404 and says so; Redis
//! unreachable: 503.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::http::AppState;
use crate::rest::{authorize, error};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/nodes", get(list_nodes))
}

async fn list_nodes(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let Some(cluster) = &state.cluster else {
        return error(
            StatusCode::NOT_FOUND,
            "not-found",
            "this server is not part of a cluster (start it with --redis redis://HOST:PORT)",
        );
    };
    match cluster.nodes_with_rooms().await {
        Ok(nodes) => Json(json!({ "total_count": nodes.len(), "data": nodes })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "server-error", e.to_string()),
    }
}
