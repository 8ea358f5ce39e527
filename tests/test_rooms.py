"""Room state against a real server: app messages, participant counts, active speaker (RFC 6464
levels), publishing, subscriptions, permissions (canSend enforced), presence, eject, network
stats, and the completion contract (one completion each, events first, handlers may block)."""

from __future__ import annotations

import threading
import time
import urllib.request
import json

import numpy as np
import pytest

import speechmetrics as sm
from conftest import SPEECH_16K, Capture, Waiter, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack, EventHandler
from daily.server import RoomServer

KEY = "rooms-test-key-0123456789"


class Rec(EventHandler):
    """Records every event it cares about as (name, args) and waits on conditions."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.cond = threading.Condition()

    def _add(self, *ev) -> None:
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def on_participant_joined(self, participant):
        self._add("joined", participant)

    def on_participant_left(self, participant, reason):
        self._add("left", participant, reason)

    def on_participant_updated(self, participant):
        self._add("updated", participant)

    def on_app_message(self, message, sender):
        self._add("app", message, sender)

    def on_active_speaker_changed(self, participant):
        self._add("speaker", participant)

    def on_participant_counts_updated(self, counts):
        self._add("counts", counts)

    def on_inputs_updated(self, input_settings):
        self._add("inputs", input_settings)

    def on_publishing_updated(self, publishing_settings):
        self._add("publishing", publishing_settings)

    def on_subscriptions_updated(self, subscriptions):
        self._add("subscriptions", subscriptions)

    def on_subscription_profiles_updated(self, profiles):
        self._add("profiles", profiles)

    def on_network_stats_updated(self, stats):
        self._add("netstats", stats)

    def on_network_connection_status_updated(self, status):
        self._add("connection", status)

    def on_error(self, message):
        self._add("error", message)

    def on_call_state_updated(self, state):
        self._add("state", state)

    def of(self, name: str) -> list[tuple]:
        with self.cond:
            return [e for e in self.events if e[0] == name]

    def wait(self, pred, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(pred, timeout), f"condition not met in time; events: {[e[0] for e in self.events]}"


def done(w: Waiter, timeout: float = 10.0):
    """The single argument of a one-argument completion."""
    (err,) = w.wait(timeout)
    return err


def speech_bytes(seconds: float) -> bytes:
    s, _ = sm.read_wav_mono16(SPEECH_16K)
    return s[: int(16000 * seconds)].astype("<i2").tobytes()


def start_speaking(source: CustomAudioSource, pcm: bytes) -> threading.Thread:
    """Writes `pcm` (16 kHz mono) to `source` in 20 ms blocking writes on a thread."""

    def run():
        for k in range(0, len(pcm), 640):
            source.write_frames(pcm[k : k + 640])

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def local_id(c: CallClient) -> str:
    return c.participants()["local"]["id"]


@pytest.fixture(scope="module")
def keyed():
    with RoomServer(host="127.0.0.1", port=0, api_key=KEY) as s:
        yield s


def owner_token(server: RoomServer, room: str, **props) -> str:
    body = json.dumps({"properties": {"room_name": room, "is_owner": True, **props}}).encode()
    req = urllib.request.Request(server.api_url + "/meeting-tokens", data=body, method="POST")
    req.add_header("Authorization", f"Bearer {KEY}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["token"]


def test_prebuilt_chat_message_is_a_chat_msg_app_message(server):
    """send_prebuilt_chat_message reaches the call page's chat (tests/test_browser.py) and SDK
    clients alike, as Daily Prebuilt's chat-msg app message."""
    url = server.room_url("prebuilt-chat")
    ra, rb = Rec(), Rec()
    a, b = CallClient(event_handler=ra), CallClient(event_handler=rb)
    try:
        w = Waiter()
        a.send_prebuilt_chat_message("early", completion=w)
        assert "not in a call" in done(w)
        with pytest.raises(TypeError):
            a.send_prebuilt_chat_message({"not": "a str"})
        a.set_user_name("Chat Bot")
        join(a, url)
        join(b, url)
        for args in [("hello",), ("as someone else", "Narrator")]:
            w = Waiter()
            a.send_prebuilt_chat_message(*args, completion=w)
            assert done(w) is None
        rb.wait(lambda: len(rb.of("app")) == 2)
        assert [e[1] for e in rb.of("app")] == [
            {"event": "chat-msg", "message": "hello", "name": "Chat Bot", "room": "main-room"},
            {"event": "chat-msg", "message": "as someone else", "name": "Narrator", "room": "main-room"},
        ]
        assert {e[2] for e in rb.of("app")} == {local_id(a)}
    finally:
        for cl in (a, b):
            cl.release()


