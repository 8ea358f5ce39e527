"""Shared fixtures: one engine per test session, a real room server on loopback per module."""

from __future__ import annotations

import os
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))

from daily import Daily  # noqa: E402
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
