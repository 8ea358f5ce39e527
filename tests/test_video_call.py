"""Video through a real room server on loopback: a CustomVideoSource (or a virtual camera) as the
camera or as a custom video track, VP8 through webrtc-rs and the SFU, decoded and handed to
set_video_renderer. Frames carry their number (examples/videopattern.py), so each test knows
which frames arrived, in what order and how close to what was sent.

The speed and quality goals (frames delivered, PSNR, latency, CPU) are measured by
benches/video_bench.py, not here; these tests check behaviour with margins wide enough for a
loaded CI machine.
"""

from __future__ import annotations

import json
import resource
import threading
import time
import urllib.request

import numpy as np
import pytest

import videopattern as vp
from conftest import Waiter, Watch, join, leave
from daily import CallClient, CustomVideoSource, CustomVideoTrack, Daily
from daily.server import RoomServer

FORMATS = ["RGBA", "BGRA", "ARGB", "ABGR", "RGB", "I420"]


def camera_settings(track: CustomVideoTrack) -> dict:
    return {"inputs": {"camera": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}}


class Writer:
    """Writes the numbered pattern to `source` at `fps` from a worker thread (as pipecat's
    avatar output does), from frame `start` on."""

    def __init__(self, source, width: int, height: int, fmt: str = "RGBA", fps: float = 30.0, frames: int | None = None) -> None:
        self.source, self.w, self.h, self.fmt, self.fps, self.limit = source, width, height, fmt, fps, frames
        self.n = 0
        self.sent_at: dict[int, float] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        period = 1.0 / self.fps
        t0 = time.monotonic()
        while not self.stop_event.is_set() and (self.limit is None or self.n < self.limit):
            frame = vp.make_frame(self.n, self.w, self.h, self.fmt)
            self.sent_at[self.n] = time.monotonic()
            self.source.write_frame(frame)
            self.n += 1
            delay = t0 + self.n * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)


class Frames:
    """A video renderer callback that reads each frame's number (and, every `psnr_every`
    frames, its luma PSNR against the frame sent)."""

    def __init__(self, fmt: str = "RGBA", psnr_every: int = 0) -> None:
        self.fmt = fmt
        self.numbers: list[int | None] = []
        self.sizes: set[tuple[int, int]] = set()
        self.formats: set[str] = set()
        self.timestamps: list[int] = []
        self.arrived: list[float] = []
        self.psnr: list[float] = []
        self.psnr_every = psnr_every
        self.sources: set[str] = set()
        self.cond = threading.Condition()

    def __call__(self, participant_id, frame, video_source) -> None:
        w, h = frame.width, frame.height
        buf = frame.buffer
        n = vp.read_frame_number(buf, w, h, frame.color_format)
        if self.psnr_every and n is not None and len(self.numbers) % self.psnr_every == 0:
            self.psnr.append(vp.psnr_luma(buf, vp.make_frame(n, w, h, frame.color_format), w, h, frame.color_format))
        with self.cond:
            self.numbers.append(n)
            self.sizes.add((w, h))
            self.formats.add(frame.color_format)
            self.timestamps.append(frame.timestamp_us)
            self.arrived.append(time.monotonic())
            self.sources.add(video_source)
            self.cond.notify_all()

    def count(self) -> int:
        with self.cond:
            return len(self.numbers)

    def wait(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.numbers) >= n, timeout), f"{len(self.numbers)} frames, expected {n}"

    def read(self) -> list[int]:
        with self.cond:
            return [n for n in self.numbers if n is not None]


class Pair:
    """A sender named `name` with a `CustomVideoSource` (or the given `source`) and its track,
    a viewer with a `Watch`, and a `Writer` of the pattern (unless `write` is false). As a
    context manager it stops the writer and releases both clients however the test ends."""

    def __init__(self, name: str, w: int, h: int, fmt: str = "RGBA", write: bool = True, source=None) -> None:
        self.src = source if source is not None else CustomVideoSource(w, h, fmt)
        self.track = CustomVideoTrack(self.src) if source is None else None
        self.watch = Watch()
        self.sender, self.viewer = CallClient(), CallClient(event_handler=self.watch)
        self.sender.set_user_name(name)
        self.writer = Writer(self.src, w, h, fmt) if write else None

    def __enter__(self) -> "Pair":
        return self

    def __exit__(self, *exc) -> None:
        if self.writer:
            self.writer.stop()
        self.viewer.release()
        self.sender.release()

    def leave(self) -> None:
        leave(self.viewer)
        leave(self.sender)


