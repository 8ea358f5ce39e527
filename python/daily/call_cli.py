"""``daily-call``: join a room with this machine's microphone and speakers, from a terminal.

A person talks to a bot (or to anybody in the room) without a browser: the default input device
(or ``--input NAME``) is published as the microphone, and every remote participant is played on
the default output device (or ``--output NAME``). Device names are those ``--list-devices``
prints (``Daily.list_sound_devices()``). Leaves cleanly on Ctrl-C (SIGINT), SIGTERM, or when the
room ends; exits 0 then, 1 when the call or a device fails, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from daily import CallClient, Daily, EventHandler

MIC = "daily-call-microphone"
SPEAKER = "daily-call-speaker"


class _Handler(EventHandler):
    """Prints who comes and goes; notes when the call ends or fails."""

    def __init__(self, ended: threading.Event) -> None:
        self.ended = ended
        self.failure: str | None = None
        self.joined = False

    def on_call_state_updated(self, state) -> None:
        if state == "joined":
            self.joined = True
        if state == "left" and self.joined:
            self.ended.set()

    def on_participant_joined(self, participant) -> None:
        name = participant.get("info", {}).get("userName") or participant.get("id")
        print(f"daily-call: {name} joined", flush=True)

    def on_participant_left(self, participant, reason) -> None:
        name = participant.get("info", {}).get("userName") or participant.get("id")
        print(f"daily-call: {name} left ({reason})", flush=True)

    def on_error(self, message) -> None:
        # The room server ending the call (the room closed, the server shut down) is how a
        # call normally ends, not a failure: the client reports it as "the call ended: ...".
        if str(message).startswith("the call ended"):
            print(f"daily-call: {message}", flush=True)
        else:
            self.failure = str(message)
            print(f"daily-call: error: {message}", file=sys.stderr, flush=True)
        self.ended.set()


def _list_devices() -> int:
    devices = Daily.list_sound_devices()
    if not devices:
        print("daily-call: no sound devices found", file=sys.stderr)
        return 1
    for d in devices:
        default = " (default)" if d["is_default"] else ""
        rate = d["default_sample_rate"]
        ch = d["default_channels"]
        print(f"{d['direction']:<6} {d['name']}{default}  {rate} Hz, {ch} ch", flush=True)
    return 0


def _wait(done: threading.Event, timeout: float) -> None:
    done.wait(timeout)


def main(argv: list[str] | None = None) -> int:
    """The ``daily-call`` command: ``daily-call URL [--list-devices] [--input NAME] [--output
    NAME] [--name USER] [--token T]``. ``argv`` defaults to ``sys.argv[1:]``. Returns the exit
    status: 0 on Ctrl-C, SIGTERM or the room ending, 1 when the call or a device fails, 2 for
    bad arguments."""
    p = argparse.ArgumentParser(
        prog="daily-call",
        description="Join a room with this machine's microphone and speakers (cpal: ALSA, "
        "PulseAudio or PipeWire through ALSA).",
    )
    p.add_argument("url", nargs="?", help="room URL, e.g. http://127.0.0.1:7880/talk")
    p.add_argument("--list-devices", action="store_true", help="print the sound devices and exit")
    p.add_argument("--input", default="default", metavar="NAME", help="input device (default: the system default)")
    p.add_argument("--output", default="default", metavar="NAME", help="output device (default: the system default)")
    p.add_argument("--name", default="daily-call", metavar="USER", help="user name shown to others (default daily-call)")
    p.add_argument("--token", default=None, help="meeting token for a private room")
    args = p.parse_args(argv)
    if args.list_devices:
        try:
            return _list_devices()
        except RuntimeError as e:
            print(f"daily-call: {e}", file=sys.stderr)
            return 1
    if not args.url:
        p.error("a room URL is required (or --list-devices)")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    Daily.init()
    client = None
    try:
        try:
            mic = Daily.create_system_microphone_device(MIC, system_device=args.input)
            speaker = Daily.create_system_speaker_device(SPEAKER, system_device=args.output)
        except (ValueError, RuntimeError) as e:
            print(f"daily-call: {e}", file=sys.stderr)
            return 1
        Daily.select_speaker_device(SPEAKER)
        handler = _Handler(stop)
        client = CallClient(event_handler=handler)
        client.set_user_name(args.name)
        joined = threading.Event()
        result: list = []

        def on_join(data, error) -> None:
            result.append(error)
            joined.set()

        settings = {
            "inputs": {
                "camera": False,
                "microphone": {"isEnabled": True, "settings": {"deviceId": MIC}},
            }
        }
        client.join(args.url, meeting_token=args.token, client_settings=settings, completion=on_join)
        while not joined.wait(0.2):
            if stop.is_set():
                break
        if result and result[0] is not None:
            print(f"daily-call: cannot join: {result[0]}", file=sys.stderr)
            return 1
        if joined.is_set():
            print(
                f"daily-call: joined {args.url} as {args.name} "
                f"(input {mic.system_device} {mic.sample_rate} Hz, output {speaker.system_device} "
                f"{speaker.sample_rate} Hz); Ctrl-C to leave",
                flush=True,
            )
        failed = None
        while not stop.wait(0.5):
            failed = mic.error or speaker.error
            if failed:
                print(f"daily-call: sound device failed: {failed}", file=sys.stderr, flush=True)
                break
        left = threading.Event()
        client.leave(completion=lambda error: left.set())
        _wait(left, 5.0)
        mic_stats, speaker_stats = mic.stats(), speaker.stats()
        mic.close()
        speaker.close()
        print(
            "daily-call: left (input: {} frames, {} lost, {} dropped; output: {} frames, {} lost, "
            "{} dropped)".format(
                mic_stats["frames"], mic_stats["lostFrames"], mic_stats["droppedFrames"],
                speaker_stats["frames"], speaker_stats["lostFrames"], speaker_stats["droppedFrames"],
            ),
            flush=True,
        )
        return 1 if (failed or handler.failure) else 0
    finally:
        if client is not None:
            client.release()
        Daily.deinit()


if __name__ == "__main__":
    sys.exit(main())
