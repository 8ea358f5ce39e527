//! A deterministic moving test picture whose frame number can be read back after coding.
//!
//! Used by this crate's tests and benchmarks and by the Python tests, which send it through a
//! call and read the number of each received frame (latency, order, loss). The picture is meant
//! to cost an encoder what a camera does: a gradient that pans, a fine checker texture, two
//! moving shapes and a little per-pixel noise (a fixed hash of position and frame number).
//!
//! # The frame number
//! The top 32 rows carry `n mod 65536` as 16 blocks, each `width/16` wide: bit 15 first, white
//! for 1 and black for 0 in rows 0..16, and the complement in rows 16..32. A reader averages the
//! middle of each block and accepts the number only if every block and its complement disagree
//! clearly, which makes a wrong reading after heavy coding artefacts (or of a picture that is
//! not this pattern) very unlikely: it takes 16 blocks all flipped together with their
//! complements. Blocks of 40x16 pixels at 640 wide survive VP8 at any quantizer. The pattern
//! needs at least 64x48 pixels to be read back reliably.

use crate::{ColorFormat, I420Buffer, VideoError, to_i420};

/// Rows of one line of blocks; the number uses two lines (the bits, then their complement).
pub const BLOCK_ROWS: u32 = 16;

/// Smallest size whose number reads back reliably.
pub const MIN_WIDTH: u32 = 64;
/// Smallest size whose number reads back reliably.
pub const MIN_HEIGHT: u32 = 48;

fn hash(x: u32, y: u32, n: u32) -> u32 {
    // A small integer mix (lowbias32); any fixed function of (x, y, n) would do.
    let mut h =
        x.wrapping_mul(0x9E37_79B9) ^ y.wrapping_mul(0x85EB_CA6B) ^ n.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    h = h.wrapping_mul(0x7FEB_352D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846C_A68B);
    h ^ (h >> 16)
}

/// A triangle wave over `0..=span` with period `2*span`: a bouncing coordinate.
fn bounce(t: u32, span: u32) -> u32 {
    if span == 0 {
        return 0;
    }
    let p = t % (2 * span);
    if p <= span { p } else { 2 * span - p }
}

/// Writes frame `n` of the pattern as RGBA (`width*height*4` bytes, alpha 255) into `out`.
pub fn rgba(n: u32, width: u32, height: u32, out: &mut Vec<u8>) {
    let (w, h) = (width.max(1), height.max(1));
    out.clear();
    out.resize(width as usize * height as usize * 4, 255);
    let number = n & 0xFFFF;
    let block_w = (w / 16).max(1);
    // The moving shapes: a disc crossing left to right, a square bouncing diagonally.
    let r = (h / 8).max(2);
    let (dx, dy) = (n.wrapping_mul(4) % (w + 2 * r), h / 2 + h / 8);
    let side = (h / 5).max(2);
    let (sx, sy) = (
        bounce(n.wrapping_mul(3), w.saturating_sub(side)),
        2 * BLOCK_ROWS + bounce(n.wrapping_mul(2), h.saturating_sub(side + 2 * BLOCK_ROWS)),
    );
    for y in 0..height {
        for x in 0..width {
            let i = (y as usize * width as usize + x as usize) * 4;
            let px = &mut out[i..i + 4];
            if y < 2 * BLOCK_ROWS {
                let bit = 15 - (x / block_w).min(15);
                let one = (number >> bit) & 1 == 1;
                let white = if y < BLOCK_ROWS { one } else { !one };
                let v = if white { 255 } else { 0 };
                px[..3].copy_from_slice(&[v, v, v]);
                continue;
            }
            // Gradient panning right by 2 px per frame, a checker texture of 8 px cells.
            let gx = x.wrapping_add(n.wrapping_mul(2)) % w;
            let mut c = [
                (gx * 200 / w + 30) as i32,
                (y * 180 / h + 40) as i32,
                (((w - gx) + (h - y)) * 160 / (w + h) + 50) as i32,
            ];
            let tex = if ((gx / 8) ^ (y / 8)) & 1 == 1 {
                14
            } else {
                -14
            };
            // The disc (orange) and the square (blue), drawn over the background.
            let (ddx, ddy) = (x as i64 - dx as i64 + r as i64, y as i64 - dy as i64);
            if ddx * ddx + ddy * ddy <= (r * r) as i64 {
                c = [230, 140, 40];
            } else if x >= sx && x < sx + side && y >= sy && y < sy + side {
                c = [40, 80, 210];
            }
            let noise = (hash(x, y, n) & 7) as i32 - 3;
            for (o, v) in px[..3].iter_mut().zip(c) {
                *o = (v + tex + noise).clamp(0, 255) as u8;
            }
        }
    }
}

