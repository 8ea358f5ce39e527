"""A video test pattern that carries its own frame number, and luma PSNR (numpy only).

    from videopattern import make_frame, read_frame_number, psnr_luma

    buf = make_frame(n, 1280, 720, "RGBA")          # C-contiguous uint8 array (or bytes)
    read_frame_number(received, 1280, 720, "RGBA")  # n & 0xFFF, or None
    psnr_luma(received, make_frame(n, 1280, 720), 1280, 720, "RGBA")  # dB

The scene is meant to give a video codec realistic work, so that a PSNR after coding says
something: a textured gradient background (smooth colour ramps, a sinusoidal grid and low-pass
"blobs") that pans sideways 2 px per frame and back, three moving shapes (a bouncing rectangle,
a circle on a Lissajous path and a checkerboard square moving diagonally) and mild noise that
changes from frame to frame (one of 4 precomputed noise fields, sigma about 2 levels). Every
frame is a function of (n, width, height, color_format) alone.

The frame number is drawn in a band across the top of the frame (`band_height(height)` rows,
at least 16): 16 blocks, each width/16 wide, black for 0 and white for 1. Blocks 0-11 hold the
12 low bits of n (most significant first), blocks 12-15 a CRC-4 of those bits (polynomial
x^4 + x + 1) XOR 0b1010, so an all-black or all-white band, or a single wrong block, does not
read as a number. The reader averages the luma of each block's inner half (away from the edges,
where a codec's blur and ringing sit) and thresholds it; a block whose mean sits between a
quarter and three quarters of the range is "unreadable" and the result is None. Numbers repeat
every 4096 frames (136 s at 30 fps): a caller that runs longer unwraps them (`unwrap_number`).

Colour formats, as the SDK's `CustomVideoSource` takes them: RGBA, BGRA, ARGB, ABGR (4 bytes per
pixel in that byte order, alpha 255), RGB (3 bytes) and I420 (BT.601 limited range, planar: Y
width x height, then U, then V, each ceil(width/2) x ceil(height/2)). The pattern is built
directly in the requested format (backgrounds and shape colours precomputed per size and
format), so a 1280x720 frame costs a few ms: one copy of the panned background and a few slice
assignments.

Luma is BT.601 full range, Y' = 0.299 R + 0.587 G + 0.114 B on 0-255, for every format (an I420
Y plane is expanded from 16-235). `psnr_luma` compares two frames on it, leaving out the number
band (the band's hard black/white edges would dominate the error, and it is not scene content).
"""

from __future__ import annotations

import functools
import math

import numpy as np

FORMATS = ("RGBA", "BGRA", "ARGB", "ABGR", "RGB", "I420")
BLOCKS = 16  # blocks in the number band
NUMBER_BITS = 12  # low bits of n carried
NUMBER_MOD = 1 << NUMBER_BITS
_CHECK_XOR = 0b1010
_PAN_RANGE = 128  # the background pans over this many pixels and back (even)
_PAN_STEP = 2  # pixels per frame (even, so that I420 chroma pans by whole samples)
_NOISE_VARIANTS = 4
PSNR_CAP = 100.0  # what psnr_luma returns for identical frames (unless cap=None)

_ORDER = {"RGBA": (0, 1, 2, 3), "BGRA": (2, 1, 0, 3), "ARGB": (1, 2, 3, 0), "ABGR": (3, 2, 1, 0)}
# where R, G, B, A go in the output pixel: _ORDER[fmt][k] = byte index of channel k (R, G, B, A)


def frame_size(width: int, height: int, color_format: str = "RGBA") -> int:
    """Bytes in one frame of that size and format."""
    if color_format == "RGB":
        return width * height * 3
    if color_format == "I420":
        return width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)
    if color_format in _ORDER:
        return width * height * 4
    raise ValueError(f"color_format must be one of {', '.join(FORMATS)}, not {color_format!r}")


