use crate::*;

/// A smooth picture (no edges, which 4:2:0 subsampling cannot keep; at most 2 levels per
/// pixel whatever the size) as RGBA.
fn smooth_rgba(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&[
                (40 + (2 * x).min(180)) as u8,
                (40 + (2 * y).min(180)) as u8,
                (60 + (x + y).min(150)) as u8,
                255,
            ]);
        }
    }
    v
}

/// `rgba` rearranged into `format` (the test's own byte shuffling, to build inputs).
fn rgba_as(rgba: &[u8], format: ColorFormat) -> Vec<u8> {
    let mut out = Vec::new();
    for p in rgba.chunks_exact(4) {
        let [r, g, b, a] = [p[0], p[1], p[2], p[3]];
        match format {
            ColorFormat::Rgba => out.extend_from_slice(&[r, g, b, a]),
            ColorFormat::Bgra => out.extend_from_slice(&[b, g, r, a]),
            ColorFormat::Argb => out.extend_from_slice(&[a, r, g, b]),
            ColorFormat::Abgr => out.extend_from_slice(&[a, b, g, r]),
            ColorFormat::Rgb => out.extend_from_slice(&[r, g, b]),
            ColorFormat::I420 => unreachable!(),
        }
    }
    out
}

#[test]
fn names_and_sizes() {
    for f in ColorFormat::ALL {
        assert_eq!(ColorFormat::parse(f.as_str()), Some(f));
    }
    assert_eq!(ColorFormat::parse("rgba"), None);
    assert_eq!(ColorFormat::parse("NV12"), None);
    assert_eq!(ColorFormat::Rgba.frame_size(640, 360), 640 * 360 * 4);
    assert_eq!(ColorFormat::Rgb.frame_size(640, 360), 640 * 360 * 3);
    assert_eq!(ColorFormat::I420.frame_size(640, 360), 640 * 360 * 3 / 2);
    assert_eq!(ColorFormat::I420.frame_size(3, 3), 9 + 2 * 4);
    let b = I420Buffer::new(3, 3);
    assert_eq!(b.as_bytes().len(), ColorFormat::I420.frame_size(3, 3));
    assert_eq!((b.y().len(), b.u().len(), b.v().len()), (9, 4, 4));
}

#[test]
fn every_format_round_trips_within_tolerance() {
    for (w, h) in [(64u32, 48u32), (33, 17), (1280, 40)] {
        let rgba = smooth_rgba(w, h);
        let mut reference = I420Buffer::default();
        to_i420(&rgba, ColorFormat::Rgba, w, h, &mut reference).unwrap();
        for format in [
            ColorFormat::Rgba,
            ColorFormat::Bgra,
            ColorFormat::Argb,
            ColorFormat::Abgr,
            ColorFormat::Rgb,
        ] {
            let src = rgba_as(&rgba, format);
            let mut yuv = I420Buffer::new(8, 8); // resized by the conversion
            to_i420(&src, format, w, h, &mut yuv).unwrap();
            // Every layout of the same picture gives (nearly) the same I420.
            let worst = yuv
                .as_bytes()
                .iter()
                .zip(reference.as_bytes())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(
                worst <= 1,
                "{format} {w}x{h}: I420 differs from RGBA's by {worst}"
            );
            let mut back = Vec::new();
            from_i420(&yuv, format, &mut back).unwrap();
            assert_eq!(back.len(), src.len());
            let max = back
                .iter()
                .zip(&src)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            let mean = back
                .iter()
                .zip(&src)
                .map(|(a, b)| u32::from(a.abs_diff(*b)))
                .sum::<u32>() as f64
                / src.len() as f64;
            assert!(
                max <= 6 && mean <= 1.5,
                "{format} {w}x{h}: max {max}, mean {mean:.2}"
            );
            // Alpha comes back opaque, in its place.
            let alpha = match format {
                ColorFormat::Rgba | ColorFormat::Bgra => Some(3),
                ColorFormat::Argb | ColorFormat::Abgr => Some(0),
                _ => None,
            };
            if let Some(a) = alpha {
                assert!(back.chunks_exact(4).all(|p| p[a] == 255), "{format}: alpha");
            }
        }
    }
}

#[test]
fn limited_range_bt601() {
    // White and black map to 235 and 16 (limited range); pure red to BT.601's Y 81.
    let (w, h) = (4, 2);
    let mut px = Vec::new();
    for c in [
        [255u8, 255, 255, 255],
        [0, 0, 0, 255],
        [255, 0, 0, 255],
        [255, 0, 0, 255],
    ] {
        px.extend_from_slice(&c);
    }
    let rgba = [px.clone(), px].concat();
    let mut yuv = I420Buffer::default();
    to_i420(&rgba, ColorFormat::Rgba, w, h, &mut yuv).unwrap();
    let y = yuv.y();
    assert!(y[0].abs_diff(235) <= 1 && y[1].abs_diff(16) <= 1, "{y:?}");
    assert!(y[2].abs_diff(81) <= 1, "{y:?}");
}

#[test]
fn i420_is_copied() {
    let mut src = I420Buffer::new(5, 3);
    for (i, b) in src.as_bytes_mut().iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut dst = I420Buffer::default();
    to_i420(src.as_bytes(), ColorFormat::I420, 5, 3, &mut dst).unwrap();
    assert_eq!(dst, src);
    let mut out = vec![1, 2, 3];
    from_i420(&src, ColorFormat::I420, &mut out).unwrap();
    assert_eq!(out, src.as_bytes());
}

#[test]
fn wrong_sizes_are_errors() {
    let mut dst = I420Buffer::default();
    let err = to_i420(&[0; 100], ColorFormat::Rgba, 10, 10, &mut dst).unwrap_err();
    assert_eq!(
        err,
        VideoError::BufferSize {
            what: "source frame",
            expected: 400,
            actual: 100
        }
    );
    assert!(
        err.to_string().contains("expected 400 bytes, got 100"),
        "{err}"
    );
    let err = to_i420(&[0; 149], ColorFormat::I420, 10, 10, &mut dst).unwrap_err();
    assert_eq!(
        err,
        VideoError::BufferSize {
            what: "source frame",
            expected: 150,
            actual: 149
        }
    );
    let err = to_i420(&[], ColorFormat::Rgb, 0, 10, &mut dst).unwrap_err();
    assert!(
        matches!(
            err,
            VideoError::InvalidDimensions {
                width: 0,
                height: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let mut out = Vec::new();
    assert!(matches!(
        from_i420(&I420Buffer::default(), ColorFormat::Rgba, &mut out),
        Err(VideoError::InvalidDimensions { .. })
    ));
}
