#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: Rust crates, then the Python suite against a
# real room server on loopback. The Rust tests reuse the release build that setup made.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh
cargo test --release --workspace --exclude daily-py
cargo test --release --workspace --exclude daily-py --benches --no-run
# Run the Python suite from outside the source tree so `import daily` finds the installed package.
$PY -m pytest -q -p no:cacheprovider --rootdir=. tests "$@"
