//! The recorder: one thread per recording (`daily-recorder`), neither the media clock nor the
//! service thread, that drains the recording's taps every 20 ms, feeds the frames with their
//! tick numbers to the IO-free [`RecordCore`], writes the merged stream to the `record_to` file
//! and hands the core's outputs to the application's sink (daily-py posts them to a Python
//! dispatcher thread). A slow disk or sink delays only this thread; the taps' rings hold
//! 5 s of audio meanwhile.

use super::core::{RecordConfig, RecordCore, RecordOutput, Track};
use super::file::{self, FileSink};
use super::tap::{Tap, TapControl, TapIn, tap};
use crate::ClientError;
use crate::call::{CallClient, CallState};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How often the recorder thread drains the taps.
const WAKE: Duration = Duration::from_millis(20);

/// What a recording reports, in order, on its recorder thread.
#[derive(Debug)]
pub enum RecordEvent {
    /// A chunk of both tracks (mono, equal length, at the output rate).
    Audio {
        /// The user track (what this client received).
        user: Vec<i16>,
        /// The bot track (what this client sent).
        bot: Vec<i16>,
    },
    /// A speaking turn ended: its audio (mono).
    Turn {
        /// Whose turn.
        track: Track,
        /// The turn's audio.
        audio: Vec<i16>,
    },
    /// Writing the file failed; recording goes on without the file.
    Error(String),
    /// The recording stopped (after every other event of it).
    Stopped,
}

/// Receives a recording's events on the recorder thread.
pub type RecordSink = Box<dyn FnMut(RecordEvent) + Send>;

/// A client's link to one recording, held in the client's receive-side state while the
/// recording runs: nodes made meanwhile get a tap from it.
pub(crate) struct RecLink {
    pub control: Arc<TapControl>,
    new_taps: Mutex<Vec<TapIn>>,
    next_tap: AtomicU64,
}

impl RecLink {
    /// Whether the recording still takes new taps (it has not stopped, e.g. with the call).
    pub(crate) fn live(&self) -> bool {
        !self.control.closed.load(Ordering::Acquire)
    }

    /// A tap for a node whose 10 ms frames are `rate` Hz × `channels`.
    pub(crate) fn make_tap(&self, track: Track, rate: u32, channels: u16) -> Tap {
        let id = self.next_tap.fetch_add(1, Ordering::Relaxed);
        let (t, i) = tap(&self.control, id, track, rate, channels);
        self.new_taps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(i);
        t
    }
}

enum Cmd {
    File(Option<Box<dyn FileSink>>),
    Stop(mpsc::Sender<()>),
}

struct Shared {
    want_chunks: AtomicBool,
    error: Mutex<Option<String>>,
    late: AtomicU64,
    frames: AtomicU64,
}

