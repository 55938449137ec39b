#!/usr/bin/env python
"""What a precompiled header (``SOBUILD_PCH``) saves on a cold build, and what it costs.

    python benchmarks/bench_pch.py                       # both parts, 5 rounds
    python benchmarks/bench_pch.py --parts unit --rounds 7
    python benchmarks/bench_pch.py --parts cuba --rounds 3

``unit``: one Brian2-sized translation unit, built in this process (the toolchain detected
once, outside the timings): 4 of CUBA's kernels, their prologue made the heaviest a Brian2
unit had before the support library (``sobuild_brian.h``, ``sobuild_dynamic_array.h``,
``spikequeue.h``, ``<map>``, ``<set>``, ``<vector>``), compiled as one unit (one job). Per
round, interleaved: without a precompiled header (``SOBUILD_PCH=0``); with the one the cache
holds (new kernels on a cache that built the same include list before: a new model on a used
cache); and on an empty cache (``auto``: the header is built in the same ninja run, then the
unit). Also the header's own build time and size, from its meta.json.

``cuba``: Brian2's CUBA example (``examples/cuba.py``, 10,000 steps, codegen cache off) in
fresh processes, per round interleaved: an empty cache with ``SOBUILD_PCH=0``; an empty
cache with ``auto`` (the first model ever: it builds its precompiled headers); and a cache
holding only the precompiled headers an earlier run left (``auto``: a new model on a used
cache; the compiler probes are not copied, so every variant probes the compiler). Reports
the medians of the process's wall time and of its start (wall minus the step loop).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from charts import load_now, machine

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ('#include "sobuild_brian.h"\n#include "sobuild_dynamic_array.h"\n'
         '#include "spikequeue.h"\n#include <map>\n#include <set>\n#include <vector>')


def cuba_kernels() -> list:
    """CUBA's kernels as the sobuild target makes them (built once, in a scratch cache)."""
    sys.path.insert(0, str(ROOT / "examples"))
    import cuba
    from brian2 import Network, defaultclock, ms, prefs

    import sobuild
    import sobuild.brian_adapter  # noqa: F401  (registers the target)

    specs = []
    original = sobuild.Cache.load_many

    def recording(self, batch):
        specs.extend(batch)
        return original(self, batch)

    scratch = tempfile.mkdtemp(prefix="bench-pch-specs-")
    sobuild.Cache.load_many = recording
    try:
        prefs.codegen.target = "sobuild"
        prefs.codegen.string_expression_target = "sobuild"
        prefs["codegen.runtime.sobuild.cache_dir"] = scratch
        prefs["codegen.runtime.sobuild.codegen_cache"] = False
        args = argparse.Namespace(fixed=False, seed=4321)
        net = Network(*cuba.build(args)["objects"])
        net.run(defaultclock.dt * 1)
        assert net.t > 0 * ms
    finally:
        sobuild.Cache.load_many = original
        shutil.rmtree(scratch, ignore_errors=True)
    return specs


def heavy_unit(specs: list, count: int = 4) -> list:
    """``count`` kernels whose prologue is sobuild_brian.h alone, given the heavy one."""
    from dataclasses import replace

    from sobuild.brian_adapter.support_library import support_spec
    from sobuild.compilation.translation_unit import split_source

    chosen = [s for s in specs if (split := split_source(s.source)) is not None
              and split.prologue[-1:] == ('#include "sobuild_brian.h"',)]
    if len(chosen) < count:
        raise SystemExit(f"CUBA gave {len(chosen)} kernels with sobuild_brian.h alone")
    headers = support_spec().headers  # the heavy ones are the support library's now
    return [replace(s, source=s.source.replace('#include "sobuild_brian.h"', HEAVY, 1),
                    headers=headers) for s in chosen[:count]]


def unique(specs: list, tag: str) -> list:
    """The same kernels under new keys (a comment at their end): nothing of them is cached."""
    from dataclasses import replace

    return [replace(s, source=s.source + f"\n// {tag}\n") for s in specs]


