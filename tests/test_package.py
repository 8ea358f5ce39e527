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
