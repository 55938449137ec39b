#!/usr/bin/env bash
# Creates a virtual environment with sobuild installed (editable) and its extras ("test", and
# "brian" on Python >= 3.13); prints the venv's python.
#   bash ci/venv.sh                  .venv, with the Python of `bash ci/python.sh`
#   bash ci/venv.sh DIR X.Y          DIR, with Python X.Y (remade if it holds another version)
# Exits 1 when the interpreter is not found.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.venv}
version=${2:-}
current=""
if [ -x "$dir/bin/python" ]; then
  current=$("$dir/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null \
    || true)
fi
if [ -z "$current" ] || { [ -n "$version" ] && [ "$current" != "$version" ]; }; then
  python=$(bash ci/python.sh $version)
  "$python" -m venv --clear "$dir" >&2
fi
extras="test"
if "$dir/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 13))'; then
  extras="test,brian"
fi
# pip is skipped (it takes half a minute even with nothing to do) when this checkout was
# installed with the same extras, pyproject.toml and start-up hook (autoload/) before
stamp="$dir/.sobuild-installed"
wanted="$extras $PWD $(cat pyproject.toml autoload/* | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || ! "$dir/bin/python" -I -c \
    "import sobuild, sys; sys.exit(not sobuild.__file__.startswith(sys.argv[1]))" "$PWD/" \
    >/dev/null 2>&1; then
  rm -f "$stamp"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]" >&2
  echo "$wanted" > "$stamp"
fi
echo "$PWD/$dir/bin/python"
