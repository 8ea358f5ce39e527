//! The media clock: one thread per process that ticks every 10 ms and drives every audio node
//! (custom sources, receive pipelines, renderers) of every client.
//!
//! Nodes are owned by the clock thread. Other threads add and remove them through a command
//! channel that the clock drains at the start of each tick, so a tick never takes a lock that
//! another thread could hold, and Python is never called from here.
//!
//! A tick has two phases. Producers (sources, receive pipelines) run first; receive pipelines add
//! their decoded 48 kHz audio to the tick's *speaker bus*. Then the selected speaker device, if
//! any, takes the bus: the mix of every remote track of every client in the process, as a
//! system speaker would play it. Work that may allocate or call back into the application
//! (completions, renderer callbacks) is handed to the service thread through a wait-free ring
//! ([`Tick::service`]).

use daily_media::FRAME_10MS_48K;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Length of one clock tick.
pub const TICK: Duration = Duration::from_millis(10);

/// What a node sees of the current tick.
pub struct Tick<'a> {
    /// Microseconds on the clock's monotonic timeline.
    pub now_us: u64,
    /// The speaker bus: 10 ms of mono 48 kHz audio, summed in i32 by producers, read by the
    /// speaker in the second phase.
    pub bus: &'a mut [i32; FRAME_10MS_48K],
    /// Whether any producer added to the bus this tick.
    pub bus_used: &'a mut bool,
    service: &'a mut ServiceQueue,
}

impl Tick<'_> {
    /// Asks the service thread to run `job` soon. Wait-free, no allocation: the clock owns the
    /// producer end of the service ring. If the ring is full the request is dropped and the
    /// node asks again on its next tick.
    pub fn service(&mut self, job: Weak<dyn ServiceJob>) {
        if self.service.ring.push(job).is_ok() {
            self.service.pending = true;
        }
    }

    /// Adds 10 ms of 48 kHz audio (mono, or interleaved stereo which is averaged) to the
    /// speaker bus.
    pub fn add_to_bus(&mut self, pcm48: &[i16]) {
        if pcm48.len() == 2 * FRAME_10MS_48K {
            for (b, s) in self.bus.iter_mut().zip(pcm48.chunks_exact(2)) {
                *b += (i32::from(s[0]) + i32::from(s[1])) / 2;
            }
        } else {
            for (b, s) in self.bus.iter_mut().zip(pcm48) {
                *b += i32::from(*s);
            }
        }
        *self.bus_used = true;
    }
}

/// Work run off the clock thread by the service thread (completions, renderer callbacks).
pub trait ServiceJob: Send + Sync {
    /// Runs on the service thread; may allocate and call into the application.
    fn service(&self);
}

/// Which half of a tick a node runs in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Phase {
    /// Sources and receive pipelines: run first, may feed the speaker bus.
    Produce,
    /// The speaker device: runs after every producer.
    Consume,
}

/// Something the clock drives every 10 ms.
pub trait ClockNode: Send {
    /// One tick.
    fn tick(&mut self, tick: &mut Tick<'_>);
    /// Returns `false` once the node should be dropped.
    fn alive(&self) -> bool {
        true
    }
    /// The phase the node runs in.
    fn phase(&self) -> Phase {
        Phase::Produce
    }
}

/// Commands for a node, executed on the clock thread.
pub type NodeCommand = Box<dyn FnOnce(&mut dyn std::any::Any) + Send>;

/// Identifies a node registered with the clock.
pub type NodeId = u64;

enum Cmd {
    Add(NodeId, Box<dyn AnyNode>),
    Remove(NodeId),
    To(NodeId, NodeCommand),
    Stop,
}

/// [`ClockNode`] that can also be reached as `Any` so commands can downcast it.
pub trait AnyNode: ClockNode {
    /// `self` as `Any`.
    fn as_any(&mut self) -> &mut dyn std::any::Any;
}
impl<T: ClockNode + 'static> AnyNode for T {
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// Capacity of the clock → service ring (requests; one per node per tick at most).
const SERVICE_RING: usize = 4096;

struct ServiceQueue {
    ring: rtrb::Producer<Weak<dyn ServiceJob>>,
    /// Something was pushed since the last wake-up.
    pending: bool,
}

/// Handle to the running clock. Dropping it stops and joins the clock and service threads.
pub struct MediaClock {
    tx: mpsc::Sender<Cmd>,
    next_id: AtomicU64,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    epoch: Instant,
    stopped: Arc<AtomicBool>,
    service_wake: Arc<AtomicU32>,
}

impl MediaClock {
    /// Starts the clock thread.
    pub fn start() -> std::io::Result<MediaClock> {
        let (tx, rx) = mpsc::channel();
        let epoch = Instant::now();
        let stopped = Arc::new(AtomicBool::new(false));
        let service_wake = Arc::new(AtomicU32::new(0));
        let (sp, sc) = rtrb::RingBuffer::<Weak<dyn ServiceJob>>::new(SERVICE_RING);
        let (s2, w2) = (stopped.clone(), service_wake.clone());
        let clock = std::thread::Builder::new()
            .name("daily-media-clock".into())
            .spawn(move || run(rx, epoch, ServiceQueue { ring: sp, pending: false }, w2, s2))?;
        let (s3, w3) = (stopped.clone(), service_wake.clone());
        let service = std::thread::Builder::new()
            .name("daily-media-service".into())
            .spawn(move || run_service(sc, w3, s3))?;
        Ok(MediaClock {
            tx,
            next_id: AtomicU64::new(1),
            threads: std::sync::Mutex::new(vec![clock, service]),
            epoch,
            stopped,
            service_wake,
        })
    }

