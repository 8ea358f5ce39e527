"""The main job: a bot speaks real speech into a room on the embedded server; a listener records it.

Prints join time (ms), end-to-end latency p50/p95 (ms, from the moment the sender's media clock
consumes a sample to the renderer callback that delivers it), similarity of received to sent
speech (median correlation over 250 ms windows after alignment), and packets lost.

    python examples/main_job.py [--wav data/librivox_16k.wav] [--out out/received.wav] [--seconds N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import speechmetrics as sm  # noqa: E402

from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily, EventHandler  # noqa: E402
from daily.server import RoomServer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RATE = 16000
CHUNK = RATE // 100  # 10 ms


class Listener(EventHandler):
    def __init__(self) -> None:
        self.joined = threading.Event()
        self.bot_id: str | None = None
        self.client: CallClient | None = None
        self.callbacks: list[tuple[int, int, float]] = []
        self.pcm: list[bytes] = []
        self.received = 0
        self.left = threading.Event()

    def on_participant_joined(self, participant):
        if participant["info"].get("userName") == "bot" and self.client is not None:
            self.bot_id = participant["id"]
            self.client.set_audio_renderer(participant["id"], self.on_audio, sample_rate=RATE, callback_interval_ms=20)
            self.joined.set()

    def on_participant_left(self, participant, reason):
        if participant["id"] == self.bot_id:
            self.left.set()

    def on_audio(self, participant_id, audio, audio_source):
        t = time.monotonic()
        self.callbacks.append((self.received, audio.num_audio_frames, t))
        self.received += audio.num_audio_frames
        self.pcm.append(audio.audio_frames)


def join_blocking(client: CallClient, url: str, **kw) -> tuple[float, dict]:
    done = threading.Event()
    result: dict = {}

    def completion(data, error):
        result["t"] = time.monotonic()
        result["data"], result["error"] = data, error
        done.set()

    t0 = time.monotonic()
    client.join(url, completion=completion, **kw)
    if not done.wait(15):
        raise RuntimeError("join did not complete within 15 s")
    if result["error"]:
        raise RuntimeError(f"join failed: {result['error']}")
    return (result["t"] - t0) * 1000.0, result["data"]


def leave_blocking(client: CallClient) -> None:
    done = threading.Event()
    client.leave(completion=lambda error: done.set())
    done.wait(10)


def run(wav: str, out: str, seconds: float | None, manage_engine: bool = True, bitrate: int = 64000) -> dict:
    sent, rate = sm.read_wav_mono16(wav)
    if rate != RATE:
        raise SystemExit(f"{wav}: expected {RATE} Hz, got {rate}")
    if seconds:
        sent = sent[: int(seconds * RATE)]
    sent = sent[: len(sent) // CHUNK * CHUNK]

    if manage_engine:
        Daily.init()
    with RoomServer(host="127.0.0.1", port=0) as server:
        url = server.room_url("demo")

        handler = Listener()
        listener = CallClient(event_handler=handler)
        handler.client = listener
        listener.set_user_name("listener")
        listener_join_ms, _ = join_blocking(listener, url)

        source = CustomAudioSource(RATE, 1)
        track = CustomAudioTrack(source)
        bot = CallClient()
        bot.set_user_name("bot")
        bot_join_ms, _ = join_blocking(
            bot,
            url,
            client_settings={
                "inputs": {
                    "camera": False,
                    "microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}},
                },
                "publishing": {
                    "microphone": {"isPublishing": True, "sendSettings": {"channelConfig": "mono", "bitrate": bitrate}}
                },
            },
        )
        if not handler.joined.wait(10):
            raise RuntimeError("the listener never saw the bot join")
        time.sleep(0.2)  # let the receive transport connect before speech starts

        # The bot speaks as pipecat does: 20 ms writes with completions, 100 ms queued ahead so
        # the media clock never runs dry even when the completion thread waits for the GIL. A completion fires when the clock has consumed the
        # write's last frame: that is the consumption time of those samples.
        consumed: list[tuple[int, float]] = []
        pcm = sent.astype("<i2").tobytes()
        step = 2 * CHUNK
        in_flight = threading.Semaphore(5)
        all_done = threading.Event()
        last_end = len(sent) // step * step

        def make_completion(end: int):
            def completion(num_frames: int) -> None:
                consumed.append((end, time.monotonic()))
                in_flight.release()
                if end >= last_end:
                    all_done.set()

            return completion

        t_start = time.monotonic()
        for k in range(0, last_end, step):
            if not in_flight.acquire(timeout=5):
                raise RuntimeError("write completions stopped arriving")
            source.write_frames(pcm[2 * k : 2 * (k + step)], completion=make_completion(k + step))
        all_done.wait(5)
        consumed.sort()
        t_spoken = time.monotonic() - t_start
        time.sleep(0.5)  # drain the jitter buffer

        stats = listener.media_stats()
        leave_blocking(bot)
        leave_blocking(listener)
        bot.release()
        listener.release()
    if manage_engine:
        Daily.deinit()

    received = np.frombuffer(b"".join(handler.pcm), dtype="<i2")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    sm.write_wav_mono16(out, received, RATE)
    lag = sm.best_lag(sent, received)
    sim = sm.similarity(sent, received, RATE, lag)
    sim_strict = sm.similarity(sent, received, RATE, lag, slack_ms=0)
    lat = sm.latencies_ms(consumed, handler.callbacks, lag, RATE, CHUNK)
    rx = stats["receive"].get(handler.bot_id or "", {}).get("microphone", {})
    return {
        "speech_seconds": round(len(sent) / RATE, 2),
        "sending_took_seconds": round(t_spoken, 3),
        "join_ms_bot": round(bot_join_ms, 1),
        "join_ms_listener": round(listener_join_ms, 1),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
        "similarity": round(sim, 4),
        "similarity_strict": round(sim_strict, 4),
        "packets_received": rx.get("packetsReceived"),
        "packets_lost": rx.get("packetsLost"),
        "packets_late": rx.get("packetsLate"),
        "concealed_ms": rx.get("concealedMs"),
        "received_wav": out,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wav", default=os.path.join(HERE, "..", "data", "librivox_16k.wav"))
    p.add_argument("--out", default=os.path.join("out", "received.wav"))
    p.add_argument("--seconds", type=float, default=None, help="send only the first N seconds")
    p.add_argument("--bitrate", type=int, default=64000, help="Opus bitrate of the bot's microphone, bit/s")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    a = p.parse_args()
    r = run(a.wav, a.out, a.seconds, bitrate=a.bitrate)
    if a.json:
        print(json.dumps(r))
    else:
        print("main job: bot -> embedded room server -> listener")
        for k, v in r.items():
            print(f"  {k:22s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
