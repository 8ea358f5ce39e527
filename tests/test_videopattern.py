"""examples/videopattern.py: the video benchmark's test pattern (pure numpy, no call)."""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

import videopattern as vp  # noqa: E402

SIZES = [(640, 360), (1280, 720), (33, 35), (64, 48)]


def planes(buf: np.ndarray, w: int, h: int, fmt: str) -> list[np.ndarray]:
    """Views of a frame as float planes (H, W[, C]) for degrading it like a codec would."""
    a = np.asarray(buf, dtype=np.uint8).reshape(-1)
    if fmt == "I420":
        cw, ch = (w + 1) // 2, (h + 1) // 2
        return [a[: w * h].reshape(h, w), a[w * h : w * h + cw * ch].reshape(ch, cw), a[w * h + cw * ch :].reshape(ch, cw)]
    return [a.reshape(h, w, 3 if fmt == "RGB" else 4)]


def box_blur(p: np.ndarray, r: int) -> np.ndarray:
    """(2r+1)^2 box blur with edge replication, on the first two axes."""
    pad = [(r, r), (r, r)] + [(0, 0)] * (p.ndim - 2)
    q = np.pad(p, pad, mode="edge")
    c = np.cumsum(np.cumsum(q, axis=0), axis=1)
    c = np.pad(c, [(1, 0), (1, 0)] + [(0, 0)] * (p.ndim - 2))
    k = 2 * r + 1
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return s / (k * k)


