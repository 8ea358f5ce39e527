"""CustomAudioSource pacing, completions, clear_queue and buffer input, without a call.

daily-python paces writes in real time whether or not a call is joined; every write is padded
to 10 ms; a completion fires once when the frames have been consumed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from daily import CustomAudioSource


def _ms(rate: int, ms: int, channels: int = 1) -> bytes:
    return bytes(rate * ms // 1000 * 2 * channels)


@pytest.mark.parametrize("rate,channels", [(16000, 1), (24000, 1), (44100, 2), (48000, 2)])
def test_blocking_write_of_one_second_takes_one_second(rate, channels):
    src = CustomAudioSource(rate, channels)
    src.write_frames(_ms(rate, 20, channels))  # align with the clock
    t0 = time.monotonic()
    n = src.write_frames(_ms(rate, 1000, channels))
    elapsed = time.monotonic() - t0
    assert n == rate
    assert 0.95 <= elapsed <= 1.05, elapsed


def test_completion_write_returns_at_once_and_completes_in_real_time():
    src = CustomAudioSource(16000, 1)
    done: list[tuple[int, float]] = []
    ev = threading.Event()
    t0 = time.monotonic()

    def cb(n):
        done.append((n, time.monotonic() - t0))
        ev.set()

    n = src.write_frames(_ms(16000, 1000), completion=cb)
    assert n == 16000
    assert time.monotonic() - t0 < 0.05
    assert ev.wait(3)
    assert len(done) == 1 and done[0][0] == 16000
    assert 0.95 <= done[0][1] <= 1.1, done


def test_completions_fire_once_in_order_with_the_frames_written():
    src = CustomAudioSource(16000, 1)
    sizes = [160, 240, 1, 320, 799, 16, 160 * 5]  # 10 ms, 15 ms (padded), 1 frame, ...
    got: list[int] = []
    lock = threading.Lock()
    ev = threading.Event()

    def make(i):
        def cb(n):
            with lock:
                got.append((i, n))
                if len(got) == len(sizes):
                    ev.set()

        return cb

    t0 = time.monotonic()
    for i, f in enumerate(sizes):
        assert src.write_frames(bytes(2 * f), completion=make(i)) == f
    assert ev.wait(5)
    elapsed = time.monotonic() - t0
    time.sleep(0.1)  # nothing fires twice
    assert got == list(enumerate(sizes))
    # Each write is padded to 10 ms: 1+2+1+2+5+1+5 = 17 ticks.
    assert 0.15 <= elapsed <= 0.3, elapsed


def test_no_drift_over_sixty_seconds():
    """A pipecat-style writer (20 ms writes, completions, ~100 ms ahead) for 60 s of audio."""
    rate, total_s = 16000, 60
    src = CustomAudioSource(rate, 1)
    chunk = _ms(rate, 20)
    writes = total_s * 50
    sem = threading.Semaphore(5)
    finished = threading.Event()
    count = [0]

    def cb(_n):
        count[0] += 1
        sem.release()
        if count[0] == writes:
            finished.set()

    t0 = time.monotonic()
    for _ in range(writes):
        assert sem.acquire(timeout=5)
        src.write_frames(chunk, completion=cb)
    assert finished.wait(10)
    elapsed = time.monotonic() - t0
    assert abs(elapsed - total_s) <= 0.01 * total_s, elapsed


def test_clear_queue_releases_a_blocked_writer_at_once():
    src = CustomAudioSource(16000, 1)
    result: dict = {}

    def writer():
        t = time.monotonic()
        result["n"] = src.write_frames(_ms(16000, 5000))
        result["elapsed"] = time.monotonic() - t

    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.5)
    queued = src.queued_duration
    assert 3.5 <= queued <= 4.6, queued
    t0 = time.monotonic()
    dropped = src.clear_queue()
    th.join(2)
    assert not th.is_alive()
    assert time.monotonic() - t0 < 0.1
    assert result["n"] == 80000
    assert result["elapsed"] < 1.5
    # What was dropped is what was queued, give or take the tick that ran in between.
    assert abs(dropped - queued * 16000) <= 160
    assert src.queued_duration == 0.0


def test_clear_queue_fires_pending_completions_with_frames_played():
    src = CustomAudioSource(16000, 1)
    got: list[int] = []
    for _ in range(10):  # 10 x 100 ms
        src.write_frames(_ms(16000, 100), completion=got.append)
    time.sleep(0.35)
    dropped = src.clear_queue()
    time.sleep(0.1)
    assert len(got) == 10  # every completion fired once, the unplayed ones at the clear
    # Whole writes first, then at most one partial one, then writes never played.
    k = 0
    while k < 10 and got[k] == 1600:
        k += 1
    assert 1 <= k <= 8, got
    assert 0 <= got[k] < 1600 and all(g == 0 for g in got[k + 1 :]), got
    played = sum(got)
    assert 0.3 * 16000 <= played <= 0.8 * 16000, got
    assert abs(played + dropped - 16000) <= 160, (played, dropped)
    # The source keeps working after a clear.
    t0 = time.monotonic()
    assert src.write_frames(_ms(16000, 200)) == 3200
    assert 0.15 <= time.monotonic() - t0 <= 0.3


def test_queued_duration_counts_padding():
    src = CustomAudioSource(16000, 1)
    assert src.queued_duration == 0.0
    src.write_frames(bytes(2 * 161), completion=lambda n: None)  # padded to 20 ms
    assert src.queued_duration == pytest.approx(0.02, abs=0.0101)


@pytest.mark.parametrize(
    "make",
    [
        lambda b: b,
        bytearray,
        memoryview,
        lambda b: np.frombuffer(b, dtype="<i2").copy(),
        lambda b: np.frombuffer(b, dtype=np.uint8).copy(),
    ],
    ids=["bytes", "bytearray", "memoryview", "int16", "uint8"],
)
def test_any_contiguous_pcm_buffer_is_accepted(make):
    src = CustomAudioSource(16000, 2)
    assert src.write_frames(make(_ms(16000, 10, 2))) == 160


@pytest.mark.parametrize(
    "frames,exc,words",
    [
        ("abc", TypeError, "16-bit PCM"),
        (123, TypeError, "16-bit PCM"),
        (np.zeros(320, dtype=np.float32), TypeError, "format"),
        (np.zeros(320, dtype=np.int32), TypeError, "format"),
        (np.zeros((320, 2), dtype=np.int16)[:, 0], ValueError, "C-contiguous"),
        (bytes(3), ValueError, "whole number"),
    ],
)
def test_bad_frames_raise_a_clear_error(frames, exc, words):
    src = CustomAudioSource(16000, 1)
    with pytest.raises(exc, match=words):
        src.write_frames(frames)


@pytest.mark.parametrize("rate,channels", [(0, 1), (7999, 1), (48001, 1), (16050, 1), (16000, 0), (16000, 3), (-16000, 1)])
def test_bad_source_formats_raise_value_error(rate, channels):
    with pytest.raises(ValueError, match="sample_rate|channels"):
        CustomAudioSource(rate, channels)


def test_sources_and_devices_used_after_deinit_raise_or_read_empty():
    import subprocess
    import sys

    code = """
