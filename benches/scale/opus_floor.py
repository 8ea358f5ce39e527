"""The Opus floor of one pair: libopus encode + decode of one 20 ms mono frame, called directly.

    python benches/scale/opus_floor.py [--passes 5]

A bot pair costs at least one Opus encode (the sender) and one decode (the receiver) per 20 ms,
whatever the SDK around them. This measures exactly that with Debian's libopus (`libopus.so.0`,
1.3.1 on Debian 12; since issue 18 our SDK links its own libopus 1.6.1 statically, so this floor
is the older library's: `cargo run --release -p daily-media --example opus_cost` measures ours)
through ctypes, on data/librivox_16k.wav brought to 48 kHz (PyAV's resampler, outside the
timing), for two encoder settings, both configured like our client's encoder (the Rust criterion
bench `opus_20ms_paired` in crates/daily-media/benches/media.rs checks that libopus with these
settings produces the same bytes as our wrapper): mono, 48 kHz, in-band FEC off and 0 % expected
loss (the client turns FEC on only while loss is reported), complexity 4 (the client's
ENCODER_COMPLEXITY), and
- AUDIO application at 64 kbit/s (our client's default for custom/microphone tracks),
- VOIP application at 32 kbit/s.

Timing: each pass encodes and decodes every 20 ms frame of the file in order (a fresh encoder and
decoder per pass, after one untimed warm-up pass); the figure of a pass is the thread's CPU time
(CLOCK_THREAD_CPUTIME_ID, so time the machine gave to other processes is not counted) over the
pass divided by the number of frames, i.e. the mean cost per 20 ms of audio, including two
ctypes calls (about a microsecond each). The reported figure is the median over --passes passes.
cpu_pct_per_pair_floor = us_per_frame_audio64k / 20000 us * 100: one encode + one decode every
20 ms at our client's setting, in % of one core.

Prints one JSON line (the last line on stdout):
{"stack": "opus-floor", "us_per_frame_audio64k": ..., "us_per_frame_voip32k": ..., "cpu_pct_per_pair_floor": ...}
Per-pass figures, the wall-clock median per frame, the share of frames libopus coded as SILK,
hybrid or CELT (from each packet's TOC byte), the libopus version, and for context the same
passes on the Rust criterion bench's synthetic signal go to stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SPEECH = os.path.join(HERE, "..", "..", "data", "librivox_16k.wav")

RATE = 48000
FRAME = 960  # 20 ms at 48 kHz
MAX_PACKET = 4000
OPUS_OK = 0
OPUS_APPLICATION_VOIP = 2048
OPUS_APPLICATION_AUDIO = 2049
OPUS_SET_BITRATE_REQUEST = 4002
OPUS_SET_COMPLEXITY_REQUEST = 4010
OPUS_GET_COMPLEXITY_REQUEST = 4011
OPUS_SET_INBAND_FEC_REQUEST = 4012
OPUS_SET_PACKET_LOSS_PERC_REQUEST = 4014


def load_libopus() -> ctypes.CDLL:
    lib = ctypes.CDLL("libopus.so.0")
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    # opus_encoder_ctl is variadic: leave argtypes unset and pass ctypes ints/pointers
    lib.opus_encoder_ctl.restype = ctypes.c_int
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int32]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    return lib


def speech_48k() -> np.ndarray:
    """The speech file at 48 kHz mono int16, cut to whole 20 ms frames (PyAV's swr resampler)."""
    import av

    with wave.open(SPEECH, "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, SPEECH
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    res = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    f = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    f.sample_rate = 16000
    out = [x.to_ndarray().reshape(-1) for x in res.resample(f)]
    out += [x.to_ndarray().reshape(-1) for x in res.resample(None)]  # flush
    s = np.ascontiguousarray(np.concatenate(out).astype("<i2"))
    return s[: len(s) // FRAME * FRAME]


def speechlike_48k(frames: int) -> np.ndarray:
    """The synthetic signal of the Rust criterion bench (crates/daily-media/benches/media.rs,
    `speechlike`): three harmonics under a 3 Hz envelope. Used only for a stderr line relating
    these figures to that bench's; libopus treats it very differently from real speech."""
    t = np.arange(frames * FRAME) / RATE
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    s = env * (0.3 * np.sin(2 * np.pi * 180.0 * t) + 0.2 * np.sin(2 * np.pi * 360.0 * t) + 0.1 * np.sin(2 * np.pi * 1250.0 * t))
    return np.ascontiguousarray((s * 32767.0).astype("<i2"))  # truncation toward 0, as `as i16`


def make_encoder(lib, application: int, bitrate: int) -> tuple[int, int]:
    err = ctypes.c_int(0)
    enc = lib.opus_encoder_create(RATE, 1, application, ctypes.byref(err))
    assert err.value == OPUS_OK and enc, f"opus_encoder_create: {err.value}"
    for req, val in (
        (OPUS_SET_BITRATE_REQUEST, bitrate),
        (OPUS_SET_INBAND_FEC_REQUEST, 0),
        (OPUS_SET_PACKET_LOSS_PERC_REQUEST, 0),
        (OPUS_SET_COMPLEXITY_REQUEST, 4),
    ):
        rc = lib.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(req), ctypes.c_int32(val))
        assert rc == OPUS_OK, f"opus_encoder_ctl({req}) = {rc}"
    cx = ctypes.c_int32(-1)
    rc = lib.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(OPUS_GET_COMPLEXITY_REQUEST), ctypes.byref(cx))
    assert rc == OPUS_OK
    return enc, cx.value


def one_pass(lib, pcm: np.ndarray, application: int, bitrate: int) -> dict:
    enc, complexity = make_encoder(lib, application, bitrate)
    err = ctypes.c_int(0)
    dec = lib.opus_decoder_create(RATE, 1, ctypes.byref(err))
    assert err.value == OPUS_OK and dec
    packet = (ctypes.c_ubyte * MAX_PACKET)()
    out = (ctypes.c_int16 * FRAME)()
    base = pcm.ctypes.data
    nframes = len(pcm) // FRAME
    step = FRAME * 2  # bytes per frame
    encode, decode = lib.opus_encode, lib.opus_decode
    wall = []
    nbytes = 0
    modes = [0] * 32
    c0 = time.thread_time_ns()
    for i in range(nframes):
        w0 = time.perf_counter_ns()
        n = encode(enc, base + i * step, FRAME, packet, MAX_PACKET)
        m = decode(dec, packet, n, out, FRAME, 0)
        wall.append(time.perf_counter_ns() - w0)
        if n <= 0 or m != FRAME:
            raise RuntimeError(f"frame {i}: encode {n}, decode {m}")
        nbytes += n
        modes[packet[0] >> 3] += 1  # TOC config number (RFC 6716 3.1): the mode libopus chose
    c1 = time.thread_time_ns()
    lib.opus_encoder_destroy(enc)
    lib.opus_decoder_destroy(dec)
    return {
        "cpu_us_per_frame": (c1 - c0) / 1000.0 / nframes,
        "wall_median_us": statistics.median(wall) / 1000.0,
        "frames": nframes,
        "kbit_s": nbytes * 8 / (nframes * 0.020) / 1000.0,
        "complexity": complexity,
        # config 0-11 SILK-only, 12-15 hybrid, 16-31 CELT-only (RFC 6716 table 2)
        "mode_pct": {
            "silk": 100.0 * sum(modes[0:12]) / nframes,
            "hybrid": 100.0 * sum(modes[12:16]) / nframes,
            "celt": 100.0 * sum(modes[16:32]) / nframes,
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passes", type=int, default=5, help="timed passes over the file per setting (median reported)")
    a = p.parse_args()
    lib = load_libopus()
    pcm = speech_48k()
    settings = {"audio64k": (OPUS_APPLICATION_AUDIO, 64000), "voip32k": (OPUS_APPLICATION_VOIP, 32000)}
    for app, br in settings.values():  # warm-up (page faults, caches, CPU frequency)
        one_pass(lib, pcm, app, br)
    runs: dict[str, list[dict]] = {k: [] for k in settings}
    for _ in range(a.passes):  # interleaved, so drift of this VM's speed hits both settings alike
        for k, (app, br) in settings.items():
            runs[k].append(one_pass(lib, pcm, app, br))
    # context only: the criterion bench's synthetic signal, same settings, after the timed passes
    syn = speechlike_48k(len(pcm) // FRAME)
    synth = {k: [one_pass(lib, syn, app, br) for _ in range(min(3, a.passes))] for k, (app, br) in settings.items()}
    us = {k: statistics.median(r["cpu_us_per_frame"] for r in v) for k, v in runs.items()}
    print(f"{lib.opus_get_version_string().decode()}, {runs['audio64k'][0]['frames']} frames of 20 ms per pass", file=sys.stderr)
    for k, v in runs.items():
        print(
            f"{k}: complexity {v[0]['complexity']}, {v[0]['kbit_s']:.1f} kbit/s; CPU us/frame per pass "
            + ", ".join(f"{r['cpu_us_per_frame']:.1f}" for r in v)
            + "; wall median us/frame per pass "
            + ", ".join(f"{r['wall_median_us']:.1f}" for r in v)
            + "; modes % " + ", ".join(f"{m} {x:.0f}" for m, x in v[0]["mode_pct"].items()),
            file=sys.stderr,
        )
    for k, v in synth.items():
        print(
            f"{k} on the criterion bench's synthetic signal (not speech): CPU us/frame per pass "
            + ", ".join(f"{r['cpu_us_per_frame']:.1f}" for r in v)
            + "; modes % " + ", ".join(f"{m} {x:.0f}" for m, x in v[0]["mode_pct"].items()),
            file=sys.stderr,
        )
    result = {
        "stack": "opus-floor",
        "us_per_frame_audio64k": round(us["audio64k"], 2),
        "us_per_frame_voip32k": round(us["voip32k"], 2),
        "cpu_pct_per_pair_floor": round(us["audio64k"] / 20000.0 * 100.0, 3),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
