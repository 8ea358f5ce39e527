"""Video on the call page: Chromium's fake camera (a moving pattern, sized by the page's
getUserMedia constraints to 640x360) against a real room server on loopback.

- page <-> page: two Chromium pages see each other's camera tile decode frames at the size the
  sender encodes, the camera button takes a tile away from the other side (a placeholder with
  initials instead) and brings it back, the server's active speaker (both fake microphones play
  speech) lands on a tile, a leaving participant's tile goes; one page runs with its CSP enforced;
- video=0 joins with the camera off, a page whose camera fails joins with audio only;
- screenVideo and customVideo tiles, from a participant that speaks the protocol directly from a
  blank page (canvas tracks), named by source and track name, each showing its own track;
- Python -> page: a CustomVideoTrack as a bot's camera carries examples/videopattern.py's
  frame-numbered pattern at 640x360, 30 fps, and the page's grabFrame reads the numbers back;
- page -> Python: the page's camera reaches a Python video renderer (RGBA).

Screenshots of the calls go to out/test-artifacts/ (or $DAILY_TEST_ARTIFACTS) as in
test_browser.py, whose Chromium flags, fixtures and helpers this module uses.
"""

from __future__ import annotations

import base64
import os
import threading
import time

import numpy as np
import pytest

import daily
from conftest import join, leave
from daily import CallClient
from test_browser import ARTIFACTS, Rec, _non_blank, browser, open_page, pw, wait_joined  # noqa: F401
from videopattern import make_frame, read_frame_number  # examples/, on sys.path through conftest

W, H, FPS = 640, 360, 30


def poll(page, expr: str, pred, timeout: float = 15.0, what: str = ""):
    """Evaluates `expr` (it may return a promise) until pred(value) holds; returns the value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(expr)
        if pred(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what or expr} not reached in {timeout} s; last value {value!r}")


def camera_tile(tiles: list, participant_id: str) -> dict | None:
    return next((t for t in tiles if t["participantId"] == participant_id and t["source"] == "camera"), None)


def decoding(participant_id: str, w: int | None = W, h: int = H):
    """A camera tile of participant_id with frames decoded, at w x h (any 16:9 size if w is None)."""
    def pred(tiles):
        t = camera_tile(tiles, participant_id)
        if t is None or not (t["framesDecoded"] or 0) > 0:
            return False
        if w is None:
            return t["width"] > 0 and t["width"] * 9 == t["height"] * 16
        return (t["width"], t["height"]) == (w, h)

    return pred


def open_page_enforcing_csp(browser, url: str, console: list, width: int = 1280, height: int = 800):
    """A page whose Content-Security-Policy is enforced (open_page bypasses it for Playwright's
    wait_for_function, which needs eval); its console messages are collected."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.goto(url)
    return page


def same_size(sender, receiver, sender_id: str, timeout: float = 10.0) -> tuple[dict, dict]:
    """Waits until the receiver's tile of the sender's camera has the size the sender encodes."""
    deadline = time.monotonic() + timeout
    while True:
        sent = sender.evaluate("window.callPage.sendStats()") or {}
        got = camera_tile(receiver.evaluate("window.callPage.videoTiles()"), sender_id) or {}
        size = (sent.get("frameWidth"), sent.get("frameHeight"))
        if size == (got.get("width"), got.get("height")) and size[0] and size[0] * 9 == size[1] * 16:
            return sent, got
        assert time.monotonic() < deadline, f"decoded {got}, sent {size}"
        time.sleep(0.2)