def test_app_messages_broadcast_direct_any_json_and_limits(server):
    url = server.room_url("app-messages")
    ra, rb, rc = Rec(), Rec(), Rec()
    a, b, c = CallClient(event_handler=ra), CallClient(event_handler=rb), CallClient(event_handler=rc)
    try:
        w = Waiter()
        a.send_app_message({"x": 1}, completion=w)
        assert "not in a call" in done(w)
        for cl in (a, b, c):
            join(cl, url)
        aid, bid = local_id(a), local_id(b)
        payloads = [{"text": "hi", "n": [1, 2.5, None, True]}, "plain string", [1, "two"], 42]
        for p in payloads:
            w = Waiter()
            a.send_app_message(p, completion=w)
            assert done(w) is None
        for r in (rb, rc):
            r.wait(lambda r=r: len(r.of("app")) == len(payloads))
            assert [(e[1], e[2]) for e in r.of("app")] == [(p, aid) for p in payloads]
        assert ra.of("app") == []  # the sender does not hear itself
        w = Waiter()
        a.send_app_message({"only": "b"}, participant_id=bid, completion=w)
        assert done(w) is None
        rb.wait(lambda: len(rb.of("app")) == len(payloads) + 1)
        assert rb.of("app")[-1][1:] == ({"only": "b"}, aid)
        # Sets become lists; anything JSON cannot carry raises at once.
        with pytest.raises(TypeError):
            a.send_app_message({"f": object()})
        w = Waiter()
        a.send_app_message({"big": "x" * 5000}, completion=w)
        assert "exceeds the limit of 4096 bytes" in done(w)
        w = Waiter()
        a.send_app_message("x", participant_id="00000000-0000-4000-8000-000000000000", completion=w)
        assert "no participant" in done(w)
        time.sleep(0.3)
        assert len(rc.of("app")) == len(payloads)  # the direct message went to b only
        assert w.calls == 1
    finally:
        for cl in (a, b, c):
            cl.release()


def test_counts_and_set_user_name_reach_remote(server):
    url = server.room_url("counts")
    ra, rb = Rec(), Rec()
    a, b = CallClient(event_handler=ra), CallClient(event_handler=rb)
    try:
        assert a.participant_counts() == {"hidden": 0, "present": 0}
        join(a, url)
        ra.wait(lambda: {"present": 1, "hidden": 0} in [e[1] for e in ra.of("counts")])
        join(b, url)
        ra.wait(lambda: ra.of("counts")[-1][1] == {"present": 2, "hidden": 0})
        assert a.participant_counts() == {"present": 2, "hidden": 0}
        b.set_user_name("renamed")
        ra.wait(lambda: any(e[1]["info"].get("userName") == "renamed" for e in ra.of("updated")))
        leave(b)
        ra.wait(lambda: a.participant_counts() == {"present": 1, "hidden": 0})
        leave(a)
        assert a.participant_counts() == {"present": 0, "hidden": 0}
    finally:
        a.release()
        b.release()


def test_active_speaker_follows_audio_level_and_ignores_flagged_tracks(server):
    url = server.room_url("speaker")
    rl = Rec()
    listener = CallClient(event_handler=rl)
    talker, quiet = CallClient(), CallClient()
    src = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(src)
    music = CustomAudioSource(16000, 1)
    mtrack = CustomAudioTrack(music)
    try:
        join(listener, url)
        assert listener.active_speaker() is None
        join(quiet, url)
        w = Waiter()
        quiet.add_custom_audio_track("music", mtrack, ignore_audio_level=True, completion=w)
        assert done(w) is None
        join(talker, url, client_settings=mic_settings(track))
        # The ignored track plays speech first: it must never make `quiet` the speaker.
        t = start_speaking(music, speech_bytes(2.0))
        t.join(10)
        assert rl.of("speaker") == []
        t = start_speaking(src, speech_bytes(3.0))
        rl.wait(lambda: len(rl.of("speaker")) >= 1, timeout=8)
        t.join(10)
        assert rl.of("speaker")[0][1]["id"] == local_id(talker)
        assert listener.active_speaker()["id"] == local_id(talker)
        assert all(e[1]["id"] != local_id(quiet) for e in rl.of("speaker"))
        # The speaker stays through silence.
        time.sleep(0.5)
        assert listener.active_speaker()["id"] == local_id(talker)
    finally:
        for cl in (listener, talker, quiet):
            cl.release()


