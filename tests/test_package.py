"""The installed extension is what issue 18 promises a wheel holds: one abi3 module for every
CPython >= 3.11 that needs nothing from the system beyond glibc and libgcc_s, so that `import
daily` works on a slim machine. libopus and libvpx are linked statically; libasound (ALSA) is
loaded only when a system sound device is first used (crates/daily-sound/build.rs)."""

import pathlib
import shutil
import subprocess

import pytest

import daily.daily

ALLOWED = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2"}


def test_the_extension_is_abi3():
    name = pathlib.Path(daily.daily.__file__).name
    assert name == "daily.abi3.so", name


def test_the_extension_needs_only_glibc_and_libgcc():
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")
    out = subprocess.run(["readelf", "-d", daily.daily.__file__], capture_output=True, text=True, check=True).stdout
    needed = {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    assert needed, out
    assert needed <= ALLOWED, f"the extension needs {sorted(needed - ALLOWED)} beyond glibc and libgcc_s"


HIDDEN_ALSA = """
from daily import CustomAudioSource, Daily
Daily.init()
assert CustomAudioSource(16000, 1).write_frames(bytes(320)) == 160
for call in (Daily.list_sound_devices, lambda: Daily.create_system_microphone_device("m")):
    try:
        call()
    except RuntimeError as e:
        assert "libasound.so.2" in str(e), e
    else:
        raise AssertionError("no RuntimeError without libasound")
Daily.deinit()
print("ok")
"""


def test_everything_but_sound_devices_works_without_libasound():
    """On a machine without ALSA (libasound.so.2 made unloadable in a private mount namespace),
    `import daily` and calls work; only the sound-device methods raise RuntimeError naming
    the library."""
    import ctypes.util
    import os
    import sys

    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    found = ctypes.util.find_library("asound")
    if found is None:  # no libasound at all: the plain environment is the test
        cmd = [sys.executable, "-c", HIDDEN_ALSA]
    else:
        paths = [p for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")
                 if os.path.exists(p := os.path.join(d, found))]
        if not paths:
            pytest.skip(f"cannot locate {found} to hide it")
        real = os.path.realpath(paths[0])
        script = f"mount --bind /dev/null {real} && exec {sys.executable} -c '{HIDDEN_ALSA}'"
        cmd = ["unshare", "-m", "sh", "-c", script]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "unshare failed" in r.stderr:
        pytest.skip(f"no mount namespace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok", r.stdout + r.stderr