def test_two_pages_see_each_others_camera(server, browser):
    room = server.room_url("video-pages")
    t0 = time.monotonic()
    console: list[str] = []
    ann = open_page_enforcing_csp(browser, f"{room}?autojoin=1&name=Ann%20Avery", console)
    ben = open_page(browser, f"{room}?autojoin=1&name=Ben", 390, 844)  # a phone
    try:
        poll(ann, "window.callPage && window.callPage.phase", lambda v: v == "joined")  # no eval here
        ann_id, ben_id = ann.evaluate("window.callPage.participantId"), wait_joined(ben)
        assert ann.evaluate("window.callPage.cameraOn") and ben.evaluate("window.callPage.cameraOn")
        assert ann.evaluate("window.callPage.localVideo()") == {"on": True, "width": W, "height": H}

        # Each sees the other's camera tile decode, soon at some 16:9 size, then at the size sent:
        # libwebrtc starts lower when its bandwidth estimate or the CPU says so and steps up.
        for page, other in ((ann, ben_id), (ben, ann_id)):
            poll(page, "window.callPage.videoTiles()", decoding(other, None), 10, "a decoding camera tile")
        print(f"both tiles decoding {time.monotonic() - t0:.1f} s after the pages opened")
        # The size decoded is the size sent: the sender's encoder runs at 640x360 unless its CPU or
        # bandwidth adaptation scaled it down (on a loaded 2-core machine a capture stall made it
        # send 480x270 for 10 s), and the receiver's tile follows.
        for page, sender, other in ((ann, ben, ben_id), (ben, ann, ann_id)):
            sent, got = same_size(sender, page, other)
            print(f"{got['width']}x{got['height']} decoded as sent {time.monotonic() - t0:.1f} s after the "
                  f"pages opened; the sender: limited {sent.get('qualityLimitationDurations')}, "
                  f"{sent.get('qualityLimitationResolutionChanges')} resolution changes")
        first = camera_tile(ben.evaluate("window.callPage.videoTiles()"), ann_id)
        time.sleep(2)
        then = camera_tile(ben.evaluate("window.callPage.videoTiles()"), ann_id)
        rate = (then["framesDecoded"] - first["framesDecoded"]) / 2
        print(f"Ben decodes Ann's camera at {rate:.1f} frames/s, {then['width']}x{then['height']}, "
              f"{then['framesDecoded']} frames decoded, {then['framesShown']} shown")
        assert rate >= 10, (first, then)
        # The server's participant info says so too.
        info = poll(ben, "window.callPage.participants()",
                    lambda ps: any(p["id"] == ann_id and p["camera"]["publishing"] for p in ps))
        assert next(p for p in info if p["id"] == ann_id)["userName"] == "Ann Avery"
        # Both tiles of each page: the local preview first (mirrored), then the other's camera.
        tiles = ann.evaluate("window.callPage.tiles()")
        assert [(t["participantId"], t["source"], t["video"], t["local"]) for t in tiles] == [
            (ann_id, "camera", True, True), (ben_id, "camera", True, False)]
        assert "Ann Avery (you)" in ann.inner_text("#tiles") and "Ben" in ann.inner_text("#tiles")

        # The active speaker (the server's, from both fake microphones' speech) has its tile lit.
        lit = poll(ann, "({speaker: window.callPage.activeSpeaker, tiles: window.callPage.tiles()})",
                   lambda v: v["speaker"] and [t["participantId"] for t in v["tiles"] if t["active"]] == [v["speaker"]],
                   15, "the active speaker's tile lit")
        assert lit["speaker"] in (ann_id, ben_id)

        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "call-page-video.png")
        png = ann.screenshot(path=shot, full_page=True)
        colours, spread = _non_blank(png)
        print(f"{shot}: {colours} colours, std {spread:.1f}")
        assert colours > 200 and spread > 5.0, (colours, spread)
        phone = ben.screenshot(path=os.path.join(ARTIFACTS, "call-page-video-phone.png"), full_page=True)
        from PIL import Image
        import io

        assert Image.open(io.BytesIO(phone)).size[0] == 390  # no horizontal scrolling

        # Ann stops her camera: Ben's tile for her becomes a placeholder with her initials.
        t1 = time.monotonic()
        ann.click("#camera")
        assert ann.inner_text("#camera") == "Start camera"
        poll(ben, "window.callPage.tiles()",
             lambda ts: [(t["source"], t["video"]) for t in ts if t["participantId"] == ann_id] == [(None, False)],
             10, "Ann's placeholder tile")
        print(f"camera off seen by the other page in {time.monotonic() - t1:.2f} s")
        assert "AA" in ben.inner_text("#tiles")
        poll(ben, "window.callPage.participants()",
             lambda ps: any(p["id"] == ann_id and not p["camera"]["publishing"] for p in ps))
        assert not ann.evaluate("window.callPage.localVideo()")["on"]
        ben.screenshot(path=os.path.join(ARTIFACTS, "call-page-video-camera-off.png"), full_page=True)

        # And starts it again: the tile is back and decoding new frames.
        t1 = time.monotonic()
        ann.click("#camera")
        poll(ben, "window.callPage.videoTiles()", decoding(ann_id, None), 15, "Ann's camera tile again")
        before = camera_tile(ben.evaluate("window.callPage.videoTiles()"), ann_id)["framesDecoded"]
        poll(ben, "window.callPage.videoTiles()",
             lambda ts: (camera_tile(ts, ann_id) or {}).get("framesDecoded", 0) > before + 10, 5, "frames after restart")
        print(f"camera on again, decoding on the other page in {time.monotonic() - t1:.2f} s")
        # The same frame as Ben sees it, grabbed from the tile: the fake camera's moving pattern.
        frame = ben.evaluate(f"window.callPage.grabFrame('{ann_id}', 'camera')")
        fw, fh = frame["width"], frame["height"]
        assert fw * 9 == fh * 16, (fw, fh)
        px = np.frombuffer(base64.b64decode(frame["rgba"]), dtype=np.uint8).reshape(fh, fw, 4)
        assert px[..., :3].std() > 10, px[..., :3].std()

        # Ben leaves: his tile goes away on Ann's page.
        ben.evaluate("window.callPage.leave()")
        poll(ann, "window.callPage.tiles()", lambda ts: all(t["participantId"] != ben_id for t in ts), 10)
        # Nothing the page did broke its CSP (media-src 'self' blob:, no inline script or style).
        refused = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
        assert not refused, refused
    finally:
        ann.context.close()
        ben.context.close()
    print(f"test took {time.monotonic() - t0:.1f} s")