def pid_of(client) -> str:
    return client.participants()["local"]["id"]


@pytest.fixture()
def room(server, request):
    return server.room_url("video-" + request.node.name.replace("[", "-").replace("]", "").lower()[:40])


def test_camera_reaches_renderer_in_order_with_good_quality(room):
    """640x360@30: frames arrive in order, of the sent size, with nearly every frame delivered
    and a luma PSNR well above a broken codec's."""
    w, h = 640, 360
    with Pair("cam", w, h) as p:
        sender, viewer, watch, track, writer = p.sender, p.viewer, p.watch, p.track, p.writer
        join(sender, room, client_settings=camera_settings(track))
        join(viewer, room)
        watch.wait(lambda: "cam" in watch.joined)
        cam = watch.joined["cam"]
        assert cam["media"]["camera"]["state"] == "playable"
        assert cam["media"]["camera"]["track"]["id"] == track.id
        frames = Frames(psnr_every=10)
        viewer.set_video_renderer(cam["id"], frames)
        frames.wait(30)
        first = frames.read()[0]
        time.sleep(4)
        got = frames.read()
        last_written = writer.n - 1
        assert frames.sizes == {(w, h)} and frames.formats == {"RGBA"} and frames.sources == {"camera"}
        assert got == sorted(got), "frames out of order"
        assert len(set(got)) == len(got), "a frame rendered twice"
        # Every frame from the first rendered to (nearly) the last written, allowing for frames
        # in flight at the end and a few lost to a loaded machine.
        span = [n for n in range(first, last_written - 10)]
        missing = set(span) - set(got)
        assert len(missing) <= 0.05 * len(span), f"{len(missing)} of {len(span)} frames missing"
        # Far above a broken pipeline's (wrong plane order, colour or size: under 15 dB); the
        # goal (35 dB) is measured by benches/video_bench.py, not asserted on a loaded machine.
        # A keyframe coded at the CBR budget is the worst frame.
        assert float(np.mean(frames.psnr)) > 30.0 and min(frames.psnr) > 24.0, frames.psnr
        # Timestamps: the 90 kHz RTP clock as microseconds, rising about 33 ms per frame.
        ts = frames.timestamps
        assert ts == sorted(ts) and 0 < (ts[-1] - ts[0]) / max(1, len(ts) - 1) < 60_000
        stats = viewer.media_stats()["receive"][cam["id"]]["camera"]
        assert stats["framesDecoded"] >= len(got)
        sent = sender.media_stats()["send"]["video"]["camera"]
        assert sent["framesEncoded"] >= len(got) and sent["keyframes"] >= 1
        p.leave()


def test_every_color_format_in_and_out(room):
    """Six custom video tracks, one per input format, each rendered in another format: the
    frame number survives both conversions and the picture stays close to what was sent."""
    w, h = 160, 96
    sender, watch = CallClient(), Watch()
    viewer = CallClient(event_handler=watch)
    sender.set_user_name("formats")
    writers, renderers = [], {}
    try:
        join(sender, room)
        for i, fmt in enumerate(FORMATS):
            src = CustomVideoSource(w, h, fmt)
            wt = Waiter()
            sender.add_custom_video_track(f"in-{fmt}", CustomVideoTrack(src), completion=wt)
            assert wt.wait() == (None,)
            writers.append(Writer(src, w, h, fmt, fps=15))
        join(viewer, room)
        watch.wait(lambda: "formats" in watch.joined)
        pid = watch.joined["formats"]["id"]
        watch.wait(lambda: len(viewer.participants()[pid]["media"]["customVideo"]) == 6)
        for i, fmt in enumerate(FORMATS):
            out = FORMATS[(i + 1) % len(FORMATS)]
            renderers[fmt] = Frames(out, psnr_every=3)
            viewer.set_video_renderer(pid, renderers[fmt], video_source=f"in-{fmt}", color_format=out)
        for fmt, r in renderers.items():
            r.wait(10)
            assert r.sizes == {(w, h)}, (fmt, r.sizes)
            assert r.formats == {r.fmt}
            assert r.sources == {f"in-{fmt}"}
            assert len(r.read()) >= 8, (fmt, r.numbers)
            assert min(r.psnr) > 26.0, (fmt, r.fmt, r.psnr)
        leave(viewer)
        leave(sender)
    finally:
        for wr in writers:
            wr.stop()
        viewer.release()
        sender.release()


