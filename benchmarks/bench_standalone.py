#!/usr/bin/env python
"""Brian2's cpp_standalone projects built through sobuild against Brian2's own make.

    python benchmarks/bench_standalone.py                    # CUBA, COBAHH, STDP, one run each
    python benchmarks/bench_standalone.py --models cuba --repeats 3

For each model (examples/cuba.py, cobahh.py, stdp.py: their ``build`` functions), each
measurement a fresh process writing a fresh project directory, interleaved per repeat:

  make          Brian2's make (``make -j2``: the same parallelism as sobuild's 2 jobs),
                the adapter imported with SOBUILD_STANDALONE=0, on an empty cache
  sobuild-empty sobuild's build on an empty cache (objects and Brian2's code generation)
  sobuild-warm  another directory of the same model, on the cache sobuild-empty filled
  param-change  the same model with one parameter changed (a constant of one code object),
                on that cache

and prints, medians of --repeats: *total* (from set_device to the end of device.build:
code generation, writing the project, compiling and linking), *compile* (Brian2's timer
of the compile step: make, or sobuild's build), and the objects compiled. Then the goals,
reported, not asserted: a second directory <= 0.1x make's total, an empty cache <= 0.5x.

Writes bench_standalone.txt and .json to --out (benchmarks/results/ by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from charts import RESULTS, describe, load_now, machine

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("cuba", "cobahh", "stdp")
VARIANTS = ("make", "sobuild-empty", "sobuild-warm", "param-change")
#: The parameter that param-change scales by 1.1: a constant of the neurons' equations.
PARAMETERS = {"cuba": "taum", "cobahh": "taue", "stdp": "taum"}
JOBS = 2


def worker(model: str, directory: str, change: bool) -> None:
    """One measurement in this (fresh) process: prints a RESULT line."""
    sys.path.insert(0, str(ROOT / "examples"))
    import brian2

    import sobuild.brian_adapter  # noqa: F401  (SOBUILD_STANDALONE chooses the build)
    from sobuild.brian_adapter import standalone

    build = __import__(model).build
    brian2.prefs.logging.warn_for_unused_objects = False
    brian2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j", str(JOBS)]
    start = time.perf_counter()
    brian2.set_device("cpp_standalone", build_on_run=False)
    brian2.seed(4321)
    parts = build(argparse.Namespace(fixed=False, seed=4321))
    if change:
        parts["namespace"][PARAMETERS[model]] *= 1.1
    net = brian2.Network(*parts["objects"])
    net.run(100 * brian2.ms, namespace=parts["namespace"])
    brian2.device.build(directory=directory, run=False)
    total = time.perf_counter() - start
    report = standalone.last_build if standalone.enabled() else None
    print("RESULT " + json.dumps({
        "total": total, "compile": brian2.device.timers["compile"]["make"],
        "compiled": len(report.built) if report else None,
        "objects": len(report.objects) if report else None}), flush=True)


def measure(model: str, variant: str, workdir: Path, cache: Path, verbose: bool) -> dict:
    directory = Path(tempfile.mkdtemp(prefix=f"{model}-{variant}-", dir=workdir))
    env = {**os.environ, "SOBUILD_CACHE_DIR": str(cache), "SOBUILD_JOBS": str(JOBS),
           "SOBUILD_STANDALONE": "0" if variant == "make" else "1"}
    cmd = [sys.executable, __file__, "--worker", model, str(directory)]
    if variant == "param-change":
        cmd.append("--change")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["load"] = load_now()
    if verbose:
        print(f"  {model:7} {variant:14} {result}", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "DIRECTORY"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--change", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.change)
        return

    info = machine()
    info["load_start"] = info.pop("load")
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-standalone-") as tmp:
        workdir = Path(tmp)
        for repeat in range(args.repeats):
            for model in args.models:
                make_cache = workdir / f"cache-make-{model}-{repeat}"
                cache = workdir / f"cache-{model}-{repeat}"
                for variant in VARIANTS:
                    used = make_cache if variant == "make" else cache
                    result = measure(model, variant, workdir, used, not args.quiet)
                    runs.setdefault((model, variant), []).append(result)
    info["load_end"] = load_now()
    info["load_peak"] = max((r["load"] for rs in runs.values() for r in rs
                             if r["load"] is not None), default=None)

    def median(model: str, variant: str, figure: str) -> float:
        return statistics.median(r[figure] for r in runs[model, variant])

    lines = [f"bench_standalone: {describe(info)}; medians of {args.repeats}; "
             f"make -j{JOBS}, SOBUILD_JOBS={JOBS}", "",
             "| model | variant | total s | compile s | objects compiled | total / make |",
             "|---|---|---:|---:|---:|---:|"]
    goals = []
    for model in args.models:
        make_total = median(model, "make", "total")
        for variant in VARIANTS:
            last = runs[model, variant][-1]
            compiled = "" if last["compiled"] is None else f"{last['compiled']} of {last['objects']}"
            total = median(model, variant, "total")
            lines.append(f"| {model} | {variant} | {total:.2f} | "
                         f"{median(model, variant, 'compile'):.2f} | {compiled} | "
                         f"{total / make_total:.3f} |")
        for variant, goal in (("sobuild-warm", 0.1), ("sobuild-empty", 0.5)):
            ratio = median(model, variant, "total") / make_total
            compile_ratio = median(model, variant, "compile") / median(model, "make", "compile")
            goals.append(f"| {model}: {variant}, total / make's <= {goal} | {ratio:.3f} | "
                         f"{'met' if ratio <= goal else 'not met'} | {compile_ratio:.3f} |")
    lines += ["", "| goal (measured, not asserted) | ratio | | compile step alone |",
              "|---|---:|---|---:|", *goals]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_standalone.txt").write_text(text)
    data = {"machine": info, "runs": {f"{m}/{v}": rs for (m, v), rs in runs.items()}}
    (args.out / "bench_standalone.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out / 'bench_standalone.txt'}, {args.out / 'bench_standalone.json'}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