def test_video_off_by_query_and_started_later(server, browser):
    """video=0 joins with the camera off (a placeholder for everybody); the button starts it."""
    room = server.room_url("video-query")
    off = open_page(browser, f"{room}?autojoin=1&name=Quiet&video=0")
    on = open_page(browser, f"{room}?autojoin=1&name=Viewer")
    try:
        off_id, _ = wait_joined(off), wait_joined(on)
        assert not off.evaluate("window.callPage.cameraOn")
        assert off.inner_text("#camera") == "Start camera"
        assert off.evaluate("window.callPage.tiles()")[0]["video"] is False  # our own placeholder
        poll(on, "window.callPage.participants().length", lambda n: n == 2)
        time.sleep(1)
        tiles = on.evaluate("window.callPage.tiles()")
        assert [(t["source"], t["video"]) for t in tiles if t["participantId"] == off_id] == [(None, False)]
        assert "Q" in on.inner_text("#tiles")
        # A camera added to a connection that carried audio only starts from libwebrtc's 300 kbit/s
        # bandwidth estimate (no start-up probing then): at 320x180, stepping up to 640x360 within
        # about 10 s (measured: 480x270 at 6 s, 640x360 at 10.5 s). Any 16:9 size will do here.
        t0 = time.monotonic()
        off.click("#camera")
        tiles = poll(on, "window.callPage.videoTiles()", decoding(off_id, None), 10, "the camera started late")
        t = camera_tile(tiles, off_id)
        print(f"late camera decoding {time.monotonic() - t0:.2f} s after the click at {t['width']}x{t['height']}")
        assert off.inner_text("#camera") == "Stop camera"
    finally:
        off.context.close()
        on.context.close()


