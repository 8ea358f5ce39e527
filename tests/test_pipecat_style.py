"""A bot written the way pipecat's DailyTransport drives daily-python (the calls and
client_settings at the end of spec/API.md), on an asyncio loop with completions resolved through
call_soon_threadsafe: join, audio both ways, app message, leave, release from a worker thread."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

import speechmetrics as sm
from conftest import SPEECH_16K, Capture, Waiter, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack, EventHandler
from daily.daily import AudioData, VideoFrame  # noqa: F401  (pipecat imports both)


def to_rate(x16k: np.ndarray, rate: int) -> np.ndarray:
    t = np.arange(int(len(x16k) * rate / 16000)) * 16000 / rate
    return np.interp(t, np.arange(len(x16k)), x16k.astype(np.float64))


class PipecatLikeBot(EventHandler):
    """What DailyTransportClient does, reduced to the daily calls it makes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # pipecat's DailyTransportClient subclasses EventHandler and overrides __new__ like this.
        self.loop = loop
        self.client = CallClient(event_handler=self)
        self.source = CustomAudioSource(24000, 1, True)
        self.track = CustomAudioTrack(self.source)
        self.heard = Capture()
        self.joined_participants: list[str] = []
        self.messages: list = []
        self.renderer_set = threading.Event()

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def _future(self):
        fut = self.loop.create_future()

        def cb(*args):
            value = args[0] if len(args) == 1 else args
            self.loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(value))

        return fut, cb

    async def join(self, url: str):
        fut, cb = self._future()
        self.client.update_subscription_profiles({"base": {"camera": "unsubscribed", "screenVideo": "unsubscribed"}})
        self.client.set_user_name("pipecat-bot")
        self.client.join(
            url,
            None,
            completion=cb,
            client_settings={
                "inputs": {
                    "camera": {"isEnabled": False, "settings": {"customTrack": {"id": "no-camera-track"}}},
                    "microphone": {"isEnabled": True, "settings": {"customTrack": {"id": self.track.id}}},
                },
                "publishing": {
                    "camera": {"isPublishing": False, "sendSettings": {}},
                    "microphone": {"isPublishing": True, "sendSettings": {"channelConfig": "mono", "bitrate": 96000}},
                },
            },
        )
        data, error = await asyncio.wait_for(fut, 15)
        assert error is None, error
        return data

    # Events arrive on the SDK's thread; pipecat hops to its loop, but subscribes at once.
    def on_participant_joined(self, participant):
        pid = participant["id"]
        self.joined_participants.append(pid)
        done = Waiter()
        self.client.update_subscriptions(participant_settings={pid: {"media": {"microphone": "subscribed"}}}, completion=done)
        done.wait(10)  # blocking inside a handler, waiting for a completion: must not deadlock
        self.client.set_audio_renderer(pid, self.heard, audio_source="microphone", sample_rate=16000, callback_interval_ms=20)
        self.renderer_set.set()

    def on_app_message(self, message, sender):
        self.messages.append((message, sender))

    async def speak(self, pcm24k: bytes):
        chunk = 24000 // 25 * 2  # 40 ms, as pipecat writes
        for k in range(0, len(pcm24k), chunk):
            fut, cb = self._future()
            self.source.write_frames(pcm24k[k : k + chunk], completion=cb)
            n = await asyncio.wait_for(fut, 5)
            assert n > 0

    async def send(self, message, participant_id):
        fut, cb = self._future()
        self.client.send_app_message(message, participant_id, completion=cb)
        return await asyncio.wait_for(fut, 5)

    async def leave(self):
        fut, cb = self._future()
        self.client.leave(completion=cb)
        return await asyncio.wait_for(fut, 10)


class User(EventHandler):
    def __init__(self) -> None:
        self.messages: list = []
        self.got = threading.Event()

    def on_app_message(self, message, sender):
        self.messages.append((message, sender))
        self.got.set()


def test_pipecat_style_bot_end_to_end(server):
    url = server.room_url("pipecat-style")
    speech, _ = sm.read_wav_mono16(SPEECH_16K)
    speech = speech[: 16000 * 5]
    user_h = User()
    user = CallClient(event_handler=user_h)
    user_src = CustomAudioSource(16000, 1)
    user_track = CustomAudioTrack(user_src)
    heard_by_user = Capture()

    async def main():
        loop = asyncio.get_running_loop()
        bot = PipecatLikeBot(loop)
        data = await bot.join(url)
        assert data["participants"]["local"]["info"]["userName"] == "pipecat-bot"
        bot_id = data["participants"]["local"]["id"]
        await loop.run_in_executor(None, lambda: join(user, url, client_settings=mic_settings(user_track)))
        assert await loop.run_in_executor(None, bot.renderer_set.wait, 10)
        user.set_audio_renderer(bot_id, heard_by_user, sample_rate=16000, callback_interval_ms=20)
        user_id = user.participants()["local"]["id"]
        assert bot.joined_participants == [user_id]
        # Both ways at once: the user talks while the bot answers.
        user_pcm = speech.astype("<i2").tobytes()
        talk = threading.Thread(target=lambda: [user_src.write_frames(user_pcm[k : k + 640]) for k in range(0, len(user_pcm), 640)])
        talk.start()
        await bot.speak(np.clip(to_rate(speech, 24000), -32768, 32767).astype("<i2").tobytes())
        await loop.run_in_executor(None, talk.join, 15)
        await asyncio.sleep(0.3)
        assert await bot.send({"type": "transcript", "text": "hello"}, user_id) is None
        assert await loop.run_in_executor(None, user_h.got.wait, 5)
        assert user_h.messages == [({"type": "transcript", "text": "hello"}, bot_id)]
        assert await bot.leave() is None
        # pipecat releases the client from a worker thread.
        await loop.run_in_executor(None, bot.client.release)
        return bot

    bot = asyncio.run(asyncio.wait_for(main(), 60))
    try:
        assert sm.similarity(speech, bot.heard.pcm(), 16000) >= 0.8, "the bot did not hear the user"
        assert sm.similarity(speech, heard_by_user.pcm(), 16000) >= 0.8, "the user did not hear the bot"
        assert set(bot.heard.frames) == {320}
        leave(user)
    finally:
        user.release()
