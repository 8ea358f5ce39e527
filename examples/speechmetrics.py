"""Comparing received speech with sent speech, and end-to-end latency.

Plain sample correlation is unreliable after Opus and jitter buffering, so the received signal
is first aligned to the sent one by cross-correlation (FFT), then compared window by window:
similarity is the median Pearson correlation over 250 ms windows (real transmissions score above
0.9; unrelated speech about 0.05).
"""

from __future__ import annotations

import wave

import numpy as np


def read_wav_mono16(path: str) -> tuple[np.ndarray, int]:
    """Reads a 16-bit PCM WAV; returns (int16 samples of the first channel, sample rate in Hz)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data[:: w.getnchannels()].copy(), w.getframerate()


def write_wav_mono16(path: str, samples: np.ndarray, rate: int) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def best_lag(sent: np.ndarray, received: np.ndarray, max_lag: int | None = None) -> int:
    """Lag L (samples) such that received[j] ~ sent[j - L], by FFT cross-correlation."""
    a = sent.astype(np.float64)
    b = received.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    xc = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
    lags = np.concatenate([np.arange(0, len(b)), np.arange(-len(a) + 1, 0)])
    vals = np.concatenate([xc[: len(b)], xc[n - len(a) + 1 :]])
    if max_lag is not None:
        keep = np.abs(lags) <= max_lag
        lags, vals = lags[keep], vals[keep]
    return int(lags[int(np.argmax(vals))])


def window_correlation(a: np.ndarray, seg: np.ndarray, min_sd: float = 0.0) -> np.ndarray:
    """Pearson correlation of window ``a`` with every window of its length in ``seg``
    (sliding dot products; ``len(seg) - len(a) + 1`` values). Where ``seg``'s window has a
    standard deviation of ``min_sd`` or less the value is -1."""
    win = len(a)
    az = (a - a.mean()) / (a.std() * win)
    dots = np.correlate(seg, az, mode="valid")
    csum = np.concatenate([[0.0], np.cumsum(seg)])
    csq = np.concatenate([[0.0], np.cumsum(seg**2)])
    m = (csum[win:] - csum[:-win]) / win
    sd = np.sqrt(np.maximum((csq[win:] - csq[:-win]) / win - m**2, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > min_sd, dots / np.where(sd > min_sd, sd, 1.0), -1.0)


def similarity(
    sent: np.ndarray, received: np.ndarray, rate: int, lag: int | None = None, slack_ms: float = 30.0
) -> float:
    """Median correlation over 250 ms windows of received vs sent after alignment.

    The streams are aligned as a whole by cross-correlation; then each window may move by up to
    ``slack_ms`` (30 ms) from the alignment the previous window found (the whole-stream one for
    the first), because a jitter buffer legitimately shifts the stream: by 10-20 ms when it
    conceals a late packet, and back in 10 ms steps when it sheds that delay again in pauses,
    several times in a few seconds when the sender stalls now and then. Measuring every window
    against the whole-stream alignment would count audio that arrived intact as missing once the
    shifts add up to more than ``slack_ms``. A window is followed only where it matches (its
    correlation at least 0.5), so silence or noise cannot lead the alignment astray.
    ``slack_ms=0`` gives the strict single-alignment figure. Unrelated speech scores about 0.1
    either way.

    Windows where the sent signal is near-silent are skipped (correlation is undefined there).
    Returns 0.0 when nothing overlaps.
    """
    if lag is None:
        lag = best_lag(sent, received)
    # received[j] ~ sent[j - lag]
    start = max(0, lag)
    end = min(len(received), len(sent) + lag)
    if end - start < rate // 4:
        return 0.0
    s = sent[start - lag : end - lag].astype(np.float64)
    rf = received.astype(np.float64)
    win = rate // 4
    slack = int(rate * slack_ms / 1000)
    scores = []
    floor = 0.02 * np.sqrt(np.mean(s**2) + 1e-9)
    offset = 0  # the previous matching window's shift from the whole-stream alignment
    for i in range(0, len(s) - win + 1, win):
        a = s[i : i + win]
        if np.sqrt(np.mean(a**2)) < floor or np.std(a) == 0:
            continue
        # received[j] ~ sent[j - lag]: window i of `s` sits at start + i (+ offset) in `received`.
        j0 = start + i + offset
        lo, hi = max(0, j0 - slack), min(len(rf) - win, j0 + slack)
        if hi < lo:
            continue
        seg = rf[lo : hi + win]
        corr = window_correlation(a, seg)
        best = int(np.argmax(corr))
        scores.append(float(corr[best]))
        if corr[best] >= 0.5:
            offset = lo + best - (start + i)
    return float(np.median(scores)) if scores else 0.0


def latencies_ms(
    consumed: list[tuple[int, float]],
    callbacks: list[tuple[int, int, float]],
    lag: int,
    rate: int,
    block: int,
) -> np.ndarray:
    """End-to-end latency per received block, in ms.

    consumed: (end_sample, t) for each sent chunk: the sender's clock had consumed samples up to
        end_sample (exclusive) at time t (seconds).
    callbacks: (first_sample, n_samples, t) for each renderer callback at time t.
    lag: alignment (received[j] ~ sent[j - lag]).
    block: samples per sub-block measured (10 ms).
    Each received sub-block maps to the sent samples it carries; its latency is the callback time
    minus the time the last of those samples was consumed.
    """
    ends = np.array([e for e, _ in consumed], dtype=np.int64)
    times = np.array([t for _, t in consumed])
    out = []
    for first, n, t in callbacks:
        for off in range(0, n, block):
            last_sent = first + off + block - 1 - lag
            if last_sent < 0 or last_sent >= ends[-1]:
                continue
            k = int(np.searchsorted(ends, last_sent, side="right"))
            if k >= len(times):
                continue
            out.append((t - times[k]) * 1000.0)
    return np.array(out)