def test_page_without_a_camera_joins_with_audio_only(server, browser):
    """getUserMedia failing for video (no camera, or refused): the page joins with its microphone,
    says so, and others see its placeholder."""
    room = server.room_url("video-no-camera")
    ctx = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 800})
    ctx.add_init_script("""(() => {
      const md = navigator.mediaDevices, real = md.getUserMedia.bind(md);
      md.getUserMedia = (c) => (c && c.video)
        ? Promise.reject(new DOMException('Requested device not found', 'NotFoundError'))
        : real(c);
    })();""")
    blind = ctx.new_page()
    blind.goto(f"{room}?autojoin=1&name=No%20Cam")
    other = open_page(browser, f"{room}?autojoin=1&name=Other")
    try:
        blind_id, _ = wait_joined(blind), wait_joined(other)
        assert blind.evaluate("window.callPage.micOn") and not blind.evaluate("window.callPage.cameraOn")
        assert blind.inner_text("#camera") == "No camera" and blind.is_disabled("#camera")
        assert "No camera (NotFoundError); you join with audio only." in blind.inner_text("#messages")
        info = poll(other, "window.callPage.participants()",
                    lambda ps: any(p["id"] == blind_id and p["microphone"]["publishing"] for p in ps))
        assert not next(p for p in info if p["id"] == blind_id)["camera"]["publishing"]
        tiles = poll(other, "window.callPage.tiles()", lambda ts: any(t["participantId"] == blind_id for t in ts))
        assert [(t["source"], t["video"]) for t in tiles if t["participantId"] == blind_id] == [(None, False)]
        assert "NC" in other.inner_text("#tiles")
        # It still watches: the other page's camera is decoding on it.
        other_id = other.evaluate("window.callPage.participantId")
        poll(blind, "window.callPage.videoTiles()", decoding(other_id, None), 15, "the other camera")
    finally:
        ctx.close()
        other.context.close()


# A participant speaking the signalling protocol directly from a blank Chromium page (no call
# page): it publishes canvas tracks under any video source, which the call page cannot.
RAW_SENDER = """async ({wsUrl, tracks}) => {
  const ws = new WebSocket(wsUrl);
  const inbox = [];
  let wake = () => {};
  ws.onmessage = (e) => { inbox.push(JSON.parse(e.data)); wake(); };
  const next = async (type) => {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0];
      await new Promise((r) => { wake = r; });
    }
  };
  await new Promise((r) => { ws.onopen = r; });
  ws.send(JSON.stringify({ type: 'join', protocolVersion: 1, userName: 'Raw Sender' }));
  const joined = await next('joined');
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  const vp8 = RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => /vp8/i.test(c.mimeType));
  const listed = [];
  for (const spec of tracks) {
    const canvas = document.createElement('canvas');
    canvas.width = 320; canvas.height = 180;
    const g = canvas.getContext('2d');
    let n = 0;
    setInterval(() => {  // a solid colour, a moving bar so that frames differ
      g.fillStyle = spec.color; g.fillRect(0, 0, 320, 180);
      g.fillStyle = '#808080'; g.fillRect((n++ * 4) % 320, 170, 20, 10);
    }, 40);
    const track = canvas.captureStream(25).getVideoTracks()[0];
    const tr = pc.addTransceiver(track, { direction: 'sendonly' });
    tr.setCodecPreferences(vp8);
    listed.push({ tr, track, spec });
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); };
    setTimeout(r, 3000);
  });
  ws.send(JSON.stringify({ type: 'publishOffer', sdp: pc.localDescription.sdp,
    tracks: listed.map(({ tr, track, spec }) => Object.assign(
      { mid: tr.mid, trackId: track.id, source: spec.source },
      spec.trackName ? { trackName: spec.trackName } : {})) }));
  const answer = await next('publishAnswer');
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  window.raw = { ws, pc };
  return joined.participant.id;
}"""


