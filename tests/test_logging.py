"""Logs of the Rust core reach Python's logging at the level set with Daily.set_log_level."""

from __future__ import annotations

import logging
import time

from conftest import join, leave
from daily import CallClient, Daily, LogLevel


def _records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("daily.")]


def test_log_level_controls_forwarding(server, caplog):
    caplog.set_level(logging.DEBUG)
    url = server.room_url("logs")
    try:
        Daily.set_log_level(LogLevel.Debug)
        c = CallClient()
        join(c, url)
        leave(c)
        c.release()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("joined" in r.getMessage() for r in _records(caplog)):
            time.sleep(0.05)
        msgs = [(r.name, r.levelno, r.getMessage()) for r in _records(caplog)]
        assert any(n == "daily.daily_client" and lv == logging.INFO and "joined" in m for n, lv, m in msgs), msgs
        assert any(lv == logging.DEBUG for _, lv, _ in msgs), msgs

        Daily.set_log_level(LogLevel.Off)
        time.sleep(0.3)
        caplog.clear()
        c = CallClient()
        join(c, url)
        leave(c)
        c.release()
        time.sleep(0.5)
        assert _records(caplog) == []
    finally:
        Daily.set_log_level(LogLevel.Off)
