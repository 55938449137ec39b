#!/usr/bin/env bash
# The test command of the README, and what CI runs (.ci/run):
#   1. every test but the `slow` ones, on the newest Python found (3.14, else 3.13: Brian2 2.11
#      needs >= 3.13), in .venv;
#   2. the tests that need no Brian2 (tests/core, cli, security and cluster, but their `brian`
#      tests), on the oldest Python sobuild supports (requires-python in pyproject.toml: 3.10),
#      in .venv-3.10. (tests/remote is left out: 2 CPU-minutes, most of them 32-process runs.)
# Arguments go to pytest in the first run (`bash ci/test.sh -k store`), and the second run is
# then left out. The exit status is the first failing run's.
#
# Under CI=true a missing interpreter is a failure (as is a Brian2 test that cannot run, see
# tests/conftest.py); elsewhere a missing Python 3.10 only leaves the second run out.
#
# The system packages the tests use are installed with apt-get when missing and possible
# (root, or sudo without a password): clang (both real toolchains are exercised), redis-server,
# nginx with its WebDAV module, ccache, distcc (launchers). Without them their tests are skipped, and fail under CI.
set -euo pipefail
cd "$(dirname "$0")/.."

in_ci() { [ "${CI:-}" = true ]; }

missing=()
for entry in clang:clang++ redis-server:redis-server nginx:nginx libnginx-mod-http-dav-ext: \
    ccache:ccache distcc:distcc; do
  package=${entry%%:*}
  program=${entry#*:}
  if [ -n "$program" ] && command -v "$program" >/dev/null 2>&1; then
    continue
  fi
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    continue
  fi
  missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo -n"
  { $sudo_ apt-get update -qq \
      && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    >/dev/null 2>&1 \
    || echo "ci/test.sh: could not install ${missing[*]}: the tests that need them cannot run" >&2
fi

python=$(bash ci/venv.sh .venv)
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if in_ci && ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 13))'; then
  echo "ci/test.sh: CI runs the Brian2 tests, which need Python >= 3.13 (Brian2 2.11), and .venv" \
       "has Python $version: install Python 3.13 or 3.14 (pyenv install 3.13), or set" \
       "SOBUILD_PYTHON, and remove .venv" >&2
  exit 1
fi

oldest_python=""
if [ $# -eq 0 ]; then
  oldest=$(sed -n 's/^requires-python *= *">=\([0-9][0-9.]*\)".*/\1/p' pyproject.toml)
  if ! oldest_python=$(bash ci/venv.sh ".venv-$oldest" "$oldest"); then
    oldest_python=""
    if in_ci; then
      echo "ci/test.sh: Python $oldest, the oldest sobuild supports (pyproject.toml), is not" \
           "found: CI tests sobuild's core on it. Install it (pyenv install $oldest)." >&2
      exit 1
    fi
    echo "ci/test.sh: Python $oldest not found: its run of the core tests is left out" >&2
  fi
fi

status=0
"$python" -m pytest -m "not slow" -n 2 "$@" || status=$?
if [ -n "$oldest_python" ]; then
  echo "ci/test.sh: the tests that need no Brian2, on Python $oldest" >&2
  "$oldest_python" -m pytest -m "not slow and not brian" -n 2 \
      tests/core tests/cli tests/security tests/cluster \
    || { code=$?; [ "$status" != 0 ] || status=$code; }
fi
exit "$status"
