"""NativeVad in noise: frame ROC AUC of several VADs on labelled speech, clean and noisy (issue 18).

Speech: data/speech_gaps_16k.wav and data/librivox_16k.wav, labelled per 10 ms frame in
benches/vad_labels.json (procedure in benches/README.md, "NativeVad in noise").

Noise, mixed at a given SNR = 10·log10(P_speech / P_noise), where P_speech is the mean power of the
clean clip over its speech-labelled frames and P_noise the mean power of the noise over the whole
clip (the noise is scaled, the speech never changes; the sum is clipped to int16):
- white: Gaussian, numpy default_rng(seed 18).
- babble: four talkers of Debian's asterisk-core-sounds-{en,fr,it,ru}-wav (Allison, June, Carlo,
  IvrvoiceRU; CC-BY-SA 3.0), each a seeded random sequence of prompts (8 kHz, brought to 16 kHz),
  summed at equal power.
- wind, applause: real recordings from Debian's openttd-opensfx (OpenSFX 1.0.3, opensfx.cat):
  "Heavy wind" (from "wind1.wav" by Anton, CC-BY 3.0) and "Applause" (from "Approx 850 -
  Enthusiast Audience.wav" by lonemonk, CC-BY 3.0), 44.1 kHz brought to 16 kHz, looped with a
  50 ms cross-fade to the clip's length.

Models (each scores every 10 ms frame, fed in order from the start of the clip):
- `ours`, `ours-r0`: our NativeVad (daily_media::Vad via `vad_scores ours`) with reset_period_ms
  1000 (the default) and 0; `--before BIN` adds the same from another build of the example.
- `earshot`: earshot alone on contiguous 16 ms frames (`vad_scores earshot 0`).
- `rnnoise`: RNNoise's VAD output (crate nnnoiseless) on the audio brought to 48 kHz
  (`vad_scores rnnoise 0`).
- `daily-python`: the real SDK's `Daily.create_native_vad(1000, 16000, 1)` (WebRTC's RNN VAD),
  if `--daily-python DIR` names a `pip install --target DIR daily-python`.
- `webrtcvad`: PyPI webrtcvad (WebRTC's GMM VAD, binary); the score is how many of its four
  aggressiveness modes call the frame speech (0-4), if installed.

Usage (from the repository root; the Debian packages are only downloaded and unpacked):
    apt-get download asterisk-core-sounds-{en,fr,it,ru}-wav openttd-opensfx
    for f in *.deb; do dpkg -x $f /tmp/vad-debs/x; done
    cargo build --release -p daily-media --example vad_scores
    python benches/vad_eval.py --debs /tmp/vad-debs/x --bin target/release/examples/vad_scores \
        [--before OLD_BIN] [--daily-python DIR] [--json out.json]
It prints a Markdown table: pooled AUC over both clips, one row per condition, one column per model.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
FRAME = 160


def read_wav(data: bytes | str) -> tuple[np.ndarray, int]:
    """Mono float64 samples (int16 scale) and the rate of a 16-bit PCM WAV (path or bytes)."""
    f = wave.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    n, ch, width, rate = f.getnframes(), f.getnchannels(), f.getsampwidth(), f.getframerate()
    assert width == 2, "16-bit PCM only"
    x = np.frombuffer(f.readframes(n), "<i2").astype(np.float64).reshape(-1, ch).mean(axis=1)
    return x, rate


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling of a whole signal through its spectrum (fine for noise clips)."""
    if rate_in == rate_out:
        return x
    n_out = int(round(len(x) * rate_out / rate_in))
    spec = np.fft.rfft(x)
    keep = min(len(spec), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, complex)
    out[:keep] = spec[:keep]
    return np.fft.irfft(out, n_out) * n_out / len(x)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC: P(score of a speech frame > score of a non-speech frame), ties half."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = int(labels.sum())
    neg = len(labels) - pos
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def clips() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (clean samples, per-frame labels)} from benches/vad_labels.json."""
    doc = json.load(open(os.path.join(ROOT, "benches", "vad_labels.json")))
    out = {}
    for name, c in doc["clips"].items():
        x, rate = read_wav(os.path.join(ROOT, "data", name))
        assert rate == RATE
        labels = np.zeros(c["frames"], bool)
        for a, b in c["segments"]:
            labels[a:b] = True
        out[name] = (x[: c["frames"] * FRAME], labels)
    return out


def opensfx(debs: str, title_start: str) -> np.ndarray:
    """The OpenSFX sound whose credit line starts with `title_start`, at 16 kHz."""
    (cat,) = glob.glob(os.path.join(debs, "usr/share/games/openttd/baseset/opensfx/opensfx.cat"))
    b = open(cat, "rb").read()
    for i in range(struct.unpack_from("<I", b, 0)[0] // 8):
        off, size = struct.unpack_from("<II", b, 8 * i)
        off &= 0x7FFFFFFF
        n = b[off]
        name = b[off + 1 : off + 1 + n].rstrip(b"\0").decode("latin-1")
        if name.startswith(title_start):
            start = off + 1 + n
            riff_len = struct.unpack_from("<I", b, start + 4)[0]  # the RIFF header says where it ends
            x, rate = read_wav(b[start : start + 8 + riff_len])
            return resample(x, rate, RATE)
    raise SystemExit(f"{title_start!r} not in {cat}")


def loop_to(x: np.ndarray, n: int, fade: int = 800) -> np.ndarray:
    """`x` repeated to length `n`, each joint cross-faded over `fade` samples."""
    x = x - x.mean()
    out = x.copy()
    ramp = np.linspace(0, 1, fade)
    while len(out) < n:
        out[-fade:] = out[-fade:] * (1 - ramp) + x[:fade] * ramp
        out = np.concatenate([out, x[fade:]])
    return out[:n]


def babble(debs: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Four talkers, each a random sequence of asterisk prompts, summed at equal power."""
    total = np.zeros(n)
    for voice in ("en_US_f_Allison", "fr_CA_f_June", "it_IT_m_Carlo", "ru_RU_f_IvrvoiceRU"):
        files = sorted(glob.glob(os.path.join(debs, "usr/share/asterisk/sounds", voice, "*.wav")))
        assert files, f"no prompts for {voice} under {debs}"
        parts, length = [], 0
        while length < n:
            x, rate = read_wav(files[rng.integers(len(files))])
            if len(x) < rate // 10:  # a few prompts are (near) empty
                continue
            y = resample(x, rate, RATE)
            parts.append(y)
            length += len(y)
        talker = np.concatenate(parts)[:n]
        total += talker / np.sqrt((talker**2).mean())
    return total


