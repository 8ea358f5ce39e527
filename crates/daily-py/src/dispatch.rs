//! Dispatcher threads: the threads that call Python (events, completions, audio renderer
//! callbacks), the event gate that orders a client's completions behind its events, and the
//! routing of renderer callbacks. See the crate docs.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

enum Job {
    Call(Box<dyn FnOnce(Python<'_>) + Send>),
    Stop,
}

/// Most jobs a dispatcher runs under one GIL attach.
const DISPATCH_BATCH: usize = 64;

pub(crate) struct Dispatcher {
    /// The sender, `None` once stopped: a job posted after `stop` is handed back to the
    /// poster instead of being queued behind the `Stop` and silently dropped.
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A job for a dispatcher thread.
pub(crate) type JobFn = Box<dyn FnOnce(Python<'_>) + Send>;

/// Keeps this thread's Python thread state alive between attaches. Without it every
/// `Python::try_attach` on a thread Python did not create makes a new `PyThreadState` and
/// deletes it again on release (`PyGILState_Ensure` / `PyGILState_Release` with the count going
/// 1 -> 0): with 50 bot pairs that was 7 % of the process's CPU (thread-state allocation plus
/// the kernel's mmap/munmap work), 50 times a second per renderer. One extra
/// `PyGILState_Ensure` held for the thread's life keeps the count at 1 or more, so later
/// attaches only take and drop the GIL (CPython's documented use of the GILState API).
struct ThreadStateKeeper(Option<pyo3::ffi::PyGILState_STATE>);

impl ThreadStateKeeper {
    fn new() -> Self {
        // SAFETY: called with the GIL held (inside try_attach); paired with the release in Drop.
        ThreadStateKeeper(Python::try_attach(|_py| unsafe { pyo3::ffi::PyGILState_Ensure() }))
    }
}

impl Drop for ThreadStateKeeper {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            // If the interpreter is finalising, try_attach declines and the thread state is
            // left to the interpreter's own cleanup.
            // SAFETY: the state came from this thread's PyGILState_Ensure above; GIL held here.
            let _ = Python::try_attach(|_py| unsafe { pyo3::ffi::PyGILState_Release(state) });
        }
    }
}

impl Dispatcher {
    pub(crate) fn start(name: String) -> PyResult<Arc<Dispatcher>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let keep = ThreadStateKeeper::new();
                let mut stop = false;
                while !stop {
                    let Ok(first) = rx.recv() else { break };
                    let Job::Call(first) = first else { break };
                    // One GIL attach for this job and those queued behind it (renderer
                    // callbacks arrive in bursts, one per tick): each attach of a contended
                    // GIL costs a hand-off between threads. Bounded so a flood cannot keep
                    // the GIL from other threads between Python calls for long. If the
                    // interpreter is finalising, the job is dropped.
                    let _ = Python::try_attach(|py| {
                        crate::errors::guard_job(|| first(py));
                        for _ in 1..DISPATCH_BATCH {
                            match rx.try_recv() {
                                Ok(Job::Call(f)) => crate::errors::guard_job(|| f(py)),
                                Ok(Job::Stop) => {
                                    stop = true;
                                    return;
                                }
                                Err(_) => return,
                            }
                        }
                    });
                }
                drop(keep);
            })
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok(Arc::new(Dispatcher { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(t)) }))
    }

    /// Queues `f`; after `stop`, hands it back.
    pub(crate) fn try_post(&self, f: JobFn) -> Result<(), JobFn> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref() {
            Some(tx) => tx.send(Job::Call(f)).map_err(|e| match e.0 {
                Job::Call(f) => f,
                Job::Stop => Box::new(|_: Python<'_>| {}) as JobFn,
            }),
            None => Err(f),
        }
    }

    /// Queues `f`; after `stop`, `f` is dropped (events and renderer callbacks of a stopped
    /// client). Completions use [`Completer::post_completion`], which never drops one.
    pub(crate) fn post(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let _ = self.try_post(Box::new(f));
    }

    /// Stops taking jobs; those queued still run.
    fn close(&self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(Job::Stop);
        }
    }

    pub(crate) fn thread_id(&self) -> Option<std::thread::ThreadId> {
        self.thread.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|t| t.thread().id())
    }

    /// Stops after the queued jobs ran; joins unless called from the dispatcher itself.
    pub(crate) fn stop(&self, py: Python<'_>) {
        self.close();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            if t.thread().id() == std::thread::current().id() {
                return;
            }
            py.detach(|| {
                let _ = t.join();
            });
        }
    }
}

