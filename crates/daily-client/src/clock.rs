//! The media clock: a few threads per process (its *lanes*, one per core by default) that tick
//! every 10 ms and drive every audio node (custom sources, receive pipelines, renderers) of every
//! client. Each node lives on one lane for its whole life; nodes are spread over the lanes round
//! robin, so the Opus encoding and decoding of hundreds of bots can use every core (one thread
//! can use one core at most; at 20 bot pairs it already took 0.7 of a core, benches/README.md).
//!
//! Nodes are owned by their lane's thread. Other threads add and remove them through a command
//! channel per lane that the lane drains at the start of each tick, so a tick never takes a
//! lock that another thread could hold, and Python is never called from here.
//!
//! A tick has two phases. Producers (sources, receive pipelines) run first; receive pipelines add
//! their decoded 48 kHz audio to the tick's *speaker bus*. Then the selected speaker device, if
//! any, takes the bus: the mix of every remote track of every client in the process, as a
//! system speaker would play it. Speaker devices (consumers) always live on lane 0; while one
//! exists, the other lanes hand their bus to lane 0 through a wait-free ring each tick (so their
//! share of the mix may reach the speaker one tick, 10 ms, later). Work that may allocate or call
//! back into the application (completions, renderer callbacks) is handed to the service thread
//! through a wait-free ring per lane ([`Tick::service`]).

use daily_media::FRAME_10MS_48K;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
    /// This tick's number: tick `n` is scheduled at the clock's epoch + `n` × 10 ms on every
    /// lane, so all lanes share one numbering (recording places audio by it, `record/`). A lane
    /// that fell more than 200 ms behind skips the missed numbers rather than bursting.
    pub number: u64,
    /// The speaker bus: 10 ms of mono 48 kHz audio, summed in i32 by producers, read by the
    /// speaker in the second phase.
    pub bus: &'a mut [i32; FRAME_10MS_48K],
    /// Whether any producer added to the bus this tick.
    pub bus_used: &'a mut bool,
    /// Whether a speaker device listens to the bus (otherwise adding to it is skipped).
    bus_wanted: bool,
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
        if !self.bus_wanted {
            return;
        }
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

/// Capacity of each lane → service ring (requests; one per node per tick at most).
const SERVICE_RING: usize = 4096;

/// Speaker-bus frames a lane may have waiting for lane 0 (older ones are dropped).
const BUS_RING_FRAMES: usize = 4;

/// Most lanes, whatever the core count.
const MAX_LANES: usize = 8;

struct ServiceQueue {
    ring: rtrb::Producer<Weak<dyn ServiceJob>>,
    /// Something was pushed since the last wake-up.
    pending: bool,
}

/// What every lane shares.
struct Shared {
    epoch: Instant,
    /// Set once every lane has stopped.
    stopped: AtomicBool,
    lanes_running: AtomicUsize,
    service_wake: AtomicU32,
    /// Lane 0 has a consumer (speaker device): producers feed the bus.
    bus_wanted: AtomicBool,
}

/// Handle to the running clock. Dropping it stops and joins the lane and service threads.
pub struct MediaClock {
    lanes: Vec<mpsc::Sender<Cmd>>,
    next: AtomicU64,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

/// Lanes for this machine: `DAILY_MEDIA_THREADS` if set (1..=8), else one per core, at most 8.
fn lane_count() -> usize {
    if let Some(n) = std::env::var("DAILY_MEDIA_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        return n.clamp(1, MAX_LANES);
    }
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_LANES)
}

impl MediaClock {
    /// Starts the clock with one lane per core (see [`lane_count`]) and the service thread.
    pub fn start() -> std::io::Result<MediaClock> {
        Self::with_lanes(lane_count())
    }

