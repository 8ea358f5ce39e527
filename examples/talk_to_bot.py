"""A person in a browser talks to a bot: the bot says back what it heard.

    python examples/talk_to_bot.py [--host 127.0.0.1] [--port 7880] [--room talk] [--seconds N]

Starts the room server in this process, prints the call page's URL (open it in a browser on
this machine: browsers give the microphone to http:// pages only on localhost), and joins a bot
named "Parrot". The bot renders each participant's microphone at 16 kHz, finds the end of each
utterance with NativeVad (0.8 s below the speech threshold after at least 0.3 s of speech), and
plays the utterance back through its custom track. It greets newcomers and answers chat
messages in the page's chat (send_prebuilt_chat_message / on_app_message).

Stops on Ctrl-C or after --seconds.
"""

from __future__ import annotations

import argparse
import threading
import time

from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily, EventHandler
from daily.server import RoomServer

RATE = 16000
FRAME = RATE // 100  # 10 ms, NativeVad's analysis frame
SPEECH_PROB = 0.5
END_SILENCE_MS = 800
MIN_SPEECH_MS = 300
MAX_UTTERANCE_S = 15


class Listener:
    """One participant's utterance detector (runs on the bot's renderer thread)."""

    def __init__(self) -> None:
        self.vad = Daily.create_native_vad(reset_period_ms=1000, sample_rate=RATE, channels=1)
        self.buf = bytearray()
        self.speech_ms = 0
        self.silence_ms = 0

    def feed(self, pcm: bytes) -> bytes | None:
        """Feeds 16-bit mono PCM; returns a finished utterance, or None."""
        done = None
        for i in range(0, len(pcm) - 2 * FRAME + 1, 2 * FRAME):
            frame = pcm[i : i + 2 * FRAME]
            speech = self.vad.analyze_frames(frame) >= SPEECH_PROB
            if speech:
                self.speech_ms += 10
                self.silence_ms = 0
            elif self.buf:
                self.silence_ms += 10
            if speech or self.buf:
                self.buf += frame
            too_long = len(self.buf) >= MAX_UTTERANCE_S * RATE * 2
            if self.buf and (self.silence_ms >= END_SILENCE_MS or too_long):
                if self.speech_ms >= MIN_SPEECH_MS:
                    done = bytes(self.buf)
                self.buf.clear()
                self.speech_ms = self.silence_ms = 0
        return done


class Parrot(EventHandler):
    def __init__(self, source: CustomAudioSource) -> None:
        self.source = source
        self.client: CallClient | None = None
        self.listeners: dict[str, Listener] = {}
        self.lock = threading.Lock()

    def on_participant_joined(self, participant):
        pid = participant["id"]
        name = participant["info"].get("userName") or "there"
        with self.lock:
            self.listeners[pid] = Listener()
        self.client.set_audio_renderer(pid, self.on_audio, audio_source="microphone", sample_rate=RATE, callback_interval_ms=20)
        self.client.send_prebuilt_chat_message(f"Hello {name}! Say something, then pause: I will say it back.")
        print(f"{name} joined ({pid})", flush=True)

    def on_participant_left(self, participant, reason):
        with self.lock:
            self.listeners.pop(participant["id"], None)
        print(f"{participant['info'].get('userName') or participant['id']} left ({reason})", flush=True)

    def on_app_message(self, message, sender):
        if isinstance(message, dict) and message.get("event") == "chat-msg":
            self.client.send_prebuilt_chat_message(f"You wrote: {message.get('message', '')}")

    def on_audio(self, participant_id, audio, audio_source):
        with self.lock:
            listener = self.listeners.get(participant_id)
        if listener is None:
            return
        utterance = listener.feed(audio.audio_frames)
        if utterance:
            print(f"repeating {len(utterance) / 2 / RATE:.1f} s", flush=True)
            # With a completion the write returns at once: the renderer thread never blocks.
            self.source.write_frames(utterance, completion=lambda frames: None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7880)
    p.add_argument("--room", default="talk")
    p.add_argument("--seconds", type=float, default=None)
    a = p.parse_args()

    Daily.init()
    with RoomServer(host=a.host, port=a.port) as server:
        source = CustomAudioSource(RATE, 1)
        track = CustomAudioTrack(source)
        parrot = Parrot(source)
        bot = CallClient(event_handler=parrot)
        parrot.client = bot
        bot.set_user_name("Parrot")
        joined = threading.Event()
        errors: list = []

        def on_join(data, error):
            errors.append(error)
            joined.set()

        settings = {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}}
        bot.join(server.room_url(a.room), client_settings=settings, completion=on_join)
        if not joined.wait(15) or errors[0] is not None:
            print(f"the bot could not join: {errors[0] if errors else 'timeout'}", flush=True)
            return 1
        print(f"Open {server.room_url(a.room)} in a browser and talk to the bot (Ctrl-C stops).", flush=True)
        try:
            deadline = None if a.seconds is None else time.monotonic() + a.seconds
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        done = threading.Event()
        bot.leave(completion=lambda error: done.set())
        done.wait(5)
        bot.release()
    Daily.deinit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
