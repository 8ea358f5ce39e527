#!/usr/bin/env python3
"""Interop probe: two aiortc peers talk through daily-server (manual; not run in CI).

Starts the `daily-server` binary on 127.0.0.1 (port 0), joins two participants over the
signalling WebSocket, has "alice" publish a speech WAV as her microphone (aiortc encodes Opus)
and "bob" subscribe; bob's aiortc decodes what the SFU forwards. Prints RTP packet counts from
both stacks' stats and the median correlation of received against sent audio, then stops the
server with SIGTERM and checks that both got `callEnded` and the server exited with 0.

    pip install aiortc websockets numpy
    cargo build -p daily-server
    python3 crates/daily-server/tests/aiortc_probe.py [--wav FILE] [--seconds N]

Exit status 0 when media flowed and its correlation is within 0.05 of the codec-only baseline
(aiortc's Opus in "voip" mode scores about 0.87 on this metric even without any network), 1
otherwise.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import wave

import numpy as np

import aioice.ice

# Loopback only: aioice skips 127.0.0.1 by default, and no STUN server is used below.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

import websockets  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DEFAULT_WAV = os.path.join(REPO, "..", "shared", "audio", "librivox_48k.wav")


def new_pc():
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


DUMP_SDP = False


def dump(direction, msg):
    if DUMP_SDP and "sdp" in msg:
        print(f"----- {direction} {msg['type']} -----\n{msg['sdp']}")


class Participant:
    def __init__(self, name):
        self.name = name
        self.ws = None
        self.id = None
        self.send_pc = None
        self.recv_pc = new_pc()
        self.tracks = []
        self.messages = []
        self.subscribe_offers = 0
        self.frames = 0
        self.pcm = []
        self.first_frame = asyncio.get_running_loop().create_future()
        self.recv_pc.on("track", self._on_track)

    def _on_track(self, track):
        async def consume():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                a = frame.to_ndarray().astype(np.float32)
                channels = len(frame.layout.channels)
                if a.shape[0] == 1 and channels > 1:  # packed: interleaved samples
                    a = a.reshape(-1, channels).T
                self.pcm.append(a.mean(axis=0))
                self.frames += 1
                if not self.first_frame.done():
                    self.first_frame.set_result(None)

        asyncio.ensure_future(consume())

    async def join(self, ws_url):
        self.ws = await websockets.connect(ws_url, max_size=1 << 20)
        await self.send({"type": "join", "protocolVersion": 1, "userName": self.name})
        joined = json.loads(await self.ws.recv())
        assert joined["type"] == "joined", joined
        self.id = joined["participant"]["id"]
        asyncio.ensure_future(self._loop())

    async def send(self, msg):
        dump(f"{self.name} ->", msg)
        await self.ws.send(json.dumps(msg))

    async def publish(self, wav):
        self.send_pc = new_pc()
        self.player = MediaPlayer(wav)
        t = self.send_pc.addTransceiver(self.player.audio, direction="sendonly")
        await self.send_pc.setLocalDescription(await self.send_pc.createOffer())
        tracks = [{"mid": t.mid, "trackId": "mic-" + self.name, "source": "microphone"}]
        await self.send({"type": "publishOffer", "sdp": self.send_pc.localDescription.sdp, "tracks": tracks})

    async def _loop(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                dump(f"-> {self.name}", msg)
                kind = msg["type"]
                if kind == "publishAnswer":
                    await self.send_pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
                elif kind == "subscribeOffer":
                    self.subscribe_offers += 1
                    self.tracks = msg["tracks"]
                    await self.recv_pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
                    await self.recv_pc.setLocalDescription(await self.recv_pc.createAnswer())
                    await self.send({"type": "subscribeAnswer", "sdp": self.recv_pc.localDescription.sdp})
                else:
                    self.messages.append(msg)
        except websockets.ConnectionClosed:
            pass

    async def rtp_stats(self):
        out = {}
        for pc, kind in ((self.send_pc, "outbound-rtp"), (self.recv_pc, "inbound-rtp")):
            if pc is None:
                continue
            for s in (await pc.getStats()).values():
                if s.type == kind:
                    out[kind] = out.get(kind, 0) + (s.packetsSent if kind == "outbound-rtp" else s.packetsReceived)
        return out

    async def close(self):
        for pc in (self.send_pc, self.recv_pc):
            if pc is not None:
                await pc.close()


def codec_baseline(source, seconds=6):
    """The same metric for aiortc's own Opus encoder + decoder with no network in between."""
    import fractions

    import av
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.jitterbuffer import JitterFrame

    enc, dec, out = OpusEncoder(), OpusDecoder(), []
    pcm = source.astype(np.int16)
    for i in range(0, min(len(pcm), 48000 * int(seconds)) - 960, 960):
        f = av.AudioFrame.from_ndarray(pcm[i: i + 960].reshape(1, -1), format="s16", layout="mono")
        f.sample_rate, f.pts, f.time_base = 48000, i, fractions.Fraction(1, 48000)
        for payload in enc.encode(f)[0]:
            for g in dec.decode(JitterFrame(data=payload, timestamp=0)):
                out.append(g.to_ndarray().astype(np.float32).reshape(-1, 2).mean(axis=1))
    return median_correlation(np.concatenate(out), source)[0]