def test_publishing_off_stops_sending_and_remote_state_follows(server):
    url = server.room_url("publishing")
    ra, rb = Rec(), Rec()
    bot, listener = CallClient(event_handler=ra), CallClient(event_handler=rb)
    src = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(src)
    try:
        join(listener, url)
        join(bot, url, client_settings={**mic_settings(track), "publishing": {"microphone": {"isPublishing": True, "sendSettings": {"channelConfig": "mono", "bitrate": 32000}}}})
        assert bot.publishing()["microphone"]["isPublishing"] is True
        assert bot.publishing()["microphone"]["sendSettings"]["bitrate"] == 32000
        bid = local_id(bot)
        cap = Capture()
        listener.set_audio_renderer(bid, cap, sample_rate=16000, callback_interval_ms=20)
        rb.wait(lambda: listener.participants().get(bid, {}).get("media", {}).get("microphone", {}).get("state") == "playable")
        t = start_speaking(src, speech_bytes(6.0))
        time.sleep(1.0)
        assert len(cap.chunks) > 0
        order = []
        ra_len = len(ra.of("publishing"))
        w = Waiter()

        def completion(err):
            order.append(("completion", len(ra.of("publishing")) > ra_len))
            w(err)

        bot.update_publishing({"microphone": {"isPublishing": False}}, completion=completion)
        assert done(w) is None
        assert order == [("completion", True)], "on_publishing_updated must come before the completion"
        assert ra.of("publishing")[-1][1]["microphone"]["isPublishing"] is False
        rb.wait(lambda: listener.participants()[bid]["media"]["microphone"]["state"] == "off")
        time.sleep(0.5)
        before = listener.media_stats()["receive"].get(bid, {}).get("microphone", {}).get("packetsReceived", 0)
        time.sleep(1.0)
        after = listener.media_stats()["receive"].get(bid, {}).get("microphone", {}).get("packetsReceived", 0)
        assert after == before, "packets still arrive after isPublishing False"
        w = Waiter()
        bot.update_publishing({"microphone": True}, completion=w)
        assert done(w) is None
        rb.wait(lambda: listener.participants()[bid]["media"]["microphone"]["state"] == "playable")
        n = len(cap.chunks)
        time.sleep(1.0)
        assert len(cap.chunks) > n, "audio did not resume"
        src.clear_queue()
        t.join(10)
        w = Waiter()
        bot.update_publishing({"microphone": {"sendSettings": "loud"}}, completion=w)
        assert "unknown microphone sendSettings preset" in done(w)
        with pytest.raises(TypeError):
            bot.update_publishing("nope")
    finally:
        bot.release()
        listener.release()


def _packets(listener: CallClient, pid: str) -> int:
    return listener.media_stats()["receive"].get(pid, {}).get("microphone", {}).get("packetsReceived", 0)