/// How far a client's events thread got: events are numbered as they are posted and marked
/// when their handler starts.
#[derive(Default)]
struct EventGate {
    posted: std::sync::atomic::AtomicU64,
    started: Mutex<u64>,
    cv: std::sync::Condvar,
}

/// Longest a completion waits for the events posted before it to start. Reached only when
/// an earlier handler blocks for that long (for instance waiting, from another thread, for
/// this very completion); the completion then fires rather than deadlock.
const EVENT_GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl EventGate {
    fn mark_started(&self, seq: u64) {
        let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if seq > *s {
            *s = seq;
        }
        self.cv.notify_all();
    }

    fn wait_started(&self, seq: u64) {
        let s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.cv.wait_timeout_while(s, EVENT_GATE_WAIT, |s| *s < seq);
    }
}

/// A client's two dispatchers (events; completions and renderers) and the gate that orders
/// them. See the module docs.
pub(crate) struct Completer {
    events: Arc<Dispatcher>,
    completions: Arc<Dispatcher>,
    gate: Arc<EventGate>,
    /// The process-wide renderer dispatcher (see [`Completer::post_audio`]).
    renderers: Arc<Dispatcher>,
    render: Arc<RenderRoute>,
}

/// Where a client's renderer callbacks run: the shared renderer thread until one of them
/// blocks, then the client's own completions thread.
#[derive(Default)]
struct RenderRoute {
    /// A callback of this client took longer than [`RENDER_ISOLATE_AFTER`].
    isolated: AtomicBool,
    /// This client's callbacks queued on the shared thread and not yet run or forwarded.
    on_shared: AtomicUsize,
    /// `release()` ran: callbacks still queued are dropped, not called.
    released: AtomicBool,
}

/// A renderer callback running longer than this (wall time) moves its client off the shared
/// renderer thread for good, so that it cannot delay other clients' callbacks again. Renderer
/// callbacks come every 10-20 ms; 100 ms is far beyond a callback that hands audio on (as
/// pipecat's does) even with the GIL contended.
const RENDER_ISOLATE_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

impl Completer {
    pub(crate) fn start(renderers: Arc<Dispatcher>) -> PyResult<Arc<Completer>> {
        Ok(Arc::new(Completer {
            events: Dispatcher::start("daily-events".into())?,
            completions: Dispatcher::start("daily-client-completions".into())?,
            gate: Arc::new(EventGate::default()),
            renderers,
            render: Arc::new(RenderRoute::default()),
        }))
    }

    pub(crate) fn post_event(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let seq = self.gate.posted.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
        let gate = self.gate.clone();
        self.events.post(move |py| {
            gate.mark_started(seq);
            f(py)
        });
    }

    /// Whether the caller is this client's events thread (a call made from a handler).
    pub(crate) fn on_events_thread(&self) -> bool {
        self.events.thread_id() == Some(std::thread::current().id())
    }

    /// Posts a completion behind every event posted so far. `from_handler`: the call was
    /// made inside an event handler, whose thread cannot dispatch the events the call caused
    /// until the handler returns, so the completion does not wait for them.
    pub(crate) fn post_completion(&self, from_handler: bool, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let barrier = self.gate.posted.load(std::sync::atomic::Ordering::Acquire);
        let gate = self.gate.clone();
        let job: JobFn = Box::new(move |py| {
            if !from_handler {
                py.detach(|| gate.wait_started(barrier));
            }
            f(py)
        });
        if let Err(job) = self.completions.try_post(job) {
            // This client was released (or Daily deinitialised): its threads are gone, but a
            // completion still fires exactly once.
            post_anywhere(job);
        }
    }

    /// Video renderer callbacks: on the client's completions thread, in order, never on the
    /// shared renderer thread (a vision bot's callback may take milliseconds per frame, which
    /// must not delay other clients' audio). Dropped once the client is released.
    pub(crate) fn post_video(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        if self.render.released.load(Ordering::Acquire) {
            return;
        }
        let route = self.render.clone();
        self.completions.post(move |py| {
            if !route.released.load(Ordering::Acquire) {
                f(py)
            }
        });
    }

