#!/usr/bin/env bash
# The test command of the README: installs sobuild in .venv and runs its tests.
# clang++ is installed with apt-get when missing and possible (root or sudo), so that both
# real toolchains are exercised; without it the clang tests are skipped, and under CI=true
# they fail (a test that cannot run in CI is a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++ >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo -n"
  { $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq clang; } >/dev/null 2>&1 \
    || echo "clang++ could not be installed: the clang tests cannot run" >&2
fi
python=$(bash ci/venv.sh)
exec "$python" -m pytest -m "not slow" -n 2 "$@"
