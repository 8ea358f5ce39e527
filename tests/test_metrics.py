"""The speech-similarity measure the end-to-end tests rely on can tell speech apart."""

from __future__ import annotations

import numpy as np

import speechmetrics as sm
from conftest import SPEECH_16K


def test_similarity_discriminates():
    s, rate = sm.read_wav_mono16(SPEECH_16K)
    a, b = s[: 8 * rate], s[10 * rate : 18 * rate]
    assert sm.similarity(a, a, rate) > 0.99
    # Unrelated speech (another passage of the same reader) scores low, windowed or strict.
    assert sm.similarity(a, b.copy(), rate, lag=0) < 0.3
    assert sm.similarity(a, b.copy(), rate, lag=0, slack_ms=0) < 0.3
    # A 10 ms gap inserted early (a concealed late packet) misaligns most windows for the
    # strict figure but not for the windowed one.
    shifted = np.concatenate([a[: rate], np.zeros(160, dtype=a.dtype), a[rate:]])
    delayed = np.concatenate([np.zeros(3000, dtype=a.dtype), shifted])
    assert sm.similarity(a, delayed, rate) > 0.95
    assert sm.best_lag(a, delayed) in (3000, 3160)


def test_similarity_follows_a_delay_that_changes_several_times():
    # A jitter buffer that grows by 20 ms on a late packet once a second, shedding 10 ms in a
    # pause now and then: over 11 s the delay grows by 140 ms, far more than the 30 ms a
    # window may move, so only an alignment that follows the previous window keeps every window
    # matched.
    s, rate = sm.read_wav_mono16(SPEECH_16K)
    a = s[: 11 * rate]
    ms = rate // 1000
    parts, pos = [], 0
    for t in range(1, 11):
        shift_ms = -10 if t % 4 == 0 else 20
        parts.append(a[pos : t * rate])
        pos = t * rate
        if shift_ms > 0:
            parts.append(np.zeros(shift_ms * ms, dtype=a.dtype))
        else:
            pos += -shift_ms * ms
    parts.append(a[pos:])
    received = np.concatenate(parts)
    assert sm.similarity(a, received, rate) > 0.95
    # Measured against the whole-stream alignment only, most windows miss.
    assert sm.similarity(a, received, rate, slack_ms=0) < 0.5
