#!/usr/bin/env bash
# The README's main command: Brian2's CUBA network (4000 neurons, 1 s) through sobuild twice,
# each time in a fresh process -- cold (empty cache) then warm -- beside Brian2's cython target
# (cold: empty extension cache, then warm). Installs sobuild with its extras in .venv first.
#
#   bash ci/demo.sh                 # 1 s of simulated time
#   bash ci/demo.sh 200ms           # shorter
#   DEMO_SKIP_CYTHON=1 bash ci/demo.sh   # sobuild only (cython's cold compile takes a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-1s}"
python=$(bash ci/venv.sh)
if ! "$python" -c 'import brian2' >/dev/null 2>&1; then
  echo "Brian2 is not installed in .venv: it needs Python >= 3.13 (found $("$python" -V))." >&2
  echo "Install Python 3.13 or point SOBUILD_PYTHON at one, then remove .venv and rerun." >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sobuild-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

DEMO_TMP="$tmp" DEMO_DURATION="$duration" DEMO_SKIP_CYTHON="${DEMO_SKIP_CYTHON:-}" \
  "$python" - <<'EOF'
import json
import os
import subprocess
import sys
import time

tmp, duration = os.environ["DEMO_TMP"], os.environ["DEMO_DURATION"]
runs = [("sobuild", "cold"), ("sobuild", "warm")]
if not os.environ.get("DEMO_SKIP_CYTHON"):
    runs += [("cython", "cold"), ("cython", "warm")]
env = dict(os.environ, SOBUILD_CACHE_DIR=os.path.join(tmp, "sobuild-cache"))
print(f"Brian2's CUBA example, {duration} simulated, each run a fresh Python process;")
print("cold: empty caches (sobuild's and cython's, in a temporary directory); warm: rerun.\n")
print(f"{'target':<9}{'cache':<7}{'wall':>8}{'run()':>8}{'loop':>8}  spikes")
rows = {}
for target, state in runs:
    cmd = [sys.executable, "examples/cuba.py", target, duration, "--quiet",
           "--cython-cache", os.path.join(tmp, "cython-cache")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    r = json.loads(line[len("RESULT "):])
    rows[target, state] = wall
    print(f"{target:<9}{state:<7}{wall:>7.2f}s{r['run_s']:>7.2f}s{r['loop_s']:>7.2f}s  "
          f"{r['n_spikes']}", flush=True)
if ("cython", "cold") in rows:
    print(f"\ncold: sobuild {rows['cython', 'cold'] / rows['sobuild', 'cold']:.1f}x faster "
          f"than cython; warm: sobuild/cython wall = "
          f"{rows['sobuild', 'warm'] / rows['cython', 'warm']:.2f}")
EOF
