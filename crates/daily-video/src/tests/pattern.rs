use crate::*;

#[test]
fn frame_numbers_read_back() {
    let (w, h) = (320, 180);
    let mut rgba = Vec::new();
    let mut yuv = I420Buffer::default();
    for n in [0u32, 1, 2, 255, 4096, 65535, 65536, 70000, u32::MAX] {
        testpattern::rgba(n, w, h, &mut rgba);
        assert_eq!(
            testpattern::read_frame_number(&rgba, w, h),
            Some(n & 0xFFFF)
        );
        testpattern::i420(n, w, h, &mut yuv).unwrap();
        assert_eq!(testpattern::read_frame_number_i420(&yuv), Some(n & 0xFFFF));
    }
    // Tiny sizes draw without panicking (and need not read back).
    for (w, h) in [(0, 0), (1, 1), (15, 7), (16, 31)] {
        testpattern::rgba(u32::MAX, w, h, &mut rgba);
        assert_eq!(rgba.len(), (w * h * 4) as usize);
        let _ = testpattern::read_frame_number(&rgba, w, h);
    }
    // Not the pattern, or the wrong size: no number.
    assert_eq!(
        testpattern::read_frame_number(&vec![128; (w * h * 4) as usize], w, h),
        None
    );
    assert_eq!(testpattern::read_frame_number(&rgba, w, h + 1), None);
    assert_eq!(
        testpattern::read_frame_number_i420(&I420Buffer::new(w, h)),
        None
    );
}

#[test]
fn pattern_moves_and_is_deterministic() {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    testpattern::rgba(7, 160, 90, &mut a);
    testpattern::rgba(7, 160, 90, &mut b);
    assert_eq!(a, b);
    testpattern::rgba(8, 160, 90, &mut b);
    let changed = a
        .iter()
        .zip(&b)
        .skip(160 * 32 * 4)
        .filter(|(x, y)| x != y)
        .count();
    assert!(
        changed > a.len() / 4,
        "only {changed} bytes changed between frames"
    );
}

#[test]
fn numbers_survive_low_bitrate_coding() {
    // 320x180 at 150 kbit/s: blurry, but every number must read.
    let (w, h) = (320, 180);
    let frames = super::encode_pattern(w, h, 150_000, 60, &[]);
    let mut dec = VideoDecoder::new().unwrap();
    let (mut pic, mut rgba) = (I420Buffer::default(), Vec::new());
    for (n, (_, enc)) in frames.iter().enumerate() {
        assert!(dec.decode(&enc.data, &mut pic).unwrap());
        from_i420(&pic, ColorFormat::Rgba, &mut rgba).unwrap();
        assert_eq!(testpattern::read_frame_number(&rgba, w, h), Some(n as u32));
        assert_eq!(testpattern::read_frame_number_i420(&pic), Some(n as u32));
    }
}
