#!/usr/bin/env python
"""How much of a Brian2 process's start the persistent codegen cache saves.

    python benchmarks/bench_codegen_cache.py [--models cuba cobahh stdp] [--repeats N]

Runs Brian2's CUBA, COBAHH and STDP examples (``examples/``, 1,000 steps) in fresh processes
and reports per configuration the medians of: set-up seconds (network construction plus
code generation in ``before_run``: what ``run(0*ms)`` costs) and whole-process seconds. The
configurations: the numpy target with sobuild's adapter imported and its codegen cache off,
cold (entries removed before each run) and warm; Brian2's cython target with its extensions
compiled, plain and with a warm codegen cache; the sobuild target with its kernels built
and the codegen cache off, cold and warm. Goals, reported and not asserted: warm set-up at
most 0.2x the same target's set-up without the cache; a warm CUBA process on sobuild at
most 0.6x cython's warm process.

Writes the table, the figures and a chart (wall, start, set-up and loop per model and
configuration, log scale; needs matplotlib: ``pip install 'sobuild[bench]'``) to --out,
benchmarks/results/ by default: bench_codegen_cache.txt, .json and .png. ``--repeats 1``
(one run per configuration) is the quickest full table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_brian import Runner
from charts import RESULTS, describe, load_now, machine, write_results

MODELS = ("cuba", "cobahh", "stdp")
STEPS = 1000
FIGURES = ("setup", "wall", "start", "loop")


def bench_model(runner: Runner, model: str, repeats: int) -> dict[str, dict[str, float]]:
    """The medians of every configuration for one model."""
    sobuild = runner.fresh_dir(f"{model}-sobuild")  # kernels and codegen entries
    cython = runner.fresh_dir(f"{model}-cython")  # cython's extensions
    rows: dict[str, dict[str, float]] = {}

    def series(label: str, target: str, codegen: bool, cold: bool = False, adapter=True) -> None:
        runs = []
        for _ in range(repeats):
            if cold:
                shutil.rmtree(sobuild / "data", ignore_errors=True)  # kernels stay
            runs.append(runner.run(model, target, sobuild_cache=sobuild, cython_cache=cython,
                                   codegen_cache=codegen, adapter=adapter))
        rows[label] = {k: statistics.median(r[k] for r in runs) for k in FIGURES}
        print(f"  {model:7} {label:28} set-up {rows[label]['setup']:6.2f} s   "
              f"process {rows[label]['wall']:6.2f} s", file=sys.stderr, flush=True)

    series("numpy, codegen off", "numpy", codegen=False)
    series("numpy, codegen cold", "numpy", codegen=True, cold=True)
    series("numpy, codegen warm", "numpy", codegen=True)
    # unmeasured: compile cython's extensions and fill the codegen cache for cython
    runner.run(model, "cython", sobuild_cache=sobuild, cython_cache=cython, adapter=True)
    series("cython warm (plain Brian2)", "cython", codegen=False, adapter=False)
    series("cython warm + codegen warm", "cython", codegen=True)
    runner.run(model, "sobuild", sobuild_cache=sobuild, codegen_cache=False)  # build kernels
    series("sobuild, codegen off", "sobuild", codegen=False)
    series("sobuild, codegen cold", "sobuild", codegen=True, cold=True)
    series("sobuild, codegen warm", "sobuild", codegen=True)
    return rows


#: Each target's set-up without the codegen cache: the denominator of "x off".
REFERENCE = {"numpy": "numpy, codegen off", "cython": "cython warm (plain Brian2)",
             "sobuild": "sobuild, codegen off"}


def print_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """Prints the table; returns what it printed."""
    lines = ["",
             "set-up = network construction + code generation (before_run); x off = set-up / "
             "the same target's set-up without the codegen cache; process = whole fresh process",
             "| model | configuration | set-up s | x off | process s | x cython warm process |",
             "|---|---|---:|---:|---:|---:|"]
    for model, rows in table.items():
        cython = rows["cython warm (plain Brian2)"]["wall"]
        for label, row in rows.items():
            off = rows[REFERENCE[label.split(",")[0].split(" ")[0]]]["setup"]
            lines.append(f"| {model} | {label} | {row['setup']:.2f} | {row['setup'] / off:.2f} | "
                         f"{row['wall']:.2f} | {row['wall'] / cython:.2f} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--out", type=Path, default=RESULTS, help="write bench_codegen_cache"
                        ".txt, .json and .png here (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-codegen-"))
    info = machine()
    info["load_start"] = info.pop("load")
    t0 = time.perf_counter()
    try:
        runner = Runner(workdir, STEPS, seed=4321, verbose=args.verbose)
        table = {model: bench_model(runner, model, args.repeats) for model in args.models}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_end"] = load_now()
    info["load_peak"] = max(runner.loads, default=None)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    given = sys.argv[1:] if argv is None else argv
    info["command"] = " ".join(["benchmarks/bench_codegen_cache.py", *given])
    text = print_table(table)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    configurations = list(dict.fromkeys(label for rows in table.values() for label in rows))
    chart = {
        "title": f"Brian2's code generation cached: examples, {STEPS:,} steps, "
                 f"median of {args.repeats}",
        "models": list(table),
        "variants": configurations,
        "figures": ["wall", "start", "setup", "loop"],
        "table": {(m, label): row for m, rows in table.items() for label, row in rows.items()},
        "note": f"{info['command']} - {describe(info)}",
    }
    data = {"steps": STEPS, "repeats": args.repeats, "machine": info, "medians": table}
    write_results(args.out, "bench_codegen_cache", text, data, chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
