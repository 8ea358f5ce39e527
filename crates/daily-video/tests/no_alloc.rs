//! The per-frame video path allocates nothing of Rust's once its buffers have grown to size:
//! a counting global allocator checks `to_i420` (packed and ARGB through the strip scratch),
//! `from_i420`, `VideoEncoder::encode`, `VideoDecoder::decode` and `Packetizer::packetize`.
//! libvpx's own buffers are C allocations, made at construction (and on a size change), and
//! are not counted here. `FrameAssembler` returns each frame in a new `Vec` by design.

use daily_video::{
    ColorFormat, EncodedFrame, EncoderConfig, I420Buffer, VideoDecoder, VideoEncoder, from_i420,
    rtp::Packetizer, testpattern, to_i420,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // `const` initialisation: reading it never allocates (no lazy init), so the allocator can
    // use it without recursing.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `Counting`
// upholds exactly the guarantees `System` does; the counter update has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` via `alloc`/`realloc` above with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) > 0);
}

#[test]
fn steady_state_frames_do_not_allocate() {
    let (w, h) = (320, 180);
    let frames: Vec<Vec<u8>> = (0..8)
        .map(|n| {
            let mut v = Vec::new();
            testpattern::rgba(n, w, h, &mut v);
            v
        })
        .collect();
    let mut argb = Vec::new();
    let mut yuv = I420Buffer::new(w, h);
    let mut out = Vec::new();
    let mut enc = VideoEncoder::new(EncoderConfig {
        width: w,
        height: h,
        ..Default::default()
    })
    .unwrap();
    let mut dec = VideoDecoder::new().unwrap();
    let mut encoded = EncodedFrame::default();
    let mut picture = I420Buffer::default();
    let mut packetizer = Packetizer::new();
    let mut packets = 0usize;
    let mut step = |n: usize, yuv: &mut I420Buffer| {
        to_i420(&frames[n % frames.len()], ColorFormat::Rgba, w, h, yuv).unwrap();
        from_i420(yuv, ColorFormat::Argb, &mut argb).unwrap();
        to_i420(&argb, ColorFormat::Argb, w, h, yuv).unwrap();
        from_i420(yuv, ColorFormat::Rgba, &mut out).unwrap();
        enc.encode(yuv, n as u32 * 3000, n.is_multiple_of(5), &mut encoded)
            .unwrap();
        dec.decode(&encoded.data, &mut picture).unwrap();
        packetizer.packetize(&encoded.data, encoded.keyframe, 1200, |p, _| {
            packets += p.len()
        });
    };
    // Warm up: buffers grow to their size (a keyframe is the largest frame).
    for n in 0..10 {
        step(n, &mut yuv);
    }
    let count = allocations(|| {
        for n in 10..40 {
            step(n, &mut yuv);
        }
    });
    assert_eq!(count, 0);
    assert!(packets > 0);
}