def test_late_subscriber_gets_a_keyframe_at_once(room):
    """A viewer joining a running call decodes within a second: the SFU asks the publisher for a
    keyframe when the new subscriber's m-line goes live (the publisher's own keyframe interval
    is minutes)."""
    w, h = 320, 180
    src = CustomVideoSource(w, h)
    track = CustomVideoTrack(src)
    sender, first, late = CallClient(), CallClient(), CallClient()
    sender.set_user_name("cam")
    writer = Writer(src, w, h)
    try:
        join(sender, room, client_settings=camera_settings(track))
        pid = pid_of(sender)
        join(first, room)
        f1 = Frames()
        first.set_video_renderer(pid, f1)
        f1.wait(30)
        keyframes_before = sender.media_stats()["send"]["video"]["camera"]["keyframes"]
        t0 = time.monotonic()
        join(late, room)
        f2 = Frames()
        late.set_video_renderer(pid, f2)
        f2.wait(1, timeout=5)
        assert f2.arrived[0] - t0 < 3.0, f"first frame {f2.arrived[0] - t0:.2f} s after joining"
        assert sender.media_stats()["send"]["video"]["camera"]["keyframes"] > keyframes_before
        for c in (late, first, sender):
            leave(c)
    finally:
        writer.stop()
        for c in (late, first, sender):
            c.release()


def test_pipecat_style_subscription_then_renderer(room):
    """pipecat unsubscribes cameras in the base profile and subscribes the one it renders
    (`capture_participant_video`): nothing is forwarded before, frames after."""
    w, h = 320, 180
    with Pair("user", w, h) as p:
        sender, bot, watch, track = p.sender, p.viewer, p.watch, p.track
        wt = Waiter()
        bot.update_subscription_profiles({"base": {"camera": "unsubscribed", "screenVideo": "unsubscribed"}}, completion=wt)
        assert wt.wait() == (None,)
        join(bot, room)
        join(sender, room, client_settings=camera_settings(track))
        watch.wait(lambda: "user" in watch.joined)
        pid = watch.joined["user"]["id"]
        frames = Frames("RGB")
        bot.set_video_renderer(pid, frames, video_source="camera", color_format="RGB")
        time.sleep(1.5)
        assert frames.count() == 0, "an unsubscribed camera was forwarded"
        cam = bot.participants()[pid]["media"]["camera"]
        assert (cam["state"], cam["subscribed"]) == ("receivable", "unsubscribed")
        wt = Waiter()
        bot.update_subscriptions(participant_settings={pid: {"media": {"camera": "subscribed"}}}, completion=wt)
        assert wt.wait() == (None,)
        frames.wait(10, timeout=10)
        assert bot.participants()[pid]["media"]["camera"]["state"] == "playable"
        # Unsubscribing again stops the frames.
        wt = Waiter()
        bot.update_subscriptions(participant_settings={pid: {"media": {"camera": "unsubscribed"}}}, completion=wt)
        assert wt.wait() == (None,)
        time.sleep(1.0)
        n = frames.count()
        time.sleep(1.0)
        assert frames.count() == n, "frames kept coming after unsubscribing"
        p.leave()


