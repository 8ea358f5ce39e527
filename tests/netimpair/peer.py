"""A process hosting named CallClients, driven by JSON lines on stdin; events as JSON lines on stdout.

Started by ``netimpair.Peer`` inside a network namespace (``ip netns exec NS python3 peer.py``).
Every event carries ``t``: ``time.monotonic()`` in this process. CLOCK_MONOTONIC is not
namespaced by network namespaces, so the controller compares it with its own clock directly.

Commands (one JSON object a line, ``cmd`` names it):

- ``{"cmd": "join", "name": N, "url": U, "mic": bool, "render": "bot"}`` creates client N (once;
  later joins reuse the same CallClient), joins U; with ``mic`` it publishes a
  CustomAudioTrack at 16 kHz mono; with ``render`` it records (renderer, 16 kHz, 20 ms) the
  remote participant of that user name whenever one joins. Emits ``join_done`` (``t0`` at the
  call, ``t`` at the completion, ``error``).
- ``{"cmd": "speak", "name": N, "wav": PATH, "seconds": S}`` writes the speech on N's source
  in 20 ms writes with completions, at most 100 ms ahead (as pipecat does), in a thread. Emits
  ``speak_start`` and ``speak_end``. The source keeps being consumed whether or not N is
  joined (a custom source is paced by the engine's clock), so the timeline of what was sent
  is the completions' timeline.
- ``{"cmd": "stats", "name": N}`` emits ``stats`` with ``media_stats()``.
- ``{"cmd": "leave", "name": N}`` emits ``leave_done``; ``{"cmd": "release", "name": N}``.
- ``{"cmd": "dump", "name": N, "path": P}`` writes N's recording to P (``.npz``: ``pcm``,
  ``cb`` = renderer callbacks (t, frames), ``consumed`` = the speaker's (end sample, t)) and emits
  ``dumped``.
- ``{"cmd": "video_send", "name": N, "width": W, "height": H, "fps": F}`` makes a
  CustomVideoSource N's camera (a CustomVideoTrack; at its join, or at once with
  ``update_inputs`` when N is already joined) and writes the frame-numbered pattern of
  ``examples/videopattern.py`` (RGBA) to it at F frames/s in a thread, recording when each
  frame was written. Emits ``video_send_started``. ``{"cmd": "video_stop", "name": N}``
  stops the writer.
- ``{"cmd": "video_render", "name": N, "user": U, "psnr_every": K}`` sets a video renderer
  (camera, RGBA) on the remote participant of user name U (now if N sees one, else when one
  joins) recording each frame's number (unwrapped past 4096) and arrival time and, for every
  K-th frame (0: none), its luma PSNR against the frame sent. Emits ``video_render_set``.
- ``{"cmd": "video_dump", "name": N}`` emits ``video_dump`` with N's ``rendered`` (number or
  None, t) pairs, ``psnr`` (number, dB) pairs and ``sent`` (number, t) pairs, in order.
- ``{"cmd": "quit"}`` leaves and releases everything (bounded) and exits.

Events from the handlers: ``network`` (on_network_connection_status_updated), ``call_state``,
``error``, ``participant_joined``, ``participant_left``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import wave

import numpy as np

from daily import CallClient, CustomAudioSource, CustomAudioTrack, CustomVideoSource, CustomVideoTrack, Daily, EventHandler

# The frame-numbered test pattern (examples/videopattern.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples"))
import videopattern as vp  # noqa: E402

RATE = 16000
STEP = RATE // 50  # 20 ms writes

_out_lock = threading.Lock()


def emit(ev: str, **kw) -> None:
    kw = {"ev": ev, "t": time.monotonic(), **kw}
    line = json.dumps(kw, default=str)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(EventHandler):
    def __init__(self, peer: "Client") -> None:
        self.peer = peer

    def on_network_connection_status_updated(self, status):
        emit("network", name=self.peer.name, status=dict(status))

    def on_call_state_updated(self, state):
        emit("call_state", name=self.peer.name, state=state)

    def on_error(self, message):
        emit("error", name=self.peer.name, message=message)

    def on_participant_joined(self, participant):
        user = participant.get("info", {}).get("userName", "")
        emit("participant_joined", name=self.peer.name, user=user, id=participant["id"])
        if self.peer.render_user and user == self.peer.render_user and self.peer.client is not None:
            self.peer.client.set_audio_renderer(
                participant["id"], self.peer.on_audio, sample_rate=RATE, callback_interval_ms=20
            )
        if self.peer.video is not None and user == self.peer.video.user and self.peer.client is not None:
            self.peer.video.attach(self.peer.client, participant["id"])

    def on_participant_left(self, participant, reason):
        user = participant.get("info", {}).get("userName", "")
        emit("participant_left", name=self.peer.name, user=user, id=participant["id"], reason=reason)


class VideoWriter:
    """Writes the numbered pattern at a steady rate from a thread (as pipecat's video output
    does); ``sent`` is (frame number, time written)."""

    def __init__(self, source: CustomVideoSource, width: int, height: int, fps: float) -> None:
        self.source, self.w, self.h, self.fps = source, width, height, fps
        self.sent: list[tuple[int, float]] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="video-writer")
        self.thread.start()

    def _run(self) -> None:
        period = 1.0 / self.fps
        t0 = time.monotonic()
        n = 0
        while not self.stop_event.is_set():
            frame = vp.make_frame(n, self.w, self.h, "RGBA")
            self.sent.append((n, time.monotonic()))
            self.source.write_frame(frame)
            n += 1
            delay = t0 + n * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # far behind (a stalled machine): do not catch up in a burst
                t0 = time.monotonic() - n * period

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)


class VideoRecorder:
    """A video renderer callback: each frame's number (unwrapped) and arrival time, and every
    ``psnr_every``-th frame's luma PSNR against the frame sent."""

    def __init__(self, user: str, psnr_every: int) -> None:
        self.user = user
        self.psnr_every = psnr_every
        self.attached: str | None = None
        self.rendered: list[tuple[int | None, float]] = []
        self.psnr: list[tuple[int, float]] = []
        self.last = -1
        self.lock = threading.Lock()

    def attach(self, client: CallClient, participant_id: str) -> None:
        if self.attached == participant_id:
            return
        self.attached = participant_id
        client.set_video_renderer(participant_id, self, video_source="camera", color_format="RGBA")

    def __call__(self, participant_id, frame, video_source) -> None:
        t = time.monotonic()
        w, h, buf = frame.width, frame.height, frame.buffer
        low = vp.read_frame_number(buf, w, h, "RGBA")
        n = None
        if low is not None:
            n = vp.unwrap_number(low, self.last + 1) if self.last >= 0 else low
            self.last = n
        with self.lock:
            k = len(self.rendered)
            self.rendered.append((n, t))
        if self.psnr_every and n is not None and k % self.psnr_every == 0:
            p = vp.psnr_luma(buf, vp.make_frame(n, w, h, "RGBA"), w, h, "RGBA")
            with self.lock:
                self.psnr.append((n, p))


