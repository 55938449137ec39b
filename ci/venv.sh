#!/usr/bin/env bash
# Creates .venv with sobuild installed (editable) and its extras; prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "$(bash ci/python.sh)" -m venv .venv >&2
fi
extras="test"
if .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 13))'; then
  extras="test,brian"
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]" >&2
echo "$PWD/.venv/bin/python"