def noises(debs: str, n: int) -> dict[str, np.ndarray]:
    """Every noise type, `n` samples long, at arbitrary level."""
    rng = np.random.default_rng(18)
    return {
        "white": rng.normal(0, 1000, n),
        "babble": babble(debs, n, rng),
        "wind": loop_to(opensfx(debs, '"Heavy wind"'), n),
        "applause": loop_to(opensfx(debs, '"Applause"'), n),
    }


def mix(clean: np.ndarray, labels: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`clean` plus `noise` scaled to `snr_db` below the speech frames' mean power, as int16."""
    frames = clean.reshape(-1, FRAME)
    p_speech = (frames[labels] ** 2).mean()
    p_noise = (noise**2).mean()
    y = clean + noise * np.sqrt(p_speech / p_noise / 10 ** (snr_db / 10))
    return np.clip(np.round(y), -32768, 32767).astype("<i2")


def run_bin(binary: str, model: str, reset: int, pcm: np.ndarray) -> np.ndarray:
    out = subprocess.run([binary, model, str(reset)], input=pcm.tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, "<f4").astype(np.float64)


def webrtcvad_scores(pcm: np.ndarray) -> np.ndarray:
    import webrtcvad

    vads = [webrtcvad.Vad(mode) for mode in range(4)]
    b = pcm.tobytes()
    return np.array(
        [sum(v.is_speech(b[k : k + 2 * FRAME], RATE) for v in vads) for k in range(0, len(b) - 2 * FRAME + 1, 2 * FRAME)],
        float,
    )


def daily_python_scores(target: str, pcms: list[np.ndarray]) -> list[np.ndarray]:
    """Scores of the real daily-python NativeVad, run in a child whose `daily` is the real SDK."""
    with tempfile.TemporaryDirectory() as d:
        for i, p in enumerate(pcms):
            p.tofile(os.path.join(d, f"{i}.raw"))
        env = dict(os.environ, PYTHONPATH=target)
        subprocess.run([sys.executable, __file__, "--daily-python-worker", d, str(len(pcms))], env=env, check=True)
        return [np.fromfile(os.path.join(d, f"{i}.f32"), "<f4").astype(np.float64) for i in range(len(pcms))]


def daily_python_worker(d: str, count: int) -> None:
    from daily import Daily  # the real SDK, from PYTHONPATH

    for i in range(count):
        pcm = np.fromfile(os.path.join(d, f"{i}.raw"), "<i2")
        vad = Daily.create_native_vad(1000, RATE, 1)
        s = [vad.analyze_frames(pcm[k : k + FRAME].tobytes()) for k in range(0, len(pcm) - FRAME + 1, FRAME)]
        np.array(s, "<f4").tofile(os.path.join(d, f"{i}.f32"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debs", help="root where the Debian packages were unpacked with dpkg -x")
    ap.add_argument("--bin", help="the vad_scores example of this build")
    ap.add_argument("--before", help="the vad_scores example of an earlier build (adds before-* columns)")
    ap.add_argument("--daily-python", help="a `pip install --target` directory holding daily-python")
    ap.add_argument("--snr", default="20,10,0", help="comma-separated SNRs in dB (default 20,10,0)")
    ap.add_argument("--json", help="also write every per-clip AUC here")
    ap.add_argument("--daily-python-worker", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.daily_python_worker:
        daily_python_worker(a.daily_python_worker[0], int(a.daily_python_worker[1]))
        return
    if not (a.debs and a.bin):
        ap.error("--debs and --bin are required")

    cs = clips()
    conditions: list[tuple[str, dict[str, np.ndarray]]] = [("clean", {n: c[0].astype("<i2") for n, c in cs.items()})]
    noise_by_clip = {n: noises(a.debs, len(c[0])) for n, c in cs.items()}
    for kind in ("white", "babble", "wind", "applause"):
        for snr in (float(s) for s in a.snr.split(",")):
            conditions.append(
                (f"{kind} {snr:g} dB", {n: mix(c[0], c[1], noise_by_clip[n][kind], snr) for n, c in cs.items()})
            )

    models: dict[str, object] = {
        "ours": lambda p: run_bin(a.bin, "ours", 1000, p),
        "ours-r0": lambda p: run_bin(a.bin, "ours", 0, p),
    }
    if a.before:
        models["before"] = lambda p: run_bin(a.before, "ours", 1000, p)
        models["before-r0"] = lambda p: run_bin(a.before, "ours", 0, p)
    models["earshot"] = lambda p: run_bin(a.bin, "earshot", 0, p)
    models["rnnoise"] = lambda p: run_bin(a.bin, "rnnoise", 0, p)
    try:
        import webrtcvad  # noqa: F401

        models["webrtcvad"] = webrtcvad_scores
    except ImportError:
        print("webrtcvad not installed: column skipped", file=sys.stderr)

    results: dict[str, dict[str, dict[str, float]]] = {}
    names = list(cs)
    dp = None
    if a.daily_python:
        dp = daily_python_scores(a.daily_python, [pcms[n] for _, pcms in conditions for n in names])
    for ci, (cond, pcms) in enumerate(conditions):
        results[cond] = {}
        for model, fn in list(models.items()) + ([("daily-python", None)] if dp else []):
            per_clip, all_s, all_l = {}, [], []
            for ni, n in enumerate(names):
                labels = cs[n][1]
                s = dp[ci * len(names) + ni] if fn is None else fn(pcms[n])
                s = s[: len(labels)]
                per_clip[n] = roc_auc(s, labels)
                all_s.append(s)
                all_l.append(labels)
            per_clip["pooled"] = roc_auc(np.concatenate(all_s), np.concatenate(all_l))
            results[cond][model] = per_clip
    cols = list(next(iter(results.values())))
    print("| condition | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for cond, r in results.items():
        print(f"| {cond} | " + " | ".join(f"{r[m]['pooled']:.4f}" for m in cols) + " |")
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
