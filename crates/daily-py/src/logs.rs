//! Logs of the Rust core (ours and webrtc-rs's `log` records, bridged) forwarded to Python's
//! `logging`, under loggers named `daily.<crate>`, at or above `Daily.set_log_level`.
//!
//! Events are formatted where they happen and handed over a bounded channel (dropped when
//! full: a log storm must not stall the network or audio threads) to one thread that takes the
//! GIL and calls `logging.getLogger(name).log(level, message)`.

use pyo3::prelude::*;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// 0 = Off, 1 = Error ... 5 = Trace (daily-python's LogLevel values).
static LEVEL: AtomicU8 = AtomicU8::new(0);
static TX: OnceLock<SyncSender<(u8, String, String)>> = OnceLock::new();

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn log_filter(level: u8) -> log::LevelFilter {
    match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.0, "{value:?}");
            }
            // Fields the `log` bridge adds; the target is used for the logger name.
            n if n.starts_with("log.") => {}
            n => {
                let _ = write!(self.0, " {n}={value:?}");
            }
        }
    }
}

struct PyLogLayer;

impl<S: Subscriber> Layer<S> for PyLogLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The level changes at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        rank(meta.level()) <= LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        use tracing_log::NormalizeEvent;
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let level = rank(meta.level());
        if level > LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let mut msg = String::new();
        event.record(&mut Message(&mut msg));
        let top = meta.target().split("::").next().unwrap_or("core").replace('-', "_");
        if let Some(tx) = TX.get() {
            let _ = tx.try_send((level, format!("daily.{top}"), msg));
        }
    }
}

/// Installs the forwarding once per process (a host that installed its own global tracing
/// subscriber keeps it) and sets the level.
pub(crate) fn set_level(level: u8) {
    LEVEL.store(level.min(5), Ordering::Relaxed);
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let (tx, rx) = sync_channel::<(u8, String, String)>(4096);
        if TX.set(tx).is_err() {
            return;
        }
        let spawned = std::thread::Builder::new().name("daily-log".into()).spawn(move || {
            while let Ok((level, name, msg)) = rx.recv() {
                let _ = Python::try_attach(|py| {
                    let py_level = match level {
                        1 => 40,
                        2 => 30,
                        3 => 20,
                        4 => 10,
                        _ => 5,
                    };
                    let r = py
                        .import("logging")
                        .and_then(|l| l.call_method1("getLogger", (name,)))
                        .and_then(|lg| lg.call_method1("log", (py_level, msg)));
                    if let Err(e) = r {
                        e.write_unraisable(py, None);
                    }
                });
            }
        });
        if spawned.is_err() {
            return;
        }
        let subscriber = tracing_subscriber::registry().with(PyLogLayer);
        if tracing::subscriber::set_global_default(subscriber).is_ok() {
            let _ = tracing_log::LogTracer::builder().with_max_level(log::LevelFilter::Trace).init();
        }
    });
    // `log` macros (webrtc-rs) check this first, so disabled levels cost one load.
    log::set_max_level(log_filter(level));
}