def part_unit(rounds: int, workdir: Path) -> dict:
    import sobuild
    from sobuild.toolchains.detect import detect

    specs = heavy_unit(cuba_kernels())
    toolchain = detect()
    used = workdir / "used-cache"

    def build(directory: Path, pch: str, tag: str) -> float:
        os.environ["SOBUILD_PCH"] = pch
        cache = sobuild.Cache(directory, toolchain=toolchain, jobs=1)
        batch = unique(specs, tag)
        t0 = time.perf_counter()
        cache.load_many(batch)
        seconds = time.perf_counter() - t0
        cache.flush()
        return seconds

    build(used, "auto", "seed")  # the used cache: it built this include list once
    (pch_dir,) = (used / "pch").iterdir()
    meta = json.loads((pch_dir / "meta.json").read_text())
    times: dict[str, list[float]] = {"no PCH (SOBUILD_PCH=0)": [], "PCH from the cache": [],
                                     "empty cache, PCH built in the run": []}
    for i in range(rounds):
        names = list(times)
        times[names[0]].append(build(workdir / f"off-{i}", "0", f"off {i}"))
        times[names[1]].append(build(used, "auto", f"used {i}"))
        times[names[2]].append(build(workdir / f"empty-{i}", "auto", f"empty {i}"))
        print(f"  round {i + 1}: " + ", ".join(f"{t[-1]:.2f}" for t in times.values())
              + f" s (load {load_now()})", file=sys.stderr, flush=True)
    return {"kernels": len(specs), "pch_build_seconds": meta["build_seconds"],
            "pch_bytes": meta["size"], "times": times,
            "medians": {k: statistics.median(v) for k, v in times.items()}}


def part_cuba(rounds: int, workdir: Path, steps: int) -> dict:
    from bench_brian import Runner

    runner = Runner(workdir, steps, 4321, verbose=True)
    seeded = runner.fresh_dir("pch-seed")
    os.environ["SOBUILD_PCH"] = "auto"
    runner.run("cuba", "sobuild", sobuild_cache=seeded, codegen_cache=False)  # unmeasured
    variants = {"empty cache, SOBUILD_PCH=0": "0", "empty cache, auto (first model)": "auto",
                "cache with the PCHs, auto (new model)": "auto"}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, mode in variants.items():
            cache = runner.fresh_dir("cold")
            if "with the PCHs" in name:
                shutil.copytree(seeded / "pch", cache / "pch")
            os.environ["SOBUILD_PCH"] = mode
            runs[name].append(runner.run("cuba", "sobuild", sobuild_cache=cache,
                                         codegen_cache=False))
    return {"runs": runs,
            "medians": {name: {k: statistics.median(r[k] for r in rs)
                               for k in ("wall", "start", "run")}
                        for name, rs in runs.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", choices=("unit", "cuba"), default=["unit", "cuba"])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--steps", type=int, default=10_000, help="CUBA's 0.1 ms steps")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pch-"))
    result: dict = {"machine": info}
    try:
        if "unit" in args.parts:
            print("unit ...", file=sys.stderr, flush=True)
            result["unit"] = unit = part_unit(args.rounds, workdir / "unit")
            print(f"\nOne Brian2 unit of {unit['kernels']} kernels (heaviest include list), "
                  f"one job, medians of {args.rounds} interleaved rounds:")
            for name, value in unit["medians"].items():
                print(f"  {name:<36} {value:6.2f} s")
            print(f"  the precompiled header: built in {unit['pch_build_seconds']:.2f} s, "
                  f"{unit['pch_bytes'] / 2**20:.1f} MiB")
        if "cuba" in args.parts:
            print("cuba ...", file=sys.stderr, flush=True)
            result["cuba"] = cuba = part_cuba(args.rounds, workdir / "cuba", args.steps)
            print(f"\nCUBA, {args.steps:,} steps, cold process (codegen cache off), medians of "
                  f"{args.rounds} interleaved rounds:")
            print(f"  {'':<40} {'wall':>7} {'start':>7} {'run()':>7}")
            for name, m in cuba["medians"].items():
                print(f"  {name:<40} {m['wall']:6.2f}s {m['start']:6.2f}s {m['run']:6.2f}s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_end"] = load_now()
    print(f"\n{info['date']}, {info['cpus']} CPUs ({info['cpu']}), load {info['load']} at "
          f"start, {info['load_end']} at end")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
