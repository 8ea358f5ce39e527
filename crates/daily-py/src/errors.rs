//! Mapping of the core's errors to Python exceptions, and the guard that keeps Rust panics
//! from reaching Python as `PanicException`.

use daily_client::ClientError;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

/// `ClientError::InvalidArgument` raises `ValueError`, `WrongType` `TypeError`, every other
/// error `RuntimeError`.
pub(crate) fn to_py_err(e: ClientError) -> PyErr {
    match e {
        ClientError::InvalidArgument(m) => PyValueError::new_err(m),
        ClientError::WrongType(m) => PyTypeError::new_err(m),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// The error argument of a completion: daily-python passes the message as a string.
pub(crate) fn completion_error(py: Python<'_>, e: &ClientError) -> Py<PyAny> {
    e.to_string().into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|_| py.None())
}

/// Set by `Daily._inject_panic()` (tests only): the next guarded call panics inside its guard.
static INJECT_PANIC: AtomicBool = AtomicBool::new(false);

pub(crate) fn inject_panic() {
    INJECT_PANIC.store(true, Ordering::SeqCst);
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Runs the body of a method called from Python. A panic (a bug of ours, never a user error)
/// becomes `RuntimeError("internal error in daily: ...")`: PyO3 would raise `PanicException`,
/// which derives from `BaseException`, so `except Exception` would not catch it. Every
/// `#[pymethods]` function that does more than return a field runs its body through this.
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(|| {
        if INJECT_PANIC.swap(false, Ordering::SeqCst) {
            panic!("injected panic (Daily._inject_panic)");
        }
        f()
    })) {
        Ok(r) => r,
        Err(p) => Err(PyRuntimeError::new_err(format!("internal error in daily (please report it): {}", panic_message(&*p)))),
    }
}

/// Runs `f` on a dispatcher thread; a panic is logged instead of ending the thread (which
/// would drop every callback queued behind it).
pub(crate) fn guard_job(f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        tracing::error!("internal error in a daily dispatcher job: {}", panic_message(&*p));
    }
}

/// A callable argument (`completion`, `callback`): anything else raises `TypeError` at the
/// call (PyO3 names the argument), instead of failing later on a dispatcher thread.
pub(crate) struct Callback(pub(crate) Py<PyAny>);

impl<'a, 'py> FromPyObject<'a, 'py> for Callback {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> Result<Self, Self::Error> {
        if !obj.is_callable() {
            let t = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            return Err(PyTypeError::new_err(format!("expected a callable or None, got {t}")));
        }
        Ok(Callback(obj.to_owned().unbind()))
    }
}

/// `Option<Callback>` → the `Option<Py<PyAny>>` the dispatch code takes.
pub(crate) fn cb(c: Option<Callback>) -> Option<Py<PyAny>> {
    c.map(|c| c.0)
}

#[cfg(test)]
mod tests {
    /// Every `#[pymethods]` function that can fail runs its body under [`super::guard`], so a
    /// panic in it reaches Python as `RuntimeError` (`tests/test_careless.py` checks a list of
    /// them at run time; this checks that no method added later forgets).
    #[test]
    fn every_fallible_method_is_guarded() {
        // Every source file of the module, so a file added later is checked too.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("src dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).expect("readable source"))
            })
            .collect();
        files.sort();
        assert!(files.iter().any(|(f, _)| f == "client.rs"), "found the sources in {dir:?}");
        let mut unguarded = Vec::new();
        let mut checked = 0;
        for (file, src) in &files {
            let lines: Vec<&str> = src.lines().collect();
            let mut in_methods = false;
            let mut i = 0;
            while i < lines.len() {
                let l = lines[i];
                if l.starts_with("#[pymethods]") {
                    in_methods = true;
                } else if in_methods && l.starts_with('}') {
                    in_methods = false;
                }
                if in_methods && (l.starts_with("    fn ") || l.starts_with("    pub(crate) fn ")) {
                    let mut sig = String::from(l);
                    // One-line bodies (`fn on_error(&self, ..) {}`) end with `}`.
                    while !lines[i].trim_end().ends_with('{') && !lines[i].trim_end().ends_with('}') && i + 1 < lines.len() {
                        i += 1;
                        sig.push_str(lines[i]);
                    }
                    if sig.contains("-> PyResult") {
                        checked += 1;
                        // The body guards itself, or hands everything to a helper that does
                        // (`custom_track` runs its body under `guard`).
                        let delegated = ["self.custom_track("];
                        if !lines
                            .get(i + 1)
                            .is_some_and(|b| b.contains("guard(") || delegated.iter().any(|d| b.contains(d)))
                        {
                            unguarded.push(format!("{file}: {}", l.trim()));
                        }
                    }
                }
                i += 1;
            }
        }
        assert!(checked > 60, "the scan found only {checked} methods: has the layout changed?");
        assert!(unguarded.is_empty(), "methods without guard(): {unguarded:#?}");
    }
}

/// A sound-device error as Python sees it: `ValueError` for a device name that does not exist
/// (the message lists the names there are), the client's mapping for client errors, and
/// `RuntimeError` when the sound system cannot open or run the device.
pub(crate) fn sound_to_py_err(e: daily_sound::SoundError) -> PyErr {
    use daily_sound::SoundError;
    match e {
        SoundError::NoDevice { .. } => PyValueError::new_err(e.to_string()),
        SoundError::Client(c) => to_py_err(c),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}
