use super::encode_pattern;
use crate::*;

#[test]
fn psnr_at_daily_default_bitrate() {
    // Daily's default camera settings: 640x360, 30 fps, 680 kbit/s.
    let frames = encode_pattern(640, 360, 680_000, 60, &[]);
    let mut dec = VideoDecoder::new().unwrap();
    let mut pic = I420Buffer::default();
    let mut total = 0.0;
    let mut bytes = 0;
    for (src, enc) in &frames {
        assert!(dec.decode(&enc.data, &mut pic).unwrap());
        total += testpattern::psnr_y(src, &pic);
        bytes += enc.data.len();
    }
    let psnr = total / frames.len() as f64;
    assert!(psnr >= 35.0, "mean luma PSNR {psnr:.2} dB");
    // CBR: within 25 % of the target over 2 s (the first keyframe included).
    let kbps = bytes as f64 * 8.0 / 2.0 / 1000.0;
    assert!((500.0..=850.0).contains(&kbps), "{kbps:.0} kbit/s");
}

#[test]
fn keyframes_only_on_request() {
    let frames = encode_pattern(320, 180, 300_000, 40, &[17, 30]);
    let keys: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| e.keyframe)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(keys, [0, 17, 30]);
    // The VP8 frame tag agrees (P bit 0 on keyframes).
    assert!(
        frames
            .iter()
            .all(|(_, e)| (e.data[0] & 1 == 0) == e.keyframe)
    );
}

#[test]
fn bitrate_changes_without_reinit() {
    let (w, h) = (640, 360);
    let mut enc = VideoEncoder::new(EncoderConfig {
        width: w,
        height: h,
        fps: 30,
        bitrate_bps: 150_000,
        threads: 1,
    })
    .unwrap();
    let mut pic = I420Buffer::default();
    let mut out = EncodedFrame::default();
    let mut sizes = [0usize; 2];
    for n in 0..120u32 {
        if n == 60 {
            enc.set_bitrate(1_200_000).unwrap();
        }
        testpattern::i420(n, w, h, &mut pic).unwrap();
        enc.encode(&pic, n * 3000, false, &mut out).unwrap();
        assert_eq!(out.keyframe, n == 0, "frame {n}");
        if (30..60).contains(&n) {
            sizes[0] += out.data.len();
        } else if n >= 90 {
            sizes[1] += out.data.len();
        }
    }
    assert!(sizes[1] > sizes[0] * 4, "{sizes:?}");
    assert_eq!(enc.config().bitrate_bps, 1_200_000);
}

#[test]
fn size_changes_reach_the_decoder() {
    let mut enc = VideoEncoder::new(EncoderConfig {
        width: 320,
        height: 180,
        ..Default::default()
    })
    .unwrap();
    let mut dec = VideoDecoder::new().unwrap();
    let (mut pic, mut src) = (I420Buffer::default(), I420Buffer::default());
    let mut out = EncodedFrame::default();
    for (n, (w, h)) in [(320, 180), (320, 180), (161, 91), (161, 91), (640, 360)]
        .into_iter()
        .enumerate()
    {
        testpattern::i420(n as u32, w, h, &mut src).unwrap();
        enc.encode(&src, n as u32 * 3000, false, &mut out).unwrap();
        // A new size starts with a keyframe.
        assert_eq!(out.keyframe, n == 0 || n == 2 || n == 4, "frame {n}");
        assert!(dec.decode(&out.data, &mut pic).unwrap());
        assert_eq!((pic.width(), pic.height()), (w, h));
        assert!(testpattern::psnr_y(&src, &pic) > 25.0);
    }
    assert_eq!((enc.config().width, enc.config().height), (640, 360));
}

#[test]
fn timestamps_may_wrap_or_repeat() {
    let mut enc = VideoEncoder::new(EncoderConfig {
        width: 160,
        height: 90,
        ..Default::default()
    })
    .unwrap();
    let mut pic = I420Buffer::default();
    let mut out = EncodedFrame::default();
    for (n, ts) in [u32::MAX - 6000, u32::MAX - 3000, 2, 2, 3002]
        .into_iter()
        .enumerate()
    {
        testpattern::i420(n as u32, 160, 90, &mut pic).unwrap();
        assert!(enc.encode(&pic, ts, false, &mut out).unwrap());
    }
}

#[test]
fn bad_configs_are_errors() {
    let ok = EncoderConfig::default();
    for (cfg, what) in [
        (EncoderConfig { width: 0, ..ok }, "zero"),
        (
            EncoderConfig {
                height: 20_000,
                ..ok
            },
            "16383",
        ),
        (EncoderConfig { fps: 0, ..ok }, "fps"),
        (
            EncoderConfig {
                bitrate_bps: 1000,
                ..ok
            },
            "bitrate",
        ),
        (EncoderConfig { threads: 0, ..ok }, "threads"),
    ] {
        let err = VideoEncoder::new(cfg).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
    let mut enc = VideoEncoder::new(ok).unwrap();
    assert!(enc.set_bitrate(0).is_err());
    assert_eq!(enc.config().bitrate_bps, 680_000);
    assert!(enc.set_cpu_used(99).is_err());
    enc.set_cpu_used(-12).unwrap();
    enc.set_fps(15).unwrap();
}

#[test]
fn garbage_does_not_break_the_decoder() {
    let frames = encode_pattern(160, 90, 200_000, 3, &[]);
    let mut dec = VideoDecoder::new().unwrap();
    let mut pic = I420Buffer::default();
    assert!(!dec.decode(&[], &mut pic).unwrap());
    let mut rng = super::Rng(7);
    let mut errors = 0;
    for len in 1..200 {
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match dec.decode(&junk, &mut pic) {
            Err(VideoError::Codec { function, message }) => {
                assert_eq!(function, "vpx_codec_decode");
                assert!(!message.is_empty());
                errors += 1;
            }
            Err(e) => panic!("{e}"),
            Ok(_) => {}
        }
    }
    assert!(errors > 100, "{errors}");
    // A keyframe decodes normally afterwards.
    assert!(dec.decode(&frames[0].1.data, &mut pic).unwrap());
    assert!(testpattern::psnr_y(&frames[0].0, &pic) > 30.0);
}

#[test]
fn two_threads_decode_the_same() {
    let (w, h) = (1280, 720);
    let mut src = I420Buffer::default();
    testpattern::i420(3, w, h, &mut src).unwrap();
    let mut enc = VideoEncoder::new(EncoderConfig {
        width: w,
        height: h,
        fps: 30,
        bitrate_bps: 2_000_000,
        threads: 2,
    })
    .unwrap();
    let mut out = EncodedFrame::default();
    let mut dec = VideoDecoder::new().unwrap();
    let mut pic = I420Buffer::default();
    for n in 0..5 {
        enc.encode(&src, n * 3000, false, &mut out).unwrap();
        assert!(dec.decode(&out.data, &mut pic).unwrap());
    }
    assert!(testpattern::psnr_y(&src, &pic) > 30.0);
}
