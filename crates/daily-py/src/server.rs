//! The embedded room server (`daily.server.RoomServer` wraps `_RoomServer`).

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::sync::Mutex;

/// The room server running inside this process (see `daily.server.RoomServer`). `api_key`
/// turns on the REST API (`/v1`) and meeting tokens (`docs/rest-api.md`).
#[pyclass(module = "daily", frozen)]
pub struct _RoomServer {
    inner: Mutex<Option<daily_server::RoomServer>>,
    url: String,
}

#[pymethods]
impl _RoomServer {
    #[new]
    #[pyo3(signature = (host="127.0.0.1", port=0, api_key=None))]
    fn new(py: Python<'_>, host: &str, port: i64, api_key: Option<String>) -> PyResult<Self> {
        let host: std::net::IpAddr = host.parse().map_err(|_| PyValueError::new_err(format!("host must be an IP address, got {host:?}")))?;
        if !(0..=65535).contains(&port) {
            return Err(PyValueError::new_err(format!("port must be 0-65535, got {port}")));
        }
        if let Some(k) = &api_key {
            daily_server::validate_api_key(k).map_err(|e| PyValueError::new_err(format!("invalid api_key: {e}")))?;
        }
        let config = daily_server::ServerConfig { host, port: port as u16, api_key };
        let server = py
            .detach(|| daily_server::RoomServer::start(config))
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let url = server.url();
        Ok(_RoomServer { inner: Mutex::new(Some(server)), url })
    }

    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    fn room_url(&self, room: &str) -> PyResult<String> {
        if !daily_proto::is_valid_room_name(room) {
            return Err(PyValueError::new_err(format!("invalid room name {room:?}: use 1-128 characters of A-Z a-z 0-9 - _ .")));
        }
        Ok(format!("{}/{}", self.url, room))
    }

    fn shutdown(&self, py: Python<'_>) {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut s) = s {
            py.detach(|| s.shutdown());
        }
    }
}