def degrade(buf, w: int, h: int, fmt: str, seed: int = 0, sigma: float = 10.0, blur: int = 2) -> bytes:
    """JPEG-like damage: 8x8 blockiness (half of each block pulled to its mean), a box blur and
    Gaussian noise; alpha is kept (a codec does not carry it)."""
    rng = np.random.default_rng(seed)
    out = []
    for p in planes(buf, w, h, fmt):
        f = p.astype(np.float64)
        ph, pw = f.shape[:2]
        bh, bw = ph // 8 * 8, pw // 8 * 8
        if bh and bw:
            blk = f[:bh, :bw].reshape(bh // 8, 8, bw // 8, 8, *f.shape[2:]).mean(axis=(1, 3))
            up = np.repeat(np.repeat(blk, 8, axis=0), 8, axis=1)
            f[:bh, :bw] = 0.5 * f[:bh, :bw] + 0.5 * up
        f = box_blur(f, blur) + rng.normal(0.0, sigma, size=f.shape)
        g = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        if fmt in ("RGBA", "BGRA", "ARGB", "ABGR"):
            alpha = {"RGBA": 3, "BGRA": 3, "ARGB": 0, "ABGR": 0}[fmt]
            g[..., alpha] = p[..., alpha]
        out.append(g.reshape(-1))
    return np.concatenate(out).tobytes()


def test_crc_rejects_trivial_bands():
    # An all-black or all-white band must not read as a number.
    for w, h in [(640, 360), (64, 48)]:
        for level in (0, 255):
            for fmt in vp.FORMATS:
                if fmt == "I420":
                    y = 16 if level == 0 else 235
                    buf = bytes([y]) * (w * h) + bytes([128]) * (2 * ((w + 1) // 2) * ((h + 1) // 2))
                else:
                    buf = bytes([level]) * vp.frame_size(w, h, fmt)
                assert vp.read_frame_number(buf, w, h, fmt) is None, (fmt, level)


def test_every_single_block_error_is_detected():
    w, h = 320, 180
    frame = vp.make_frame(1234, w, h, "RGB")
    edges = [i * w // 16 for i in range(17)]
    bh = vp.band_height(h)
    for i in range(16):
        f = frame.copy()
        band = f[:bh, edges[i] : edges[i + 1]]
        band[...] = 255 - band  # flip the block
        assert vp.read_frame_number(f, w, h, "RGB") is None, i


@pytest.mark.parametrize("fmt", vp.FORMATS)
@pytest.mark.parametrize("w,h", SIZES)
def test_round_trip(fmt, w, h):
    for n in [0, 1, 2, 29, 30, 511, 4095, 4096, 4097, 123457]:
        buf = vp.make_frame(n, w, h, fmt)
        assert buf.dtype == np.uint8 and buf.flags["C_CONTIGUOUS"]
        assert buf.nbytes == vp.frame_size(w, h, fmt)
        assert vp.read_frame_number(buf, w, h, fmt) == n % 4096
        b = vp.make_frame(n, w, h, fmt, as_bytes=True)
        assert isinstance(b, bytes) and b == buf.tobytes()
        assert vp.read_frame_number(b, w, h, fmt) == n % 4096
        assert vp.read_frame_number(memoryview(b), w, h, fmt) == n % 4096


def test_deterministic_and_moving():
    a = vp.make_frame(100, 640, 360)
    vp._scene.cache_clear()
    b = vp.make_frame(100, 640, 360)
    assert np.array_equal(a, b)
    c = vp.make_frame(101, 640, 360)
    # consecutive frames differ below the band (motion + noise), but not wholesale
    p = vp.psnr_luma(a, c, 640, 360)
    assert 15.0 < p < 45.0, p


def test_formats_agree():
    # The same scene in every format: luma agrees within rounding (I420 goes through limited range).
    w, h = 640, 360
    ref = vp.to_luma(vp.make_frame(7, w, h, "RGB"), w, h, "RGB")
    for fmt in vp.FORMATS:
        y = vp.to_luma(vp.make_frame(7, w, h, fmt), w, h, fmt)
        assert np.abs(y - ref).max() <= 2.0, fmt
    # alpha is opaque in the 4-byte formats
    for fmt, k in [("RGBA", 3), ("BGRA", 3), ("ARGB", 0), ("ABGR", 0)]:
        assert (vp.make_frame(7, w, h, fmt)[..., k] == 255).all()
    # and the byte orders are what they say: R of RGBA is R of RGB
    rgb = vp.make_frame(3, w, h, "RGB")
    expected = {"RGBA": (0, 1, 2), "BGRA": (2, 1, 0), "ARGB": (1, 2, 3), "ABGR": (3, 2, 1)}  # bytes of R, G, B
    for fmt, order in expected.items():
        px = vp.make_frame(3, w, h, fmt)
        for k in range(3):
            assert np.array_equal(px[..., order[k]], rgb[..., k]), (fmt, k)


@pytest.mark.parametrize("fmt", vp.FORMATS)
@pytest.mark.parametrize("w,h", [(640, 360), (1280, 720)])
def test_number_survives_jpeg_like_damage(fmt, w, h):
    for n in [0, 5, 300, 4095]:
        buf = vp.make_frame(n, w, h, fmt)
        bad = degrade(buf, w, h, fmt, seed=n, sigma=12.0, blur=3)
        assert vp.read_frame_number(bad, w, h, fmt) == n, n
        p = vp.psnr_luma(bad, buf, w, h, fmt)
        assert 20.0 < p < 40.0, p


def test_heavy_damage_is_none_not_wrong():
    # Damage beyond what the reader can take gives None, never a wrong number.
    w, h = 640, 360
    wrong = 0
    for n in range(0, 200, 7):
        buf = vp.make_frame(n, w, h)
        bad = degrade(buf, w, h, "RGBA", seed=n, sigma=120.0, blur=0)
        r = vp.read_frame_number(bad, w, h)
        wrong += r is not None and r != n
    assert wrong == 0


def test_psnr():
    w, h = 640, 360
    a = vp.make_frame(42, w, h)
    assert vp.psnr_luma(a, a, w, h) == vp.PSNR_CAP == 100.0
    assert vp.psnr_luma(a, a.copy(), w, h, cap=None) == math.inf
    # Gaussian noise of sigma 5 on every channel: luma noise sigma = 5 * |(0.299, 0.587, 0.114)|
    rng = np.random.default_rng(1)
    noisy = np.clip(a.astype(np.float64) + rng.normal(0, 5.0, a.shape), 0, 255).astype(np.uint8)
    noisy[..., 3] = 255
    sd = 5.0 * math.sqrt(0.299**2 + 0.587**2 + 0.114**2)
    expected = 20 * math.log10(255 / sd)
    assert abs(vp.psnr_luma(noisy, a, w, h) - expected) < 0.5
    # the band is not counted: a frame with another number but the same scene has the cap
    b = a.copy()
    b[: vp.band_height(h)] = 0
    assert vp.psnr_luma(a, b, w, h) == 100.0
    # symmetric, and smaller for more noise
    worse = np.clip(a.astype(np.float64) + rng.normal(0, 20.0, a.shape), 0, 255).astype(np.uint8)
    assert vp.psnr_luma(worse, a, w, h) == pytest.approx(vp.psnr_luma(a, worse, w, h))
    assert vp.psnr_luma(worse, a, w, h) < vp.psnr_luma(noisy, a, w, h) - 8


def test_to_luma_i420_matches_rgb():
    w, h = 64, 48
    y = vp.to_luma(vp.make_frame(9, w, h, "I420"), w, h, "I420")
    assert y.shape == (h, w) and y.dtype == np.float32
    assert 0.0 <= float(y.min()) and float(y.max()) <= 255.5


def test_unwrap_number():
    for n in [0, 5, 4095, 4096, 4100, 10_000, 123_456]:
        for err in [-900, -1, 0, 1, 900]:
            assert vp.unwrap_number(n % 4096, max(0, n + err)) == n


def test_sizes_checked():
    with pytest.raises(ValueError, match="expected"):
        vp.read_frame_number(bytes(10), 640, 360)
    with pytest.raises(ValueError, match="color_format"):
        vp.make_frame(0, 64, 48, "NV12")


def test_fast():
    # A 1280x720 RGBA frame in a few ms once the scene is built; reading the number is cheaper.
    w, h = 1280, 720
    vp.make_frame(0, w, h)
    t = time.perf_counter()
    for n in range(30):
        f = vp.make_frame(n, w, h)
    make_ms = (time.perf_counter() - t) / 30 * 1e3
    t = time.perf_counter()
    for _ in range(30):
        vp.read_frame_number(f, w, h)
    read_ms = (time.perf_counter() - t) / 30 * 1e3
    assert make_ms < 10.0 and read_ms < 5.0, (make_ms, read_ms)