    /// Starts the clock with `lanes` lane threads (at least 1).
    pub fn with_lanes(lanes: usize) -> std::io::Result<MediaClock> {
        let lanes = lanes.clamp(1, MAX_LANES);
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            stopped: AtomicBool::new(false),
            lanes_running: AtomicUsize::new(lanes),
            service_wake: AtomicU32::new(0),
            bus_wanted: AtomicBool::new(false),
        });
        let mut txs = Vec::with_capacity(lanes);
        let mut services = Vec::with_capacity(lanes);
        let mut threads = Vec::with_capacity(lanes + 1);
        // Lanes 1.. hand their bus to lane 0 through these.
        let mut bus_in = Vec::with_capacity(lanes);
        let mut bus_out: Vec<Option<rtrb::Producer<i32>>> = vec![None];
        for _ in 1..lanes {
            let (p, c) = rtrb::RingBuffer::<i32>::new(BUS_RING_FRAMES * FRAME_10MS_48K);
            bus_out.push(Some(p));
            bus_in.push(c);
        }
        let mut bus_in = Some(bus_in);
        for (lane, bus_out) in bus_out.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let (sp, sc) = rtrb::RingBuffer::<Weak<dyn ServiceJob>>::new(SERVICE_RING);
            services.push(sc);
            let io = LaneIo {
                rx,
                service: ServiceQueue { ring: sp, pending: false },
                bus_out,
                bus_in: if lane == 0 { bus_in.take().unwrap_or_default() } else { Vec::new() },
            };
            let sh = shared.clone();
            let t = std::thread::Builder::new()
                .name(if lanes == 1 { "daily-media-clock".into() } else { format!("daily-media-clock-{lane}") })
                .spawn(move || run(io, sh));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Stop the lanes already running before reporting the failure.
                    for tx in &txs {
                        let _ = mpsc::Sender::send(tx, Cmd::Stop);
                    }
                    drop(tx);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
            txs.push(tx);
        }
        let sh = shared.clone();
        let service = std::thread::Builder::new()
            .name("daily-media-service".into())
            .spawn(move || run_service(services, sh));
        match service {
            Ok(t) => threads.push(t),
            Err(e) => {
                for tx in &txs {
                    let _ = tx.send(Cmd::Stop);
                }
                for t in threads {
                    let _ = t.join();
                }
                return Err(e);
            }
        }
        Ok(MediaClock { lanes: txs, next: AtomicU64::new(0), threads: std::sync::Mutex::new(threads), shared })
    }

    /// Number of lane threads.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Microseconds since the clock started (same timeline as `tick(now_us)`).
    pub fn now_us(&self) -> u64 {
        self.shared.epoch.elapsed().as_micros() as u64
    }

    /// The number of the tick whose 10 ms slot the wall clock is in now ([`Tick::number`]).
    pub fn tick_now(&self) -> u64 {
        (self.shared.epoch.elapsed().as_nanos() / TICK.as_nanos()) as u64
    }

    /// Registers a node; it is ticked from its lane's next tick on. Producers go to the lanes
    /// round robin, consumers (speaker devices) to lane 0. The id encodes the lane.
    pub fn add<N: ClockNode + 'static>(&self, node: N) -> NodeId {
        let k = self.lanes.len() as u64;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let lane = if node.phase() == Phase::Consume { 0 } else { n % k };
        let id = n * k + lane + k; // never 0
        let _ = self.lanes[lane as usize].send(Cmd::Add(id, Box::new(node)));
        id
    }

    fn lane_of(&self, id: NodeId) -> &mpsc::Sender<Cmd> {
        &self.lanes[(id % self.lanes.len() as u64) as usize]
    }

    /// Removes (drops) a node.
    pub fn remove(&self, id: NodeId) {
        let _ = self.lane_of(id).send(Cmd::Remove(id));
    }

    /// Runs `f` on the node's lane with the node `id` downcast to `N` (ignored if gone or of
    /// another type).
    pub fn with_node<N: 'static>(&self, id: NodeId, f: impl FnOnce(&mut N) + Send + 'static) {
        let cmd: NodeCommand = Box::new(move |any: &mut dyn std::any::Any| {
            if let Some(n) = any.downcast_mut::<N>() {
                f(n)
            }
        });
        let _ = self.lane_of(id).send(Cmd::To(id, cmd));
    }

    /// Whether the clock has stopped (every lane).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Stops every thread and drops every node.
    pub fn stop(&self) {
        for tx in &self.lanes {
            let _ = tx.send(Cmd::Stop);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() == me {
                continue;
            }
            if t.thread().name() == Some("daily-media-service") {
                // The lanes have stopped by now (joined first); wake the service so it sees it.
                self.shared.service_wake.fetch_add(1, Ordering::AcqRel);
                atomic_wait::wake_all(&self.shared.service_wake);
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

/// Whether the calling thread is a media clock lane (for allocation tests: the audio path must
/// not allocate).
#[doc(hidden)]
pub fn on_clock_thread() -> bool {
    ON_CLOCK.with(|c| c.get())
}

/// One lane's channels.
struct LaneIo {
    rx: mpsc::Receiver<Cmd>,
    service: ServiceQueue,
    /// Lanes 1..: where this lane's bus goes while a speaker listens.
    bus_out: Option<rtrb::Producer<i32>>,
    /// Lane 0: the other lanes' buses.
    bus_in: Vec<rtrb::Consumer<i32>>,
}

fn run(mut io: LaneIo, shared: Arc<Shared>) {
    ON_CLOCK.with(|c| c.set(true));
    let lane0 = io.bus_out.is_none();
    let mut nodes: Vec<(NodeId, Box<dyn AnyNode>)> = Vec::with_capacity(1024);
    let mut bus = [0i32; FRAME_10MS_48K];
    // Every lane ticks on the same grid (epoch + n × 10 ms), so tick numbers mean the same
    // instant on every lane.
    let mut number = (shared.epoch.elapsed().as_nanos() / TICK.as_nanos()) as u64 + 1;
    let mut next = shared.epoch + Duration::from_micros(number * 10_000);
    if let Some(d) = next.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
    'outer: loop {
        // Commands first, so a node added before this tick is ticked in it.
        loop {
            match io.rx.try_recv() {
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
        if lane0 {
            let wanted = nodes.last().is_some_and(|(_, n)| n.phase() == Phase::Consume);
            shared.bus_wanted.store(wanted, Ordering::Relaxed);
        }
        let bus_wanted = shared.bus_wanted.load(Ordering::Relaxed);
        let now_us = shared.epoch.elapsed().as_micros() as u64;
        bus.fill(0);
        let mut bus_used = false;
        {
            let mut tick = Tick { now_us, number, bus: &mut bus, bus_used: &mut bus_used, bus_wanted, service: &mut io.service };
            let split = nodes.iter().position(|(_, n)| n.phase() == Phase::Consume).unwrap_or(nodes.len());
            let (producers, consumers) = nodes.split_at_mut(split);
            for (_, n) in producers.iter_mut() {
                n.tick(&mut tick);
            }
            if !consumers.is_empty() {
                // The other lanes' share of the mix: one frame each, the newest two at most.
                for ring in io.bus_in.iter_mut() {
                    while ring.slots() > 2 * FRAME_10MS_48K {
                        if let Ok(c) = ring.read_chunk(FRAME_10MS_48K) {
                            c.commit_all();
                        }
                    }
                    if let Ok(c) = ring.read_chunk(FRAME_10MS_48K) {
                        let (a, b) = c.as_slices();
                        for (x, y) in tick.bus.iter_mut().zip(a.iter().chain(b)) {
                            *x += *y;
                        }
                        c.commit_all();
                        *tick.bus_used = true;
                    }
                }
            } else {
                for ring in io.bus_in.iter_mut() {
                    let n = ring.slots();
                    if let Ok(c) = ring.read_chunk(n) {
                        c.commit_all();
                    }
                }
            }
            for (_, n) in consumers.iter_mut() {
                n.tick(&mut tick);
            }
        }
        if bus_wanted && bus_used && let Some(out) = io.bus_out.as_mut() && let Ok(mut c) = out.write_chunk(FRAME_10MS_48K) {
            let (a, b) = c.as_mut_slices();
            let (ba, bb) = bus.split_at(a.len());
            a.copy_from_slice(ba);
            b.copy_from_slice(bb);
            c.commit_all();
        }
        if std::mem::take(&mut io.service.pending) {
            shared.service_wake.fetch_add(1, Ordering::AcqRel);
            atomic_wait::wake_all(&shared.service_wake);
        }
        nodes.retain(|(_, n)| n.alive());

        // Absolute schedule: ticks do not drift. After a long stall (suspend, debugger) we
        // resynchronise instead of bursting through the missed ticks.
        number += 1;
        next += TICK;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_millis(200) {
            number = (now.duration_since(shared.epoch).as_nanos() / TICK.as_nanos()) as u64;
            next = shared.epoch + Duration::from_micros(number * 10_000);
        }
    }
    drop(nodes);
    if shared.lanes_running.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.stopped.store(true, Ordering::Release);
    }
    shared.service_wake.fetch_add(1, Ordering::AcqRel);
    atomic_wait::wake_all(&shared.service_wake);
}

/// The service thread: runs the jobs the lanes asked for, each lane's in order. Completions and
/// renderer callbacks of every client in the process go through here, so no lane ever
/// allocates or waits on application code.
fn run_service(mut rings: Vec<rtrb::Consumer<Weak<dyn ServiceJob>>>, shared: Arc<Shared>) {
    loop {
        let seen = shared.service_wake.load(Ordering::Acquire);
        for ring in rings.iter_mut() {
            while let Ok(job) = ring.pop() {
                if let Some(j) = job.upgrade() {
                    j.service();
                }
            }
        }
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        atomic_wait::wait(&shared.service_wake, seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Adds `value` to every bus sample each tick; counts its ticks.
    struct Producer {
        value: i16,
        ticks: Arc<AtomicU64>,
        lane_thread: Arc<Mutex<Option<String>>>,
    }
    impl ClockNode for Producer {
        fn tick(&mut self, tick: &mut Tick<'_>) {
            self.ticks.fetch_add(1, Ordering::Relaxed);
            tick.add_to_bus(&[self.value; FRAME_10MS_48K]);
            if let Ok(mut t) = self.lane_thread.try_lock()
                && t.is_none()
            {
                *t = std::thread::current().name().map(str::to_owned);
            }
        }
    }

    /// Records the first bus sample it sees each tick.
    struct Consumer(Arc<Mutex<Vec<i32>>>);
    impl ClockNode for Consumer {
        fn tick(&mut self, tick: &mut Tick<'_>) {
            if let Ok(mut v) = self.0.try_lock() {
                v.push(tick.bus[0]);
            }
        }
        fn phase(&self) -> Phase {
            Phase::Consume
        }
    }

    #[test]
    fn producers_spread_over_lanes_and_the_speaker_hears_them_all() {
        let clock = MediaClock::with_lanes(3).unwrap();
        assert_eq!(clock.lanes(), 3);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let consumer = clock.add(Consumer(heard.clone()));
        assert_eq!(consumer % 3, 0, "consumers live on lane 0");
        let mut names = Vec::new();
        let mut counters = Vec::new();
        for value in [1i16, 10, 100] {
            let ticks = Arc::new(AtomicU64::new(0));
            let name = Arc::new(Mutex::new(None));
            clock.add(Producer { value, ticks: ticks.clone(), lane_thread: name.clone() });
            counters.push(ticks);
            names.push(name);
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut lanes: Vec<String> = names.iter().map(|n| n.lock().unwrap().clone().unwrap()).collect();
        lanes.sort();
        lanes.dedup();
        assert_eq!(lanes.len(), 3, "one producer per lane: {lanes:?}");
        assert!(counters.iter().all(|c| c.load(Ordering::Relaxed) >= 10));
        // Lane 0's producer adds in the same tick; the other lanes' buses arrive through the
        // rings, at most a tick late: once flowing, the speaker hears 1 + 10 + 100.
        let v = heard.lock().unwrap().clone();
        let tail = &v[v.len() - 10..];
        assert!(tail.iter().filter(|&&x| x == 111).count() >= 8, "bus seen by the speaker: {tail:?}");
        clock.stop();
        assert!(clock.is_stopped());
    }

    #[test]
    fn commands_reach_the_node_on_its_lane() {
        let clock = MediaClock::with_lanes(2).unwrap();
        let ticks = Arc::new(AtomicU64::new(0));
        let name = Arc::new(Mutex::new(None));
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(clock.add(Producer { value: 0, ticks: ticks.clone(), lane_thread: name.clone() }));
        }
        let (tx, rx) = mpsc::channel();
        for id in &ids {
            let tx = tx.clone();
            clock.with_node::<Producer>(*id, move |p| {
                p.value = 7;
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
        }
        let got: Vec<_> = (0..4).map(|_| rx.recv_timeout(Duration::from_secs(2)).unwrap().unwrap()).collect();
        assert_eq!(got.iter().filter(|n| n.ends_with("-0")).count(), 2, "{got:?}");
        for id in ids {
            clock.remove(id);
        }
        std::thread::sleep(Duration::from_millis(50));
        let before = ticks.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticks.load(Ordering::Relaxed), before, "removed nodes are no longer ticked");
    }

    /// Records each tick's number and time.
    struct Numbers(Arc<Mutex<Vec<(u64, u64)>>>);
    impl ClockNode for Numbers {
        fn tick(&mut self, tick: &mut Tick<'_>) {
            if let Ok(mut v) = self.0.try_lock() {
                v.push((tick.number, tick.now_us));
            }
        }
    }

    /// Every lane numbers its ticks on one grid (tick n at epoch + n × 10 ms), so a recording
    /// can place frames from different lanes by number: on each lane the numbers rise and match
    /// the tick's own time to within a tick (allowing a few late ticks on a loaded machine).
    #[test]
    fn lanes_share_one_tick_numbering() {
        let clock = MediaClock::with_lanes(3).unwrap();
        let logs: Vec<_> = (0..3).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        for l in &logs {
            clock.add(Numbers(l.clone()));
        }
        std::thread::sleep(Duration::from_millis(500));
        clock.stop();
        for l in &logs {
            let v = l.lock().unwrap().clone();
            assert!(v.len() >= 20, "{} ticks", v.len());
            assert!(v.windows(2).all(|w| w[1].0 > w[0].0), "numbers rise");
            let on_grid = v.iter().filter(|(n, us)| us / 10_000 == *n || us / 10_000 == n + 1).count();
            assert!(on_grid * 10 >= v.len() * 9, "{on_grid} of {} ticks ran in their own 10 ms slot", v.len());
        }
    }
}