    /// Microseconds since the clock started (same timeline as `tick(now_us)`).
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Registers a node; it is ticked from the next tick on.
    pub fn add<N: ClockNode + 'static>(&self, node: N) -> NodeId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Cmd::Add(id, Box::new(node)));
        id
    }

    /// Removes (drops) a node.
    pub fn remove(&self, id: NodeId) {
        let _ = self.tx.send(Cmd::Remove(id));
    }

    /// Runs `f` on the clock thread with the node `id` downcast to `N` (ignored if gone or
    /// of another type).
    pub fn with_node<N: 'static>(&self, id: NodeId, f: impl FnOnce(&mut N) + Send + 'static) {
        let cmd: NodeCommand = Box::new(move |any: &mut dyn std::any::Any| {
            if let Some(n) = any.downcast_mut::<N>() {
                f(n)
            }
        });
        let _ = self.tx.send(Cmd::To(id, cmd));
    }

    /// Whether the clock thread is gone.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops both threads and drops every node.
    pub fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() == me {
                continue;
            }
            if t.thread().name() == Some("daily-media-service") {
                // The clock has stopped by now (joined first); wake the service so it sees it.
                self.service_wake.fetch_add(1, Ordering::AcqRel);
                atomic_wait::wake_all(&*self.service_wake);
            }
            let _ = t.join();
        }
    }
}

impl Drop for MediaClock {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pushes all of `pcm` into `ring`, or nothing when there is not room for all of it (the
/// caller counts a drop). Wait-free, no allocation.
pub(crate) fn push_all(ring: &mut rtrb::Producer<i16>, pcm: &[i16]) -> bool {
    match ring.write_chunk_uninit(pcm.len()) {
        Ok(chunk) => {
            chunk.fill_from_iter(pcm.iter().copied());
            true
        }
        Err(_) => false,
    }
}

thread_local! {
    static ON_CLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is the media clock (for allocation tests: the audio path must
/// not allocate).
#[doc(hidden)]
pub fn on_clock_thread() -> bool {
    ON_CLOCK.with(|c| c.get())
}

fn run(
    rx: mpsc::Receiver<Cmd>,
    epoch: Instant,
    mut service: ServiceQueue,
    service_wake: Arc<AtomicU32>,
    stopped: Arc<AtomicBool>,
) {
    ON_CLOCK.with(|c| c.set(true));
    let mut nodes: Vec<(NodeId, Box<dyn AnyNode>)> = Vec::with_capacity(1024);
    let mut bus = [0i32; FRAME_10MS_48K];
    let mut next = Instant::now();
    'outer: loop {
        // Commands first, so a node added before this tick is ticked in it.
        loop {
            match rx.try_recv() {
                Ok(Cmd::Add(id, n)) => {
                    // Keep producers before consumers so the speaker hears this tick's mix.
                    let at = nodes.iter().position(|(_, m)| m.phase() > n.phase()).unwrap_or(nodes.len());
                    nodes.insert(at, (id, n));
                }
                Ok(Cmd::Remove(id)) => nodes.retain(|(i, _)| *i != id),
                Ok(Cmd::To(id, f)) => {
                    if let Some((_, n)) = nodes.iter_mut().find(|(i, _)| *i == id) {
                        f(n.as_any());
                    }
                }
                Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => break 'outer,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let now_us = epoch.elapsed().as_micros() as u64;
        bus.fill(0);
        let mut bus_used = false;
        {
            let mut tick = Tick { now_us, bus: &mut bus, bus_used: &mut bus_used, service: &mut service };
            for (_, n) in nodes.iter_mut() {
                n.tick(&mut tick);
            }
        }
        if std::mem::take(&mut service.pending) {
            service_wake.fetch_add(1, Ordering::AcqRel);
            atomic_wait::wake_all(&*service_wake);
        }
        nodes.retain(|(_, n)| n.alive());

        // Absolute schedule: ticks do not drift. After a long stall (suspend, debugger) we
        // resynchronise instead of bursting through the missed ticks.
        next += TICK;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_millis(200) {
            next = now;
        }
    }
    drop(nodes);
    stopped.store(true, Ordering::Release);
    service_wake.fetch_add(1, Ordering::AcqRel);
    atomic_wait::wake_all(&*service_wake);
}

/// The service thread: runs the jobs the clock asked for, in order. Completions and renderer
/// callbacks of every client in the process go through here, so the clock never allocates or
/// waits on application code.
fn run_service(mut ring: rtrb::Consumer<Weak<dyn ServiceJob>>, wake: Arc<AtomicU32>, stopped: Arc<AtomicBool>) {
    loop {
        let seen = wake.load(Ordering::Acquire);
        while let Ok(job) = ring.pop() {
            if let Some(j) = job.upgrade() {
                j.service();
            }
        }
        if stopped.load(Ordering::Acquire) {
            return;
        }
        atomic_wait::wait(&wake, seen);
    }
}
