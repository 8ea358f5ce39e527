"""The join race pipecat hit (issue 15): a bot joins while a caller, in another process, joins at
about the same moment. pipecat starts one audio capture per `on_participant_joined`; a second
event for the same caller made it capture twice and hear doubled, garbled speech. Each round
here has the bot start a renderer from every `on_participant_joined`, exactly as pipecat does,
and checks that the caller is announced once and heard as it spoke."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np

import speechmetrics as sm
from conftest import SPEECH_16K, Capture, Waiter, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack, EventHandler

ROUNDS = 20
SPEECH_S = 2

CALLER = r"""
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
import speechmetrics as sm
from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily

Daily.init()
url, wav = sys.argv[1], sys.argv[2]
speech, _ = sm.read_wav_mono16(wav)
pcm = speech[: 16000 * %d].astype("<i2").tobytes()
src = CustomAudioSource(16000, 1)
track = CustomAudioTrack(src)
client = CallClient()
joined = []
client.set_user_name("caller")
# Ready: wait for the bot's go, which names how long after the bot's join ours starts.
print("ready", flush=True)
time.sleep(float(sys.stdin.readline()))
client.join(url, client_settings={"inputs": {"microphone": {"isEnabled": True,
    "settings": {"customTrack": {"id": track.id}}}}}, completion=lambda d, e: joined.append(e))
deadline = time.time() + 15
while not joined and time.time() < deadline:
    time.sleep(0.01)
assert joined == [None], joined
# Wait until the bot is in the room (the bot renders from its on_participant_joined).
while len(client.participants()) < 2 and time.time() < deadline:
    time.sleep(0.01)
time.sleep(0.5)
for k in range(0, len(pcm), 640):
    src.write_frames(pcm[k : k + 640])
time.sleep(0.5)
done = []
client.leave(completion=lambda e: done.append(e))
while not done and time.time() < deadline + 10:
    time.sleep(0.01)
client.release()
print("caller done")
""" % SPEECH_S


class PipecatLikeBot(EventHandler):
    """pipecat's DailyTransport reduced to what it does on `on_participant_joined`."""

    def __init__(self) -> None:
        self.client = CallClient(event_handler=self)
        # pipecat publishes its output audio as the microphone: the join then waits for the
        # send transport (about 100 ms on loopback), the window in which the caller arrives.
        self.source = CustomAudioSource(16000, 1)
        self.track = CustomAudioTrack(self.source)
        self.joined: list[str] = []
        self.captures: list[Capture] = []
        self.lock = threading.Lock()

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def on_participant_joined(self, participant):
        capture = Capture()
        with self.lock:
            self.joined.append(participant["id"])
            self.captures.append(capture)
        self.client.update_subscriptions(participant_settings={participant["id"]: {"media": {"microphone": "subscribed"}}})
        self.client.set_audio_renderer(participant["id"], capture, audio_source="microphone", sample_rate=16000, callback_interval_ms=20)


def test_a_caller_joining_with_the_bot_is_announced_once_and_heard(server):
    speech, _ = sm.read_wav_mono16(SPEECH_16K)
    speech = speech[: 16000 * SPEECH_S]
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    results = []
    for round_ in range(ROUNDS):
        url = server.room_url(f"join-race-{round_}")
        bot = PipecatLikeBot()
        caller = subprocess.Popen(
            [sys.executable, "-c", CALLER, url, SPEECH_16K, examples],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Both joins start together, the caller's 0-95 ms after ours (5 ms more each
            # round): across the rounds the caller reaches the server before our join, while
            # our transports start (the order that made pipecat capture it twice), and after.
            assert caller.stdout.readline().strip() == "ready", caller.stderr.read()[-2000:]
            w = Waiter()
            caller.stdin.write(f"{round_ * 0.005}\n")
            caller.stdin.flush()
            bot.client.join(url, client_settings=mic_settings(bot.track), completion=w)
            _, error = w.wait(15)
            assert error is None, error
            out, err = caller.communicate(timeout=40)  # stdin closed here
            assert caller.returncode == 0, err[-2000:]
            with bot.lock:
                joined = list(bot.joined)
                captures = list(bot.captures)
            assert len(joined) == 1, f"round {round_}: on_participant_joined {len(joined)} times for {joined}"
            sim = sm.similarity(speech, captures[0].pcm(), 16000)
            results.append(sim)
            assert sim >= 0.8, f"round {round_}: the bot heard similarity {sim:.3f}"
            leave(bot.client)
        finally:
            if caller.poll() is None:
                caller.kill()
            bot.client.release()
    assert len(results) == ROUNDS
    print("similarities", np.round(results, 3).tolist())
