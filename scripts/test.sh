#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: Rust crates, then the Python suite against a
# real room server on loopback. The Rust tests reuse the release build that setup made.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh
# The cargo runs below build libopus with the CMake that setup installed from PyPI.
CMAKE="$($PY -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))')"
export CMAKE
# The API reference must build without a warning (about 2 s; output in build/api).
bash scripts/docs.sh
# The browser interop tests (tests/test_browser.py) drive Debian's Chromium through Playwright's
# Python package; Playwright's own browser download is never used.
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# The sound-device tests (tests/test_sound_devices.py) run their own PulseAudio server with null
# sinks and reach it through ALSA's pulse plugin, as cpal does on a desktop.
if ! command -v pulseaudio >/dev/null || ! command -v parec >/dev/null \
    || ! ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pulseaudio pulseaudio-utils libasound2-plugins >/dev/null
fi
# The recording tests (tests/test_server_recording.py, tests/test_audio_buffer.py) decode the recorded Ogg/Opus
# files with third-party decoders: opus-tools' opusdec/opusinfo and libsndfile through soundfile.
if ! command -v opusdec >/dev/null || ! command -v opusinfo >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq opus-tools >/dev/null
fi
# The cluster tests (tests/test_cluster.py) start their own redis-server on a loopback port.
if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
$PY -m pip install -q --disable-pip-version-check "playwright>=1.45,<2" "pillow>=10" "soundfile>=0.12"
cargo test --release --workspace --exclude daily-py
# daily-py's own unit tests (source checks such as every method running under guard()).
cargo test --release -p daily-py --lib
cargo test --release --workspace --exclude daily-py --benches --no-run
# Run the Python suite from outside the source tree so `import daily` finds the installed package.
$PY -m pytest -q -p no:cacheprovider --rootdir=. tests "$@"
