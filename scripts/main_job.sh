#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the main job: a bot speaks real speech into a room on the
# embedded server, a listener records it to out/received.wav, figures printed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh
$PY examples/main_job.py "$@"