    /// Renderer callbacks, never behind a blocked event handler. Every client's run on one
    /// shared thread, which takes the GIL once for all the callbacks due in a tick: with a
    /// thread per client (a wake-up and a GIL hand-off per client every 20 ms) those threads
    /// took 10 % of the CPU of 50 bot pairs. A client whose callback blocks ([`RENDER_ISOLATE_AFTER`]) moves to its
    /// own completions thread; its callbacks keep their order (those already queued on the
    /// shared thread are forwarded, and new ones follow them there until none is left).
    /// Called only from the engine's service thread.
    pub(crate) fn post_audio(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        let route = &self.render;
        if route.released.load(Ordering::Acquire) {
            return;
        }
        if route.isolated.load(Ordering::Acquire) && route.on_shared.load(Ordering::Acquire) == 0 {
            self.completions.post(f);
            return;
        }
        route.on_shared.fetch_add(1, Ordering::AcqRel);
        let (route, own) = (self.render.clone(), self.completions.clone());
        self.renderers.post(move |py| {
            if route.released.load(Ordering::Acquire) {
                // Dropped: release() ran while it was queued.
            } else if route.isolated.load(Ordering::Acquire) {
                own.post(f);
            } else {
                let t0 = std::time::Instant::now();
                f(py);
                if t0.elapsed() > RENDER_ISOLATE_AFTER {
                    route.isolated.store(true, Ordering::Release);
                }
            }
            route.on_shared.fetch_sub(1, Ordering::AcqRel);
        });
    }

    pub(crate) fn stop(&self, py: Python<'_>) {
        self.render.released.store(true, Ordering::Release);
        self.events.stop(py);
        self.completions.stop(py);
    }

    pub(crate) fn stop_nowait(&self) {
        self.render.released.store(true, Ordering::Release);
        self.events.close();
        self.completions.close();
    }
}

/// Runs a job on the process's completions dispatcher, or, when there is none (after
/// `Daily.deinit()`), on a short-lived thread of its own. Only for completions of clients
/// whose own threads are gone: rare, and each must still fire once.
pub(crate) fn post_anywhere(job: JobFn) {
    let job = match crate::process::global() {
        Ok(g) => match g.completions.try_post(job) {
            Ok(()) => return,
            Err(job) => job,
        },
        Err(_) => job,
    };
    let _ = std::thread::Builder::new().name("daily-late-completion".into()).spawn(move || {
        let _ = Python::try_attach(|py| crate::errors::guard_job(|| job(py)));
    });
}

/// The error a completion gets when its client went away before the call finished.
pub(crate) const RELEASED: &str = "the call client was released before this call completed";

/// A completion the application passed: fires exactly once, with the result when the core
/// reports it, or with an error (`RELEASED`) if the core drops it unreported (a client freed
/// while a call was pending). daily-python's contract: every completion fires exactly once.
pub(crate) struct Pending {
    cb: Option<Py<PyAny>>,
    disp: Arc<Completer>,
    from_handler: bool,
    /// `completion(data, error)` rather than `completion(error)`.
    two_args: bool,
}

impl Pending {
    pub(crate) fn new(disp: Arc<Completer>, cb: Option<Py<PyAny>>, two_args: bool) -> Pending {
        let from_handler = disp.on_events_thread();
        Pending { cb, disp, from_handler, two_args }
    }

    /// Calls `f(py, completion)` on the client's completions thread, after the events posted
    /// before it (see [`Completer::post_completion`]).
    pub(crate) fn fire(mut self, f: impl FnOnce(Python<'_>, &Py<PyAny>) + Send + 'static) {
        if let Some(cb) = self.cb.take() {
            self.disp.post_completion(self.from_handler, move |py| f(py, &cb));
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(cb) = self.cb.take() {
            let two = self.two_args;
            self.disp.post_completion(self.from_handler, move |py| {
                if two {
                    call_reporting(py, &cb, (py.None(), RELEASED));
                } else {
                    call_reporting(py, &cb, (RELEASED,));
                }
            });
        }
    }
}

/// Calls `f(args)`; an exception goes to `sys.unraisablehook` and the SDK carries on.
pub(crate) fn call_reporting<'py>(py: Python<'py>, f: &Py<PyAny>, args: impl pyo3::call::PyCallArgs<'py>) {
    if let Err(e) = f.call1(py, args) {
        e.write_unraisable(py, Some(f.bind(py)));
    }
}

/// A core completion that calls `completion(error)` on the client's completions thread,
/// after the events emitted before it (see [`Completer`]).
pub(crate) fn done_one(disp: Arc<Completer>, completion: Option<Py<PyAny>>) -> daily_client::Done {
    let pending = Pending::new(disp, completion, false);
    Box::new(move |r| {
        pending.fire(move |py, cb| {
            let err = match r {
                Ok(()) => py.None(),
                Err(e) => crate::errors::completion_error(py, &e),
            };
            call_reporting(py, cb, (err,));
        })
    })
}