class Client:
    def __init__(self, name: str) -> None:
        self.name = name
        self.render_user: str | None = None
        self.client: CallClient | None = CallClient(event_handler=Handler(self))
        self.client.set_user_name(name)
        self.source: CustomAudioSource | None = None
        self.track: CustomAudioTrack | None = None
        self.pcm: list[bytes] = []
        self.cb: list[tuple[float, int]] = []
        self.consumed: list[tuple[int, float]] = []
        self.speaker: threading.Thread | None = None
        self.stop_speaking = threading.Event()
        self.video: VideoRecorder | None = None
        self.vtrack: CustomVideoTrack | None = None
        self.writer: VideoWriter | None = None
        self.joined = False

    def on_audio(self, participant_id, audio, audio_source):
        self.cb.append((time.monotonic(), audio.num_audio_frames))
        self.pcm.append(audio.audio_frames)

    def join(self, url: str, mic: bool, render: str | None) -> None:
        self.render_user = render
        settings: dict = {"inputs": {"camera": False, "microphone": False}}
        if mic:
            if self.source is None or self.track is None:
                self.source = CustomAudioSource(RATE, 1)
                self.track = CustomAudioTrack(self.source)
            settings = {
                "inputs": {
                    "camera": False,
                    "microphone": {"isEnabled": True, "settings": {"customTrack": {"id": self.track.id}}},
                },
                "publishing": {
                    "microphone": {"isPublishing": True, "sendSettings": {"channelConfig": "mono", "bitrate": 64000}}
                },
            }
        if self.vtrack is not None:
            settings["inputs"]["camera"] = self.camera_input()
        t0 = time.monotonic()

        def done(data, error):
            self.joined = error is None
            emit("join_done", name=self.name, t0=t0, error=error,
                 participant_id=(data or {}).get("participants", {}).get("local", {}).get("id")
                 if isinstance(data, dict) else None)

        assert self.client is not None, "released"
        self.client.join(url, client_settings=settings, completion=done)

    def camera_input(self) -> dict:
        assert self.vtrack is not None
        return {"isEnabled": True, "settings": {"customTrack": {"id": self.vtrack.id}}}

    def video_send(self, width: int, height: int, fps: float) -> None:
        if self.writer is not None:
            self.writer.stop()
        source = CustomVideoSource(width, height)
        self.vtrack = CustomVideoTrack(source)
        self.writer = VideoWriter(source, width, height, fps)
        if self.joined and self.client is not None:
            self.client.update_inputs({"camera": self.camera_input()},
                                      completion=lambda error: emit("video_inputs", name=self.name, error=error))
        emit("video_send_started", name=self.name, track=self.vtrack.id)

    def video_render(self, user: str, psnr_every: int) -> None:
        self.video = VideoRecorder(user, psnr_every)
        if self.client is not None:
            for pid, p in self.client.participants().items():
                if pid != "local" and p.get("info", {}).get("userName") == user:
                    self.video.attach(self.client, pid)
        emit("video_render_set", name=self.name, attached=self.video.attached)

    def video_dump(self) -> None:
        rendered: list = []
        psnr: list = []
        if self.video is not None:
            with self.video.lock:
                rendered, psnr = list(self.video.rendered), list(self.video.psnr)
        sent = list(self.writer.sent) if self.writer is not None else []
        emit("video_dump", name=self.name, rendered=rendered, psnr=psnr, sent=sent)

    def speak(self, wav: str, seconds: float) -> None:
        with wave.open(wav, "rb") as w:
            assert w.getframerate() == RATE and w.getsampwidth() == 2
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")[:: w.getnchannels()]
        n = int(seconds * RATE) // STEP * STEP
        if n > len(data):  # loop the passage for long runs
            data = np.tile(data, n // len(data) + 1)
        pcm = data[:n].astype("<i2").tobytes()
        self.stop_speaking.clear()
        source = self.source
        assert source is not None, "speak needs a client joined with mic"

        def run() -> None:
            in_flight = threading.Semaphore(5)
            emit("speak_start", name=self.name, samples=n)
            for k in range(0, n, STEP):
                # Bounded: a stuck clock ends the speech instead of hanging the process.
                if self.stop_speaking.is_set() or not in_flight.acquire(timeout=5):
                    emit("speak_end", name=self.name, ok=False, at=k)
                    return

                def completion(_frames, end=k + STEP):
                    self.consumed.append((end, time.monotonic()))
                    in_flight.release()

                source.write_frames(pcm[2 * k : 2 * (k + STEP)], completion=completion)
            for _ in range(5):
                in_flight.acquire(timeout=2)
            emit("speak_end", name=self.name, ok=True, at=n)

        self.speaker = threading.Thread(target=run, daemon=True)
        self.speaker.start()

    def leave(self) -> None:
        if self.client is None:
            emit("leave_done", name=self.name, error="released")
            return
        t0 = time.monotonic()
        self.client.leave(completion=lambda error: emit("leave_done", name=self.name, t0=t0, error=error))

    def release(self) -> None:
        self.stop_speaking.set()
        if self.writer is not None:
            self.writer.stop()
        if self.client is not None:
            self.client.release()
            self.client = None

    def dump(self, path: str) -> None:
        pcm = np.frombuffer(b"".join(self.pcm), dtype="<i2")
        cb = np.array(self.cb, dtype=np.float64).reshape(-1, 2)
        consumed = np.array(sorted(self.consumed), dtype=np.float64).reshape(-1, 2)
        np.savez(path, pcm=pcm, cb=cb, consumed=consumed)


def main() -> int:
    Daily.init()
    clients: dict[str, Client] = {}
    emit("ready", pid=os.getpid())
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            c = json.loads(line)
            cmd, name = c["cmd"], c.get("name", "")
            if cmd == "quit":
                break
            if cmd == "join":
                if name not in clients:
                    clients[name] = Client(name)
                clients[name].join(c["url"], bool(c.get("mic")), c.get("render"))
            elif cmd == "speak":
                clients[name].speak(c["wav"], float(c["seconds"]))
            elif cmd == "stats":
                cl = clients[name].client
                emit("stats", name=name, stats=cl.media_stats() if cl else None)
            elif cmd == "leave":
                clients[name].leave()
            elif cmd == "release":
                clients[name].release()
                emit("released", name=name)
            elif cmd == "dump":
                # Speech to others (the speaker's consumed timeline) is kept on the speaker.
                clients[name].dump(c["path"])
                emit("dumped", name=name, path=c["path"])
            elif cmd == "dump_consumed":
                np.save(c["path"], np.array(sorted(clients[name].consumed), dtype=np.float64).reshape(-1, 2))
                emit("dumped", name=name, path=c["path"])
            elif cmd == "video_send":
                if name not in clients:
                    clients[name] = Client(name)
                clients[name].video_send(int(c["width"]), int(c["height"]), float(c.get("fps", 30)))
            elif cmd == "video_stop":
                if clients[name].writer is not None:
                    clients[name].writer.stop()
                emit("video_stopped", name=name)
            elif cmd == "video_render":
                if name not in clients:
                    clients[name] = Client(name)
                clients[name].video_render(c["user"], int(c.get("psnr_every", 0)))
            elif cmd == "video_dump":
                clients[name].video_dump()
            elif cmd == "ping":
                emit("pong")
            else:
                emit("bad_command", cmd=cmd)
        except Exception as e:  # report and keep serving: the controller decides
            emit("exception", message=f"{type(e).__name__}: {e}", line=line[:200])
    for c_ in clients.values():
        try:
            c_.release()
        except Exception:
            pass
    emit("bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
