"""Per-window analysis of received speech: intelligibility, timeline and wall-clock times.

The received recording (renderer callbacks, 16 kHz) is first laid on the wall clock: where two
callbacks are further apart than their audio lasts plus ``GAP_S`` (100 ms), silence of the
missing length is inserted, so a renderer that stops during an outage does not pull later
audio forward. Then each 250 ms window of the *sent* speech (near-silent windows skipped, as
``speechmetrics.similarity`` does) is searched for in the received signal within
``SEARCH_MS`` (300 ms) of where the previous matching window was found (the whole-stream
cross-correlation lag for the first one), by Pearson correlation at every lag.

- A window is *intelligible* when its best correlation is >= ``THRESHOLD`` (0.7). Clean
  transmissions score 0.95-0.999 per window here; unrelated speech from the same reader, with
  the same ±300 ms search, scores at most ~0.45 (median ~0.25) per window (measured by
  ``unrelated_scores``), so 0.7 leaves a margin both ways. A window that is partly concealed or
  partly missing scores in between.
- A window's *offset* is received index minus sent index at its best match (ms). The timeline
  *holds* when offsets stay put; a *step* is a change of >= 10 ms between consecutive matched
  windows (score >= 0.5). Negative steps mean audio was skipped (received earlier than its
  place), positive steps mean delay was inserted (concealment, a buffer growing).
- Each window also gets its *send time* (when the sender's clock consumed its last sample, from
  the write completions) and its *arrival time* (the renderer callback that delivered its last
  sample), both ``time.monotonic()`` of the peer process (comparable across namespaces).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# examples/ is on sys.path in the test suite (conftest.py) and in benches/net_impair.py.
from speechmetrics import best_lag, window_correlation

RATE = 16000
WIN = RATE // 4
THRESHOLD = 0.7
MATCH = 0.5
SEARCH_MS = 300
STEP_MS = 10
GAP_S = 0.1


def lay_on_clock(pcm: np.ndarray, cb: np.ndarray, rate: int = RATE) -> tuple[np.ndarray, np.ndarray, int]:
    """(received with silence for callback gaps, sample -> arrival time array, inserted samples)."""
    if len(cb) == 0:
        return pcm.astype(np.int16), np.zeros(0), 0
    parts, times = [], []
    pos = 0
    inserted = 0
    prev_t = None
    for t, n in cb:
        n = int(n)
        if prev_t is not None:
            gap = t - prev_t - n / rate
            if gap > GAP_S:
                z = int(round(gap * rate))
                parts.append(np.zeros(z, dtype=np.int16))
                times.append(np.linspace(prev_t, t - n / rate, z, endpoint=False))
                inserted += z
        parts.append(pcm[pos : pos + n])
        # every sample of a callback arrives at the callback's time
        times.append(np.full(n, t))
        pos += n
        prev_t = t
    return np.concatenate(parts), np.concatenate(times), inserted


@dataclass
class Windows:
    """Per-window results; arrays of equal length, one entry per non-silent sent window."""

    start: np.ndarray  # sent sample index of the window
    score: np.ndarray  # best correlation
    offset_ms: np.ndarray  # received index - sent index at the best match, ms
    sent_t: np.ndarray  # monotonic time its last sample was consumed (nan if unknown)
    arrival_t: np.ndarray  # monotonic time its last sample was rendered (nan if not found)
    lag0: int = 0
    inserted_ms: float = 0.0
    extra: dict = field(default_factory=dict)

    def intelligible(self, mask: np.ndarray | None = None) -> float:
        s = self.score if mask is None else self.score[mask]
        return float(np.mean(s >= THRESHOLD)) if len(s) else 0.0

    def steps(self, mask: np.ndarray | None = None) -> list[float]:
        """Offset changes >= STEP_MS between consecutive matched windows (ms, signed)."""
        ok = self.score >= MATCH
        if mask is not None:
            ok &= mask
        offs = self.offset_ms[ok]
        d = np.diff(offs)
        return [float(x) for x in d if abs(x) >= STEP_MS]

    def steady_steps(self, mask: np.ndarray | None = None) -> list[float]:
        """Like ``steps``, after a median of three on the offsets: a single window matched at a
        wrong lag (an outlier of the search, followed by the opposite step) is not a step, a
        change that lasts is."""
        ok = self.score >= MATCH
        if mask is not None:
            ok &= mask
        offs = self.offset_ms[ok]
        if len(offs) >= 3:
            offs = np.concatenate([offs[:1], np.median(np.stack([offs[:-2], offs[1:-1], offs[2:]]), axis=0), offs[-1:]])
        d = np.diff(offs)
        return [float(x) for x in d if abs(x) >= STEP_MS]

    def shifted_fraction(self, mask: np.ndarray | None = None) -> float:
        """Matched windows >= STEP_MS away from the first matched window's offset."""
        ok = self.score >= MATCH
        if mask is not None:
            ok &= mask
        offs = self.offset_ms[ok]
        if len(offs) == 0:
            return 0.0
        return float(np.mean(np.abs(offs - offs[0]) >= STEP_MS))


