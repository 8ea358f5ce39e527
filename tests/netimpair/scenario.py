"""Scenarios on a NetLab: a bot speaks real speech, a listener records it, the network misbehaves.

Each ``run_*`` function makes its own NetLab (fresh namespaces, a fresh ``daily-server``),
runs one condition, and returns a flat dict of figures (``ROW_KEYS`` order for tables) plus
``events`` (every peer event, times relative to the speech's start) for diagnosis. Nothing here
asserts: tests and ``benches/net_impair.py`` judge the figures.

Both clients run in one peer process in the clients' namespace, so "up" loss is the bot's leg
to the server (its audio) and "down" loss the server's leg to the listener.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np

from . import NetLab, Peer
from . import analysis as an

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPEECH = os.path.join(ROOT, "data", "librivox_16k.wav")
RATE = an.RATE
JOIN_TIMEOUT = 20.0

ROW_KEYS = [
    "condition", "join_listener_ms", "join_bot_ms", "recv_ready_ms", "intelligible", "windows", "steps", "skipped_ms",
    "shifted", "latency_p50_ms", "packets_lost", "packets_received", "concealed_ms",
    "interrupted_after_s", "connected_after_s", "audio_back_s", "error_after_s", "left_after_s", "note",
]


def read_speech(seconds: float) -> np.ndarray:
    import wave

    with wave.open(SPEECH, "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    n = int(seconds * RATE) // (RATE // 50) * (RATE // 50)
    if n > len(data):
        data = np.tile(data, n // len(data) + 1)
    return data[:n].copy()


class Call:
    """A bot and a listener (one peer process) in a NetLab's clients' namespace."""

    def __init__(self, lab: NetLab, room: str = "net") -> None:
        self.lab = lab
        self.url = lab.room_url(room)
        self.peer: Peer = lab.client_peer()
        self.joins: dict[str, dict] = {}
        self.t_speak: float | None = None
        self.tmp = tempfile.mkdtemp(prefix="netimpair-")

    def join(self, name: str, timeout: float = JOIN_TIMEOUT) -> dict:
        """Joins and waits for the completion; returns {"ms": .., "error": ..}."""
        since = self.peer.mark()
        if name == "bot":
            self.peer.send("join", name="bot", url=self.url, mic=True)
        else:
            self.peer.send("join", name=name, url=self.url, render="bot")
        try:
            ev = self.peer.wait_for(lambda e: e["ev"] == "join_done" and e["name"] == name, timeout,
                                    f"{name} join", since)
            r = {"ms": (ev["t"] - ev["t0"]) * 1000.0, "error": ev["error"], "t": ev["t"]}
        except TimeoutError:
            r = {"ms": None, "error": f"no completion within {timeout} s", "t": None}
        self.joins[name] = r
        return r

    def join_both(self) -> bool:
        a = self.join("listener")
        b = self.join("bot")
        if a["error"] or b["error"]:
            return False
        try:  # the listener sets its renderer when it sees the bot
            self.peer.wait_for(lambda e: e["ev"] == "participant_joined" and e["name"] == "listener"
                               and e["user"] == "bot", 5, "bot seen by listener")
        except TimeoutError:
            return False
        # The listener's join completes before its receive transport (offered by the server
        # once the bot publishes) connects; speech starts once it has, so the windows measure
        # the media path, and the wait is reported as recv_ready_ms (from the bot's completion).
        try:
            ev = self.peer.wait_for(lambda e: e["ev"] == "network" and e["name"] == "listener"
                                    and e["status"] == {"connection": "recvTransport", "event": "connected"},
                                    JOIN_TIMEOUT, "listener's receive transport")
            self.recv_ready_ms = max(0.0, (ev["t"] - b["t"]) * 1000.0)
        except TimeoutError:
            self.recv_ready_ms = None
        time.sleep(0.2)  # let the receive transport settle, as the main job does
        return True

    def speak(self, seconds: float) -> float:
        since = self.peer.mark()
        self.peer.send("speak", name="bot", wav=SPEECH, seconds=seconds)
        ev = self.peer.wait_for(lambda e: e["ev"] == "speak_start", 5, "speak_start", since)
        self.t_speak = ev["t"]
        self.seconds = seconds
        return ev["t"]

    def wait_spoken(self, extra: float = 10.0) -> dict | None:
        try:
            return self.peer.wait_for(lambda e: e["ev"] == "speak_end", self.seconds + extra, "speak_end")
        except TimeoutError:
            return None

    def stats(self, name: str) -> dict:
        try:
            return self.peer.request("stats", "stats", name=name, timeout=5).get("stats") or {}
        except (TimeoutError, RuntimeError):
            return {}

    def recording(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lp = os.path.join(self.tmp, "listener.npz")
        bp = os.path.join(self.tmp, "bot.npz")
        self.peer.request("dump", "dumped", name="listener", path=lp, timeout=10)
        self.peer.request("dump", "dumped", name="bot", path=bp, timeout=10)
        l, b = np.load(lp), np.load(bp)
        return l["pcm"], l["cb"], b["consumed"]

    def windows(self) -> an.Windows:
        pcm, cb, consumed = self.recording()
        return an.analyze(read_speech(self.seconds), pcm, cb, consumed)

    def events(self, t0: float | None = None) -> list[dict]:
        t0 = self.t_speak if t0 is None else t0
        out = []
        for e in self.peer.find(lambda e: e["ev"] not in ("stats", "dumped", "pong")):
            e = dict(e)
            e["rel"] = round(e["t"] - t0, 3) if t0 else None
            out.append(e)
        return out


def _rx(stats: dict) -> dict:
    for tracks in (stats.get("receive") or {}).values():
        if "microphone" in tracks:
            return tracks["microphone"]
    return {}


def _fill_audio(row: dict, call: Call, w: an.Windows, mask: np.ndarray | None = None) -> None:
    row["windows"] = int(len(w.score) if mask is None else mask.sum())
    row["intelligible"] = round(w.intelligible(mask), 3)
    steps = w.steps(mask)
    row["steps"] = len(steps)
    row["skipped_ms"] = round(-sum(s for s in steps if s < 0), 1)
    row["step_list"] = [round(s, 1) for s in steps]
    row["steady_steps"] = [round(s, 1) for s in w.steady_steps(mask)]
    row["shifted"] = round(w.shifted_fraction(mask), 3)
    lat = (w.arrival_t - w.sent_t) * 1000.0
    lat = lat[np.isfinite(lat)]
    row["latency_p50_ms"] = round(float(np.median(lat)), 1) if len(lat) else None
    rx = _rx(call.stats("listener"))
    row["packets_lost"] = rx.get("packetsLost")
    row["packets_received"] = rx.get("packetsReceived")
    row["concealed_ms"] = rx.get("concealedMs")
    if w.inserted_ms:
        row["note"] += f" renderer silent {w.inserted_ms:.0f} ms in all"


def _base_row(condition: str, call: Call) -> dict:
    row: dict[str, Any] = {k: None for k in ROW_KEYS}
    row["condition"] = condition
    for name in ("listener", "bot"):
        j = call.joins.get(name) or {}
        row[f"join_{name}_ms"] = round(j["ms"], 1) if j.get("ms") is not None else None
        if j.get("error"):
            row["note"] = f"{name} join: {j['error']}"
    row["recv_ready_ms"] = round(call.recv_ready_ms, 1) if getattr(call, "recv_ready_ms", None) is not None else None
    row["note"] = row["note"] or ""
    return row


def _first(events: list[dict], pred, after: float) -> float | None:
    for e in events:
        if e["t"] >= after and pred(e):
            return e["t"]
    return None


def _network(kind: str):
    return lambda e: e["ev"] == "network" and e["status"].get("event") == kind


def _left(e: dict) -> bool:
    return e["ev"] == "call_state" and e["state"] == "left"


def _error(e: dict) -> bool:
    return e["ev"] == "error"


def run_loss(up: float, down: float, seconds: float = 8.0, loss_proto: str = "udp",
             condition: str | None = None) -> dict:
    """Loss set before the joins; the bot speaks ``seconds`` of speech."""
    condition = condition or f"loss up {up:g}% down {down:g}%"
    with NetLab(loss_proto=loss_proto) as lab:
        lab.set_loss(up=up, down=down)
        call = Call(lab)
        try:
            ok = call.join_both()
            row = _base_row(condition, call)
            if not ok:
                row["intelligible"] = 0.0
                row["events"] = call.events(time.monotonic())
                return row
            call.speak(seconds)
            call.wait_spoken()
            time.sleep(0.6)
            w = call.windows()
            _fill_audio(row, call, w)
            row["events"] = call.events()
            ev = row["events"]
            if any(_error(e) for e in ev):
                row["note"] += " on_error: " + "; ".join(e["message"] for e in ev if _error(e))[:200]
            return row
        finally:
            call.peer.close()


def _after(t: float | None, t0: float, digits: int = 2) -> float | None:
    return round(t - t0, digits) if t else None


def _trouble_figures(row: dict, ev: list[dict], t0: float, digits: int = 2) -> None:
    """Seconds from ``t0`` (the impairment's start) to the first `interrupted`, `on_error`
    and `left` the clients reported after it."""
    row["interrupted_after_s"] = _after(_first(ev, _network("interrupted"), t0), t0, digits)
    row["error_after_s"] = _after(_first(ev, _error, t0), t0, digits)
    row["left_after_s"] = _after(_first(ev, _left, t0), t0, digits)


def _outage_figures(row: dict, call: Call, w: an.Windows, t_out: float, t_back: float) -> None:
    ev = call.peer.find(lambda e: True)
    _trouble_figures(row, ev, t_out)
    row["connected_after_s"] = _after(_first(ev, _network("connected"), t_back), t_back)
    # Audio back: the first intelligible window sent after the link returned, from its return.
    after = (w.sent_t >= t_back) & (w.score >= an.THRESHOLD) & np.isfinite(w.arrival_t)
    row["audio_back_s"] = round(float(w.arrival_t[after][0] - t_back), 2) if after.any() else None


def run_outage(duration: float, before: float = 3.0, after: float = 8.0, condition: str | None = None) -> dict:
    """A full outage (everything dropped both ways) ``before`` s into the speech, for
    ``duration`` s; the speech goes on ``after`` s past the restore. Intelligibility and the
    timeline are counted over windows sent outside [outage start, restore + 1.5 s]."""
    condition = condition or f"outage {duration:g} s"
    with NetLab() as lab:
        call = Call(lab)
        try:
            ok = call.join_both()
            row = _base_row(condition, call)
            if not ok:
                row["events"] = call.events(time.monotonic())
                return row
            seconds = before + duration + after
            t0 = call.speak(seconds)
            time.sleep(max(0.0, t0 + before - time.monotonic()))
            t_out = lab.outage()
            time.sleep(duration)
            t_back = lab.restore()
            call.wait_spoken()
            time.sleep(0.6)
            w = call.windows()
            mask = (w.sent_t < t_out) | (w.sent_t > t_back + 1.5)
            _fill_audio(row, call, w, mask)
            _outage_figures(row, call, w, t_out, t_back)
            late = (w.sent_t > t_back + 1.5)
            row["note"] += f" intelligible after restore+1.5s: {w.intelligible(late):.2f} ({int(late.sum())} windows)"
            row["events"] = call.events(t_out)
            row["t_outage"], row["t_restore"] = t_out, t_back
            return row
        finally:
            call.peer.close()


def run_dead_peer(watch: float = 45.0, condition: str = "dead peer") -> dict:
    """Bot and listener in the clients' namespace, an observer in the server's (over loopback).
    2 s into the speech the clients' link goes dead for good; for ``watch`` s we note when the
    observer is told the two left (the server's detection) and what the clients report."""
    with NetLab() as lab:
        observer = lab.server_peer()
        call = Call(lab)
        try:
            since = observer.mark()
            observer.send("join", name="observer", url=call.url)
            observer.wait_for(lambda e: e["ev"] == "join_done", JOIN_TIMEOUT, "observer join", since)
            ok = call.join_both()
            row = _base_row(condition, call)
            if not ok:
                return row
            t0 = call.speak(watch + 5)
            time.sleep(max(0.0, t0 + 2 - time.monotonic()))
            t_dead = lab.dead_peer()
            deadline = t_dead + watch
            gone: dict[str, float] = {}
            # Until both sides have told: the server (the observer sees both leave) and the
            # vanished clients themselves (each gets on_error and left at its own limit).
            while time.monotonic() < deadline:
                for e in observer.find(lambda e: e["ev"] == "participant_left"):
                    gone.setdefault(e["user"], e["t"] - t_dead)
                lefts = {e.get("name") for e in call.peer.find(_left)}
                if len(gone) >= 2 and len(lefts) >= 2:
                    break
                time.sleep(0.2)
            _trouble_figures(row, call.peer.find(lambda e: True), t_dead)
            seen = ", ".join(f"{u} {t:.1f} s" for u, t in sorted(gone.items())) or f"nobody within {watch:g} s"
            row["note"] += f" server dropped (observer told): {seen}"
            row["server_dropped"] = gone
            row["events"] = call.events(t_dead)
            row["observer_events"] = [dict(e, rel=round(e["t"] - t_dead, 3)) for e in observer.events]
            return row
        finally:
            call.peer.kill()
            observer.close()


def run_server_restart(before: float = 3.0, after: float = 8.0, condition: str = "server restart (SIGKILL)") -> dict:
    """The server process is killed (SIGKILL) ``before`` s into the speech and started again at
    once on the same address and port; the clients are told (on_error/left, expected) and
    join again on the same CallClient objects. Audio back = first intelligible window sent
    after the bot's rejoin, from the moment the server listened again."""
    with NetLab() as lab:
        call = Call(lab)
        try:
            ok = call.join_both()
            row = _base_row(condition, call)
            if not ok:
                return row
            t0 = call.speak(before + after + 4)
            time.sleep(max(0.0, t0 + before - time.monotonic()))
            t_down, t_up = lab.restart_server(kill=True)
            # Wait (bounded) until both clients know the call is gone, then join again.
            for name in ("listener", "bot"):
                def has_left(e: dict, n: str = name) -> bool:
                    return _left(e) and e["name"] == n and e["t"] >= t_down

                try:
                    call.peer.wait_for(has_left, 10, f"{name} left")
                except TimeoutError:
                    pass
            re_l = call.join("listener")
            re_b = call.join("bot")
            call.wait_spoken()
            time.sleep(0.6)
            w = call.windows()
            _fill_audio(row, call, w, w.sent_t < t_down)
            _trouble_figures(row, call.peer.find(lambda e: True), t_down, digits=3)
            back_from = re_b["t"] or t_up
            after_m = (w.sent_t >= back_from) & (w.score >= an.THRESHOLD) & np.isfinite(w.arrival_t)
            row["audio_back_s"] = round(float(w.arrival_t[after_m][0] - t_up), 2) if after_m.any() else None
            later = w.sent_t > back_from + 0.5
            row["note"] += (f" server down->listening {t_up - t_down:.2f} s; rejoin listener "
                            f"{_ms(re_l)} bot {_ms(re_b)}; intelligible after rejoin "
                            f"{w.intelligible(later):.2f} ({int(later.sum())} windows)")
            row["events"] = call.events(t_down)
            return row
        finally:
            call.peer.close()


def _ms(j: dict) -> str:
    return f"{j['ms']:.0f} ms" if j.get("ms") is not None else f"failed ({j.get('error')})"


def matrix(loss_proto: str = "udp") -> list[tuple[str, Any]]:
    """Every condition of issue 16 item 8, as (name, thunk) pairs."""
    lp = loss_proto
    out: list[tuple[str, Any]] = [("no impairment", lambda: run_loss(0, 0, condition="no impairment"))]
    for pct in (5, 10, 20):
        out.append((f"loss {pct}% up", lambda p=pct: run_loss(p, 0, loss_proto=lp, condition=f"loss {p}% up")))
        out.append((f"loss {pct}% down", lambda p=pct: run_loss(0, p, loss_proto=lp, condition=f"loss {p}% down")))
        out.append((f"loss {pct}% both", lambda p=pct: run_loss(p, p, loss_proto=lp, condition=f"loss {p}% both")))
    out.append(("outage 3 s", lambda: run_outage(3.0)))
    out.append(("outage 30 s", lambda: run_outage(30.0)))
    out.append(("dead peer", lambda: run_dead_peer()))
    out.append(("server restart", lambda: run_server_restart()))
    return out


# --- video ----------------------------------------------------------------------------------

VIDEO_KEYS = [
    "condition", "seconds", "sent", "rendered", "delivered", "fps", "max_gap_ms", "gaps_over_200ms",
    "latency_p50_ms", "latency_p95_ms", "psnr_min", "psnr_p50", "packets", "frames_assembled",
    "frames_decoded", "frames_dropped", "keyframes_rx", "pli_sent", "frames_encoded", "keyframes_tx",
    "bitrate", "note",
]


class VideoCall(Call):
    """A camera sender ("cam", the numbered pattern) and a viewer rendering it, one peer process;
    with ``speech`` the sender is the bot (mic + camera) and the viewer the listener."""

    def __init__(self, lab: NetLab, width: int = 640, height: int = 360, fps: float = 30.0,
                 psnr_every: int = 10, room: str = "netvideo") -> None:
        super().__init__(lab, room)
        self.size = (width, height, fps)
        self.psnr_every = psnr_every

    def join_video(self, speech: bool = False) -> bool:
        """Listener/viewer first (renderers set), then the sender with its camera; waits until
        the first frame is rendered (bounded)."""
        sender, viewer = ("bot", "listener") if speech else ("cam", "viewer")
        self.sender, self.viewer = sender, viewer
        w, h, fps = self.size
        self.peer.request("video_render", "video_render_set", name=viewer, user=sender, psnr_every=self.psnr_every)
        self.peer.request("video_send", "video_send_started", name=sender, width=w, height=h, fps=fps)
        if speech:
            if not self.join_both():
                return False
        else:
            a = self.join(viewer)
            since = self.peer.mark()
            self.peer.send("join", name=sender, url=self.url)
            try:
                ev = self.peer.wait_for(lambda e: e["ev"] == "join_done" and e["name"] == sender, JOIN_TIMEOUT,
                                        f"{sender} join", since)
                self.joins[sender] = {"ms": (ev["t"] - ev["t0"]) * 1000.0, "error": ev["error"], "t": ev["t"]}
            except TimeoutError:
                self.joins[sender] = {"ms": None, "error": "no completion", "t": None}
            if a["error"] or self.joins[sender]["error"]:
                return False
        deadline = time.monotonic() + JOIN_TIMEOUT
        while time.monotonic() < deadline:
            if any(n is not None for n, _ in self.video_dump(viewer)["rendered"]):
                return True
            time.sleep(0.2)
        return False

    def video_dump(self, name: str) -> dict:
        return self.peer.request("video_dump", "video_dump", name=name, timeout=10)

    def video_stats(self) -> tuple[dict, dict]:
        """(the viewer's receive counters of the camera, the sender's send counters)."""
        rx: dict = {}
        for tracks in (self.stats(self.viewer).get("receive") or {}).values():
            if "camera" in tracks:
                rx = tracks["camera"]
        tx = ((self.stats(self.sender).get("send") or {}).get("video") or {}).get("camera") or {}
        return rx, tx


def video_figures(rendered: list, sent: list, psnr: list, t_from: float, t_to: float, tail_s: float = 0.3) -> dict:
    """Figures of the frames written in [t_from, t_to - tail_s] (the tail still in flight at
    the end is left out) and of the renders in [t_from, t_to]:

    - ``delivered``: share of those written frames rendered (any time);
    - ``fps``: renders per second; ``max_gap_ms``: the longest time between two renders (a
      frozen picture), counted from ``t_from`` and to ``t_to`` too;
    - latency from writing a frame to its render (p50, p95); PSNR of the frames measured."""
    sent_t = {n: t for n, t in sent}
    window = [n for n, t in sent if t_from <= t <= t_to - tail_s]
    got = {n for n, _ in rendered if n is not None}
    arrivals = sorted(t for n, t in rendered if t_from <= t <= t_to)
    edges = [t_from] + arrivals + [t_to]
    gaps = np.diff(edges) if len(edges) > 1 else np.array([t_to - t_from])
    lat = np.array([t - sent_t[n] for n, t in rendered if n in sent_t and t_from <= t <= t_to]) * 1000.0
    ps = np.array([p for n, p in psnr if n in sent_t and t_from <= sent_t[n] <= t_to])
    return {
        "seconds": round(t_to - t_from, 2),
        "sent": len(window),
        "rendered": len(arrivals),
        "delivered": round(len([n for n in window if n in got]) / max(1, len(window)), 3),
        "fps": round(len(arrivals) / max(1e-3, t_to - t_from), 1),
        "max_gap_ms": round(float(gaps.max()) * 1000.0, 1),
        "gaps_over_200ms": int((gaps > 0.2).sum()),
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "latency_p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
        "psnr_min": round(float(ps.min()), 1) if len(ps) else None,
        "psnr_p50": round(float(np.median(ps)), 1) if len(ps) else None,
    }


def _video_row(condition: str, call: VideoCall, t_from: float, t_to: float, encoded_from: int | None = None) -> dict:
    """Figures of [t_from, t_to] (``video_figures``) and the counters at the end; with
    ``encoded_from`` (the sender's framesEncoded at t_from) also ``encoded`` (frames the
    sender encoded since, a few after t_to included) and ``of_encoded`` (renders in the window
    per frame encoded: what the network lost, apart from frames a busy machine's encoder
    skipped)."""
    rx_dump = call.video_dump(call.viewer)
    tx_dump = call.video_dump(call.sender)
    row: dict[str, Any] = {k: None for k in VIDEO_KEYS}
    row["condition"] = condition
    row["note"] = ""
    row.update(video_figures(rx_dump["rendered"], tx_dump["sent"], rx_dump["psnr"], t_from, t_to))
    rx, tx = call.video_stats()
    row.update({
        "packets": rx.get("packetsReceived"), "frames_assembled": rx.get("framesAssembled"),
        "frames_decoded": rx.get("framesDecoded"), "frames_dropped": rx.get("framesDropped"),
        "keyframes_rx": rx.get("keyframes"), "pli_sent": rx.get("pliSent"),
        "frames_encoded": tx.get("framesEncoded"), "keyframes_tx": tx.get("keyframes"), "bitrate": tx.get("bitrate"),
    })
    row["rx_stats"], row["tx_stats"] = rx, tx
    if encoded_from is not None and tx.get("framesEncoded") is not None:
        row["encoded"] = tx["framesEncoded"] - encoded_from
        row["of_encoded"] = round(min(1.0, row["rendered"] / max(1, row["encoded"])), 3)
    return row


def run_video_loss(up: float, down: float, seconds: float = 15.0, condition: str | None = None) -> dict:
    """640x360@30 from "cam" to "viewer" with random loss both legs, set once video flows;
    figures over ``seconds`` from then."""
    condition = condition or f"video, loss up {up:g}% down {down:g}%"
    with NetLab() as lab:
        call = VideoCall(lab)
        try:
            if not call.join_video():
                row = {k: None for k in VIDEO_KEYS}
                row.update(condition=condition, note="no video before the loss", events=call.events(time.monotonic()))
                return row
            rx0, tx0 = call.video_stats()
            lab.set_loss(up=up, down=down)
            t0 = time.monotonic()
            time.sleep(seconds)
            t1 = time.monotonic()
            row = _video_row(condition, call, t0, t1, tx0.get("framesEncoded"))
            row["before"] = {"rx": rx0, "tx": tx0}
            row["nft"] = lab.counters()
            row["events"] = call.events(t0)
            return row
        finally:
            call.peer.close()


def run_video_rate(up_kbit: float, limited_s: float = 14.0, after_s: float = 12.0, sample_s: float = 0.5,
                   condition: str | None = None) -> dict:
    """640x360@30 with the uplink limited to ``up_kbit`` for ``limited_s`` s, then unlimited for
    ``after_s`` s. The sender's encoder bitrate is sampled every ``sample_s`` (``bitrates``:
    (s since the limit, bit/s)); video figures for the limited span and the span after."""
    condition = condition or f"video, uplink {up_kbit:g} kbit/s"
    with NetLab() as lab:
        call = VideoCall(lab)
        try:
            if not call.join_video():
                row = {k: None for k in VIDEO_KEYS}
                row.update(condition=condition, note="no video before the limit")
                return row
            time.sleep(1.0)
            _, tx0 = call.video_stats()
            lab.set_rate(up_kbit=up_kbit)
            t0 = time.monotonic()
            samples: list[tuple[float, int | None]] = []
            while time.monotonic() < t0 + limited_s:
                _, tx = call.video_stats()
                samples.append((round(time.monotonic() - t0, 2), tx.get("bitrate")))
                time.sleep(sample_s)
            lab.set_rate()
            t1 = time.monotonic()
            while time.monotonic() < t1 + after_s:
                _, tx = call.video_stats()
                samples.append((round(time.monotonic() - t0, 2), tx.get("bitrate")))
                time.sleep(sample_s)
            t2 = time.monotonic()
            row = _video_row(condition, call, t0, t1, tx0.get("framesEncoded"))
            dump = call.video_dump(call.viewer)
            sent = call.video_dump(call.sender)["sent"]
            row["after"] = video_figures(dump["rendered"], sent, dump["psnr"], t1, t2)
            row["bitrate_before"] = tx0.get("bitrate")
            row["bitrates"] = samples
            row["limit_s"], row["lifted_s"] = 0.0, round(t1 - t0, 2)
            row["events"] = call.events(t0)
            return row
        finally:
            call.peer.close()


def run_speech_with_video(up: float = 0, down: float = 0, seconds: float = 12.0, width: int = 640,
                          height: int = 360, up_kbit: float | None = None,
                          condition: str | None = None) -> dict:
    """The bot speaks and sends 640x360@30 video on the same transport; the listener renders
    both. Audio figures (ROW_KEYS) plus the video's (prefixed ``video_``)."""
    condition = condition or f"speech + video, loss up {up:g}% down {down:g}%"
    with NetLab() as lab:
        lab.set_loss(up=up, down=down)
        if up_kbit:
            lab.set_rate(up_kbit=up_kbit)
        call = VideoCall(lab, width, height)
        try:
            ok = call.join_video(speech=True)
            row = _base_row(condition, call)
            if not ok:
                row["intelligible"] = 0.0
                row["events"] = call.events(time.monotonic())
                return row
            _, tx0 = call.video_stats()
            t0 = call.speak(seconds)
            call.wait_spoken()
            time.sleep(0.6)
            t1 = time.monotonic()
            w = call.windows()
            _fill_audio(row, call, w)
            v = _video_row(condition, call, t0, t1, tx0.get("framesEncoded"))
            for k, val in v.items():
                if k != "condition":
                    row[f"video_{k}"] = val
            row["events"] = call.events()
            return row
        finally:
            call.peer.close()
