"""daily.aio figures (issue 18, part 2): pacing, loop responsiveness, received speech and the
loop thread's CPU, against the embedded room server on loopback.

    python3 benches/aio_bench.py [--rounds 5]

Each round, in one process (Daily.init once, a RoomServer on 127.0.0.1):
- pacing: a listener joins, a bot joins with an AudioSource as its microphone, the listener
  iterates an AudioStream of it. The bot writes 3 s of data/librivox_16k.wav in one
  `await write_frames`, then 3 s in 40 ms chunks, each awaited; both durations are reported
  (wall, time.monotonic). A task ticking every 10 ms on the same loop reports its longest gap.
  The received audio is compared with the sent 6 s (examples/speechmetrics.similarity).
- loop CPU, time.thread_time() of the loop's thread divided by the wall time: idle in a call
  (5 s), consuming a 20 ms AudioStream (5 s), writing 10 s in 40 ms chunks with daily.aio, and
  the same chunks written the way tests/test_pipecat_style.py does by hand (a completion per
  chunk resolving a future through call_soon_threadsafe; the writer waits for each chunk to be
  played, so it leaves gaps that daily.aio's queue_ms avoids).
Prints each statistic's min / median / max over the rounds and every round's value.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import speechmetrics as sm  # noqa: E402
from daily import Daily  # noqa: E402
from daily.aio import AsyncCallClient, AudioSource, AudioStream  # noqa: E402
from daily.server import RoomServer  # noqa: E402
from main_job_bench import cpu_model  # noqa: E402  (the machine line every bench prints)

RATE = 16000
CHUNK = 640  # 40 ms at 16 kHz


async def pair(url: str):
    listener = AsyncCallClient()
    await listener.join(url)
    joined = listener.events("participant_joined")
    bot = AsyncCallClient()
    source = AudioSource(RATE, 1)
    data = await bot.join(url, client_settings=source.microphone_settings())
    bot_id = data["participants"]["local"]["id"]
    async for ev in joined:
        if ev.args[0]["id"] == bot_id:
            break
    await joined.aclose()
    return listener, bot, source, AudioStream(listener, bot_id, sample_rate=RATE)


async def one_round(url: str, speech: np.ndarray) -> dict:
    out: dict = {}
    loop = asyncio.get_running_loop()
    listener, bot, source, stream = await pair(url)
    heard: list = []

    async def consume(s: AudioStream, into: list) -> None:
        async for a in s:
            into.append(a.audio_frames)

    consumer = asyncio.ensure_future(consume(stream, heard))
    await asyncio.sleep(0.5)
    gaps = [0.0]

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps[0] = max(gaps[0], now - last)
            last = now

    ticker = asyncio.ensure_future(tick())
    sent = speech[: 6 * RATE]
    t0 = time.monotonic()
    await source.write_frames(sent[: 3 * RATE])
    out["one_write_3s_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    for k in range(3 * RATE, 6 * RATE, CHUNK):
        await source.write_frames(sent[k : k + CHUNK])
    out["chunked_3s_s"] = time.monotonic() - t0
    await source.wait_for_playout()
    await asyncio.sleep(0.4)
    ticker.cancel()
    out["ticker_max_gap_ms"] = gaps[0] * 1000
    await stream.aclose()
    await consumer
    got = np.frombuffer(b"".join(heard), dtype="<i2")
    out["similarity"] = sm.similarity(sent, got, RATE)

    # Loop CPU.
    c0, w0 = time.thread_time(), time.monotonic()
    await asyncio.sleep(5)
    out["cpu_idle_ms_per_s"] = (time.thread_time() - c0) / (time.monotonic() - w0) * 1000
    stream = AudioStream(listener, stream.participant_id, sample_rate=RATE)
    sink: list = []
    consumer = asyncio.ensure_future(consume(stream, sink))
    await asyncio.sleep(0.2)
    c0, w0 = time.thread_time(), time.monotonic()
    await asyncio.sleep(5)
    out["cpu_stream_ms_per_s"] = (time.thread_time() - c0) / (time.monotonic() - w0) * 1000
    await stream.aclose()
    await consumer
    pcm = np.resize(speech, 10 * RATE)
    c0, w0 = time.thread_time(), time.monotonic()
    for k in range(0, len(pcm), CHUNK):
        await source.write_frames(pcm[k : k + CHUNK])
    out["cpu_aio_write_ms_per_s"] = (time.thread_time() - c0) / (time.monotonic() - w0) * 1000
    await source.wait_for_playout()
    raw = source.source
    c0, w0 = time.thread_time(), time.monotonic()
    for k in range(0, len(pcm), CHUNK):
        fut = loop.create_future()

        def done(n: int, fut: asyncio.Future = fut) -> None:
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(n))

        raw.write_frames(pcm[k : k + CHUNK], completion=done)
        await fut
    out["cpu_hand_write_ms_per_s"] = (time.thread_time() - c0) / (time.monotonic() - w0) * 1000
    out["hand_write_10s_s"] = time.monotonic() - w0
    await bot.release()
    await listener.release()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    speech, rate = sm.read_wav_mono16(os.path.join(ROOT, "data", "librivox_16k.wav"))
    assert rate == RATE
    Daily.init()
    rounds = []
    with RoomServer(host="127.0.0.1", port=0) as server:
        for i in range(a.rounds):
            rounds.append(asyncio.run(one_round(server.room_url(f"aio-bench-{i}"), speech)))
    Daily.deinit()
    print(f"\n{datetime.datetime.now():%Y-%m-%d %H:%M}, {cpu_model()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {a.rounds} rounds")
    print(f"{'statistic':28} {'min':>9} {'median':>9} {'max':>9}   rounds")
    for key in rounds[0]:
        vals = [r[key] for r in rounds]
        each = " ".join(f"{v:.3f}" for v in vals)
        print(f"{key:28} {min(vals):9.3f} {statistics.median(vals):9.3f} {max(vals):9.3f}   {each}")


if __name__ == "__main__":
    main()
