#!/usr/bin/env bash
# Prints the Python to build the virtual environment with: the first of python3.13+,
# pyenv's 3.13, then python3. Brian2 2.11 needs Python >= 3.13; with an older Python
# sobuild's core still installs and the Brian2 tests are skipped.
for candidate in "${SOBUILD_PYTHON:-}" python3.14 python3.13 \
    "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions/3.13.0/bin/python3.13")" python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys' >/dev/null 2>&1; then
    command -v "$candidate"
    exit 0
  fi
done
echo "no python3 found" >&2
exit 1
