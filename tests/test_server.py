"""The room server as a user runs it: embedded (RoomServer) and as the daily-server command."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import join
from daily import CallClient, EventHandler
from daily.server import RoomServer


class Events(EventHandler):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.states: list[str] = []

    def on_error(self, message):
        self.errors.append(message)

    def on_call_state_updated(self, state):
        self.states.append(state)


def test_embedded_server_urls_and_http():
    with RoomServer(host="127.0.0.1", port=0) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert server.room_url("demo") == server.url + "/demo"
        with urllib.request.urlopen(server.url + "/", timeout=5) as r:
            assert json.load(r)["server"] == "daily-server"
        with pytest.raises(ValueError):
            server.room_url("bad room/name")
    with pytest.raises(RuntimeError):
        server.url


def test_embedded_server_stop_ends_the_call():
    server = RoomServer().start()
    h = Events()
    c = CallClient(event_handler=h)
    try:
        join(c, server.room_url("ending"))
        server.stop()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "left" not in h.states:
            time.sleep(0.05)
        assert h.states[-1] == "left", h.states
        assert any("ended" in e for e in h.errors), h.errors
    finally:
        c.release()
        server.stop()


def test_daily_server_command_prints_url_and_stops_on_sigint():
    p = subprocess.Popen(
        [sys.executable, "-m", "daily.cli", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        m = re.match(r"daily-server listening on (http://127\.0\.0\.1:\d+)", line)
        assert m, line
        h = Events()
        c = CallClient(event_handler=h)
        try:
            join(c, m.group(1) + "/cli")
            p.send_signal(signal.SIGINT)
            assert p.wait(timeout=10) == 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and "left" not in h.states:
                time.sleep(0.05)
            assert "left" in h.states and any("ended" in e for e in h.errors), (h.states, h.errors)
        finally:
            c.release()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
