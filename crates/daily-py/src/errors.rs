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
