#!/usr/bin/env python
"""What building the support library and the kernels' precompiled header in the background
(``sobuild.brian_adapter.prewarm``) saves a cold Brian2 process, and costs a warm one.

    python benchmarks/bench_prewarm.py [--repeats N] [--before DIR] [--variants ...] [--cases ...]

Runs ``examples/cuba.py sobuild 1s`` in fresh processes, interleaved, per variant: ``on``
(this checkout; the example imports brian2, then the adapter), ``first`` (the adapter
imported first, as a script may: the background build overlaps Brian2's import), ``off``
(``SOBUILD_BRIAN_PREWARM=0``) and, with ``--before DIR`` (a copy of
an earlier ``sobuild/`` and ``examples/``, e.g. ``git archive HEAD sobuild examples | tar -x
-C DIR``), ``before``. Cold: an empty cache (``SOBUILD_CODEGEN_CACHE=0``). Warm: the same
process on a cache an earlier one filled, its codegen cache on. Each process reports its build rounds (time
from the process start, seconds, of which waiting for the background build) through a
small driver that wraps ``codeobject.load_kernels``. Prints medians and writes
benchmarks/results/bench_prewarm.txt and .json. Goal, reported and not asserted: the first
round of a cold process waits less with ``on``; a warm process is unchanged (within noise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from charts import RESULTS, describe, load_now, machine

ROOT = Path(__file__).resolve().parent.parent

#: Runs an example, printing ``ROUNDS [[start, seconds, waited], ...]`` for its build rounds.
DRIVER = r"""
import atexit, importlib.abc, json, runpy, sys, time
T0 = time.perf_counter()
ROUNDS = []

class Timed(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "sobuild.brian_adapter.codeobject":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            load, waited = module.load_kernels, [0.0]
            prewarm = sys.modules.get("sobuild.brian_adapter.prewarm")
            if prewarm is not None:
                wait = prewarm.wait
                def timed_wait(root):
                    t = time.perf_counter(); wait(root); waited[0] += time.perf_counter() - t
                prewarm.wait = timed_wait
            def timed_load(objects):
                t, waited[0] = time.perf_counter(), 0.0
                load(objects)
                ROUNDS.append([t - T0, time.perf_counter() - t, waited[0]])
            module.load_kernels = timed_load

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Timed())
if __import__("os").environ.get("BENCH_ADAPTER_FIRST") == "1":
    import sobuild.brian_adapter  # as a script that imports it before brian2
atexit.register(lambda: print("ROUNDS " + json.dumps(ROUNDS), flush=True))
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
runpy.run_path(script, run_name="__main__")
"""


def run(variant: str, cache: Path, before: Path | None, codegen_cache: bool) -> dict:
    """One process of ``variant``; its figures."""
    env = dict(os.environ, SOBUILD_CACHE_DIR=str(cache),
               SOBUILD_CODEGEN_CACHE="1" if codegen_cache else "0")
    examples = ROOT / "examples"
    env.pop("SOBUILD_BRIAN_PREWARM", None)
    if variant == "off":
        env["SOBUILD_BRIAN_PREWARM"] = "0"
    elif variant == "first":
        env["BENCH_ADAPTER_FIRST"] = "1"
    elif variant == "before":
        env["PYTHONPATH"] = str(before)
        examples = before / "examples"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(examples / "cuba.py"), "sobuild",
                           "1s", "--quiet"], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    lines = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1])
             for line in proc.stdout.splitlines() if line.startswith(("RESULT ", "ROUNDS "))}
    rounds = lines["ROUNDS"]
    first = rounds[0] if rounds else [0.0, 0.0, 0.0]
    return {"wall": wall, "import": lines["RESULT"]["import_s"],
            "first_start": first[0], "first_round": first[1], "first_waited": first[2],
            "rounds": sum(r[1] for r in rounds), "spikes": lines["RESULT"]["n_spikes"]}


FIGURES = ("wall", "import", "first_start", "first_round", "first_waited", "rounds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a copy of an earlier sobuild/, examples/")
    parser.add_argument("--variants", nargs="+", default=["on", "first", "off", "before"],
                        choices=["on", "first", "off", "before"])
    parser.add_argument("--cases", nargs="+", default=["cold", "warm"], choices=["cold", "warm"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants = [v for v in args.variants if v != "before" or args.before]
    runs: dict[str, dict[str, list[dict]]] = {v: {c: [] for c in args.cases} for v in variants}
    info = {**machine(), "load_start": load_now()}
    work = Path(tempfile.mkdtemp(prefix="bench-prewarm-"))
    try:
        for repeat in range(args.repeats):
            for variant in variants:
                cache = work / f"{variant}-{repeat}"
                for case in args.cases:
                    if case == "warm":  # fill the kernels (if need be), then the codegen cache
                        for codegen_cache in ((True,) if "cold" in args.cases else (False, True)):
                            run(variant, cache, args.before, codegen_cache)
                    runs[variant][case].append(run(variant, cache, args.before,
                                                   codegen_cache=case == "warm"))
                    r = runs[variant][case][-1]
                    print(f"  {repeat} {variant:6} {case}: process {r['wall']:5.2f} s, first "
                          f"round at {r['first_start']:5.2f} s took {r['first_round']:5.2f} s "
                          f"(waited {r['first_waited']:4.2f} s for the background)",
                          file=sys.stderr, flush=True)
                shutil.rmtree(cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["load_end"] = load_now()
    medians = {v: {c: {k: statistics.median(r[k] for r in rs) for k in FIGURES}
                   for c, rs in cases.items()} for v, cases in runs.items()}
    lines = [f"CUBA 1 s on sobuild (cold: empty cache, codegen cache off); medians of "
             f"{args.repeats}, interleaved ({describe(info)})", "",
             f"{'variant':8} {'case':5} {'process s':>9} {'import s':>8} {'1st round at':>12} "
             f"{'1st round s':>11} {'of it waiting':>13} {'all rounds s':>12}"]
    for variant, cases in medians.items():
        for case, m in cases.items():
            lines.append(f"{variant:8} {case:5} {m['wall']:9.2f} {m['import']:8.2f} "
                         f"{m['first_start']:12.2f} {m['first_round']:11.2f} "
                         f"{m['first_waited']:13.2f} {m['rounds']:12.2f}")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_prewarm.txt").write_text(text)
    (args.out / "bench_prewarm.json").write_text(
        json.dumps({"info": info, "medians": medians, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
