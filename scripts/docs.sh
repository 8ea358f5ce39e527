#!/usr/bin/env bash
# Builds the HTML API reference with pdoc (PyPI) from the installed package: the docstrings
# help() shows and the types of python/daily/daily.pyi (scripts/api_docs.py says how). Output:
# $1, default build/api (open build/api/index.html; generated, not committed). Any warning
# fails the build. Needs the package and pdoc installed (scripts/setup.sh does both).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-build/api}
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
# The directory is emptied first: refuse the filesystem root and the repository itself.
if [ "$(realpath -m "$OUT")" = / ] || [ "$(realpath -m "$OUT")" = "$PWD" ]; then
    echo "docs.sh: refusing to replace $OUT" >&2
    exit 2
fi
rm -rf "$OUT"
$PY -W error scripts/api_docs.py "$OUT"