from daily import Daily, CustomAudioSource
Daily.init()
s = CustomAudioSource(16000, 1)
m = Daily.create_microphone_device("m")
sp = Daily.create_speaker_device("s")
Daily.select_speaker_device("s")
Daily.deinit()
for f in (lambda: s.write_frames(bytes(320)), lambda: s.write_frames(bytes(320), completion=print), lambda: m.write_frames(bytes(320))):
    try:
        f()
        print("no error")
    except RuntimeError as e:
        assert "init" in str(e), e
assert sp.read_frames(160) == b""
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok", out.stdout


def test_completions_pending_at_deinit_fire_with_the_frames_played():
    """Every completion fires exactly once: a write still queued when Daily.deinit() stops the
    media clock completes then, with the frames played so far (fewer than written)."""
    import subprocess
    import sys

    code = """
import threading, time
from daily import Daily, CustomAudioSource
Daily.init()
s = CustomAudioSource(16000, 1)
got, done = [], threading.Event()
s.write_frames(bytes(32000 * 5), completion=lambda n: (got.append(n), done.set()))
time.sleep(0.3)
Daily.deinit()
print(done.wait(2), got)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    fired, got = out.stdout.split(" ", 1)
    assert fired == "True", out.stdout
    (n,) = eval(got)
    assert 0 < n < 16000 * 5, out.stdout
