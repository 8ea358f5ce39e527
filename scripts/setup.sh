#!/usr/bin/env bash
# Sets up everything a fresh Debian machine needs and installs the package (Rust built once,
# in release mode, by maturin through pip). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}

# System packages: libopus (Opus), libvpx (VP8) and libasound (ALSA, for cpal's system sound
# devices: crates/daily-sound), all linked dynamically, and pkg-config to find them.
if ! pkg-config --exists opus vpx alsa 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopus-dev libvpx-dev libasound2-dev pkg-config >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo (Rust) is required; install it with your distribution's rustup or cargo package" >&2
    exit 1
fi

# Python build and test tools (PyPI); pdoc builds the API reference (scripts/docs.sh).
$PY -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" "pytest>=8" "numpy>=1.24" "mypy>=1.18" "pdoc>=16,<17"

# Build and install the package (the Rust extension and the daily-server command).
$PY -m pip install -q --disable-pip-version-check --no-build-isolation .
$PY -c "import daily, daily.daily; print('setup: daily installed from', daily.__file__)"
