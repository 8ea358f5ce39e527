mod codec;
mod color;
mod pattern;
mod rtp;

use crate::*;

/// Frames `0..count` of the test pattern at `w x h`, encoded at `bitrate` with keyframes at
/// the listed frame numbers (frame 0 is always one).
pub(crate) fn encode_pattern(
    w: u32,
    h: u32,
    bitrate: u32,
    count: u32,
    keyframes: &[u32],
) -> Vec<(I420Buffer, EncodedFrame)> {
    let mut enc = VideoEncoder::new(EncoderConfig {
        width: w,
        height: h,
        fps: 30,
        bitrate_bps: bitrate,
        threads: 1,
    })
    .unwrap();
    (0..count)
        .map(|n| {
            let mut pic = I420Buffer::default();
            testpattern::i420(n, w, h, &mut pic).unwrap();
            let mut out = EncodedFrame::default();
            assert!(
                enc.encode(&pic, n * 3000, keyframes.contains(&n), &mut out)
                    .unwrap()
            );
            (pic, out)
        })
        .collect()
}

/// A deterministic xorshift generator for the tests' random choices.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
