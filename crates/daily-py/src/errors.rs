//! Mapping of the core's errors to Python exceptions.

use daily_client::ClientError;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// `ClientError::InvalidArgument` raises `ValueError`, every other error `RuntimeError`.
pub(crate) fn to_py_err(e: ClientError) -> PyErr {
    match e {
        ClientError::InvalidArgument(m) => PyValueError::new_err(m),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// The error argument of a completion: daily-python passes the message as a string.
pub(crate) fn completion_error(py: Python<'_>, e: &ClientError) -> Py<PyAny> {
    e.to_string().into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None())
}