/// A running recording of one client's call (see the `record` module). Dropping it stops
/// the recording as [`stop`](Self::stop) does.
pub struct Recorder {
    cmd: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
    cfg: RecordConfig,
    link: Arc<RecLink>,
    client: std::sync::Weak<crate::call::ClientInner>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

static NEXT_RECORDER: AtomicU64 = AtomicU64::new(1);

impl Recorder {
    /// Starts recording `client`'s call from the current tick: taps every receive pipeline
    /// and send pipe it has and every one it makes later. `file`: stream the merged audio
    /// there (created now: errors are returned). `want_chunks`: keep audio for
    /// [`RecordEvent::Audio`] (otherwise nothing accumulates in memory).
    pub fn start(
        client: &CallClient,
        cfg: RecordConfig,
        file: Option<PathBuf>,
        want_chunks: bool,
        sink: RecordSink,
    ) -> Result<Recorder, ClientError> {
        let inner = client.inner_arc();
        let start_tick = inner.clock.tick_now();
        let mut core = RecordCore::new(cfg, start_tick, want_chunks, file.is_some())
            .map_err(ClientError::InvalidArgument)?;
        let file = match file {
            Some(p) => Some(file::open(&p, cfg.sample_rate, cfg.num_channels)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            want_chunks: AtomicBool::new(want_chunks),
            error: Mutex::new(None),
            late: AtomicU64::new(0),
            frames: AtomicU64::new(0),
        });
        let control = Arc::new(TapControl {
            recorder: NEXT_RECORDER.fetch_add(1, Ordering::Relaxed),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let link = Arc::new(RecLink {
            control,
            new_taps: Mutex::new(Vec::new()),
            next_tap: AtomicU64::new(1),
        });
        let (tx, rx) = mpsc::channel();
        let clock = inner.clock.clone();
        let weak = Arc::downgrade(&inner);
        let (l2, s2) = (link.clone(), shared.clone());
        core.set_want_chunks(want_chunks);
        let thread = std::thread::Builder::new()
            .name("daily-recorder".into())
            .spawn(move || run(core, rx, l2, s2, file, sink, clock, weak))
            .map_err(|e| ClientError::Io(e.to_string()))?;
        crate::call::attach_recorder(&inner, &link);
        Ok(Recorder {
            cmd: tx,
            shared,
            cfg,
            link,
            client: Arc::downgrade(&inner),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The recording's configuration.
    pub fn config(&self) -> RecordConfig {
        self.cfg
    }

    /// Starts (`true`) or stops keeping audio for [`RecordEvent::Audio`] chunks.
    pub fn set_want_chunks(&self, want: bool) {
        self.shared.want_chunks.store(want, Ordering::Release);
    }

    /// Streams the merged audio to `path` from now on (`None`: stop writing, closing the
    /// current file). The file is created here, so its errors are returned here.
    pub fn record_to(&self, path: Option<PathBuf>) -> Result<(), ClientError> {
        let f = match path {
            Some(p) => Some(file::open(&p, self.cfg.sample_rate, self.cfg.num_channels)?),
            None => None,
        };
        self.cmd
            .send(Cmd::File(f))
            .map_err(|_| ClientError::InvalidState {
                action: "record to a file",
                state: "not recording",
            })
    }

    /// The last file error, if writing failed.
    pub fn error(&self) -> Option<String> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Frames that reached the recorder after their tick was final (dropped, counted).
    pub fn late_frames(&self) -> u64 {
        self.shared.late.load(Ordering::Relaxed)
    }

    /// Frames lost because a tap's ring was full (the recorder thread stalled > 5 s).
    pub fn dropped_frames(&self) -> u64 {
        self.link.control.dropped.load(Ordering::Relaxed)
    }

    /// Frames per track recorded so far (at the output rate).
    pub fn recorded_frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// Stops: finalizes everything up to now, emits the last chunk and turn, closes the file,
    /// sends [`RecordEvent::Stopped`] and returns once that is done (within about 100 ms).
    /// Idempotent.
    pub fn stop(&self) {
        let (tx, rx) = mpsc::channel();
        if self.cmd.send(Cmd::Stop(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
        self.link.control.closed.store(true, Ordering::Release);
        if let Some(inner) = self.client.upgrade() {
            crate::call::detach_recorder(&inner, &self.link);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop();
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    mut core: RecordCore,
    rx: mpsc::Receiver<Cmd>,
    link: Arc<RecLink>,
    shared: Arc<Shared>,
    mut file: Option<Box<dyn FileSink>>,
    mut sink: RecordSink,
    clock: Arc<crate::clock::MediaClock>,
    client: std::sync::Weak<crate::call::ClientInner>,
) {
    let mut taps: Vec<TapIn> = Vec::new();
    let mut last_flush = std::time::Instant::now();
    let mut was_in_call = false;
    let mut done: Option<mpsc::Sender<()>> = None;
    let mut want_chunks = shared.want_chunks.load(Ordering::Acquire);
    loop {
        match rx.recv_timeout(WAKE) {
            Ok(Cmd::Stop(tx)) => {
                done = Some(tx);
                break;
            }
            Ok(Cmd::File(f)) => {
                close(&mut file, &shared, &mut sink);
                core.set_want_merged(f.is_some());
                file = f;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let w = shared.want_chunks.load(Ordering::Acquire);
        if w != want_chunks {
            want_chunks = w;
            core.set_want_chunks(w);
        }
        let now = clock.tick_now();
        drain(&mut core, &link, &mut taps);
        core.poll(now);
        deliver(&mut core, &shared, &mut file, &mut sink);
        if last_flush.elapsed() >= Duration::from_secs(1) {
            last_flush = std::time::Instant::now();
            if let Some(f) = file.as_mut()
                && let Err(e) = f.flush()
            {
                fail(&mut file, &shared, &mut sink, e);
            }
        }
        // The call ended (left, or the client was released): the recording ends with it.
        match client.upgrade().map(|c| crate::call::state_of(&c)) {
            Some(CallState::Joining | CallState::Joined) => was_in_call = true,
            Some(CallState::Leaving | CallState::Left) if was_in_call => break,
            None => break,
            _ => {}
        }
        if clock.is_stopped() {
            break;
        }
    }
    // Frames of the last ticks are pushed by their lanes within a tick or two.
    let end = clock.tick_now();
    std::thread::sleep(Duration::from_millis(30));
    drain(&mut core, &link, &mut taps);
    core.finish(end);
    link.control.closed.store(true, Ordering::Release);
    deliver(&mut core, &shared, &mut file, &mut sink);
    close(&mut file, &shared, &mut sink);
    sink(RecordEvent::Stopped);
    if let Some(tx) = done {
        let _ = tx.send(());
    }
    // Later commands (a second stop) find the channel closed and return at once.
    drop(rx);
}

fn drain(core: &mut RecordCore, link: &RecLink, taps: &mut Vec<TapIn>) {
    for t in link
        .new_taps
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        if core.add_tap(t.id, t.track, t.rate, t.channels).is_ok() {
            taps.push(t);
        }
    }
    for t in taps.iter_mut() {
        while let Ok(f) = t.ring.pop() {
            core.handle_frame(t.id, f.tick, &f.pcm[..f.len as usize]);
        }
    }
    // A tap whose node went away (and left nothing unread) is forgotten; its ring is freed here.
    taps.retain(|t| {
        let keep = !t.ring.is_abandoned() || t.ring.slots() > 0;
        if !keep {
            core.remove_tap(t.id);
        }
        keep
    });
}

fn deliver(
    core: &mut RecordCore,
    shared: &Shared,
    file: &mut Option<Box<dyn FileSink>>,
    sink: &mut RecordSink,
) {
    shared.late.store(core.late_frames(), Ordering::Relaxed);
    shared.frames.store(core.track_frames(), Ordering::Relaxed);
    let merged = core.take_merged();
    if !merged.is_empty() {
        let r = file.as_mut().map(|f| f.write(merged));
        merged.clear();
        if let Some(Err(e)) = r {
            fail(file, shared, sink, e);
        }
    }
    while let Some(o) = core.poll_output() {
        sink(match o {
            RecordOutput::Chunk { user, bot } => RecordEvent::Audio { user, bot },
            RecordOutput::Turn { track, audio } => RecordEvent::Turn { track, audio },
        });
    }
}

fn fail(file: &mut Option<Box<dyn FileSink>>, shared: &Shared, sink: &mut RecordSink, e: String) {
    let path = file
        .as_ref()
        .map(|f| f.path().display().to_string())
        .unwrap_or_default();
    let msg = format!(
        "writing the recording to {path} failed: {e}; the file is closed and recording goes on without it"
    );
    tracing::error!("{msg}");
    *shared.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.clone());
    if let Some(f) = file.take() {
        let _ = f.finish();
    }
    sink(RecordEvent::Error(msg));
}

fn close(file: &mut Option<Box<dyn FileSink>>, shared: &Shared, sink: &mut RecordSink) {
    if let Some(f) = file.take() {
        let path = f.path().display().to_string();
        if let Err(e) = f.finish() {
            let msg = format!("closing the recording {path} failed: {e}");
            tracing::error!("{msg}");
            *shared.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.clone());
            sink(RecordEvent::Error(msg));
        }
    }
}
