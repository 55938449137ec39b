#!/usr/bin/env bash
# Prints the path of a Python interpreter for the tests.
#   bash ci/python.sh         the newest of 3.14 and 3.13 (Brian2 2.11 needs >= 3.13), else python3;
#                             $SOBUILD_PYTHON first if set
#   bash ci/python.sh X.Y     Python X.Y exactly
# Each version is looked for as pythonX.Y on the PATH, then in pyenv's versions/X.Y.* (newest
# patch release first); pyenv's shims of versions not selected are skipped. Exits 1, saying
# so on stderr, when none is found.
set -euo pipefail

works() {  # works PATH [X.Y]: runs, and is version X.Y if given
  [ -n "$1" ] || return 1
  if [ -n "${2:-}" ]; then
    "$1" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$2')" >/dev/null 2>&1
  else
    "$1" -c 'import sys' >/dev/null 2>&1
  fi
}

find_version() {  # find_version X.Y: prints the first working interpreter of that version
  local candidate root
  candidate=$(command -v "python$1" 2>/dev/null || true)
  if works "$candidate" "$1"; then
    echo "$candidate"
    return 0
  fi
  if command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null); then
    while read -r candidate; do
      if works "$candidate" "$1"; then
        echo "$candidate"
        return 0
      fi
    done < <(ls -d "$root/versions/$1."*/bin/"python$1" 2>/dev/null | sort -V -r)
  fi
  return 1
}

if [ $# -gt 0 ]; then
  find_version "$1" && exit 0
  echo "Python $1 not found (looked for python$1 on the PATH and in pyenv's versions)" >&2
  exit 1
fi
if [ -n "${SOBUILD_PYTHON:-}" ]; then
  candidate=$(command -v "$SOBUILD_PYTHON" 2>/dev/null || true)
  if works "$candidate"; then
    echo "$candidate"
    exit 0
  fi
  echo "SOBUILD_PYTHON=$SOBUILD_PYTHON does not run" >&2
  exit 1
fi
for version in 3.14 3.13; do
  find_version "$version" && exit 0
done
candidate=$(command -v python3 2>/dev/null || true)
if works "$candidate"; then
  echo "$candidate"
  exit 0
fi
echo "no python3 found" >&2
exit 1
