//! The process-wide engine: one tokio runtime for network work (sized by
//! `Daily.init(worker_threads=...)`), one media clock and one source service thread, shared by
//! every client in the process.

use crate::ClientError;
use crate::clock::MediaClock;
use crate::source::SourceService;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub(crate) struct EngineInner {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) clock: Arc<MediaClock>,
    pub(crate) service: Arc<SourceService>,
    service_thread: Mutex<Option<JoinHandle<()>>>,
}

/// Handle to the shared engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine(Arc<EngineInner>);

impl Engine {
    /// Starts an engine with `worker_threads` network threads (at least 1).
    pub fn start(worker_threads: usize) -> Result<Engine, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("daily-net")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let clock = Arc::new(MediaClock::start().map_err(|e| ClientError::Io(e.to_string()))?);
        let (service, t) = SourceService::start().map_err(|e| ClientError::Io(e.to_string()))?;
        Ok(Engine(Arc::new(EngineInner { runtime, clock, service, service_thread: Mutex::new(Some(t)) })))
    }

    pub(crate) fn inner(&self) -> Arc<EngineInner> {
        self.0.clone()
    }

    /// Microseconds on the media clock's timeline.
    pub fn now_us(&self) -> u64 {
        self.0.clock.now_us()
    }

    /// Stops the clock and the service thread. Network tasks end when the runtime drops
    /// (after the last handle goes away).
    pub fn shutdown(&self) {
        self.0.service.shutdown();
        if let Some(t) = self.0.service_thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.service.shutdown();
        if let Some(t) = self.service_thread.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        self.clock.stop();
    }
}
