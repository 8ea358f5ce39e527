"""Shared fixtures: one engine per test session, a real room server on loopback per module."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import numpy as np  # noqa: E402

from daily import Daily, EventHandler  # noqa: E402
from daily.server import RoomServer  # noqa: E402

SPEECH_16K = os.path.join(ROOT, "data", "librivox_16k.wav")


@pytest.fixture(scope="session", autouse=True)
def engine():
    Daily.init()
    yield
    Daily.deinit()


@pytest.fixture(scope="module")
def server():
    with RoomServer(host="127.0.0.1", port=0) as s:
        yield s


class Waiter:
    """Collects a completion's arguments and waits for them (bounded)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.args: tuple = ()
        self.calls = 0

    def __call__(self, *args) -> None:
        self.calls += 1
        self.args = args
        self.event.set()

    def wait(self, timeout: float = 10.0) -> tuple:
        assert self.event.wait(timeout), "completion did not fire in time"
        return self.args


class EventLog:
    """Events as tuples ``(kind, ...)`` with the ``time.monotonic()`` each arrived, and a bounded
    wait for one matching a predicate. Event handlers call ``_add``."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple] = []
        self.when: list[float] = []

    def _add(self, *ev) -> None:
        with self.cond:
            self.events.append(ev)
            self.when.append(time.monotonic())
            self.cond.notify_all()

    def time_of(self, ev: tuple) -> float:
        with self.cond:
            return self.when[self.events.index(ev)]

    def wait_for(self, pred, timeout: float = 10.0, what: str = "event") -> tuple:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                assert left > 0, f"not within {timeout} s: {what}; saw {[e[:2] for e in self.events]}"
                self.cond.wait(left)


def rest_call(url: str, method: str = "GET", body=None, key: str | None = None, timeout: float = 10.0) -> tuple[int, dict]:
    """One REST call the way DailyRESTHelper makes it: Bearer ``key``, JSON body, JSON answer
    (error answers too). Returns ``(status, body)``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def join(client, url: str, **kw) -> dict:
    w = Waiter()
    client.join(url, completion=w, **kw)
    data, error = w.wait(15)
    assert error is None, error
    return data


def leave(client) -> None:
    w = Waiter()
    client.leave(completion=w)
    (error,) = w.wait(10)
    assert error is None, error


def mic_settings(track) -> dict:
    """client_settings that use a CustomAudioTrack as the microphone."""
    return {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}}


class Watch(EventHandler):
    """Records remote participants joining (by user name) and updates; waits on a condition."""

    def __init__(self) -> None:
        self.joined: dict[str, dict] = {}
        self.updated: list[dict] = []
        self.cond = threading.Condition()

    def on_participant_joined(self, participant):
        with self.cond:
            self.joined[participant["info"].get("userName", "")] = participant
            self.cond.notify_all()

    def on_participant_updated(self, participant):
        with self.cond:
            self.updated.append(participant)
            self.cond.notify_all()

    def wait(self, pred, timeout=10.0):
        with self.cond:
            assert self.cond.wait_for(pred, timeout), "condition not met in time"


class Capture:
    """An audio renderer callback that keeps every chunk, its frame count and sample rate."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.frames: list[int] = []
        self.rates: set[int] = set()

    def __call__(self, participant_id, audio, audio_source):
        self.chunks.append(audio.audio_frames)
        self.frames.append(audio.num_audio_frames)
        self.rates.add(audio.sample_rate)

    def pcm(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.chunks), dtype="<i2")