def test_unsubscribing_stops_forwarding_and_profiles_apply_from_join(server):
    url = server.room_url("subscriptions")
    rl = Rec()
    bot, listener = CallClient(), CallClient(event_handler=rl)
    late = CallClient()
    src = CustomAudioSource(16000, 1, True)
    track = CustomAudioTrack(src)
    try:
        join(listener, url)
        join(bot, url, client_settings=mic_settings(track))
        bid = local_id(bot)
        rl.wait(lambda: _packets(listener, bid) > 20, timeout=10)
        assert listener.participants()[bid]["media"]["microphone"]["subscribed"] == "subscribed"
        w = Waiter()
        listener.update_subscriptions(participant_settings={bid: {"media": {"microphone": "unsubscribed"}}}, completion=w)
        assert done(w) is None
        assert rl.of("subscriptions")[-1][1][bid]["media"]["microphone"] == "unsubscribed"
        assert listener.subscriptions()[bid]["media"]["microphone"] == "unsubscribed"
        assert listener.participants()[bid]["media"]["microphone"]["subscribed"] == "unsubscribed"
        time.sleep(0.5)
        n = _packets(listener, bid)
        time.sleep(1.0)
        assert _packets(listener, bid) == n, "the server still forwards an unsubscribed track"
        w = Waiter()
        listener.update_subscriptions(participant_settings={bid: {"media": {"microphone": "subscribed"}}}, completion=w)
        assert done(w) is None
        rl.wait(lambda: _packets(listener, bid) > n + 20, timeout=10)
        # A base profile set before joining applies from the first offer.
        w = Waiter()
        late.update_subscription_profiles({"base": {"microphone": "unsubscribed"}}, completion=w)
        assert done(w) is None
        assert late.subscription_profiles()["base"]["microphone"] == "unsubscribed"
        assert late.subscription_profiles()["base"]["camera"]["subscriptionState"] == "subscribed"
        join(late, url)
        time.sleep(1.5)
        assert _packets(late, bid) == 0
        w = Waiter()
        late.update_subscription_profiles({"base": {"microphone": "subscribed"}}, completion=w)
        assert done(w) is None
        rl.wait(lambda: _packets(late, bid) > 20, timeout=10)
    finally:
        for cl in (bot, listener, late):
            cl.release()


def test_permissions_cansend_presence_and_admin_rights(keyed):
    room = "perms"
    url = keyed.room_url(room)
    rl, rb, ro = Rec(), Rec(), Rec()
    owner, bot, listener = CallClient(event_handler=ro), CallClient(event_handler=rb), CallClient(event_handler=rl)
    src = CustomAudioSource(16000, 1, True)
    track = CustomAudioTrack(src)
    try:
        w = Waiter()
        owner.join(url, meeting_token=owner_token(keyed, room), completion=w)
        data, err = w.wait(15)
        assert err is None, err
        assert owner.participants()["local"]["info"]["isOwner"] is True
        join(listener, url)
        join(bot, url, client_settings=mic_settings(track))
        bid = local_id(bot)
        assert bot.participants()["local"]["info"]["isOwner"] is False
        rl.wait(lambda: _packets(listener, bid) > 20, timeout=10)
        # Non-owners cannot change others or gain rights.
        w = Waiter()
        bot.update_remote_participants({local_id(listener): {"permissions": {"canSend": []}}}, completion=w)
        assert "only room owners" in done(w)
        w = Waiter()
        listener.update_permissions({"canAdmin": ["participants"]}, completion=w)
        assert "may only give up" in done(w)
        w = Waiter()
        bot.update_remote_participants({local_id(listener): {"inputsEnabled": {"microphone": False}}}, completion=w)
        assert "not supported" in done(w)
        # The owner revokes the bot's microphone: forwarding stops, remote state goes off.
        w = Waiter()
        owner.update_remote_participants({bid: {"permissions": {"canSend": ["customAudio"]}}}, completion=w)
        assert done(w) is None
        rl.wait(lambda: listener.participants()[bid]["media"]["microphone"]["state"] == "off")
        rb.wait(lambda: "microphone" not in bot.participants()["local"]["info"]["permissions"]["canSend"])
        assert listener.participants()[bid]["info"]["permissions"]["canSend"] == ["customAudio"]
        time.sleep(0.5)
        n = _packets(listener, bid)
        time.sleep(1.0)
        assert _packets(listener, bid) == n, "the server forwards a track canSend forbids"
        w = Waiter()
        owner.update_remote_participants({bid: {"permissions": {"canSend": True}}}, completion=w)
        assert done(w) is None
        rl.wait(lambda: _packets(listener, bid) > n + 20, timeout=10)
        # Giving up presence hides the participant from the others.
        w = Waiter()
        listener.update_permissions({"hasPresence": False}, completion=w)
        assert done(w) is None
        ro.wait(lambda: any(e[1]["id"] == local_id(listener) and e[2] == "hidden" for e in ro.of("left")))
        ro.wait(lambda: owner.participant_counts() == {"present": 2, "hidden": 1})
        assert local_id(listener) not in owner.participants()
    finally:
        for cl in (owner, bot, listener):
            cl.release()