def test_publishing_toggle_and_virtual_camera(room):
    """A virtual camera selected by deviceId; `publishing.camera.isPublishing` False stops it
    (the others see the camera off) and True brings it back with a keyframe."""
    w, h = 320, 180
    cam = Daily.create_camera_device("test-cam", w, h, "RGB")
    with Pair("cam", w, h, "RGB", source=cam) as p:
        sender, viewer, watch = p.sender, p.viewer, p.watch
        join(sender, room, client_settings={"inputs": {"camera": {"isEnabled": True, "settings": {"deviceId": "test-cam"}}}})
        assert sender.inputs()["camera"]["isEnabled"] is True
        join(viewer, room)
        watch.wait(lambda: "cam" in watch.joined)
        pid = watch.joined["cam"]["id"]
        frames = Frames()
        viewer.set_video_renderer(pid, frames)
        frames.wait(10)
        wt = Waiter()
        sender.update_publishing({"camera": {"isPublishing": False}}, completion=wt)
        assert wt.wait() == (None,)
        watch.wait(lambda: viewer.participants()[pid]["media"]["camera"]["state"] == "off")
        time.sleep(0.5)
        n = frames.count()
        time.sleep(1.0)
        assert frames.count() == n
        wt = Waiter()
        sender.update_publishing({"camera": {"isPublishing": True}}, completion=wt)
        assert wt.wait() == (None,)
        frames.wait(n + 10, timeout=10)
        assert viewer.participants()[pid]["media"]["camera"]["state"] == "playable"
        # update_inputs camera False stops it too, and the input shows disabled.
        wt = Waiter()
        sender.update_inputs({"camera": False}, completion=wt)
        assert wt.wait() == (None,)
        assert sender.inputs()["camera"]["isEnabled"] is False
        watch.wait(lambda: viewer.participants()[pid]["media"]["camera"]["state"] == "off")
        p.leave()


def test_custom_video_track_add_update_remove(room):
    w, h = 160, 96
    a, b = CustomVideoSource(w, h), CustomVideoSource(w, h)
    sender, watch = CallClient(), Watch()
    viewer = CallClient(event_handler=watch)
    sender.set_user_name("screen")
    wa, wb = Writer(a, w, h), None
    try:
        join(sender, room)
        wt = Waiter()
        sender.add_custom_video_track("slides", CustomVideoTrack(a), completion=wt)
        assert wt.wait() == (None,)
        wt = Waiter()
        sender.add_custom_video_track("slides", CustomVideoTrack(a), completion=wt)
        assert "already exists" in wt.wait()[0]
        assert "slides" in sender.inputs()["customVideo"]
        join(viewer, room)
        watch.wait(lambda: "screen" in watch.joined)
        pid = watch.joined["screen"]["id"]
        watch.wait(lambda: viewer.participants()[pid]["media"]["customVideo"].get("slides", {}).get("state") == "playable")
        frames = Frames()
        viewer.set_video_renderer(pid, frames, video_source="slides")
        frames.wait(10)
        # update: another source under the same name; its frames (numbered from 0) follow.
        wa.stop()
        wb = Writer(b, w, h)
        wt = Waiter()
        sender.update_custom_video_track("slides", CustomVideoTrack(b), completion=wt)
        assert wt.wait() == (None,)
        n = frames.count()
        frames.wait(n + 10, timeout=10)
        wt = Waiter()
        sender.remove_custom_video_track("slides", completion=wt)
        assert wt.wait() == (None,)
        watch.wait(lambda: "slides" not in viewer.participants()[pid]["media"]["customVideo"])
        wt = Waiter()
        sender.remove_custom_video_track("slides", completion=wt)
        assert "no custom video track" in wt.wait()[0]
        leave(viewer)
        leave(sender)
    finally:
        wa.stop()
        if wb:
            wb.stop()
        viewer.release()
        sender.release()


def test_a_source_that_stops_writing_keeps_its_track(room):
    """30 frames, then nothing: the track stays (the last frame is sent again each second)."""
    w, h = 160, 96
    with Pair("still", w, h, write=False) as p:
        sender, viewer, watch, src, track = p.sender, p.viewer, p.watch, p.src, p.track
        join(sender, room, client_settings=camera_settings(track))
        join(viewer, room)
        watch.wait(lambda: "still" in watch.joined)
        pid = watch.joined["still"]["id"]
        frames = Frames()
        viewer.set_video_renderer(pid, frames)
        Writer(src, w, h, frames=30).thread.join(5)
        frames.wait(20)
        time.sleep(0.5)
        n = frames.count()
        time.sleep(3.2)
        repeats = frames.numbers[n:]
        assert 2 <= len(repeats) <= 6, repeats  # about one a second
        assert set(repeats) == {29}, repeats
        assert viewer.participants()[pid]["media"]["camera"]["state"] == "playable"
        p.leave()


