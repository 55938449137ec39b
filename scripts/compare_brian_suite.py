#!/usr/bin/env python
"""Run Brian2's own test suite with the 'cython' and the 'sobuild' targets and compare.

    python scripts/compare_brian_suite.py                      # the whole runtime suite
    python scripts/compare_brian_suite.py -k "spike and not long" test_monitor.py
    python scripts/compare_brian_suite.py --subset             # a short subset, both targets
    python scripts/compare_brian_suite.py --subset --targets sobuild   # what CI runs
    python scripts/compare_brian_suite.py --junit-dir D --reuse    # compare reports kept in D

Each target runs in a fresh process the way ``brian2.test()`` runs it (preferences reset,
``codegen.target`` and ``codegen.string_expression_target`` set, markers
``not standalone_only and not codegen_independent and not long and not gsl``), with pytest's
junit XML report collected per test. Prints the pass/fail/skip counts of both targets and the
names of the tests whose outcome differs; exits with 1 when a test that passes with cython
does not pass with sobuild. With one target (``--targets sobuild``) it lists the tests that
fail or were skipped and exits with 1 if any failed (CI: cython's cold compilation of even the subset takes
many minutes on two shared cores; cython is known to pass the subset). The cython
extension cache is kept in one directory across runs (``--cython-cache``), so only the
first run pays cython's compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

# A few minutes on two cores: every runtime template of Brian2 is met at least once.
SUBSET = [
    "test_neurongroup.py::test_state_variables",
    "test_neurongroup.py::test_threshold_reset",
    "test_neurongroup.py::test_linked_variable_correct",
    "test_neurongroup.py::test_stochastic_variable",
    "test_neurongroup.py::test_run_regularly_scheduling",
    "test_neurongroup.py::test_random_values_random_seed",
    "test_neurongroup.py::test_random_values_fixed_seed",
    "test_neurongroup.py::test_state_variable_access_strings",
    "test_refractory.py::test_refractoriness_basic",
    "test_synapses.py::test_connection_string_deterministic_full",
    "test_synapses.py::test_connection_random_with_condition",
    "test_synapses.py::test_connection_arrays",
    "test_synapses.py::test_transmission_simple",
    "test_synapses.py::test_transmission_custom_event",
    "test_synapses.py::test_summed_variable",
    "test_synapses.py::test_event_driven",
    "test_synapses.py::test_delay_specification",
    "test_monitor.py::test_spike_monitor",
    "test_monitor.py::test_state_monitor",
    "test_monitor.py::test_rate_monitor_1",
    "test_spikegenerator.py::test_spikegenerator_basic",
    "test_poissongroup.py::test_single_rates",
    "test_timedarray.py::test_timedarray_semantics",
    "test_functions.py::test_user_defined_function",
    "test_network.py::test_restore_with_random_state",
    "test_network.py::test_restore_random_state_from_file_in_new_process",
    "test_subgroup.py::test_state_variables",
    "test_spatialneuron.py::test_basic_diffusion",
]

# brian2.test()'s selection for a runtime target (make_argv adds "and not gsl")
MARKERS = "not standalone_only and not codegen_independent and not long"
OUTCOMES = ("passed", "failed", "error", "skipped")


def brian_tests_dir() -> Path:
    """The installed ``brian2/tests`` directory."""
    import brian2

    return Path(brian2.__file__).parent / "tests"


def default_cython_cache() -> Path:
    """One cython extension cache reused by every comparison run."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sobuild" / "brian_suite_cython"


def run_target_inprocess(args: argparse.Namespace) -> int:
    """Worker: run the selected tests with one target, as brian2.test() does; write junit."""
    import brian2
    import numpy  # noqa: F401  (brian2 imports it anyway; keep import errors readable)
    import pytest
    from brian2.tests import PreferencePlugin, make_argv
    from brian2.utils.logger import LOG_LEVELS, BrianLogger

    plugins_args: list[str] = []
    if args.worker == "sobuild":
        import sobuild.brian_adapter  # noqa: F401  (registers the target in this process)

        plugins_args = ["-p", "sobuild.brian_adapter"]  # ... and in xdist's workers
    prefs = brian2.prefs
    prefs.reset_to_defaults()
    BrianLogger.console_handler.setLevel(LOG_LEVELS["WARNING"])
    prefs["codegen.cpp.extra_compile_args_gcc"].extend(["-w", "-O0"])
    prefs["logging.warn_for_unused_objects"] = False
    prefs["codegen.target"] = args.worker
    prefs["codegen.string_expression_target"] = args.worker
    if args.cython_cache:
        prefs["codegen.runtime.cython.cache_dir"] = str(args.cython_cache)
    tests_dir = brian_tests_dir()
    paths = [str(tests_dir / t) for t in args.tests] or [str(tests_dir.parent)]
    argv = make_argv(paths, MARKERS)
    argv += ["-p", "no:cacheprovider", f"--junitxml={args.junit}", "-o", "junit_family=xunit1"]
    argv += plugins_args
    if args.k:
        argv += ["-k", args.k]
    if args.jobs:
        argv += ["-n", str(args.jobs)]
    argv += args.pytest_args
    plugin = PreferencePlugin(prefs, fail_for_not_implemented=True)
    return int(pytest.main(argv, plugins=[plugin]))


def outcomes_from_junit(path: Path) -> dict[str, str]:
    """test id -> passed/failed/error/skipped, read from a junit XML report."""
    result: dict[str, str] = {}
    if not path.exists():
        return result
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}.py::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                break
        result[name] = outcome
    return result


