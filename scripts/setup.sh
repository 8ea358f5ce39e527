#!/usr/bin/env bash
# Sets up everything a fresh Debian machine needs and installs the package (Rust built once,
# in release mode, by maturin through pip). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}

# System packages: libvpx (VP8; its static library, libvpx.a, is linked into the extension:
# crates/daily-video/build.rs), libasound's headers (ALSA, for cpal's system sound devices:
# crates/daily-sound) and pkg-config to find them. Opus needs no system package: libopus is built
# from the sources opusic-sys ships and linked statically.
if ! pkg-config --exists vpx alsa 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libvpx-dev libasound2-dev pkg-config >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo (Rust) is required; install it with your distribution's rustup or cargo package" >&2
    exit 1
fi

# Python build and test tools (PyPI); pdoc builds the API reference (scripts/docs.sh). CMake
# builds libopus; pip installs pyproject.toml's build requirements itself only with build
# isolation, which the install below turns off.
$PY -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" "cmake>=3.16" "pytest>=8" "numpy>=1.24" "mypy>=1.18" "pdoc>=16,<17"
# The cmake crate runs $CMAKE when set: the one just installed, even if pip's script directory is
# not on PATH (scripts/test.sh's cargo runs need it too).
CMAKE="$($PY -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))')"
export CMAKE

# Build and install the package (the Rust extension and the daily-server command).
$PY -m pip install -q --disable-pip-version-check --no-build-isolation .
$PY -c "import daily, daily.daily; print('setup: daily installed from', daily.__file__)"
