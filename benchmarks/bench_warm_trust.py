#!/usr/bin/env python
"""The warm path of this tree beside the same path of an earlier revision, in one run.

    python benchmarks/bench_warm_trust.py                  # against 8467a00 (before the trust work)
    python benchmarks/bench_warm_trust.py --baseline REV --rounds 15

Both trees load bench_core's 20 kernels from a warm cache of their own in fresh processes
(bench_core's WARM_SCRIPT), alternating, so that load on the machine falls on both alike.
Reported: the median per-kernel ``cache.load`` and per-kernel ``load_many`` of a second
Cache in the same process, and their ratios (this tree / baseline). Ratios are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_core import ENTRY, WARM_SCRIPT, kernel_sources, run_json  # noqa: E402


def worktree(revision: str, where: Path) -> Path:
    """A checkout of ``revision``, imported instead of this tree through PYTHONPATH."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(where),
                    revision], check=True, capture_output=True)
    return where


def measure(tree: Path, cache: Path, sources: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return run_json([sys.executable, "-c", WARM_SCRIPT, str(cache), str(sources), ENTRY], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="8467a00")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--kernels", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-warm-trust-"))
    sources = work / "sources.json"
    sources.write_text(json.dumps(kernel_sources(args.kernels)))
    old = worktree(args.baseline, work / "baseline")
    trees = {"baseline": old, "this tree": ROOT}
    caches = {name: work / f"cache-{i}" for i, name in enumerate(trees)}
    try:
        for name, tree in trees.items():  # cold, then one warm run to settle
            measure(tree, caches[name], sources)
            measure(tree, caches[name], sources)
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(measure(tree, caches[name], sources))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                       check=False, capture_output=True)
    figures = {}
    for name, rs in runs.items():
        figures[name] = {
            "load": statistics.median(statistics.mean(r["per"]) for r in rs) * 1e6,
            "load_many": statistics.median(r["load_many_again"] / args.kernels for r in rs) * 1e6,
            "cache": statistics.median(r["cache"] for r in rs) * 1e6,
        }
    base, new = figures["baseline"], figures["this tree"]
    print(f"warm path, {args.kernels} kernels, median of {args.rounds} alternating rounds "
          f"(baseline {args.baseline}); load average {os.getloadavg()[0]:.2f}")
    print(f"{'':34}{'baseline':>12}{'this tree':>12}{'ratio':>8}")
    for label, field in (("cache.load, per kernel (µs)", "load"),
                         ("load_many again, per kernel (µs)", "load_many"),
                         ("Cache() (µs)", "cache")):
        print(f"{label:34}{base[field]:12.1f}{new[field]:12.1f}{new[field] / base[field]:8.2f}")


if __name__ == "__main__":
    main()
