"""A private PulseAudio server for the sound-device tests, reached through ALSA as cpal uses it.

`PulseServer` starts Debian's `pulseaudio` as a subprocess with a runtime directory of its own
(nothing of the machine's sound setup is used or changed) and two null sinks: `mic`, whose
monitor is the default *source* (what is played into `mic` is what a program capturing from
ALSA's `default` device hears), and `spk`, the default *sink* (what a program plays to ALSA's
`default` can be recorded from `spk.monitor`). ALSA is pointed at it by an extra configuration
file on `ALSA_CONFIG_PATH` (after the system's own `alsa.conf`), mapping `default` to the pulse
plugin of Debian's `libasound2-plugins`. `env` holds the variables a client process needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

PA_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=mic rate=48000 channels=1
load-module module-null-sink sink_name=spk rate=48000 channels=1
set-default-sink spk
set-default-source mic.monitor
"""

ALSA_CONFIG = """\
pcm.!default { type pulse }
ctl.!default { type pulse }
"""

SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"


def missing() -> str | None:
    """Why the sound server cannot run here, or None."""
    for tool in ("pulseaudio", "pactl", "paplay", "parec"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (Debian: pulseaudio pulseaudio-utils)"
    if not os.path.exists(SYSTEM_ALSA_CONF):
        return "ALSA configuration missing (Debian: libasound2)"
    plugin_dirs = ["/usr/lib/x86_64-linux-gnu/alsa-lib", "/usr/lib/aarch64-linux-gnu/alsa-lib", "/usr/lib/alsa-lib"]
    if not any(os.path.exists(os.path.join(d, "libasound_module_pcm_pulse.so")) for d in plugin_dirs):
        return "ALSA's pulse plugin not installed (Debian: libasound2-plugins)"
    return None


class PulseServer:
    """A running private PulseAudio server (context manager); `env` for clients."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="daily-pulse-")
        self.runtime = os.path.join(self.dir, "run")
        os.makedirs(os.path.join(self.runtime, "pulse"), mode=0o700)
        with open(os.path.join(self.dir, "default.pa"), "w") as f:
            f.write(PA_CONFIG)
        with open(os.path.join(self.dir, "asound.conf"), "w") as f:
            f.write(ALSA_CONFIG)
        self.socket = os.path.join(self.runtime, "pulse", "native")
        self.env = {
            "XDG_RUNTIME_DIR": self.runtime,
            "PULSE_RUNTIME_PATH": os.path.join(self.runtime, "pulse"),
            "PULSE_SERVER": f"unix:{self.socket}",
            # No cookie: the server takes anonymous clients on its private socket.
            "PULSE_COOKIE": os.path.join(self.dir, "cookie"),
            "ALSA_CONFIG_PATH": f"{SYSTEM_ALSA_CONF}:{os.path.join(self.dir, 'asound.conf')}",
        }
        self.proc: subprocess.Popen | None = None
        self._saved: dict[str, str | None] = {}

    def client_env(self) -> dict[str, str]:
        """The environment of a client subprocess (this one's plus `env`)."""
        return {**os.environ, **self.env}

    def start(self) -> "PulseServer":
        env = {**self.client_env(), "HOME": self.dir}
        # -n: no default.pa of the system; root needs no --system: it runs in user mode with a
        # warning. --exit-idle-time=-1: stay up with no client.
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "-F", os.path.join(self.dir, "default.pa"), "--daemonize=no",
             "--exit-idle-time=-1", "--use-pid-file=no", "--disallow-module-loading=false",
             "--log-target=file:" + os.path.join(self.dir, "pulse.log")],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited with {self.proc.returncode}: {self.log()}")
            r = subprocess.run(["pactl", "info"], env=self.client_env(), capture_output=True, timeout=5)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"pulseaudio did not answer in 10 s: {self.log()}")
        for k, v in self.env.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        return self

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "pulse.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def play(self, wav: str, sink: str = "mic", timeout: float = 30) -> None:
        """Plays `wav` into `sink` in real time (returns when it has been played)."""
        subprocess.run(["paplay", f"--device={sink}", wav], env=self.client_env(), check=True, timeout=timeout)

    def record(self, path: str, source: str = "spk.monitor", rate: int = 16000) -> subprocess.Popen:
        """Starts recording `source` as raw mono 16-bit PCM at `rate` Hz into `path`; stop it
        with `terminate()` and `wait()`."""
        out = open(path, "wb")
        try:
            return subprocess.Popen(
                ["parec", f"--device={source}", "--format=s16le", f"--rate={rate}", "--channels=1", "--latency-msec=20"],
                env=self.client_env(), stdout=out, stderr=subprocess.DEVNULL,
            )
        finally:
            out.close()

    def stop(self) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PulseServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
