//! The embedded room server (`daily.server.RoomServer` wraps `_RoomServer`).

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use crate::errors::guard;
use std::sync::Mutex;

/// The room server running inside this process (see `daily.server.RoomServer`). `api_key`
/// turns on the REST API (`/v1`) and meeting tokens (`docs/rest-api.md`); `tls_cert` and
/// `tls_key` (PEM paths, both or neither) serve HTTPS/WSS; the other keyword arguments are the
/// connection limits of `docs/server-limits.md` (`None`: the server's default);
/// `recordings_dir` turns on server-side recording (`start_recording`); `redis_url` (and
/// `node_url`) make it a node of a cluster sharing that Redis (`docs/scaling.md`).
#[pyclass(module = "daily", frozen)]
pub struct _RoomServer {
    inner: Mutex<Option<daily_server::RoomServer>>,
    url: String,
}

#[pymethods]
impl _RoomServer {
    #[new]
    #[pyo3(signature = (host="127.0.0.1", port=0, api_key=None, *, tls_cert=None, tls_key=None,
        http_idle_timeout=None, join_timeout=None, max_connections=None, max_connections_per_ip=None,
        max_pending_joins=None, resume_grace=None, app_message_rate=None, update_rate=None,
        recordings_dir=None, redis_url=None, node_url=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: &str,
        port: i64,
        api_key: Option<String>,
        tls_cert: Option<std::path::PathBuf>,
        tls_key: Option<std::path::PathBuf>,
        http_idle_timeout: Option<f64>,
        join_timeout: Option<f64>,
        max_connections: Option<i64>,
        max_connections_per_ip: Option<i64>,
        max_pending_joins: Option<i64>,
        resume_grace: Option<f64>,
        app_message_rate: Option<i64>,
        update_rate: Option<i64>,
        recordings_dir: Option<std::path::PathBuf>,
        redis_url: Option<String>,
        node_url: Option<String>,
    ) -> PyResult<Self> {
        guard(|| {
            let host: std::net::IpAddr = host.parse().map_err(|_| PyValueError::new_err(format!("host must be an IP address, got {host:?}")))?;
            if !(0..=65535).contains(&port) {
                return Err(PyValueError::new_err(format!("port must be 0-65535, got {port}")));
            }
            if let Some(k) = &api_key {
                daily_server::validate_api_key(k).map_err(|e| PyValueError::new_err(format!("invalid api_key: {e}")))?;
            }
            let tls = match (tls_cert, tls_key) {
                (Some(cert_path), Some(key_path)) => Some(daily_server::TlsConfig { cert_path, key_path }),
                (None, None) => None,
                _ => return Err(PyValueError::new_err("tls_cert and tls_key go together: pass both or neither")),
            };
            let mut limits = daily_server::Limits::default();
            let seconds = |name: &str, v: f64| {
                if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                    Ok(std::time::Duration::from_secs_f64(v))
                } else {
                    Err(PyValueError::new_err(format!("{name} must be more than 0 and at most 86400 seconds, got {v}")))
                }
            };
            let count = |name: &str, v: i64| {
                usize::try_from(v)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| PyValueError::new_err(format!("{name} must be at least 1, got {v}")))
            };
            if let Some(v) = http_idle_timeout {
                limits.http_idle_timeout = seconds("http_idle_timeout", v)?;
            }
            if let Some(v) = join_timeout {
                limits.join_timeout = seconds("join_timeout", v)?;
            }
            if let Some(v) = max_connections {
                limits.max_connections = count("max_connections", v)?;
            }
            if let Some(v) = max_connections_per_ip {
                limits.max_connections_per_ip = count("max_connections_per_ip", v)?;
            }
            if let Some(v) = max_pending_joins {
                limits.max_pending_joins = count("max_pending_joins", v)?;
            }
            let mut sfu = daily_server::SfuConfig::default();
            if let Some(v) = resume_grace {
                sfu.resume_grace = seconds("resume_grace", v)?;
            }
            let rate = |name: &str, v: i64| {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n <= 1_000_000)
                    .map(|n| daily_server::RateLimit { per_second: n, burst: n.saturating_mul(2) })
                    .ok_or_else(|| PyValueError::new_err(format!("{name} must be 0 (no limit) to 1000000 per second, got {v}")))
            };
            if let Some(v) = app_message_rate {
                sfu.app_messages = rate("app_message_rate", v)?;
            }
            if let Some(v) = update_rate {
                sfu.updates = rate("update_rate", v)?;
            }
            let config = daily_server::ServerConfig { host, port: port as u16, api_key, tls, limits, sfu, recordings_dir, redis_url, node_url };
            // Under guard(): a panic in the server's start-up becomes RuntimeError, not PanicException.
            let server = crate::errors::guard(|| {
                py.detach(|| daily_server::RoomServer::start(config)).map_err(|e| match e {
                    // A file or a limit the caller gave: their value is wrong, not the machine.
                    daily_server::ServerError::Tls { .. }
                    | daily_server::ServerError::InvalidLimit(_)
                    | daily_server::ServerError::Recordings { .. }
                    | daily_server::ServerError::Cluster(daily_server::cluster::ClusterError::InvalidUrl { .. }) => {
                        PyValueError::new_err(e.to_string())
                    }
                    e => PyRuntimeError::new_err(e.to_string()),
                })
            })?;
            let url = server.url();
            Ok(_RoomServer { inner: Mutex::new(Some(server)), url })
        })
    }

    /// `http://HOST:PORT` (`https://` with TLS), the port the one bound.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// `url/room`; `ValueError` unless `room` is 1-128 characters of A-Z a-z 0-9 - _ .
    fn room_url(&self, room: &str) -> PyResult<String> {
        guard(|| {
            if !daily_proto::is_valid_room_name(room) {
                return Err(PyValueError::new_err(format!("invalid room name {room:?}: use 1-128 characters of A-Z a-z 0-9 - _ .")));
            }
            Ok(format!("{}/{}", self.url, room))
        })
    }

    /// Cluster mode: stop taking new rooms, keep running calls (`RoomServer::drain`).
    /// `RuntimeError` without `redis_url` or once stopped.
    fn drain(&self) -> PyResult<()> {
        guard(|| {
            let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match s.as_ref() {
                Some(s) => s.drain().map_err(|e| PyRuntimeError::new_err(e.to_string())),
                None => Err(PyRuntimeError::new_err("the server is not running")),
            }
        })
    }

    /// No participants left and no relayed signalling (GIL released; at most 2 s). `True`
    /// once stopped.
    fn is_drained(&self, py: Python<'_>) -> PyResult<bool> {
        guard(|| {
            let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            Ok(match s.as_ref() {
                Some(s) => py.detach(|| s.is_drained()),
                None => true,
            })
        })
    }

    /// Tells every participant the call ended and stops the server (GIL released while it
    /// waits). Idempotent.
    fn shutdown(&self, py: Python<'_>) {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut s) = s {
            py.detach(|| s.shutdown());
        }
    }
}
