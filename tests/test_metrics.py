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
