//! The receive half of a remote track: RTP payloads from the network task go through a
//! lock-free ring to the media clock, which runs the jitter buffer (with Opus PLC) every 10 ms
//! and feeds the renderers registered for that participant and audio source, and the speaker
//! bus.
//!
//! A renderer resamples on the clock thread into its own SPSC ring; once a whole callback's
//! worth (`sample_rate * callback_interval_ms / 1000` frames) is in the ring, the clock asks the
//! service thread to hand it to the application's sink. The clock thread itself never
//! allocates or calls the sink.

use crate::ClientError;
use crate::clock::{ClockNode, ServiceJob, Tick};
use daily_media::{FRAME_10MS_48K, JitterBuffer, JitterConfig, Playout, Resampler};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Audio a renderer may hold for a slow application before dropping 10 ms chunks, in ms
/// (at least two callbacks' worth).
const RENDER_RING_MS: usize = 500;

/// Largest RTP payload carried through the ring, in bytes.
pub(crate) const MAX_PAYLOAD: usize = 1280;

/// One received RTP payload.
pub(crate) struct InPacket {
    pub seq: u16,
    pub ts: u32,
    pub arrival_us: u64,
    pub len: u16,
    pub data: [u8; MAX_PAYLOAD],
}

/// Receive counters for one track, readable from any thread.
#[derive(Default, Debug)]
pub struct RecvStats {
    /// RTP packets received.
    pub received: AtomicU64,
    /// Packets never received (concealed).
    pub lost: AtomicU64,
    /// Packets dropped because they arrived after their playout time.
    pub late: AtomicU64,
    /// Current jitter-buffer delay in ms.
    pub delay_ms: AtomicU64,
    /// Audio produced by packet-loss concealment (late or lost packets), in ms.
    pub concealed_ms: AtomicU64,
}

/// A renderer callback: mono i16 PCM at the renderer's rate, exactly one callback interval of
/// frames. Runs on the engine's service thread.
pub type RenderSink = Box<dyn FnMut(&[i16]) + Send>;

/// The service-thread half of a renderer.
struct RenderOutput {
    /// Only the service thread locks this (uncontended); the clock never touches it.
    inner: Mutex<RenderOut>,
    /// Samples per callback.
    chunk: usize,
}

struct RenderOut {
    ring: rtrb::Consumer<i16>,
    buf: Vec<i16>,
    sink: RenderSink,
}

impl ServiceJob for RenderOutput {
    fn service(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let o = &mut *g;
        while o.ring.slots() >= self.chunk {
            if let Ok(c) = o.ring.read_chunk(self.chunk) {
                let (a, b) = c.as_slices();
                o.buf[..a.len()].copy_from_slice(a);
                o.buf[a.len()..].copy_from_slice(b);
                c.commit_all();
            }
            (o.sink)(&o.buf);
        }
    }
}

/// The clock-thread half of a renderer.
pub(crate) struct Renderer {
    rs: Resampler,
    out10: Vec<i16>,
    ring: rtrb::Producer<i16>,
    /// Samples written since the last full callback.
    acc: usize,
    output: Arc<RenderOutput>,
    /// 10 ms chunks dropped because the application fell behind.
    pub(crate) dropped: u64,
}

impl Renderer {
    /// Checks a renderer's rate and interval; returns (frames per 10 ms, 10 ms chunks per callback).
    pub(crate) fn validate(sample_rate: u32, interval_ms: u32) -> Result<(usize, usize), ClientError> {
        let f10 = crate::frames_10ms(sample_rate)?;
        if interval_ms == 0 || interval_ms % 10 != 0 {
            return Err(ClientError::InvalidArgument(format!(
                "callback_interval_ms must be a positive multiple of 10, got {interval_ms}"
            )));
        }
        Ok((f10, (interval_ms / 10) as usize))
    }

    pub(crate) fn new(in_channels: u16, sample_rate: u32, interval_ms: u32, sink: RenderSink) -> Result<Renderer, ClientError> {
        let (f10, chunks) = Self::validate(sample_rate, interval_ms)?;
        let rs = Resampler::new(48_000, in_channels, sample_rate, 1).map_err(ClientError::Media)?;
        let chunk = f10 * chunks;
        let cap = (f10 * RENDER_RING_MS / 10).max(2 * chunk);
        let (ring, cons) = rtrb::RingBuffer::new(cap);
        let output = Arc::new(RenderOutput {
            inner: Mutex::new(RenderOut { ring: cons, buf: vec![0; chunk], sink }),
            chunk,
        });
        Ok(Renderer { rs, out10: vec![0; f10], ring, acc: 0, output, dropped: 0 })
    }

    fn push(&mut self, pcm48: &[i16], tick: &mut Tick<'_>) {
        if self.rs.process(pcm48, &mut self.out10).is_err() {
            self.out10.fill(0);
        }
        if crate::clock::push_all(&mut self.ring, &self.out10) {
            self.acc += self.out10.len();
        } else {
            self.dropped += 1;
        }
        if self.acc >= self.output.chunk {
            self.acc -= self.output.chunk;
            let job: Weak<dyn ServiceJob> = Arc::downgrade(&self.output) as Weak<dyn ServiceJob>;
            tick.service(job);
        }
    }
}

pub(crate) struct RecvNode {
    packets: rtrb::Consumer<InPacket>,
    jb: JitterBuffer,
    pcm: Vec<i16>,
    started: bool,
    pub(crate) renderers: Vec<Renderer>,
    closed: Arc<AtomicBool>,
    stats: Arc<RecvStats>,
    /// Recordings listening to this track (`record/tap.rs`).
    pub(crate) taps: crate::record::Taps,
}

impl RecvNode {
    pub(crate) fn new(
        channels: u16,
        packets: rtrb::Consumer<InPacket>,
        closed: Arc<AtomicBool>,
        stats: Arc<RecvStats>,
    ) -> Result<RecvNode, ClientError> {
        let jb = JitterBuffer::new(JitterConfig { channels, min_delay_ms: 20, max_delay_ms: 200 })
            .map_err(ClientError::Media)?;
        Ok(RecvNode {
            packets,
            jb,
            pcm: vec![0; FRAME_10MS_48K * channels as usize],
            started: false,
            renderers: Vec::new(),
            closed,
            stats,
            taps: Default::default(),
        })
    }
}

impl ClockNode for RecvNode {
    fn tick(&mut self, tick: &mut Tick<'_>) {
        while let Ok(p) = self.packets.pop() {
            self.jb.push(p.seq, p.ts, &p.data[..p.len as usize], p.arrival_us);
        }
        let playout = self.jb.pop_10ms(tick.now_us, &mut self.pcm);
        if !matches!(playout, Playout::Silence) {
            self.started = true;
        }
        let st = self.jb.stats();
        self.stats.received.store(st.received, Ordering::Relaxed);
        self.stats.lost.store(st.lost, Ordering::Relaxed);
        self.stats.late.store(st.late_dropped, Ordering::Relaxed);
        self.stats.delay_ms.store(st.current_delay_ms as u64, Ordering::Relaxed);
        self.stats.concealed_ms.store(st.concealed_frames / 48, Ordering::Relaxed);
        if !self.started {
            return;
        }
        tick.add_to_bus(&self.pcm);
        self.taps.push(tick.number, &self.pcm);
        for r in self.renderers.iter_mut() {
            r.push(&self.pcm, tick);
        }
    }

    fn alive(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }
}
