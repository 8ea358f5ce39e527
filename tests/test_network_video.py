"""Video over an impaired network: loss, a bandwidth limit, and speech alongside video.

The room server runs in one network namespace, the clients in another, joined by a veth pair
(``tests/netimpair``): nftables drops packets on either side's ingress, a tc token bucket
limits either side's egress. A camera sends the frame-numbered pattern of
``examples/videopattern.py`` at 640x360@30; the viewer's renderer reads each frame's number,
so the tests know which frames arrived, when, and how close to what was sent. Needs root;
skipped otherwise. Each test takes 20-40 s. Figures per condition:
``python -c 'from netimpair import scenario as sc; print(sc.run_video_loss(5, 5))'`` (with
tests/ and examples/ on sys.path).
"""

from __future__ import annotations

import json

import pytest

import netimpair
from netimpair import scenario as sc

_why = netimpair.netlab_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def _show(row: dict) -> str:
    figures = {k: v for k, v in row.items() if k not in ("events", "nft")}
    events = [
        (e.get("rel"), e["ev"], e.get("name"), e.get("status") or e.get("state") or e.get("message") or e.get("user"))
        for e in row.get("events", [])
        if e["ev"] in ("network", "call_state", "error", "participant_left", "join_done", "exception")
    ]
    return json.dumps(figures, default=str) + "\nevents: " + json.dumps(events, default=str)


def test_the_link_is_limited_to_the_rate_it_is_told():
    with netimpair.NetLab(start_server=False) as lab:
        lab.set_rate(up_kbit=400)
        assert 300 <= lab.measure_rate("up", 1.5) <= 480
        assert lab.measure_rate("down", 1.0) > 2000
        lab.set_rate(down_kbit=1000)
        assert 800 <= lab.measure_rate("down", 1.5) <= 1150
        assert lab.measure_rate("up", 1.0) > 2000
        lab.set_rate()
        assert lab.measure_rate("down", 1.0) > 2000


def test_video_survives_five_percent_loss_both_ways():
    # Goal: >= 90 % of frames rendered over 15 s; lost packets repaired by retransmission (the
    # SFU answers the viewer's NACKs, the sender the SFU's), so frames that lost a packet are
    # still completed, not dropped for a keyframe; a loss NACK did not repair costs a PLI and
    # at most about a second of frozen picture.
    # Before the fixes of 2026-12-06 (no RTX negotiated, so no retransmission at all; repairs
    # given up after two frames; str0m's 15 % resend cap): 18 % of frames rendered, 46 PLIs,
    # frozen for up to 4 s. After: 99-100 %, one PLI (the first keyframe), gaps under 150 ms.
    row = sc.run_video_loss(5, 5, seconds=15.0)
    msg = _show(row)
    # Of the frames encoded in the window (the network's share); of the frames written, a shared
    # machine's encoder may have skipped a few (the one-frame mailbox).
    assert row["of_encoded"] is not None and row["of_encoded"] >= 0.90, msg
    assert row["delivered"] >= 0.85, msg
    assert row["max_gap_ms"] <= 1000, msg
    rx = row["rx_stats"]
    # Loss on both legs: about 1 - 0.95^2 = 10 % of the packets the sender sent were lost on the
    # way, yet the viewer completed nearly every frame: the gaps were filled by retransmissions.
    assert rx.get("packetsLate", 0) > 0, msg
    assert rx["framesAssembled"] - row["before"]["rx"]["framesAssembled"] >= 0.9 * row["encoded"], msg
    # Keyframes stay the exception (one per PLI at most, PLIs at most ~3/s by PLI_INTERVAL).
    assert row["keyframes_tx"] - row["before"]["tx"].get("keyframes", 0) <= 15, msg
    assert row["psnr_min"] is not None and row["psnr_min"] > 25.0, msg


def test_bandwidth_estimate_follows_a_limited_uplink():
    # Goal: with the uplink limited to 400 kbit/s the encoder's bitrate (the send transport's
    # GCC estimate) falls below the limit within ~10 s and frames keep arriving; once the limit
    # is lifted it climbs back toward the 680 kbit/s cap.
    row = sc.run_video_rate(400, limited_s=14.0, after_s=14.0)
    msg = _show(row)
    rates = row["bitrates"]
    below = [t for t, b in rates if b is not None and b < 400_000 and t <= row["lifted_s"]]
    assert below and below[0] <= 10.0, msg
    # Frames keep coming while limited, and not seconds late (before the fixes: 5.5 frames/s,
    # 3.4 s behind, as the pacer and resends queued; after: ~20 frames/s, p95 ~200 ms).
    assert row["fps"] >= 10, msg
    assert row["latency_p95_ms"] is not None and row["latency_p95_ms"] <= 1000, msg
    after = [b for t, b in rates if t >= row["lifted_s"] + 8.0 and b is not None]
    assert after and max(after) >= 550_000, msg
    assert row["after"]["fps"] >= 20, msg
    # Known: webrtc-rs's GCC (0.21) never reports delay-based overuse at a tbf bottleneck (200
    # or 600 ms of queue alike): its estimate climbs through the limit until loss brings it
    # down, a sawtooth of about 8 s whose every fall freezes the picture for 2-3 s.
    assert row["max_gap_ms"] <= 4000, msg
    if row["max_gap_ms"] > 1500:
        pytest.xfail(f"GCC overshoots the bottleneck and the picture froze {row['max_gap_ms']:.0f} ms")


def test_speech_is_unharmed_by_video_on_the_same_link():
    # Goal: with 640x360@30 video on the same transport, the speech holds as in the audio-only
    # tests (test_network_impairment: >= 85 % of windows intelligible at 10 % loss; clean: all).
    # Before the fixes of 2026-12-06, at 5 % loss both ways, 15 % of windows were intelligible
    # and speech arrived 0.7 s late: webrtc-rs's pacer ran at the bandwidth estimate itself and
    # audio queued behind video and its keyframes (`call/pacer.rs`). After: 0.96 (audio only:
    # 0.98), 37 ms (30 ms); at 10 %: 0.85 (0.88), 79 ms (40 ms).
    row = sc.run_speech_with_video(0, 0, seconds=10.0)
    msg = _show(row)
    assert row["intelligible"] >= 0.95, msg
    assert row["video_delivered"] >= 0.9, msg
    row = sc.run_speech_with_video(5, 5, seconds=12.0)
    msg = _show(row)
    assert row["intelligible"] >= 0.85, msg
    assert row["video_delivered"] >= 0.8, msg
