//! Taps: how a recording gets its audio off the media clock without slowing it. While a
//! recorder records, each tapped node (a client's send pipes, its receive pipelines) copies the
//! 10 ms it handled in a tick, stamped with the tick's number, into a wait-free SPSC ring
//! (`rtrb`) that belongs to that tap. The ring and its frames are allocated when the tap is
//! made (on the recorder's or the API caller's thread) and reach the node through the lane's
//! command channel or the node's constructor; on the clock thread a tap costs one ring push
//! per tick (a copy of at most 1,920 bytes), and nothing at all while no recorder is attached
//! (an empty `Vec`). A full ring (the recorder thread stalled for [`TAP_RING_TICKS`] × 10 ms)
//! drops the frame and counts it.

use super::core::Track;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Largest 10 ms frame a tap carries: 48 kHz stereo.
pub(crate) const TAP_MAX_SAMPLES: usize = 960;

/// Frames a tap's ring holds: 5.12 s, so the recorder thread may stall for seconds (a slow
/// disk, a busy machine) without losing audio. 512 × 1,936 bytes ≈ 1 MB per tap.
pub(crate) const TAP_RING_TICKS: usize = 512;

/// One tapped 10 ms frame.
pub(crate) struct TapFrame {
    pub tick: u64,
    pub len: u16,
    pub pcm: [i16; TAP_MAX_SAMPLES],
}

/// State a recorder shares with all its taps.
pub(crate) struct TapControl {
    /// The recorder this tap belongs to (a node keeps at most one tap per recorder).
    pub recorder: u64,
    /// Set when the recording stops: nodes drop the tap at their next tick.
    pub closed: AtomicBool,
    /// Frames dropped because a ring was full.
    pub dropped: AtomicU64,
}

/// The clock-side end of a tap, owned by a node.
pub(crate) struct Tap {
    control: Arc<TapControl>,
    ring: rtrb::Producer<TapFrame>,
}

/// The recorder-side end of a tap.
pub(crate) struct TapIn {
    pub id: u64,
    pub track: Track,
    pub rate: u32,
    pub channels: u16,
    pub ring: rtrb::Consumer<TapFrame>,
}

/// Makes a tap for a node whose frames are `rate` Hz with `channels` channels.
pub(crate) fn tap(
    control: &Arc<TapControl>,
    id: u64,
    track: Track,
    rate: u32,
    channels: u16,
) -> (Tap, TapIn) {
    let (p, c) = rtrb::RingBuffer::new(TAP_RING_TICKS);
    (
        Tap {
            control: control.clone(),
            ring: p,
        },
        TapIn {
            id,
            track,
            rate,
            channels,
            ring: c,
        },
    )
}

/// The taps of one node. Empty (and free) unless a recorder is attached.
pub(crate) struct Taps(Vec<Tap>);

impl Default for Taps {
    /// Room for [`TAPS_RESERVED`] taps, reserved off the clock (nodes are made elsewhere), so
    /// attaching them on the clock does not allocate either.
    fn default() -> Taps {
        Taps(Vec::with_capacity(TAPS_RESERVED))
    }
}

/// Recordings a node can carry without growing its tap list on the clock thread.
const TAPS_RESERVED: usize = 4;

impl Taps {
    /// Adds a tap unless the node already has one for that recorder (a node made while the
    /// recorder was sweeping the existing ones may be offered two).
    pub(crate) fn add(&mut self, tap: Tap) {
        if !self
            .0
            .iter()
            .any(|t| t.control.recorder == tap.control.recorder)
        {
            self.0.push(tap);
        }
    }

    /// Copies this tick's frame into every tap. Wait-free, no allocation: dropping a closed
    /// tap only releases the node's share of its ring (the recorder frees it).
    pub(crate) fn push(&mut self, tick: u64, pcm: &[i16]) {
        if self.0.is_empty() {
            return;
        }
        self.0.retain(|t| !t.control.closed.load(Ordering::Acquire));
        let n = pcm.len().min(TAP_MAX_SAMPLES);
        for t in self.0.iter_mut() {
            match t.ring.write_chunk_uninit(1) {
                Ok(mut slot) => {
                    let (a, _) = slot.as_mut_slices();
                    let cell = a[0].as_mut_ptr();
                    // SAFETY: `cell` is one uninitialised slot we own until commit; every
                    // field read later (`tick`, `len`, `pcm[..len]`) is written first, and
                    // `pcm[len..]` is plain integers nobody reads.
                    unsafe {
                        std::ptr::addr_of_mut!((*cell).tick).write(tick);
                        std::ptr::addr_of_mut!((*cell).len).write(n as u16);
                        let dst = std::ptr::addr_of_mut!((*cell).pcm) as *mut i16;
                        std::ptr::copy_nonoverlapping(pcm.as_ptr(), dst, n);
                        std::ptr::write_bytes(dst.add(n), 0, TAP_MAX_SAMPLES - n);
                        slot.commit_all();
                    }
                }
                Err(_) => {
                    t.control.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
