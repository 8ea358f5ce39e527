"""The type stubs shipped in python/daily/daily.pyi match the compiled module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_stubs_match_runtime():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--ignore-disjoint-bases", "daily.daily"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
