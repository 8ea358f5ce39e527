//! The audio path must not allocate: a counting global allocator proves it for
//! `Resampler::process`, `OpusEncoder::encode`, `JitterBuffer::push`/`pop_10ms` (including
//! loss, reordering, underrun, idle and restart), `mix_into` and `Vad::analyze` (including its
//! periodic model reset; sample-rate inference allocates once, at the first call).

use daily_media::{
    FRAME_10MS_48K, JitterBuffer, JitterConfig, MAX_PACKET_BYTES, OPUS_FRAME_20MS, OpusEncoder,
    Resampler, Vad, mix_into,
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
fn resampler_process_does_not_allocate() {
    for (a, ac, b, bc) in [
        (16_000, 1, 48_000, 1),
        (48_000, 2, 16_000, 1),
        (44_100, 1, 48_000, 2),
        (44_100, 2, 16_000, 2),
        (48_000, 2, 48_000, 1),
    ] {
        let mut rs = Resampler::new(a, ac, b, bc).unwrap();
        let input: Vec<i16> = (0..rs.input_frames() * usize::from(ac))
            .map(|i| (i * 37 % 2000) as i16)
            .collect();
        let mut output = vec![0i16; rs.output_frames() * usize::from(bc)];
        let n = allocations(|| {
            for _ in 0..50 {
                rs.process(&input, &mut output).unwrap();
            }
            rs.reset();
            rs.process(&input, &mut output).unwrap();
        });
        assert_eq!(n, 0, "{a}x{ac} -> {b}x{bc}");
    }
}

#[test]
fn opus_and_jitter_buffer_do_not_allocate() {
    let pcm: Vec<i16> = (0..OPUS_FRAME_20MS * 2)
        .map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16)
        .collect();
    let mut enc = OpusEncoder::new(2, Some(64_000)).unwrap();
    let mut jb = JitterBuffer::new(JitterConfig {
        channels: 2,
        min_delay_ms: 20,
        max_delay_ms: 200,
    })
    .unwrap();
    let mut packets = vec![[0u8; MAX_PACKET_BYTES]; 8];
    let mut lens = [0usize; 8];
    let mut out = vec![0i16; FRAME_10MS_48K * 2];
    let mut mix = vec![0i16; FRAME_10MS_48K * 2];
    let n = allocations(|| {
        let mut now = 0u64;
        for i in 0..400u32 {
            let slot = (i % 8) as usize;
            lens[slot] = enc.encode(&pcm, &mut packets[slot]).unwrap();
            // A pause (packets 200..250 never sent), a loss (every 37th), a reordered pair and
            // a duplicate exercise every path of the buffer.
            let send = !(200..250).contains(&i) && i % 37 != 0;
            if send {
                let seq = i as u16;
                let ts = i.wrapping_mul(OPUS_FRAME_20MS as u32);
                jb.push(seq, ts, &packets[slot][..lens[slot]], now);
                if i % 50 == 0 {
                    jb.push(seq, ts, &packets[slot][..lens[slot]], now);
                }
                if i % 53 == 0 && i > 0 {
                    let prev = ((i - 1) % 8) as usize;
                    jb.push(
                        (i - 1) as u16,
                        (i - 1) * OPUS_FRAME_20MS as u32,
                        &packets[prev][..lens[prev]],
                        now,
                    );
                }
            }
            for _ in 0..2 {
                now += 10_000;
                jb.pop_10ms(now, &mut out);
                mix_into(&mut mix, &out);
            }
            let _ = jb.stats();
        }
        jb.reset();
    });
    assert_eq!(n, 0);
    let st = jb.stats();
    assert!(
        st.lost > 0 && st.concealed_frames > 0 && st.duplicates > 0,
        "{st:?}"
    );
}

#[test]
fn vad_analyze_does_not_allocate() {
    for (rate, channels) in [(16_000, 1u16), (48_000, 2), (44_100, 1), (8_000, 2)] {
        let n = rate as usize / 100 * usize::from(channels);
        let pcm: Vec<i16> = (0..n * 3)
            .map(|i| ((i as f64 * 0.07).sin() * 6000.0) as i16)
            .collect();
        // A 20 ms reset period wipes a detector at every 16 ms frame.
        let mut vad = Vad::new(20, rate, channels).unwrap();
        let count = allocations(|| {
            for i in 0..100 {
                // 10 ms, and longer buffers of which only the first 10 ms count.
                let len = n * (1 + i % 3);
                vad.analyze(&pcm[..len]).unwrap();
            }
            vad.reset();
            vad.analyze(&pcm[..n]).unwrap();
        });
        assert_eq!(count, 0, "{rate} Hz x{channels}");

        // With the rate inferred, only the first call (which builds the resampler) allocates.
        let mut inferred = Vad::new(1000, 0, channels).unwrap();
        inferred.analyze(&pcm[..n]).unwrap();
        assert_eq!(inferred.sample_rate(), rate);
        let count = allocations(|| {
            // 3 s: the 1000 ms period hands over between its two detectors several times.
            for _ in 0..300 {
                inferred.analyze(&pcm[..n]).unwrap();
            }
        });
        assert_eq!(count, 0, "inferred {rate} Hz x{channels}");
    }
}