def run_target(target: str, args: argparse.Namespace, junit: Path) -> tuple[dict[str, str], float]:
    """Run one target in a fresh process; its per-test outcomes and wall seconds."""
    cmd = [sys.executable, __file__, "--worker", target, "--junit", str(junit), "-n", str(args.jobs)]
    if args.k:
        cmd += ["-k", args.k]
    if args.cython_cache:
        cmd += ["--cython-cache", str(args.cython_cache)]
    cmd += args.tests
    if args.pytest_args:
        cmd += ["--", *args.pytest_args]
    env = dict(os.environ)
    if args.sobuild_cache:
        env["SOBUILD_CACHE_DIR"] = str(args.sobuild_cache)
    t0 = time.perf_counter()
    out = None if args.verbose else subprocess.DEVNULL
    proc = subprocess.run(cmd, env=env, stdout=out, stderr=out)
    seconds = time.perf_counter() - t0
    outcomes = outcomes_from_junit(junit)
    if not outcomes:
        raise SystemExit(
            f"the {target} run produced no test results (exit code {proc.returncode}); "
            f"rerun with --verbose to see pytest's output"
        )
    return outcomes, seconds


def compare(results: dict[str, dict[str, str]], reference: str, candidate: str) -> dict:
    """Counts per target, the tests whose outcomes differ, and the regressions.

    Compared with itself (one target), the regressions are the tests that failed (or
    errored); skipped tests are listed, not counted.
    """
    ref, cand = results[reference], results[candidate]
    if reference == candidate:
        differ = {name: ("passed", o) for name, o in sorted(cand.items()) if o != "passed"}
        return {
            "counts": {candidate: dict(Counter(cand.values()))},
            "differ": differ,
            "regressions": sorted(n for n, (_, o) in differ.items() if o in ("failed", "error")),
        }
    differ = {
        name: (ref.get(name, "absent"), cand.get(name, "absent"))
        for name in sorted(set(ref) | set(cand))
        if ref.get(name, "absent") != cand.get(name, "absent")
    }
    regressions = sorted(n for n, (r, c) in differ.items() if r == "passed")
    return {
        "counts": {t: dict(Counter(o.values())) for t, o in results.items()},
        "differ": differ,
        "regressions": regressions,
    }


def print_report(report: dict, seconds: dict[str, float]) -> None:
    """The counts, then one line per differing test (per failing test for one target)."""
    for target, counts in report["counts"].items():
        figures = ", ".join(f"{counts.get(o, 0)} {o}" for o in OUTCOMES)
        print(f"{target:>8}: {figures}  ({seconds[target]:.0f} s)")
    if len(report["counts"]) == 1:
        print(f"{len(report['regressions'])} tests failed; not passed:")
        for name, (_, outcome) in report["differ"].items():
            print(f"  {name}: {outcome}")
        return
    if not report["differ"]:
        print("no test differs")
    else:
        print(f"{len(report['differ'])} tests differ (reference -> candidate):")
        for name, (r, c) in report["differ"].items():
            print(f"  {name}: {r} -> {c}")
    print(f"{len(report['regressions'])} tests pass with the reference and not with the candidate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "tests",
        nargs="*",
        help="test files or ids relative to brian2/tests (test_monitor.py, "
        "test_synapses.py::test_summed_variable); default: the whole runtime suite",
    )
    parser.add_argument("-k", help="pytest -k expression to select tests")
    parser.add_argument("--subset", action="store_true", help="the short subset CI runs")
    parser.add_argument(
        "--targets",
        type=lambda text: text.split(","),
        default=["cython", "sobuild"],
        metavar="REFERENCE,CANDIDATE",
        help="the two targets to compare (default cython,sobuild), or one target to run alone",
    )
    parser.add_argument(
        "--cython-cache",
        type=Path,
        default=default_cython_cache(),
        help="cython extension cache kept across runs (default %(default)s)",
    )
    parser.add_argument("--sobuild-cache", type=Path, help="SOBUILD_CACHE_DIR for the runs")
    parser.add_argument("-n", "--jobs", type=int, default=0, help="pytest-xdist workers (0: none)")
    parser.add_argument("--junit-dir", type=Path, help="keep the junit reports here")
    parser.add_argument("--json", type=Path, help="write the comparison as JSON here")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --junit-dir: take a target's report from an earlier run when it is there",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--junit", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    if not 1 <= len(args.targets) <= 2 or "" in args.targets:
        parser.error("--targets takes REFERENCE,CANDIDATE or one target")
    args.pytest_args = extra
    if args.subset:
        args.tests = [*args.tests, *SUBSET]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_target_inprocess(args)
    with tempfile.TemporaryDirectory(prefix="brian-suite-") as tmp:
        junit_dir = args.junit_dir or Path(tmp)
        junit_dir.mkdir(parents=True, exist_ok=True)
        results, seconds = {}, {}
        for target in args.targets:
            junit = junit_dir / f"{target}.xml"
            if args.reuse and junit.exists():
                print(f"reusing {junit}", flush=True)
                results[target], seconds[target] = outcomes_from_junit(junit), float("nan")
                continue
            print(f"running Brian2's tests with {target} ...", flush=True)
            results[target], seconds[target] = run_target(target, args, junit)
    report = compare(results, args.targets[0], args.targets[-1])
    print_report(report, seconds)
    if args.json:
        report["seconds"] = seconds
        args.json.write_text(json.dumps(report, indent=1))
    return 1 if report["regressions"] else 0


if __name__ == "__main__":
    sys.exit(main())