def test_eject_needs_owner_and_the_ejected_client_leaves(keyed):
    room = "eject"
    url = keyed.room_url(room)
    ro, rv = Rec(), Rec()
    owner, victim = CallClient(event_handler=ro), CallClient(event_handler=rv)
    try:
        w = Waiter()
        owner.join(url, meeting_token=owner_token(keyed, room), completion=w)
        assert w.wait(15)[1] is None
        join(victim, url)
        w = Waiter()
        victim.eject_remote_participants([local_id(owner)], completion=w)
        assert "only room owners" in done(w)
        w = Waiter()
        owner.eject_remote_participants([local_id(victim), "00000000-0000-4000-8000-000000000000"], completion=w)
        assert "not in this call" in done(w)
        rv.wait(lambda: any(e[1] == "left" for e in rv.of("state")))
        assert any("ejected" in e[1] for e in rv.of("error"))
        ro.wait(lambda: len(ro.of("left")) == 1)
    finally:
        owner.release()
        victim.release()


def test_inputs_getter_and_events(server):
    r = Rec()
    c = CallClient(event_handler=r)
    src = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(src)
    try:
        assert c.inputs()["microphone"]["isEnabled"] is False
        w = Waiter()
        c.update_inputs({"camera": False, "microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}, completion=w)
        assert done(w) is None
        assert r.of("inputs"), "on_inputs_updated did not fire before the completion"
        ins = c.inputs()
        assert ins["microphone"] == {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}
        assert ins["camera"]["isEnabled"] is False and ins["camera"]["settings"]["width"] == 1280
        w = Waiter()
        c.add_custom_audio_track("extra", track, completion=w)
        assert done(w) is None
        assert c.inputs()["customAudio"]["extra"] == {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}
        w = Waiter()
        c.update_custom_audio_track("nope", track, completion=w)
        assert "no custom audio track" in done(w)
        w = Waiter()
        c.update_custom_audio_track("extra", CustomAudioTrack(CustomAudioSource(24000, 1)), completion=w)
        assert done(w) is None
        w = Waiter()
        c.update_inputs({"microphone": False}, completion=w)
        assert done(w) is None
        assert c.inputs()["microphone"]["isEnabled"] is False
    finally:
        c.release()


def test_network_stats_from_rtcp(server):
    url = server.room_url("netstats")
    rb = Rec()
    bot, listener = CallClient(event_handler=rb), CallClient()
    src = CustomAudioSource(16000, 1, True)
    track = CustomAudioTrack(src)
    try:
        assert bot.get_network_stats() == {"quality": 100, "threshold": "good", "stats": {"latest": {}}}
        join(listener, url)
        join(bot, url, client_settings=mic_settings(track))
        t = start_speaking(src, speech_bytes(8.0))

        def measured(e):
            latest = e[1]["stats"]["latest"]
            return latest.get("networkRoundTripTime") is not None and (latest.get("audioSendBitsPerSecond") or 0) > 8000

        rb.wait(lambda: any(measured(e) for e in rb.of("netstats")), timeout=12)
        src.clear_queue()
        t.join(10)
        s = next(e[1] for e in rb.of("netstats") if measured(e))
        latest = s["stats"]["latest"]
        assert s["threshold"] == "good" and s["quality"] == 100
        assert 8_000 < latest["audioSendBitsPerSecond"] < 200_000
        assert 0 <= latest["networkRoundTripTime"] < 0.1
        assert latest["audioSendPacketLoss"] in (0, 0.0, None)
        assert {"connection": "signalling", "event": "connected"} in [e[1] for e in rb.of("connection")]
        assert {"connection": "sendTransport", "event": "connected"} in [e[1] for e in rb.of("connection")]
    finally:
        bot.release()
        listener.release()


class Blocking(Rec):
    """Waits inside on_participant_joined for a completion, as pipecat does."""

    def __init__(self) -> None:
        super().__init__()
        self.client: CallClient | None = None
        self.result = None

    def on_participant_joined(self, participant):
        super().on_participant_joined(participant)
        w = Waiter()
        self.client.update_subscriptions(participant_settings={participant["id"]: {"media": {"microphone": "subscribed"}}}, completion=w)
        w2 = Waiter()
        self.client.send_app_message({"hello": participant["id"]}, completion=w2)
        self.result = (w.wait(5), w2.wait(5))

    def on_app_message(self, message, sender):
        raise RuntimeError("a handler that raises")


def test_handler_may_block_on_a_completion_and_exceptions_do_not_stop_the_sdk(server):
    import sys

    url = server.room_url("blocking")
    h = Blocking()
    a = CallClient(event_handler=h)
    h.client = a
    b = CallClient()
    rb = Rec()
    c = CallClient(event_handler=rb)
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u)
    try:
        join(a, url)
        join(c, url)
        h.wait(lambda: h.result is not None, timeout=15)
        assert h.result == ((None,), (None,))
        join(b, url)
        w = Waiter()
        b.send_app_message("boom", completion=w)
        assert done(w) is None
        deadline = time.time() + 5
        while not seen and time.time() < deadline:
            time.sleep(0.05)
        assert seen and isinstance(seen[0].exc_value, RuntimeError)
        # The SDK carries on: later events still reach the handler.
        b.set_user_name("after")
        h.wait(lambda: any(e[1]["info"].get("userName") == "after" for e in h.of("updated")))
    finally:
        sys.unraisablehook = old
        for cl in (a, b, c):
            cl.release()


def test_every_completion_fires_exactly_once(server):
    url = server.room_url("once")
    c = CallClient()
    calls: list = []
    try:
        c.update_inputs({"camera": False}, completion=lambda e: calls.append(("inputs", e)))
        c.update_publishing({"camera": False}, completion=lambda e: calls.append(("publishing", e)))
        c.update_subscription_profiles({"base": {"camera": "unsubscribed"}}, completion=lambda e: calls.append(("profiles", e)))
        c.update_subscriptions(completion=lambda e: calls.append(("subs", e)))
        c.send_app_message("x", completion=lambda e: calls.append(("app", e)))
        c.update_permissions({"hasPresence": True}, completion=lambda e: calls.append(("perm", e)))
        c.eject_remote_participants(["x"], completion=lambda e: calls.append(("eject", e)))
        join(c, url)
        c.send_app_message("x", completion=lambda e: calls.append(("app2", e)))
        leave(c)
        c.leave(completion=lambda e: calls.append(("leave2", e)))
        time.sleep(1.0)
        names = [n for n, _ in calls]
        assert sorted(names) == sorted(set(names)), names
        assert set(names) == {"inputs", "publishing", "profiles", "subs", "app", "perm", "eject", "app2", "leave2"}
        d = dict(calls)
        assert d["inputs"] is None and d["publishing"] is None and d["profiles"] is None and d["subs"] is None
        assert "not in a call" in d["app"] and "not in a call" in d["perm"] and "not in a call" in d["eject"]
        assert d["app2"] is None and d["leave2"] is None
    finally:
        c.release()


def test_set_ice_config_validates_and_applies_at_the_next_join(server):
    url = server.room_url("ice")
    c = CallClient()
    src = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(src)
    try:
        w = Waiter()
        c.set_ice_config({"iceServers": [{"urls": "http://not-ice"}]}, completion=w)
        assert "must start with stun:" in done(w)
        w = Waiter()
        c.set_ice_config({"iceServers": [{"urls": ["stun:127.0.0.1:9"]}], "placement": "front"}, completion=w)
        assert done(w) is None
        join(c, url, client_settings=mic_settings(track))  # a STUN server that never answers does no harm
        leave(c)
        # Relay only, with no TURN server: no candidate can connect, so publishing fails.
        w = Waiter()
        c.set_ice_config({"iceServers": [], "iceTransportPolicy": "relay"}, completion=w)
        assert done(w) is None
        w = Waiter()
        c.join(url, client_settings=mic_settings(track), completion=w)
        data, err = w.wait(30)
        assert data is None and err, "a relay-only join without TURN servers should fail"
        w = Waiter()
        c.set_ice_config(None, completion=w)
        assert done(w) is None
        join(c, url, client_settings=mic_settings(track))
    finally:
        c.release()