def test_screen_and_custom_video_tiles(server, browser):
    """Remote screenVideo and customVideo tracks get their own tiles, named (a custom track by its
    name) and showing the right track: each tile's frames have the colour of its own source."""
    room = server.room_url("video-sources")
    viewer = open_page(browser, f"{room}?autojoin=1&name=Viewer&video=0")
    raw_ctx = browser.new_context()
    raw = raw_ctx.new_page()
    try:
        wait_joined(viewer)
        base, name = room.rsplit("/", 1)
        raw_id = raw.evaluate(RAW_SENDER, {"wsUrl": f"{base.replace('http', 'ws', 1)}/ws/{name}", "tracks": [
            {"source": "screenVideo", "color": "#e02020"},
            {"source": "customVideo", "trackName": "slides", "color": "#2040e0"}]})
        tiles = poll(viewer, "window.callPage.videoTiles()",
                     lambda ts: len([t for t in ts if t["participantId"] == raw_id and (t["framesDecoded"] or 0) > 5]) == 2,
                     15, "two decoding tiles")
        assert sorted(t["source"] for t in tiles if t["participantId"] == raw_id) == ["screenVideo", "slides"]
        order = [(t["source"], t["video"]) for t in viewer.evaluate("window.callPage.tiles()") if t["participantId"] == raw_id]
        assert order == [("screenVideo", True), ("slides", True)], order
        labels = viewer.inner_text("#tiles")
        assert "Raw Sender · screen" in labels and "Raw Sender · slides" in labels, labels
        for source, channel in (("screenVideo", 0), ("slides", 2)):
            f = viewer.evaluate(f"window.callPage.grabFrame('{raw_id}', '{source}')")
            px = np.frombuffer(base64.b64decode(f["rgba"]), dtype=np.uint8).reshape(f["height"], f["width"], 4)
            mean = px[: f["height"] // 2, :, :3].reshape(-1, 3).mean(axis=0)
            print(f"{source}: {f['width']}x{f['height']}, mean colour {mean.round()}")
            assert mean[channel] > 150 and mean[2 - channel] < 90, (source, mean)
        viewer.screenshot(path=os.path.join(ARTIFACTS, "call-page-video-sources.png"), full_page=True)
        # The sender goes: both tiles go with it.
        raw_ctx.close()
        poll(viewer, "window.callPage.tiles()", lambda ts: all(t["participantId"] != raw_id for t in ts), 10)
    finally:
        viewer.context.close()
        raw_ctx.close()


# --- Python <-> page ---------------------------------------------------------------------------


def skip_without_python_video(reason: str) -> None:
    """The SDK's video failed here: a test failure naming what was missing."""
    pytest.fail(reason)


class VideoRec(Rec):
    def on_error(self, message):
        self._add("error", message)


def _python_video_missing(page, bot_id: str) -> str | None:
    """Why a bot that joined with a CustomVideoTrack as its camera publishes no video, or None.

    The server's participant info (as the page sees it) is the judge: `camera.publishing`."""
    if not hasattr(daily, "CustomVideoSource") or not hasattr(CallClient, "set_video_renderer"):
        return "daily has no CustomVideoSource / set_video_renderer"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ps = page.evaluate("window.callPage.participants()")
        if any(p["id"] == bot_id and (p.get("camera") or {}).get("publishing") for p in ps):
            return None
        time.sleep(0.2)
    return "this build of daily publishes no camera track from a CustomVideoTrack (Python video not built yet)"


def camera_settings(track) -> dict:
    return {"inputs": {"camera": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}},
                       "microphone": {"isEnabled": False}}}


def test_python_test_pattern_reaches_page(server, browser):
    """A bot's CustomVideoTrack (a frame-numbered pattern, 640x360 at 30 fps) -> SFU -> Chromium;
    the page's grabFrame reads the frame numbers back and they advance."""
    from daily import CustomVideoSource, CustomVideoTrack

    room = server.room_url("video-py-to-page")
    source = CustomVideoSource(W, H, color_format="RGBA")
    track = CustomVideoTrack(source)
    bot = CallClient()
    bot.set_user_name("Pattern Bot")
    stop = threading.Event()
    sent = [0]

    def pump():
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            source.write_frame(make_frame(n, W, H, "RGBA"))
            sent[0] = n
            n += 1
            delay = start + n / FPS - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    writer = threading.Thread(target=pump, daemon=True)
    writer.start()
    page = open_page(browser, f"{room}?autojoin=1&name=Watcher&video=0")
    try:
        join(bot, room, client_settings=camera_settings(track))
        bot_id = bot.participants()["local"]["id"]
        wait_joined(page)
        missing = _python_video_missing(page, bot_id)
        if missing:
            skip_without_python_video(missing)
        t0 = time.monotonic()
        poll(page, "window.callPage.videoTiles()", decoding(bot_id), 15, "the bot's camera tile")
        print(f"the bot's pattern decoding on the page {time.monotonic() - t0:.2f} s after publishing")
        seen = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            f = page.evaluate(f"window.callPage.grabFrame('{bot_id}', 'camera')")
            if f:
                n = read_frame_number(base64.b64decode(f["rgba"]), f["width"], f["height"])
                if n is not None:
                    seen.append((time.monotonic(), n, sent[0]))
            time.sleep(0.1)
        tiles = page.evaluate("window.callPage.videoTiles()")
        page.screenshot(path=os.path.join(ARTIFACTS, "call-page-python-pattern.png"), full_page=True)
    finally:
        stop.set()
        writer.join(5)
        page.context.close()
        leave(bot)
        bot.release()
    numbers = [n for _, n, _ in seen]
    lag = [s - n for _, n, s in seen]
    print(f"read {len(seen)} frame numbers {numbers[:3]}..{numbers[-3:]}, lag behind the writer "
          f"{min(lag)}-{max(lag)} frames; tile {camera_tile(tiles, bot_id)}")
    assert len(seen) >= 20, seen
    assert numbers == sorted(numbers) and numbers[-1] - numbers[0] >= 60, numbers  # 4 s at 30 fps
    assert max(lag) < 30, lag  # under a second behind
    assert len(set(numbers)) >= 15


