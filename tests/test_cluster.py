"""Cluster mode (issue 20, docs/scaling.md): ``daily-server --redis`` nodes sharing a real
``redis-server`` on a loopback port. Skipped when redis-server is not installed (scripts/test.sh
installs it).

Covered: node registry and heartbeat (every node lists every live node with its URL and load),
expiry of a SIGKILLed node within the TTL, start-up errors; rooms shared through Redis (REST on
any node sees every room; creations spread over the nodes, least-loaded first; a private room
created on one node admits a meeting token made by another on a third); joining through any
node (the signalling is relayed to the room's node: speech both ways, app messages and
participant events as on one server); a killed room node (its participants get ``on_error``
and ``left``, its rooms take joins on another node within the TTL); draining on SIGTERM; a
Redis outage (calls go on, new joins refused clearly, the node registers again).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

import numpy as np

import speechmetrics as sm
from conftest import SPEECH_16K, EventLog, Waiter, join, leave, mic_settings, rest_call
from daily import CallClient, CustomAudioSource, CustomAudioTrack, EventHandler

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server not installed (apt-get install redis-server)")

KEY = "cluster-test-key"
# NODE_TTL (4 s) after the last heartbeat; the last one may have been up to 1 s before the kill.
NODE_TTL_S = 4.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url():
    port = free_port()
    p = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not redis_ping(port):
            assert p.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer PING within 10 s"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        p.kill()
        p.wait()


RATE = 16000


class Peer(EventHandler, EventLog):
    """A call participant with a custom microphone that records every remote participant's
    audio and every event, for the cross-node tests."""

    def __init__(self, name: str) -> None:
        EventLog.__init__(self)
        self.name = name
        self.pcm: dict[str, list[bytes]] = {}
        self.source = CustomAudioSource(RATE, 1)
        self.track = CustomAudioTrack(self.source)
        self.client = CallClient(event_handler=self)
        self.client.set_user_name(name)

    def on_participant_joined(self, participant):
        pid = participant["id"]
        self.pcm.setdefault(pid, [])
        self.client.set_audio_renderer(pid, self.on_audio, sample_rate=RATE, callback_interval_ms=20)
        self._add("joined", participant["info"].get("userName"), pid)

    def on_participant_left(self, participant, reason):
        self._add("left", participant["info"].get("userName"), reason)

    def on_app_message(self, message, sender):
        self._add("app", message, sender)

    def on_error(self, message):
        self._add("error", message)

    def on_call_state_updated(self, state):
        self._add("state", state)

    def on_audio(self, participant_id, audio, audio_source):
        self.pcm.setdefault(participant_id, []).append(audio.audio_frames)

    def join(self, url: str, **kw) -> dict:
        return join(self.client, url, client_settings=mic_settings(self.track), **kw)

    def speak(self, pcm: np.ndarray) -> threading.Thread:
        """Writes ``pcm`` (16 kHz mono int16) in real time on a thread (blocking writes)."""
        data = pcm.astype("<i2").tobytes()

        def run():
            step = 2 * RATE // 50  # 20 ms
            for k in range(0, len(data) - step + 1, step):
                self.source.write_frames(data[k : k + step])

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def heard(self, participant_id: str) -> np.ndarray:
        return np.frombuffer(b"".join(self.pcm.get(participant_id, [])), dtype="<i2")

    def release(self) -> None:
        try:
            self.client.leave()
        finally:
            self.client.release()


def speech(offset_s: float, seconds: float) -> np.ndarray:
    sent, rate = sm.read_wav_mono16(SPEECH_16K)
    assert rate == RATE
    return sent[int(offset_s * RATE) : int((offset_s + seconds) * RATE)]


def node_of(node_list: list["Node"], room: str, via: "Node") -> int:
    """Index in ``node_list`` of the node whose heartbeat lists ``room`` (waits up to 3 s: the
    heartbeat that reports a fresh placement may be a second away)."""
    by_url = {n.url: i for i, n in enumerate(node_list)}

    def find():
        hits = [by_url[e["url"]] for e in via.nodes() if room in e["rooms"]]
        return hits if len(hits) == 1 else None

    return wait_until(find, 3, f"{room} listed on one node")[0]


class Node:
    """One ``daily-server`` process (run as tests/test_server.py runs it)."""

    def __init__(self, redis_url: str | None, *extra: str) -> None:
        args = [sys.executable, "-m", "daily.cli", "--host", "127.0.0.1", "--port", "0", "--api-key", KEY]
        if redis_url is not None:
            args += ["--redis", redis_url]
        self.p = subprocess.Popen(
            args + list(extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.p.stdout.readline()
        m = re.match(r"daily-server listening on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            self.stop()
            raise AssertionError(f"node did not start: {line!r}")
        self.url = m.group(1)

    def request(self, method: str, path: str, body: dict | None = None, key: str | None = KEY) -> tuple[int, dict]:
        return rest_call(self.url + path, method, body, key, timeout=5)

    def get(self, path: str, key: str | None = KEY) -> tuple[int, dict]:
        return self.request("GET", path, key=key)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        return self.request("POST", path, body)

    def delete(self, path: str) -> tuple[int, dict]:
        return self.request("DELETE", path)

    def nodes(self) -> list[dict]:
        status, body = self.get("/v1/nodes")
        assert status == 200, body
        return body["data"]

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)


def wait_until(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


@pytest.fixture()
def nodes(redis_url):
    started: list[Node] = []
    try:
        for _ in range(3):
            started.append(Node(redis_url))
        yield started
    finally:
        for n in started:
            n.stop()
        # The next test starts from an empty registry: killed nodes would linger for the TTL.
        with socket.create_connection(("127.0.0.1", int(redis_url.rsplit(":", 1)[1])), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            assert s.recv(16).startswith(b"+OK")


def flush(redis_url: str) -> None:
    with socket.create_connection(("127.0.0.1", int(redis_url.rsplit(":", 1)[1])), timeout=2) as s:
        s.sendall(b"FLUSHALL\r\n")
        assert s.recv(16).startswith(b"+OK")


def urls(listing: list[dict]) -> set[str]:
    return {n["url"] for n in listing}


def test_every_node_lists_every_live_node_with_its_url(nodes):
    want = {n.url for n in nodes}
    for n in nodes:
        listing = wait_until(lambda n=n: (lambda l: l if urls(l) == want else None)(n.nodes()), 5, "3 nodes listed")
        assert len(listing) == 3
        assert len({e["id"] for e in listing}) == 3
        for e in listing:
            assert e["rooms"] == [] and e["participants"] == 0, e
            assert 0.0 <= e["cpu"] < 64, e
            assert abs(e["updated_at_ms"] / 1000 - time.time()) < 5, e
    # Beyond Daily, but as guarded as the rest of /v1.
    assert nodes[0].get("/v1/nodes", key=None)[0] == 401
    assert nodes[0].get("/v1/nodes", key="wrong")[0] == 401


def test_heartbeat_carries_rooms_and_participants(nodes):
    want = {n.url for n in nodes}
    wait_until(lambda: urls(nodes[0].nodes()) == want, 5, "3 nodes listed")
    c = CallClient()
    try:
        # An ad-hoc room is placed when first joined (on the least-loaded node, whichever node
        # the client came through) and its node reports it.
        join(c, nodes[1].url + "/busy-room")

        def loaded():
            busy = [e for e in nodes[0].nodes() if e["participants"] == 1]
            return busy[0] if len(busy) == 1 else None

        e = wait_until(loaded, 5, "the room's node reports its participant")
        assert e["rooms"] == ["busy-room"]
        others = [x for x in nodes[2].nodes() if x["id"] != e["id"]]
        assert all(x["participants"] == 0 and x["rooms"] == [] for x in others), others
        leave(c)
        wait_until(
            lambda: {x["id"]: x for x in nodes[2].nodes()}[e["id"]]["participants"] == 0,
            5,
            "the participant's leave is reported",
        )
    finally:
        c.release()


def test_killed_node_expires_within_the_ttl_and_stopped_node_leaves_at_once(nodes):
    want = {n.url for n in nodes}
    wait_until(lambda: urls(nodes[0].nodes()) == want, 5, "3 nodes listed")
    killed = nodes[2]
    killed.p.send_signal(signal.SIGKILL)
    killed.p.wait(5)
    t0 = time.monotonic()
    wait_until(lambda: killed.url not in urls(nodes[0].nodes()), NODE_TTL_S + 2, "the killed node expires")
    gone_after = time.monotonic() - t0
    # Not removed by anything but the expiry: it stays listed for a good part of the TTL.
    assert gone_after > NODE_TTL_S - 1.5, gone_after
    assert urls(nodes[1].nodes()) == {nodes[0].url, nodes[1].url}

    # SIGTERM: a clean stop deregisters at once, without waiting for the TTL.
    nodes[1].p.send_signal(signal.SIGTERM)
    assert nodes[1].p.wait(10) == 0
    assert urls(nodes[0].nodes()) == {nodes[0].url}


def test_node_url_is_what_the_registry_lists(redis_url):
    n = Node(redis_url, "--node-url", "https://node-a.example.com")
    try:
        listing = wait_until(lambda: n.nodes(), 5, "the node is listed")
        assert urls(listing) == {"https://node-a.example.com"}
    finally:
        n.stop()
        n.p.wait()
        with socket.create_connection(("127.0.0.1", int(redis_url.rsplit(":", 1)[1])), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(16)


def test_without_redis_nodes_is_404_and_bad_redis_fails_start(redis_url):
    n = Node(None)
    try:
        status, body = n.get("/v1/nodes")
        assert status == 404 and "--redis" in body["info"], body
    finally:
        n.stop()
    base = [sys.executable, "-m", "daily.cli", "--host", "127.0.0.1", "--port", "0"]
    bad = subprocess.run(base + ["--redis", "http://not-redis"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "Redis URL" in bad.stderr, bad.stderr
    t0 = time.monotonic()
    down = subprocess.run(base + ["--redis", f"redis://127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "Redis" in down.stderr, down.stderr
    assert time.monotonic() - t0 < 15


def test_rooms_live_in_redis_and_spread_over_the_nodes(nodes):
    want = {n.url for n in nodes}
    wait_until(lambda: urls(nodes[0].nodes()) == want, 5, "3 nodes listed")
    names = [f"room-{i}" for i in range(6)]
    for name in names:
        status, body = nodes[0].post("/v1/rooms", {"name": name})
        assert status == 200 and body["name"] == name, body
    status, body = nodes[1].post("/v1/rooms", {"name": "room-0"})
    assert status == 400 and "already exists" in body["info"], body
    # REST on every node sees every room, newest first.
    for n in nodes:
        status, body = n.get("/v1/rooms")
        assert status == 200 and [r["name"] for r in body["data"]] == names[::-1], body
        assert n.get("/v1/rooms/room-3")[1]["name"] == "room-3"
    # Least-loaded placement: empty nodes, so rooms go round all three, two each.
    def placed():
        listing = nodes[2].nodes()
        per_node = {e["url"]: e["rooms"] for e in listing}
        return per_node if sum(len(r) for r in per_node.values()) == 6 else None

    per_node = wait_until(placed, 5, "every room placed in the heartbeats")
    assert sorted(len(r) for r in per_node.values()) == [2, 2, 2], per_node
    assert sorted(sum(per_node.values(), [])) == names
    # Deleted through another node: gone everywhere, and from its node.
    assert nodes[2].delete("/v1/rooms/room-0") == (200, {"deleted": True, "name": "room-0"})
    for n in nodes:
        assert n.get("/v1/rooms/room-0")[0] == 404
    assert nodes[1].delete("/v1/rooms/room-0")[0] == 404


def test_private_room_and_token_from_other_nodes(nodes):
    status, _ = nodes[0].post("/v1/rooms", {"name": "secret", "privacy": "private"})
    assert status == 200
    # Meeting tokens are stateless HS256 JWTs signed with the shared API key: any node checks them.
    status, body = nodes[1].post("/v1/meeting-tokens", {"properties": {"room_name": "secret"}})
    assert status == 200, body
    c = CallClient()
    try:
        join(c, nodes[2].url + "/secret", meeting_token=body["token"])
        leave(c)
    finally:
        c.release()
    # Without a token the private room (known to node 2 only through Redis) refuses.
    from conftest import Waiter

    c = CallClient()
    try:
        w = Waiter()
        c.join(nodes[2].url + "/secret", completion=w)
        data, error = w.wait(15)
        assert error is not None and "not allowed" in error, (data, error)
    finally:
        c.release()


def test_redis_outage_keeps_the_node_and_it_registers_again():
    port = free_port()
    cmd = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start_redis():
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: redis_ping(port), 10, "redis-server answers PING")
        return p

    r = start_redis()
    n = None
    c = CallClient()
    try:
        n = Node(f"redis://127.0.0.1:{port}")
        wait_until(lambda: len(n.nodes()) == 1, 5, "the node is listed")
        join(c, n.url + "/ongoing")
        r.kill()
        r.wait()
        # Redis down: the REST calls that need it fail fast and clearly; the node keeps serving.
        t0 = time.monotonic()
        status, body = n.get("/v1/nodes")
        assert status == 503 and "Redis" in body["info"], body
        assert n.get("/v1/rooms")[0] == 503
        assert time.monotonic() - t0 < 5
        with urllib.request.urlopen(n.url + "/", timeout=5) as resp:
            assert resp.status == 200
        assert n.p.poll() is None
        # A new join is refused clearly (a private room must not open up while Redis cannot
        # say who may enter); the running call is untouched.
        w = Waiter()
        late = CallClient()
        try:
            late.join(n.url + "/ongoing", completion=w)
            _, error = w.wait(15)
            assert error is not None and "cluster state is unavailable" in error, error
        finally:
            late.release()
        assert c.participants()["local"]["id"]
        # Back: the node registers again at its next heartbeat, its participant still counted.
        r = start_redis()
        listing = wait_until(
            lambda: (lambda s_b: s_b[1]["data"] if s_b[0] == 200 and s_b[1]["data"] else None)(n.get("/v1/nodes")),
            10,
            "the node registers again",
        )
        assert listing[0]["url"] == n.url
        wait_until(lambda: n.nodes()[0]["participants"] == 1, 5, "the running call is reported")
        leave(c)
    finally:
        c.release()
        if n is not None:
            n.stop()
        r.kill()
        r.wait()


def test_joins_through_any_node_reach_the_rooms_node(nodes):
    """In each of three rooms (one per node) a bot and a listener join through the two other
    nodes: the signalling of both is relayed to the room's node, and they hear each other, see
    each other join and leave, and exchange app messages as on one server."""
    want = {n.url for n in nodes}
    wait_until(lambda: urls(nodes[0].nodes()) == want, 5, "3 nodes listed")
    rooms = [f"talk-{i}" for i in range(3)]
    for r in rooms:
        assert nodes[0].post("/v1/rooms", {"name": r})[0] == 200
    wait_until(lambda: sum(len(e["rooms"]) for e in nodes[0].nodes()) == 3, 5, "rooms placed")
    results = []
    for r in rooms:
        home = node_of(nodes, r, nodes[0])
        via_bot, via_listener = nodes[(home + 1) % 3], nodes[(home + 2) % 3]
        bot, listener = Peer("bot"), Peer("listener")
        try:
            bot.join(f"{via_bot.url}/{r}")
            listener.join(f"{via_listener.url}/{r}")
            _, _, listener_id = bot.wait_for(lambda e: e[:2] == ("joined", "listener"), 10, "listener joined")
            _, _, bot_id = listener.wait_for(lambda e: e[:2] == ("joined", "bot"), 10, "bot joined")
            # Both on the room's node only; the relaying nodes hold nobody.
            by_url = wait_until(
                lambda: (lambda m: m if m[nodes[home].url]["participants"] == 2 else None)(
                    {e["url"]: e for e in nodes[0].nodes()}
                ),
                5,
                "the room's node counts both",
            )
            assert by_url[via_bot.url]["participants"] == 0 and by_url[via_listener.url]["participants"] == 0
            time.sleep(0.3)  # the receive transports connect
            said_by_bot, said_by_listener = speech(2.0, 4.0), speech(14.0, 4.0)
            threads = [bot.speak(said_by_bot), listener.speak(said_by_listener)]
            for t in threads:
                t.join(15)
            time.sleep(0.5)  # drain the jitter buffers
            for who, sent, peer, pid in (
                ("listener hears bot", said_by_bot, listener, bot_id),
                ("bot hears listener", said_by_listener, bot, listener_id),
            ):
                got = peer.heard(pid)
                lag = sm.best_lag(sent, got)
                sim = sm.similarity(sent, got, RATE, lag)
                results.append((r, who, round(sim, 3), len(got), lag))
                assert sim >= 0.8, results
            bot.client.send_app_message({"n": 1, "room": r}, participant_id=None)
            listener.wait_for(lambda e: e[0] == "app" and e[1] == {"n": 1, "room": r} and e[2] == bot_id, 5, "app message")
            listener.client.send_app_message({"n": 2}, participant_id=bot_id)
            bot.wait_for(lambda e: e[0] == "app" and e[1] == {"n": 2} and e[2] == listener_id, 5, "app message back")
            leave(bot.client)
            listener.wait_for(lambda e: e[:2] == ("left", "bot"), 5, "bot left")
        finally:
            bot.release()
            listener.release()
    print("cross-node speech similarity:", results)


def wait_left(peer: Peer, since: float, timeout: float) -> float:
    """Seconds from ``since`` until ``peer`` reported ``on_error`` and the ``left`` call state."""
    peer.wait_for(lambda e: e[0] == "error", timeout, "on_error")
    left = peer.wait_for(lambda e: e == ("state", "left"), timeout, "left")
    return round(peer.time_of(left) - since, 3)


def test_killed_room_node_ends_its_calls_and_its_rooms_move(nodes):
    want = {n.url for n in nodes}
    wait_until(lambda: urls(nodes[0].nodes()) == want, 5, "3 nodes listed")
    assert nodes[0].post("/v1/rooms", {"name": "doomed"})[0] == 200
    wait_until(lambda: any("doomed" in e["rooms"] for e in nodes[0].nodes()), 5, "placed")
    home = node_of(nodes, "doomed", nodes[0])
    relay_node, spare = nodes[(home + 1) % 3], nodes[(home + 2) % 3]
    direct, relayed = Peer("direct"), Peer("relayed")
    try:
        direct.join(f"{nodes[home].url}/doomed")
        relayed.join(f"{relay_node.url}/doomed")
        direct.wait_for(lambda e: e[:2] == ("joined", "relayed"), 10, "the relayed peer joined")
        t_kill = time.monotonic()
        nodes[home].p.send_signal(signal.SIGKILL)
        nodes[home].p.wait(5)
        # The direct client finds nothing listening when it tries to resume; the relayed one
        # tries through its relay, which finds the room's node gone. Both end the call.
        took = {"direct": wait_left(direct, t_kill, 10), "relayed": wait_left(relayed, t_kill, 10)}
        # New joins: refused ("try again") until the dead node's entry expires, then the room
        # is placed on a live node.
        joined_after = None
        while joined_after is None:
            assert time.monotonic() - t_kill < 12, "the room never took a join again"
            late = Peer("late")
            w = Waiter()
            late.client.join(f"{spare.url}/doomed", client_settings=mic_settings(late.track), completion=w)
            _, error = w.wait(15)
            if error is None:
                joined_after = time.monotonic() - t_kill
                # It lives on a live node now (listed at that node's next heartbeat).
                listing = wait_until(
                    lambda: (lambda m: m if any("doomed" in e["rooms"] for e in m.values()) else None)(
                        {e["url"]: e for e in spare.nodes()}
                    ),
                    3,
                    "the room listed on a live node",
                )
                assert nodes[home].url not in listing
            else:
                assert "try again" in error, error
                time.sleep(0.5)
            late.release()
        print(f"SIGKILL: call ended after {took} s; the room took a join again after {joined_after:.1f} s")
        assert joined_after <= 10.0
    finally:
        direct.release()
        relayed.release()


def test_sigterm_drains_the_node(redis_url):
    started = [Node(redis_url, "--drain-timeout", "60") for _ in range(3)]
    peers: list[Peer] = []
    try:
        want = {n.url for n in started}
        wait_until(lambda: urls(started[0].nodes()) == want, 5, "3 nodes listed")
        # Six rooms spread two per node: each node holds a "kept-" room and an "empty-" room.
        for i in range(3):
            assert started[0].post("/v1/rooms", {"name": f"kept-{i}"})[0] == 200
        for i in range(3):
            assert started[0].post("/v1/rooms", {"name": f"empty-{i}"})[0] == 200
        per_node = wait_until(
            lambda: (lambda m: m if sum(len(r) for r in m.values()) == 6 else None)(
                {e["url"]: e["rooms"] for e in started[0].nodes()}
            ),
            5,
            "rooms placed",
        )
        d = started[0]
        others = started[1:]
        kept = next(r for r in per_node[d.url] if r.startswith("kept-"))
        empty = next(r for r in per_node[d.url] if r.startswith("empty-"))
        a, b = Peer("a"), Peer("b")
        peers += [a, b]
        a.join(f"{d.url}/{kept}")
        b.join(f"{others[0].url}/{kept}")
        a.wait_for(lambda e: e[:2] == ("joined", "b"), 10, "b joined")

        d.p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        wait_until(
            lambda: {e["url"]: e for e in others[1].nodes()}[d.url].get("draining"), 3, "the node is listed as draining"
        )
        # The empty room went back: its next join lands on another node.
        wait_until(lambda: empty not in {e["url"]: e for e in others[1].nodes()}[d.url]["rooms"], 3, "empty room released")
        c0 = Peer("c0")
        peers.append(c0)
        c0.join(f"{d.url}/{empty}")
        assert node_of(started, empty, others[1]) != 0
        # New rooms avoid it.
        for i in range(3):
            assert others[0].post("/v1/rooms", {"name": f"fresh-{i}"})[0] == 200
        listing = wait_until(
            lambda: (lambda m: m if sum(1 for r in sum(m.values(), []) if r.startswith("fresh-")) == 3 else None)(
                {e["url"]: e["rooms"] for e in others[1].nodes()}
            ),
            5,
            "fresh rooms placed",
        )
        assert not [r for r in listing[d.url] if r.startswith("fresh-")], listing
        # The running call goes on and still takes joins, through any node.
        c = Peer("c")
        peers.append(c)
        c.join(f"{others[1].url}/{kept}")
        c.wait_for(lambda e: e[:2] == ("joined", "a"), 10, "c sees a")
        a.client.send_app_message({"still": "here"}, participant_id=None)
        c.wait_for(lambda e: e[0] == "app" and e[1] == {"still": "here"}, 5, "app message during the drain")
        assert d.p.poll() is None
        # Once its call has ended and the session it relays (c0's) too, the node stops by
        # itself and leaves the registry.
        for p in (a, b, c):
            leave(p.client)
        time.sleep(1.0)
        assert d.p.poll() is None, "stopped while still relaying c0's signalling"
        t_last = time.monotonic()
        leave(c0.client)
        assert d.p.wait(10) == 0
        drained_after = time.monotonic() - t_last
        assert d.url not in urls(others[0].nodes())
        print(f"drain: node stopped {drained_after:.1f} s after its last session ended ({time.monotonic() - t0:.1f} s after SIGTERM)")
    finally:
        for p in peers:
            p.release()
        for n in started:
            n.stop()
        flush(redis_url)


def test_drain_timeout_ends_the_calls_left(redis_url):
    n = Node(redis_url, "--drain-timeout", "1.5")
    p = Peer("stays")
    try:
        wait_until(lambda: len(n.nodes()) == 1, 5, "listed")
        p.join(f"{n.url}/long-call")
        n.p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert n.p.wait(15) == 0
        took = time.monotonic() - t0
        assert 1.4 <= took < 8, took
        p.wait_for(lambda e: e == ("state", "left"), 5, "the call ended")
        print(f"drain timeout 1.5 s: the node stopped {took:.2f} s after SIGTERM")
    finally:
        p.release()
        n.stop()
        flush(redis_url)


def test_delete_through_another_node_ends_the_call(nodes):
    want = {n.url for n in nodes}
    wait_until(lambda: urls(nodes[0].nodes()) == want, 5, "3 nodes listed")
    assert nodes[0].post("/v1/rooms", {"name": "short-lived"})[0] == 200
    home = node_of(nodes, "short-lived", nodes[0])
    other = nodes[(home + 1) % 3]
    p = Peer("inside")
    try:
        p.join(f"{nodes[home].url}/short-lived")
        t0 = time.monotonic()
        # Sent to the room's node over the Redis bus (pub/sub), as on one server.
        assert other.delete("/v1/rooms/short-lived") == (200, {"deleted": True, "name": "short-lived"})
        left = p.wait_for(lambda e: e == ("state", "left"), 5, "the call ended")
        assert p.time_of(left) - t0 < 3
    finally:
        p.release()


def test_room_listing_pages_across_nodes_and_private_rooms_stay_private(nodes):
    made = []
    for i in range(5):
        status, body = nodes[i % 3].post("/v1/rooms", {"name": f"listed-{i}", "privacy": "private" if i == 0 else "public"})
        assert status == 200
        made.append(body)
    ids = [r["id"] for r in reversed(made)]
    got = []
    after = ""
    for n in (nodes[1], nodes[2], nodes[0]):  # each page through another node
        status, body = n.get(f"/v1/rooms?limit=2{after}")
        assert status == 200 and body["total_count"] == 5, body
        got += [r["id"] for r in body["data"]]
        if body["data"]:
            after = f"&starting_after={body['data'][-1]['id']}"
    assert got == ids
    assert [r["id"] for r in nodes[0].get(f"/v1/rooms?ending_before={ids[2]}")[1]["data"]] == ids[:2]
    # Deleted rooms leave the listing and its cursors.
    assert nodes[1].delete("/v1/rooms/listed-4")[0] == 200
    status, body = nodes[2].get("/v1/rooms")
    assert body["total_count"] == 4 and [r["name"] for r in body["data"]] == ["listed-3", "listed-2", "listed-1", "listed-0"]
    assert nodes[2].get(f"/v1/rooms?starting_after={ids[0]}")[0] == 400
    # GET /{room}: a private room says nothing on any node; a public room is counted on its node
    # and pointed to from the others.
    for n in nodes:
        with urllib.request.urlopen(n.url + "/listed-0", timeout=5) as r:
            assert json.load(r) == {"room": "listed-0", "privacy": "private"}
    home = node_of(nodes, "listed-1", nodes[0])
    for i, n in enumerate(nodes):
        with urllib.request.urlopen(n.url + "/listed-1", timeout=5) as r:
            info = json.load(r)
        assert info == ({"room": "listed-1", "participants": 0} if i == home else {"room": "listed-1", "node": nodes[home].url}), info