def median_correlation(received, source, rate=48000):
    """Aligns by cross-correlation, then takes the median correlation over 250 ms windows."""
    n = min(len(received), 4 * rate)
    probe = received[rate // 2: rate // 2 + n // 2]  # skip the decoder's start
    ref = source[: len(received) + rate]
    size = 1 << int(np.ceil(np.log2(len(ref) + len(probe))))
    xc = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(probe, size)), size)
    lag = int(np.argmax(xc[: len(ref)])) - rate // 2
    win = rate // 4
    scores = []
    for start in range(0, len(received) - win, win):
        a = received[start: start + win]
        s0 = start + lag
        if s0 < 0 or s0 + win > len(source):
            continue
        b = source[s0: s0 + win]
        if np.std(a) < 1e-3 or np.std(b) < 1e-3:
            continue
        scores.append(float(np.corrcoef(a, b)[0, 1]))
    return (float(np.median(scores)) if scores else 0.0), lag, len(scores)


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("DAILY_SERVER_BIN", os.path.join(REPO, "target", "debug", "daily-server")))
    ap.add_argument("--wav", default=DEFAULT_WAV)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--dump-sdp", action="store_true", help="print every SDP exchanged")
    args = ap.parse_args()
    global DUMP_SDP
    DUMP_SDP = args.dump_sdp

    server = subprocess.Popen([args.bin, "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline().strip()
    print("server:", line)
    url = line.rsplit(" ", 1)[-1]
    ws_url = url.replace("http://", "ws://") + "/ws/probe"
    ok = True
    try:
        alice, bob = Participant("alice"), Participant("bob")
        await alice.join(ws_url)
        await bob.join(ws_url)
        await alice.publish(args.wav)
        await asyncio.wait_for(bob.first_frame, 10)
        await asyncio.sleep(args.seconds)
        a_stats, b_stats = await alice.rtp_stats(), await bob.rtp_stats()
        print(f"alice sent RTP packets: {a_stats.get('outbound-rtp', 0)}")
        print(f"bob received RTP packets: {b_stats.get('inbound-rtp', 0)}, decoded frames: {bob.frames}")
        print(f"bob's forwarded tracks: {bob.tracks}")
        print(f"alice got subscribe offers: {alice.subscribe_offers} (expected 0: nothing to receive)")
        assert bob.tracks and bob.tracks[0]["participantId"] == alice.id, bob.tracks

        with wave.open(args.wav) as w:
            source = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
            if w.getnchannels() > 1:
                source = source.reshape(-1, w.getnchannels()).mean(axis=1)
        received = np.concatenate(bob.pcm)
        corr, lag, windows = median_correlation(received, source)
        print(f"received {len(received) / 48000:.2f} s of audio; lag {lag / 48:.1f} ms; "
              f"median correlation {corr:.3f} over {windows} windows of 250 ms")
        baseline = codec_baseline(source, args.seconds)
        print(f"codec-only baseline (aiortc Opus encode+decode, no network): {baseline:.3f}")
        ok = bob.frames > 0.8 * args.seconds * 50 and corr > baseline - 0.05

        server.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, server.wait, 10)
        await asyncio.sleep(0.2)
        for p in (alice, bob):
            ended = [m for m in p.messages if m["type"] == "callEnded"]
            print(f"{p.name}: callEnded={bool(ended)}")
            ok = ok and bool(ended)
        print(f"server exit code: {code}")
        ok = ok and code == 0
        await alice.close()
        await bob.close()
    finally:
        if server.poll() is None:
            server.kill()
    print("PROBE", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