def test_page_camera_reaches_python_renderer(server, browser):
    """Chromium's fake camera (640x360) -> SFU -> a Python video renderer (RGBA), at the size the
    page encodes (640x360 unless libwebrtc's adaptation scaled it down for a while)."""
    room = server.room_url("video-page-to-py")
    rec = VideoRec()
    viewer = CallClient(event_handler=rec)
    join(viewer, room)
    page = open_page(browser, f"{room}?autojoin=1&name=Camera%20Person")
    frames: list[tuple[float, int, int, int, str, bytes]] = []
    lock = threading.Lock()

    def on_frame(participant_id, frame, video_source):
        with lock:
            frames.append((time.monotonic(), frame.width, frame.height, frame.timestamp_us,
                           frame.color_format, bytes(frame.buffer) if len(frames) % 30 == 0 else b""))

    try:
        ev = rec.wait_for(lambda e: e[0] == "joined" and e[1]["info"].get("userName") == "Camera Person", 15)
        pid = ev[1]["id"]
        wait_joined(page)
        poll(page, "window.callPage.participants()",
             lambda ps: any(p["id"] == pid and p["camera"]["publishing"] for p in ps), 10)
        if not hasattr(viewer, "set_video_renderer"):
            skip_without_python_video("daily has no set_video_renderer")
        t0 = time.monotonic()
        viewer.set_video_renderer(pid, on_frame, video_source="camera", color_format="RGBA")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(frames) < 5 and not any(e[0] == "error" for e in rec.events):
            time.sleep(0.1)
        if not frames:
            errors = [e[1] for e in rec.events if e[0] == "error"]
            camera = (viewer.participants().get(pid) or {}).get("media", {}).get("camera")
            skip_without_python_video(
                "this build of daily receives no video yet: no frame in 10 s; "
                f"the page's camera as the viewer sees it: {camera}; errors: {errors}")
        first = time.monotonic() - t0
        time.sleep(3)
        with lock:
            at_end = frames[-1]
        sent = page.evaluate("window.callPage.sendStats()")
        assert page.evaluate("window.callPage.localVideo()") == {"on": True, "width": W, "height": H}
    finally:
        page.context.close()
        leave(viewer)
        viewer.release()
    with lock:
        got = list(frames)
    assert got, "no frame rendered in 10 s"
    sizes = {(w, h) for _, w, h, _, _, _ in got}
    fmts = {f for *_, f, _ in got}
    span = got[-1][0] - got[0][0]
    print(f"first frame {first:.2f} s after set_video_renderer; {len(got)} frames in {span:.1f} s, "
          f"sizes {sizes}, formats {fmts}")
    assert all(w * 9 == h * 16 and w <= W for w, h in sizes), sizes
    assert (at_end[1], at_end[2]) == (sent["frameWidth"], sent["frameHeight"]), (at_end[1:3], sent)
    assert fmts == {"RGBA"}, fmts
    assert len(got) / max(span, 0.1) >= 10, (len(got), span)
    stamps = [ts for _, _, _, ts, _, _ in got]
    assert stamps == sorted(stamps)
    # Chromium's encoder may scale the camera down when the machine is busy (its resolution
    # adaptation: 320x180 was seen on CI): each buffer holds its own frame's size.
    kept = [(w, h, b) for _, w, h, _, _, b in got if b]
    assert all(len(b) == w * h * 4 for w, h, b in kept), {(w, h, len(b)) for w, h, b in kept}
    w, h, b = kept[-1]
    assert np.frombuffer(b, dtype=np.uint8).reshape(h, w, 4)[..., :3].std() > 10
