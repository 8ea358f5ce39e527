"""An asyncio bot with daily.aio (no pipecat, no threads of its own): it joins, waits for the
first participant, listens to them for a few seconds, says back what it heard and answers app
messages with an echo.

    python examples/aio_parrot.py [--seconds 3]

Starts the room server in this process and prints the call page's URL (open it in a browser on
this machine, join and speak: the parrot repeats your first seconds). `tests/test_aio.py` runs
`parrot()` with an asyncio user on the other side.
"""

from __future__ import annotations

import argparse
import asyncio

from daily import Daily
from daily.aio import AsyncCallClient, AudioSource, AudioStream

RATE = 16000  # Hz, mono 16-bit: 2 bytes a frame


async def parrot(url: str, seconds: float = 3.0) -> bytes:
    """Joins ``url`` as "parrot", records ``seconds`` of the first participant who joins after
    it, plays that back and leaves; returns the PCM it recorded (16 kHz mono int16). Raises
    ``daily.aio.CallError`` if the join fails."""
    source = AudioSource(RATE, 1)
    async with AsyncCallClient() as client:
        client.set_user_name("parrot")

        @client.on("app_message")
        async def echo(message: object, sender_id: str) -> None:
            await client.send_app_message({"echo": message}, sender_id)

        async with client.events("participant_joined") as joined:
            await client.join(url, client_settings=source.microphone_settings())
            participant = (await joined.__anext__()).args[0]
        recorded = bytearray()
        async with AudioStream(client, participant["id"], sample_rate=RATE) as stream:
            async for audio in stream:  # 20 ms of mono int16 PCM each
                recorded += audio.audio_frames
                if len(recorded) >= int(seconds * RATE) * 2:
                    break
        await source.write_frames(recorded)  # returns with 100 ms left to play
        await source.wait_for_playout()
        await client.leave()
    return bytes(recorded)


def main() -> None:
    from daily.server import RoomServer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="how much to record and repeat, s")
    a = p.parse_args()
    Daily.init()
    with RoomServer(host="127.0.0.1", port=7880) as server:
        url = server.room_url("parrot")
        print(f"open {url} in a browser on this machine, join and speak")
        asyncio.run(parrot(url, a.seconds))
    Daily.deinit()


if __name__ == "__main__":
    main()