def test_can_send_without_camera_forwards_no_video():
    room = "video-cansend"
    key = "video-test-key"
    with RoomServer(host="127.0.0.1", port=0, api_key=key) as server:
        body = json.dumps({"properties": {"room_name": room, "permissions": {"canSend": ["microphone"]}}}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        req = urllib.request.Request(server.api_url + "/meeting-tokens", data=body, method="POST", headers=headers)
        with urllib.request.urlopen(req, timeout=5) as r:
            token = json.loads(r.read())["token"]
        _can_send_without_camera(server, room, token)


def _can_send_without_camera(server, room: str, token: str) -> None:
    w, h = 160, 96
    with Pair("muted", w, h) as p:
        sender, viewer, watch, track = p.sender, p.viewer, p.watch, p.track
        wt = Waiter()
        sender.join(server.room_url(room), meeting_token=token, client_settings=camera_settings(track), completion=wt)
        assert wt.wait(15)[1] is None
        join(viewer, server.room_url(room))
        watch.wait(lambda: "muted" in watch.joined)
        pid = watch.joined["muted"]["id"]
        frames = Frames()
        viewer.set_video_renderer(pid, frames)
        time.sleep(2.0)
        assert frames.count() == 0, "a camera canSend forbids was forwarded"
        cam = viewer.participants()[pid]["media"]["camera"]
        assert cam["state"] == "off" and cam["offReasons"] == ["sendPermission"], cam
        p.leave()


def test_writing_faster_than_the_encoder_drops_frames_not_memory(room):
    """1280x720 frames written as fast as Python can (far above 30 fps): each write returns at
    once, the process does not grow, and the encoder skips what it cannot take."""
    w, h = 1280, 720
    src = CustomVideoSource(w, h)
    track = CustomVideoTrack(src)
    sender = CallClient()
    frame = vp.make_frame(1, w, h, "RGBA")
    try:
        join(sender, room, client_settings=camera_settings(track))
        for _ in range(30):
            src.write_frame(frame)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 3.0:
            src.write_frame(frame)
            n += 1
        elapsed = time.monotonic() - t0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert n / elapsed > 60, f"only {n / elapsed:.0f} writes/s"
        assert rss1 - rss0 < 50_000, f"peak RSS grew {rss1 - rss0} kB"
        time.sleep(0.5)
        stats = sender.media_stats()["send"]["video"]["camera"]
        assert stats["framesSkipped"] > n / 3, stats
        assert stats["framesEncoded"] < n, stats
        leave(sender)
    finally:
        sender.release()


def test_pipecat_vision_bot_renders_at_its_own_rate(room):
    """pipecat's vision input: `capture_participant_video(pid, framerate=2, color_format="RGB")`
    subscribes the camera and keeps one frame per 1/framerate from the renderer callback."""
    w, h = 320, 180
    p = Pair("user", w, h)
    user, bot, watch, track = p.sender, p.viewer, p.watch, p.track
    kept: list[np.ndarray] = []
    last = [0.0]

    def on_frame(participant_id, frame, video_source):
        now = time.monotonic()
        if now - last[0] >= 1 / 2:  # framerate=2
            last[0] = now
            kept.append(np.frombuffer(frame.buffer, np.uint8).reshape(frame.height, frame.width, 3))

    try:
        bot.update_subscription_profiles({"base": {"camera": "unsubscribed", "screenVideo": "unsubscribed"}})
        join(bot, room)
        join(user, room, client_settings=camera_settings(track))
        watch.wait(lambda: "user" in watch.joined)
        pid = watch.joined["user"]["id"]
        bot.update_subscriptions(participant_settings={pid: {"media": {"camera": "subscribed"}}})
        bot.set_video_renderer(pid, on_frame, video_source="camera", color_format="RGB")
        time.sleep(3.2)
        assert 5 <= len(kept) <= 8, len(kept)
        assert all(k.shape == (h, w, 3) for k in kept)
        assert all(vp.read_frame_number(k.tobytes(), w, h, "RGB") is not None for k in kept)
        leave(user)
        leave(bot)
    finally:
        p.__exit__()


def test_pipecat_avatar_bot_publishes_its_camera(room):
    """pipecat's video output: a CustomVideoSource as the camera with pipecat's send settings
    (one layer, its own bitrate and frame rate), written at 30 fps from a worker thread."""
    w, h = 640, 360
    src = CustomVideoSource(w, h, "RGB")
    track = CustomVideoTrack(src)
    bot, watch = CallClient(), Watch()
    user = CallClient(event_handler=watch)
    bot.set_user_name("avatar")
    settings = camera_settings(track)
    settings["publishing"] = {
        "camera": {"isPublishing": True, "sendSettings": {"maxQuality": "low", "encodings": {"low": {"maxBitrate": 800000, "maxFramerate": 30}}}},
        "microphone": {"isPublishing": False},
    }
    writer = Writer(src, w, h, "RGB")
    try:
        join(bot, room, client_settings=settings)
        assert bot.publishing()["camera"]["sendSettings"]["maxQuality"] == "low"
        join(user, room)
        watch.wait(lambda: "avatar" in watch.joined)
        frames = Frames()
        user.set_video_renderer(watch.joined["avatar"]["id"], frames)
        frames.wait(60, timeout=10)
        stats = bot.media_stats()["send"]["video"]["camera"]
        assert stats["bitrate"] <= 800000, stats
        got = frames.read()
        assert got == sorted(got)
        leave(user)
        leave(bot)
    finally:
        writer.stop()
        user.release()
        bot.release()


def test_video_renderer_argument_errors():
    c = CallClient()
    try:
        with pytest.raises(ValueError, match="UUID"):
            c.set_video_renderer("not-a-uuid", lambda *x: None)
        with pytest.raises(ValueError, match="RGBA, BGRA, ARGB, ABGR, RGB, I420"):
            c.set_video_renderer("8f1d4b2e-0b1e-4c47-9d7e-2f7f4b0b6a11", lambda *x: None, color_format="YUV")
        with pytest.raises(TypeError, match="callable"):
            c.set_video_renderer("8f1d4b2e-0b1e-4c47-9d7e-2f7f4b0b6a11", 42)
        for name in ("add_custom_video_track", "update_custom_video_track"):
            with pytest.raises(TypeError, match="CustomVideoTrack"):
                getattr(c, name)("cam2", "not a track")
        with pytest.raises(ValueError):
            c.add_custom_video_track("camera", CustomVideoTrack(CustomVideoSource(4, 4)))
        with pytest.raises(ValueError, match="no-such-camera"):
            c.update_inputs({"camera": {"isEnabled": True, "settings": {"deviceId": "no-such-camera"}}})
    finally:
        c.release()


def test_screen_video_input_is_rendered_as_screen_video(room):
    """`inputs.screenVideo` with a custom track: others see `media.screenVideo` playable and
    render it with `video_source="screenVideo"`; the camera stays off."""
    w, h = 320, 180
    with Pair("presenter", w, h, "BGRA") as p:
        sender, viewer, watch, track = p.sender, p.viewer, p.watch, p.track
        join(sender, room, client_settings={"inputs": {"screenVideo": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}})
        join(viewer, room)
        watch.wait(lambda: "presenter" in watch.joined)
        pid = watch.joined["presenter"]["id"]
        watch.wait(lambda: viewer.participants()[pid]["media"]["screenVideo"]["state"] == "playable")
        assert viewer.participants()[pid]["media"]["camera"]["state"] == "off"
        frames = Frames("I420")
        viewer.set_video_renderer(pid, frames, video_source="screenVideo", color_format="I420")
        frames.wait(10)
        assert frames.sources == {"screenVideo"} and frames.sizes == {(w, h)}
        assert len(frames.read()) >= 8
        p.leave()
