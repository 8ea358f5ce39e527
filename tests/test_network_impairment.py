"""Calls over an impaired network (issue 16, item 8): loss, outages, a dead peer, a server restart.

The room server runs in one network namespace, the clients in another, linked by a veth pair;
nftables drops packets on either side's ingress (``tests/netimpair``). Needs root; skipped
otherwise. Tests marked ``slow`` (the 30 s outage, the dead peer, the loss matrix) run only
when selected (``pytest -m slow``) or with ``NETIMPAIR_SLOW=1``; the rest take about a minute.

The thresholds are the goals of issue 16; several fail on the build of 2026-12-06 (the
"before" baseline). Figures per condition: ``python benches/net_impair.py``.
"""

from __future__ import annotations

import json
import os

import pytest

import netimpair
from netimpair import scenario as sc

_why = netimpair.netlab_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def _slow_selected(config: pytest.Config) -> bool:
    expr = config.getoption("markexpr", "") or ""
    return os.environ.get("NETIMPAIR_SLOW") == "1" or ("slow" in expr and "not slow" not in expr)


@pytest.fixture(autouse=True)
def _skip_slow_unless_selected(request):
    if request.node.get_closest_marker("slow") and not _slow_selected(request.config):
        pytest.skip("slow network test: select with -m slow or NETIMPAIR_SLOW=1")


def _show(row: dict) -> str:
    """The figures and events, for an assertion message."""
    events = [
        (e.get("rel"), e["ev"], e.get("name"), e.get("status") or e.get("state") or e.get("message") or e.get("user"))
        for e in row.get("events", [])
        if e["ev"] in ("network", "call_state", "error", "participant_left", "join_done")
    ]
    figures = {k: v for k, v in row.items() if k not in ("events", "observer_events")}
    return json.dumps(figures, default=str) + "\nevents: " + json.dumps(events, default=str)


def test_the_link_drops_what_it_is_told():
    with netimpair.NetLab(start_server=False) as lab:
        assert lab.measure_loss("up", 300) == 0.0
        lab.set_loss(up=30, down=0)
        assert 0.2 <= lab.measure_loss("up") <= 0.4
        assert lab.measure_loss("down", 300) == 0.0
        lab.outage()
        assert lab.measure_loss("up", 100) == 1.0 and lab.measure_loss("down", 100) == 1.0
        lab.restore()
        assert lab.measure_loss("down", 300) == 0.0


def test_ten_percent_loss_both_ways():
    # Goal: joins <= 3 s, >= 85 % of 250 ms speech windows intelligible, no timeline skips.
    # 20 s of speech (about 80 windows): with random loss the share of one 8 s run (32
    # windows) varied from 0.84 to 1.0 around a mean of 0.93; 80 windows put 0.85 about three
    # standard deviations below that mean instead of two.
    row = sc.run_loss(10, 10, seconds=20.0)
    msg = _show(row)
    assert row["join_bot_ms"] is not None and row["join_bot_ms"] <= 3000, msg
    assert row["join_listener_ms"] is not None and row["join_listener_ms"] <= 3000, msg
    # The listener's receive transport too (it connects after the bot publishes).
    assert row["recv_ready_ms"] is not None and row["recv_ready_ms"] <= 3000, msg
    assert row["intelligible"] >= 0.85, msg
    # No timeline skips: lost packets are concealed in place, not jumped over (each jump moved
    # later audio 20 ms earlier: before the fix, 13-17 such steps in 8 s, 380-930 ms skipped).
    # What remains is the jitter buffer giving back delay it added under loss: 10 ms shrink
    # steps (cross-faded, `jitter.rs`), and, after two or three packets lost in a row emptied
    # it, a re-buffer that now and then drops 20-30 ms at once (seen 0-2 times in 20 s). Only
    # audio dropped beyond the 10 ms steps counts here, with room for two such re-buffers.
    # (Steps that last: one window matched at a wrong lag is not a step, `steady_steps`.)
    beyond = sum(max(0.0, -s - 10.5) for s in row["steady_steps"])
    assert beyond <= 40.0, msg
    assert row["packets_lost"] > 0, "loss must be visible in media_stats(): " + msg


def test_three_second_outage_is_reported_and_recovers():
    # Goal: "interrupted" within 2.5 s of the outage's start, audio back within 1.5 s of its end.
    row = sc.run_outage(3.0)
    msg = _show(row)
    assert row["interrupted_after_s"] is not None and row["interrupted_after_s"] <= 2.5, msg
    assert row["audio_back_s"] is not None and row["audio_back_s"] <= 1.5, msg
    assert row["intelligible"] >= 0.85, msg


def test_killed_server_is_reported_and_the_same_clients_join_again():
    # What held before issue 16 and must keep holding: a killed server gives on_error and left
    # at once; the same CallClient objects join the restarted server and audio flows again.
    row = sc.run_server_restart()
    msg = _show(row)
    assert row["error_after_s"] is not None and row["error_after_s"] < 1.0, msg
    assert row["left_after_s"] is not None and row["left_after_s"] < 1.0, msg
    assert row["audio_back_s"] is not None and row["audio_back_s"] < 3.0, msg


@pytest.mark.slow
def test_thirty_second_outage_recovers_or_ends_the_call():
    # Goal: recovered (connected again and audio back), or on_error + left: never silent.
    row = sc.run_outage(30.0)
    msg = _show(row)
    recovered = row["connected_after_s"] is not None and row["audio_back_s"] is not None
    ended = row["error_after_s"] is not None and row["left_after_s"] is not None
    assert recovered or ended, msg
    assert row["interrupted_after_s"] is not None and row["interrupted_after_s"] <= 2.5, msg


@pytest.mark.slow
def test_a_dead_peer_is_dropped_by_the_server():
    # Goal: the server drops a participant whose transports and signalling are dead after a
    # documented timeout (others get `left`). 45 s of watching covers any sane timeout.
    row = sc.run_dead_peer(watch=45.0)
    msg = _show(row)
    assert set(row.get("server_dropped", {})) == {"bot", "listener"}, msg
    # And the vanished clients are told too (interrupted, then the call ends with an error).
    assert row["interrupted_after_s"] is not None and row["interrupted_after_s"] <= 2.5, msg
    assert row["error_after_s"] is not None and row["left_after_s"] is not None, msg


@pytest.mark.slow
@pytest.mark.parametrize("pct", [5, 10, 20])
@pytest.mark.parametrize("way", ["up", "down", "both"])
def test_loss_is_survived_and_visible(pct, way):
    # Every join completes, and the loss shows in the listener's media_stats() whichever leg
    # it is on (issue 16 item 1: the SFU's renumbering hides upstream loss).
    up = pct if way in ("up", "both") else 0
    down = pct if way in ("down", "both") else 0
    row = sc.run_loss(up, down)
    msg = _show(row)
    assert row["join_bot_ms"] is not None and not row["note"].startswith("bot join"), msg
    assert row["join_bot_ms"] <= 3000, msg
    assert (row["packets_lost"] or 0) > 0, msg
    if pct <= 10:
        assert row["intelligible"] >= 0.85 and row["skipped_ms"] == 0, msg
