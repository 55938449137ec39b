"""What the example scripts share: the command line, the choice of target, timing, output.

Every example is run as ``python examples/NAME.py TARGET DURATION [options]``; TARGET is one
of numpy, cython, sobuild, cpp_standalone. The script prints one line ``RESULT {json}``
(timings and summary figures) and, with ``--out FILE.npz``, saves the recorded arrays.
``benchmarks/bench_brian.py`` and ``tests/brian_examples`` run the examples this way, each in
a fresh process.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from typing import Any

T_START = time.perf_counter()  # as close to the process start as a module can get

TARGETS = ("numpy", "cython", "sobuild", "cpp_standalone")


def parse_duration(text: str) -> float:
    """'1s', '250ms', '0.5 s' or '10000steps' (of 0.1 ms) -> seconds."""
    match = re.fullmatch(r"\s*([0-9.]+(?:e-?[0-9]+)?)\s*(s|ms|steps?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"duration {text!r}: give a number with a unit, e.g. 1s, 250ms or 10000steps"
        )
    value, unit = float(match.group(1)), match.group(2)
    return {"s": value, "ms": value * 1e-3}.get(unit, value * 1e-4)


def parse_args(description: str) -> argparse.Namespace:
    """The command line every example takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("target", choices=TARGETS, help="Brian2 code generation target")
    parser.add_argument("duration", type=parse_duration, help="simulated time: 1s, 250ms ...")
    parser.add_argument("--seed", type=int, default=4321, help="random seed (default 4321)")
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="draw initial values, connectivity and input spikes with numpy in Python and "
        "hand them to Brian2 as arrays: the target draws no random number, so every target "
        "must give the same spikes",
    )
    parser.add_argument("--out", help="save the recorded arrays to this .npz file")
    parser.add_argument(
        "--strings-with-target",
        action="store_true",
        help="also evaluate string expressions with TARGET (Brian2's default is numpy)",
    )
    parser.add_argument(
        "--cython-cache", help="prefs.codegen.runtime.cython.cache_dir for the cython target"
    )
    parser.add_argument("--standalone-dir", help="project directory for cpp_standalone")
    parser.add_argument("--quiet", action="store_true", help="print only the RESULT line")
    return parser.parse_args()


def setup_target(args: argparse.Namespace) -> float:
    """Import Brian2 (and sobuild's adapter for its target), select the target.

    Returns the seconds the imports took. Call before any Brian2 object is created.
    """
    t0 = time.perf_counter()
    if args.target == "sobuild":
        # first, as the README shows: it builds what every kernel needs while Brian2 loads
        import sobuild.brian_adapter  # noqa: F401  (registers the 'sobuild' target)
    import brian2

    import_s = time.perf_counter() - t0
    brian2.prefs.logging.warn_for_unused_objects = False
    if args.target == "cpp_standalone":
        brian2.set_device("cpp_standalone", directory=args.standalone_dir, build_on_run=True)
    else:
        brian2.prefs.codegen.target = args.target
        if args.strings_with_target:
            brian2.prefs.codegen.string_expression_target = args.target
    if args.cython_cache:
        brian2.prefs.codegen.runtime.cython.cache_dir = args.cython_cache
    brian2.seed(args.seed)
    return import_s


def run_example(
    args: argparse.Namespace,
    build: Callable[[argparse.Namespace], dict[str, Any]],
) -> dict[str, Any]:
    """Build the network with ``build(args)``, run it, report and save.

    ``build`` returns a dict with ``name``, ``objects`` (the Brian2 objects to run),
    ``namespace`` (the constants the equations use), ``spikemon`` (the SpikeMonitor whose
    spikes are reported), optionally ``arrays`` (a callable giving more arrays to save after
    the run) and ``summary`` (a callable giving more figures for the RESULT line).
    """
    import_s = setup_target(args)
    import brian2
    from brian2 import defaultclock, second

    t0 = time.perf_counter()
    model = build(args)
    net = brian2.Network(*model["objects"])
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    net.run(args.duration * second, namespace=model["namespace"])
    run_s = time.perf_counter() - t0
    device = brian2.get_device()
    loop_s = float(device._last_run_time)

    spikemon = model["spikemon"]
    spike_i = spikemon.i[:].astype("int32")
    spike_t = spikemon.t_[:].astype("float64")
    steps = int(round(args.duration / float(defaultclock.dt)))
    n_neurons = len(spikemon.source)
    result: dict[str, Any] = {
        "model": model["name"],
        "target": args.target,
        "fixed": args.fixed,
        "seed": args.seed,
        "duration_s": args.duration,
        "steps": steps,
        "import_s": import_s,
        "setup_s": setup_s,
        "run_s": run_s,
        "loop_s": loop_s,
        "step_us": loop_s / steps * 1e6 if steps else 0.0,
        "n_spikes": int(spike_i.size),
        "rate_hz": spike_i.size / (n_neurons * args.duration) if args.duration else 0.0,
    }
    if "summary" in model:
        result.update(model["summary"]())
    result["total_s"] = time.perf_counter() - T_START
    if args.out:
        import numpy as np

        arrays = {"spike_i": spike_i, "spike_t": spike_t}
        if "arrays" in model:
            arrays.update(model["arrays"]())
        np.savez(args.out, **arrays)
    if not args.quiet:
        print(
            f"{result['model']} on {args.target}: {result['n_spikes']} spikes "
            f"({result['rate_hz']:.2f} Hz) in {args.duration:g} s simulated; "
            f"run() {run_s:.3f} s, loop {loop_s:.3f} s ({result['step_us']:.2f} us/step), "
            f"total {result['total_s']:.2f} s"
        )
    print("RESULT " + json.dumps(result), flush=True)
    return result


def main(description: str, build: Callable[[argparse.Namespace], dict[str, Any]]) -> None:
    """Entry point of an example script."""
    args = parse_args(description)
    run_example(args, build)
