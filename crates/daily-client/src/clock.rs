//! The media clock: one thread per process that ticks every 10 ms and drives every audio node
//! (custom sources, receive pipelines, renderers) of every client.
//!
//! Nodes are owned by the clock thread. Other threads add and remove them through a command
//! channel that the clock drains at the start of each tick, so a tick never takes a lock that
//! another thread could hold, and Python is never called from here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Length of one clock tick.
pub const TICK: Duration = Duration::from_millis(10);

/// Something the clock drives every 10 ms.
pub trait ClockNode: Send {
    /// One tick. `now_us` is microseconds on the clock's monotonic timeline.
    fn tick(&mut self, now_us: u64);
    /// Returns `false` once the node should be dropped.
    fn alive(&self) -> bool {
        true
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

/// Handle to the running clock. Dropping it stops and joins the thread.
pub struct MediaClock {
    tx: mpsc::Sender<Cmd>,
    next_id: AtomicU64,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    epoch: Instant,
    stopped: Arc<AtomicBool>,
}

impl MediaClock {
    /// Starts the clock thread.
    pub fn start() -> std::io::Result<MediaClock> {
        let (tx, rx) = mpsc::channel();
        let epoch = Instant::now();
        let stopped = Arc::new(AtomicBool::new(false));
        let s2 = stopped.clone();
        let thread = std::thread::Builder::new()
            .name("daily-media-clock".into())
            .spawn(move || run(rx, epoch, s2))?;
        Ok(MediaClock { tx, next_id: AtomicU64::new(1), thread: std::sync::Mutex::new(Some(thread)), epoch, stopped })
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

    /// Stops the thread and drops every node.
    pub fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop);
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

impl Drop for MediaClock {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(rx: mpsc::Receiver<Cmd>, epoch: Instant, stopped: Arc<AtomicBool>) {
    let mut nodes: Vec<(NodeId, Box<dyn AnyNode>)> = Vec::with_capacity(256);
    let mut next = Instant::now();
    'outer: loop {
        // Commands first, so a node added before this tick is ticked in it.
        loop {
            match rx.try_recv() {
                Ok(Cmd::Add(id, n)) => nodes.push((id, n)),
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
        for (_, n) in nodes.iter_mut() {
            n.tick(now_us);
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
}