def band_height(height: int) -> int:
    """Rows of the number band: about height/24, even, at least 16 (at most half the frame)."""
    return min(max(16, (height // 24) // 2 * 2), max(2, height // 2))


def _crc4(value: int) -> int:
    """CRC-4 (x^4 + x + 1, initial 0) of the 12-bit value, most significant bit first."""
    crc = 0
    for i in range(NUMBER_BITS - 1, -1, -1):
        bit = (value >> i) & 1
        top = (crc >> 3) & 1
        crc = ((crc << 1) & 0xF) ^ (0x3 if top ^ bit else 0)
    return crc


def _band_bits(n: int) -> list[int]:
    v = n % NUMBER_MOD
    check = _crc4(v) ^ _CHECK_XOR
    word = (v << 4) | check
    return [(word >> (15 - i)) & 1 for i in range(BLOCKS)]


def _block_edges(width: int) -> list[int]:
    return [i * width // BLOCKS for i in range(BLOCKS + 1)]


# ---------------------------------------------------------------------------------------------
# colour conversion


def _rgb_to_yuv601(rgb: np.ndarray) -> np.ndarray:
    """float RGB (..., 3) on 0-255 -> float Y'CbCr BT.601 limited range (..., 3)."""
    m = np.array(
        [
            [0.256788, 0.504129, 0.097906],
            [-0.148223, -0.290993, 0.439216],
            [0.439216, -0.367788, -0.071427],
        ]
    )
    return rgb @ m.T + np.array([16.0, 128.0, 128.0])


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _chroma_mean(rgb: np.ndarray) -> np.ndarray:
    """2x2 average of float RGB (H, W, 3), edges replicated for odd sizes -> (ceil H/2, ceil W/2, 3)."""
    h, w = rgb.shape[:2]
    if h % 2:
        rgb = np.concatenate([rgb, rgb[-1:]], axis=0)
    if w % 2:
        rgb = np.concatenate([rgb, rgb[:, -1:]], axis=1)
    return 0.25 * (rgb[0::2, 0::2] + rgb[1::2, 0::2] + rgb[0::2, 1::2] + rgb[1::2, 1::2])


class _Planes:
    """The frame's planes in one format: a list of (array, x step, y step, component picker).

    Packed formats have one plane (H, W, C); I420 has Y (H, W), U and V (ceil H/2, ceil W/2).
    `color(rgb)` turns an RGB colour into the value(s) each plane stores."""

    def __init__(self, fmt: str):
        self.fmt = fmt

    def colors(self, rgb: tuple[int, int, int]) -> list[np.ndarray]:
        if self.fmt == "I420":
            y, u, v = _u8(_rgb_to_yuv601(np.array(rgb, dtype=np.float64)))
            return [np.uint8(y), np.uint8(u), np.uint8(v)]
        if self.fmt == "RGB":
            return [np.array(rgb, dtype=np.uint8)]
        px = np.zeros(4, dtype=np.uint8)
        order = _ORDER[self.fmt]
        for k, c in enumerate((*rgb, 255)):
            px[order[k]] = c
        return [px]

    def from_rgb(self, rgb: np.ndarray) -> list[np.ndarray]:
        """float RGB image (H, W, 3) -> this format's planes (uint8)."""
        h, w = rgb.shape[:2]
        if self.fmt == "I420":
            y = _u8(_rgb_to_yuv601(rgb)[..., 0])
            uv = _u8(_rgb_to_yuv601(_chroma_mean(rgb))[..., 1:])
            return [y, np.ascontiguousarray(uv[..., 0]), np.ascontiguousarray(uv[..., 1])]
        if self.fmt == "RGB":
            return [_u8(rgb)]
        out = np.empty((h, w, 4), dtype=np.uint8)
        order = _ORDER[self.fmt]
        c8 = _u8(rgb)
        for k in range(3):
            out[..., order[k]] = c8[..., k]
        out[..., order[3]] = 255
        return [out]

    @property
    def steps(self) -> list[int]:
        return [1, 2, 2] if self.fmt == "I420" else [1]


# ---------------------------------------------------------------------------------------------
# the scene


def _background_rgb(width: int, height: int, seed: int) -> np.ndarray:
    """float RGB (height, width, 3): colour ramps, a sinusoidal grid and low-pass blobs."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height)[:, None]
    x = np.linspace(0.0, 1.0, width)[None, :]
    r = 40 + 150 * x + 30 * y
    g = 60 + 120 * y + 20 * np.sin(2 * np.pi * (x * 1.5 + y * 0.5))
    b = 170 - 110 * x * y + 30 * (1 - y)
    # a soft grid, like tiles or a fabric texture
    sx, sy = width / 24.0, height / 13.5
    grid = 18 * np.sin(2 * np.pi * np.arange(width)[None, :] / sx) * np.sin(2 * np.pi * np.arange(height)[:, None] / sy)
    # low-pass random blobs: coarse noise upsampled with bilinear interpolation
    cy, cx = max(2, height // 40), max(2, width // 40)
    coarse = rng.normal(0.0, 22.0, size=(cy + 1, cx + 1, 3))
    fy = np.linspace(0, cy, height)
    fx = np.linspace(0, cx, width)
    iy, ix = np.minimum(fy.astype(int), cy - 1), np.minimum(fx.astype(int), cx - 1)
    wy, wx = (fy - iy)[:, None, None], (fx - ix)[None, :, None]
    blobs = (
        coarse[iy][:, ix] * (1 - wy) * (1 - wx)
        + coarse[iy + 1][:, ix] * wy * (1 - wx)
        + coarse[iy][:, ix + 1] * (1 - wy) * wx
        + coarse[iy + 1][:, ix + 1] * wy * wx
    )
    # fine detail: a fixed texture of small random speckles
    fine = rng.normal(0.0, 6.0, size=(height, width, 1))
    rgb = np.stack([r + 0 * x, g + 0 * x, b + 0 * x], axis=-1) + grid[..., None] + blobs + fine
    return np.clip(rgb, 0, 255)


@functools.lru_cache(maxsize=16)
def _scene(width: int, height: int, fmt: str) -> dict:
    """Everything precomputed for one size and format."""
    frame_size(width, height, fmt)  # validates the format
    planes = _Planes(fmt)
    wide = width + _PAN_RANGE
    base = _background_rgb(wide, height, seed=1234)
    rng = np.random.default_rng(99)
    variants = []
    for _ in range(_NOISE_VARIANTS):
        noise = rng.normal(0.0, 2.0, size=(height, wide, 1))
        variants.append(planes.from_rgb(base + noise))
    bh = band_height(height)
    size = max(8, height // 6)
    # the circle's mask at full and half resolution
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2.0
    disc = (yy - c) ** 2 + (xx - c) ** 2 <= (size / 2.0) ** 2
    hs = (size + 1) // 2
    yy2, xx2 = np.mgrid[0:hs, 0:hs]
    c2 = (2 * yy2 + 0.5 - c) ** 2 + (2 * xx2 + 0.5 - c) ** 2 <= (size / 2.0) ** 2
    # the checkerboard sprite (8 squares a side), RGB
    cell = max(1, size // 8)
    board = ((np.arange(size)[:, None] // cell + np.arange(size)[None, :] // cell) % 2).astype(np.float64)
    sprite = np.stack([40 + 200 * board, 200 - 150 * board, 60 + 120 * board], axis=-1)
    return {
        "planes": planes,
        "variants": variants,
        "band": bh,
        "size": size,
        "masks": [disc, c2, c2],
        "sprite": planes.from_rgb(sprite),
        "rect_color": planes.colors((230, 70, 50)),
        "disc_color": planes.colors((250, 220, 40)),
        "black": planes.colors((0, 0, 0)),
        "white": planes.colors((255, 255, 255)),
    }


def _tri(t: float, span: int) -> int:
    """Triangle wave: position in [0, span] for a step count t (period 2 span)."""
    if span <= 0:
        return 0
    p = int(t) % (2 * span)
    return p if p <= span else 2 * span - p


def _even(v: int) -> int:
    return v - (v % 2)


def _shape_positions(n: int, width: int, height: int, bh: int, size: int) -> dict:
    free_w, free_h = max(0, width - size), max(0, height - bh - size)
    rect = (_even(_tri(n * 6, free_w)), bh + _even(_tri(n * 1, free_h) // 2 + free_h // 4))
    lx = 0.5 + 0.45 * math.sin(2 * math.pi * n / 97.0)
    ly = 0.5 + 0.45 * math.sin(2 * math.pi * n / 61.0 + 1.0)
    disc = (_even(int(lx * free_w)), bh + _even(int(ly * free_h)))
    sprite = (_even(_tri(n * 4, free_w)), bh + _even(_tri(n * 3, free_h)))
    return {"rect": rect, "disc": disc, "sprite": sprite}


def _box(xy: tuple[int, int], wh: tuple[int, int], step: int, pw: int, ph: int) -> tuple[int, int, int, int]:
    """A shape's (x0, y0, x1, y1) in a plane subsampled by ``step``, clipped to it."""
    x0, y0 = xy[0] // step, xy[1] // step
    return x0, y0, min(pw, x0 + -(-wh[0] // step)), min(ph, y0 + -(-wh[1] // step))


def make_frame(n: int, width: int, height: int, color_format: str = "RGBA", as_bytes: bool = False):
    """Frame number n of the pattern: a C-contiguous uint8 array ((height, width, 4) for the
    4-byte formats, (height, width, 3) for RGB, flat for I420), or bytes with ``as_bytes``.

    Either goes to ``CustomVideoSource.write_frame`` as is. Deterministic in
    (n, width, height, color_format). Sizes from 32x32 up (smaller ones work, but the number band
    then covers much of the frame)."""
    s = _scene(width, height, color_format)
    planes: _Planes = s["planes"]
    variant = s["variants"][n % _NOISE_VARIANTS]
    off = _even(_tri(n * _PAN_STEP, _PAN_RANGE))
    if color_format == "I420":
        cw, ch = (width + 1) // 2, (height + 1) // 2
        out = np.empty(frame_size(width, height, "I420"), dtype=np.uint8)
        views = [
            out[: width * height].reshape(height, width),
            out[width * height : width * height + cw * ch].reshape(ch, cw),
            out[width * height + cw * ch :].reshape(ch, cw),
        ]
        for v, src, step in zip(views, variant, planes.steps):
            o = off // step
            v[...] = src[:, o : o + v.shape[1]]
    else:
        src = variant[0]
        out = np.ascontiguousarray(src[:, off : off + width])
        views = [out]
    bh, size = s["band"], s["size"]
    pos = _shape_positions(n, width, height, bh, size)
    for pi, (v, step) in enumerate(zip(views, planes.steps)):
        ph, pw = v.shape[:2]
        # the rectangle: 1.6 shapes wide, 0.8 tall
        x0, y0, x1, y1 = _box(pos["rect"], (int(size * 1.6), int(size * 0.8)), step, pw, ph)
        v[y0:y1, x0:x1] = s["rect_color"][pi]
        # the checkerboard sprite
        x0, y0, x1, y1 = _box(pos["sprite"], (size, size), step, pw, ph)
        v[y0:y1, x0:x1] = s["sprite"][pi][: y1 - y0, : x1 - x0]
        # the disc, on top
        x0, y0, x1, y1 = _box(pos["disc"], (size, size), step, pw, ph)
        m = s["masks"][pi][: y1 - y0, : x1 - x0]
        v[y0:y1, x0:x1][m] = s["disc_color"][pi]
        # the number band
        edges = _block_edges(width)
        rows = -(-bh // step)
        for i, bit in enumerate(_band_bits(n)):
            a, b = edges[i] // step, (edges[i + 1] // step if i < BLOCKS - 1 else pw)
            v[:rows, a:b] = (s["white"] if bit else s["black"])[pi]
    return out.tobytes() if as_bytes else out


# ---------------------------------------------------------------------------------------------
# reading frames back


def _as_u8(buffer, width: int, height: int, color_format: str) -> np.ndarray:
    size = frame_size(width, height, color_format)
    a = np.frombuffer(buffer, dtype=np.uint8) if not isinstance(buffer, np.ndarray) else buffer.reshape(-1)
    if a.dtype != np.uint8:
        a = a.view(np.uint8)
    if a.size != size:
        raise ValueError(f"expected {size} bytes for {width}x{height} {color_format}, got {a.size}")
    return a


def to_luma(buffer, width: int, height: int, color_format: str = "RGBA", rows: slice | None = None) -> np.ndarray:
    """BT.601 full-range luma (float32, (height, width), 0-255) of a frame in any format;
    ``rows`` restricts it to a slice of rows."""
    a = _as_u8(buffer, width, height, color_format)
    rows = rows or slice(0, height)
    if color_format == "I420":
        y = a[: width * height].reshape(height, width)[rows].astype(np.float32)
        return (y - 16.0) * np.float32(255.0 / 219.0)
    c = 3 if color_format == "RGB" else 4
    px = a.reshape(height, width, c)[rows]
    order = (0, 1, 2) if color_format == "RGB" else _ORDER[color_format][:3]
    wts = np.zeros(c, dtype=np.float32)
    for k, wgt in zip(order, (0.299, 0.587, 0.114)):
        wts[k] = wgt
    return px @ wts  # (rows, width) float32


def read_frame_number(buffer, width: int, height: int, color_format: str = "RGBA") -> int | None:
    """The 12 low bits of the frame number drawn by make_frame, or None when a block is
    unreadable or the check bits do not match (not a pattern frame, or too damaged)."""
    bh = band_height(height)
    m = max(1, bh // 4)
    y = to_luma(buffer, width, height, color_format, rows=slice(m, bh - m))
    edges = _block_edges(width)
    means = []
    for i in range(BLOCKS):
        a, b = edges[i], edges[i + 1]
        q = max(0, (b - a) // 4)
        means.append(float(y[:, a + q : b - q].mean()))
    word = 0
    for v in means:
        if 255 * 0.25 < v < 255 * 0.75:
            return None
        word = (word << 1) | (v >= 127.5)
    value, check = word >> 4, word & 0xF
    if _crc4(value) ^ _CHECK_XOR != check:
        return None
    return value


def unwrap_number(low: int, expected: int) -> int:
    """The frame number n with n % 4096 == low that is nearest to ``expected``."""
    base = expected - (expected % NUMBER_MOD)
    cands = (base - NUMBER_MOD + low, base + low, base + NUMBER_MOD + low)
    return min(cands, key=lambda c: abs(c - expected))


def psnr_luma(a, b, width: int, height: int, color_format: str = "RGBA", cap: float | None = PSNR_CAP) -> float:
    """PSNR in dB (peak 255) between the BT.601 luma of two frames, below the number band.
    Identical frames give ``cap`` (100 dB by default; ``cap=None``: infinity); the result is
    never above ``cap``."""
    rows = slice(band_height(height), height)
    ya = to_luma(a, width, height, color_format, rows=rows)
    yb = to_luma(b, width, height, color_format, rows=rows)
    mse = float(np.mean((ya - yb) ** 2, dtype=np.float64))
    if mse == 0.0:
        return math.inf if cap is None else cap
    p = 10.0 * math.log10(255.0 * 255.0 / mse)
    return p if cap is None else min(cap, p)