/// Writes frame `n` of the pattern into `out` as I420 (through [`rgba`] and [`to_i420`]).
pub fn i420(n: u32, width: u32, height: u32, out: &mut I420Buffer) -> Result<(), VideoError> {
    let mut buf = Vec::new();
    rgba(n, width, height, &mut buf);
    to_i420(&buf, ColorFormat::Rgba, width, height, out)
}

/// Reads the frame number (`n mod 65536`) of a picture of the pattern from its brightness at
/// `(x, y)` given by `level`; `None` when the blocks do not read clearly.
fn read(width: u32, height: u32, level: impl Fn(u32, u32) -> u32) -> Option<u32> {
    if width < 16 || height < 2 * BLOCK_ROWS {
        return None;
    }
    let block_w = width / 16;
    let mut number = 0;
    for b in 0..16 {
        // The middle half of the block horizontally and rows 4..12 of each line: away from
        // the edges where blocks smear into each other.
        let (x0, x1) = (
            b * block_w + block_w / 4,
            b * block_w + block_w - block_w / 4,
        );
        let mean = |y0: u32| {
            let mut sum = 0u32;
            let mut count = 0u32;
            for y in y0 + 4..y0 + 12 {
                for x in x0..x1.max(x0 + 1) {
                    sum += level(x, y);
                    count += 1;
                }
            }
            sum / count
        };
        let (top, bottom) = (mean(0), mean(BLOCK_ROWS));
        if top.abs_diff(bottom) < 96 {
            return None;
        }
        number = (number << 1) | u32::from(top > bottom);
    }
    Some(number)
}

/// Reads the frame number (`n mod 65536`) from an RGBA picture of the pattern, or `None` if it
/// does not read clearly (not the pattern, too small, or too damaged). A wrong buffer size is
/// `None` too.
pub fn read_frame_number(rgba: &[u8], width: u32, height: u32) -> Option<u32> {
    if rgba.len() != ColorFormat::Rgba.frame_size(width, height) {
        return None;
    }
    read(width, height, |x, y| {
        let i = (y as usize * width as usize + x as usize) * 4;
        (u32::from(rgba[i]) + u32::from(rgba[i + 1]) + u32::from(rgba[i + 2])) / 3
    })
}

/// Reads the frame number from the luma plane of an I420 picture of the pattern; see
/// [`read_frame_number`].
pub fn read_frame_number_i420(frame: &I420Buffer) -> Option<u32> {
    let (w, y) = (frame.width(), frame.y());
    read(w, frame.height(), |px, py| {
        // Luma is 16..=235 (limited range); stretch to 0..=255 so one threshold serves both.
        (u32::from(y[(py * w + px) as usize].clamp(16, 235)) - 16) * 255 / 219
    })
}

/// Luma PSNR in dB between two pictures of the same size (`f64::INFINITY` when identical).
/// Used by the tests and the codec comparison (`benches/CODEC_CHOICE.md`).
pub fn psnr_y(a: &I420Buffer, b: &I420Buffer) -> f64 {
    assert_eq!(
        (a.width(), a.height()),
        (b.width(), b.height()),
        "psnr_y: sizes differ"
    );
    let sse: u64 = a
        .y()
        .iter()
        .zip(b.y())
        .map(|(&p, &q)| (i64::from(p) - i64::from(q)).pow(2) as u64)
        .sum();
    if sse == 0 {
        return f64::INFINITY;
    }
    let mse = sse as f64 / a.y().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