def analyze(sent: np.ndarray, pcm: np.ndarray, cb: np.ndarray, consumed: np.ndarray,
            rate: int = RATE, search_ms: float = SEARCH_MS) -> Windows:
    """Windows of ``sent`` found in the received recording (see the module docstring)."""
    recv, arrive, inserted = lay_on_clock(pcm, cb, rate)
    s = sent.astype(np.float64)
    rf = recv.astype(np.float64)
    z = np.zeros(0)
    empty = Windows(z, z, z, z, z)
    if len(rf) < WIN:
        # Nothing received: every speech window is missing.
        starts = [i for i in range(0, len(s) - WIN + 1, WIN)]
        floor = 0.02 * np.sqrt(np.mean(s**2) + 1e-9)
        starts = [i for i in starts if np.sqrt(np.mean(s[i : i + WIN] ** 2)) >= floor]
        n = len(starts)
        sent_t = _sent_times(np.array(starts), consumed)
        return Windows(np.array(starts), np.zeros(n), np.full(n, np.nan), sent_t, np.full(n, np.nan))
    lag0 = best_lag(sent, recv)
    slack = int(rate * search_ms / 1000)
    floor = 0.02 * np.sqrt(np.mean(s**2) + 1e-9)
    starts, scores, offs, arr = [], [], [], []
    offset = lag0
    for i in range(0, len(s) - WIN + 1, WIN):
        a = s[i : i + WIN]
        if np.sqrt(np.mean(a**2)) < floor or np.std(a) == 0:
            continue
        j0 = i + offset
        lo, hi = max(0, j0 - slack), min(len(rf) - WIN, j0 + slack)
        starts.append(i)
        if hi < lo:
            scores.append(0.0)
            offs.append(np.nan)
            arr.append(np.nan)
            continue
        corr = window_correlation(a, rf[lo : hi + WIN], min_sd=1e-6)
        b = int(np.argmax(corr))
        sc = float(corr[b])
        scores.append(sc)
        offs.append((lo + b - i) * 1000.0 / rate)
        arr.append(float(arrive[lo + b + WIN - 1]) if sc >= MATCH else np.nan)
        if sc >= MATCH:
            offset = lo + b - i
    if not starts:
        return empty
    st = np.array(starts)
    return Windows(st, np.array(scores), np.array(offs), _sent_times(st, consumed), np.array(arr),
                   lag0=lag0, inserted_ms=inserted * 1000.0 / rate)


def _sent_times(starts: np.ndarray, consumed: np.ndarray) -> np.ndarray:
    """Monotonic time the last sample of each window was consumed by the sender's clock."""
    if len(consumed) == 0 or len(starts) == 0:
        return np.full(len(starts), np.nan)
    ends = consumed[:, 0]
    times = consumed[:, 1]
    last = starts + WIN - 1
    k = np.searchsorted(ends, last, side="right")
    out = np.full(len(starts), np.nan)
    ok = k < len(times)
    out[ok] = times[k[ok]]
    return out


def unrelated_scores(sent: np.ndarray, other: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Per-window best scores of ``sent`` against unrelated speech with the same search (for
    choosing THRESHOLD)."""
    cb = np.array([[i / 50.0, rate // 50] for i in range(len(other) // (rate // 50))])
    w = analyze(sent, other[: len(cb) * (rate // 50)], cb, np.zeros((0, 2)), rate)
    return w.score
