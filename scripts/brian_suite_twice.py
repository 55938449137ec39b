"""Brian2's own test suite on the numpy target: without the codegen cache, then twice on one
shared codegen cache (cold, then warm); every run must pass with the same per-test results.

    python scripts/brian_suite_twice.py                 # the whole runtime suite (long)
    python scripts/brian_suite_twice.py --subset ci     # the subset CI runs
    python scripts/brian_suite_twice.py --modules test_synapses --no-independent -k spike

Each run is a fresh process that imports ``sobuild.brian_adapter`` and calls ``brian2.test``
(doctests and codegen-independent tests, then the numpy target), writing a JUnit XML file
per part (the doctests' results count through the exit status only). Exit status 0 when no
test fails, the exit statuses agree and the cached runs agree test by test with the uncached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

#: The test modules CI runs (with --no-independent: their ~35 numpy-target tests, about a
#: minute per run): groups, thresholds, resets, subexpressions, linked variables, random
#: numbers, run_regularly. The whole suite: tests/codegen_cache/test_brian_suite.py -m slow.
CI_MODULES = "test_neurongroup"


def ignored_paths(keep: str | None) -> list[str]:
    """What pytest must not collect (nor import) to run only the test modules in ``keep``
    (comma-separated): the other test modules, and the package's other modules (doctests)."""
    if not keep:
        return []
    import importlib.util

    tests = Path(importlib.util.find_spec("brian2.tests").origin).parent
    package = tests.parent
    wanted = {name.strip().removesuffix(".py") for name in keep.split(",")}
    ignore = [p for p in tests.glob("test_*.py") if p.stem not in wanted]
    ignore += [p for p in package.iterdir() if p != tests and p.name not in (
        "__init__.py", "conftest.py") and (p.is_dir() or p.suffix == ".py")]
    return sorted(map(str, ignore))

CHILD = """
import json, sys
import sobuild.brian_adapter  # noqa: F401  (installs the codegen cache, or not: env)
import brian2
args = json.loads(sys.argv[1])
ok = True
for part, targets, independent in (("independent", [], True), ("numpy", ["numpy"], False)):
    if part == "independent" and not args["independent"]:
        continue
    extra = ["-p", "no:cacheprovider", "-q", "--junitxml=" + args["out"] + "-" + part + ".xml"]
    extra += ["--ignore=" + path for path in args["ignore"]]
    if args["k"]:
        extra += ["-k", args["k"]]
    ok &= bool(brian2.test(targets, test_codegen_independent=independent, test_in_parallel=[],
                           additional_args=extra))
sys.exit(0 if ok else 1)
"""


def outcomes(xml_files: list[Path]) -> dict[str, str]:
    """test id -> passed / failed / error / skipped, from JUnit XML files."""
    result = {}
    for path in xml_files:
        for case in ET.parse(path).iter("testcase"):
            test = f"{path.stem.rsplit('-', 1)[-1]}::{case.get('classname')}::{case.get('name')}"
            kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
            result[test] = kinds[0] if kinds else "passed"
    return result


def counters(cache_dir: Path) -> dict[str, float]:
    import sobuild

    return sobuild.Cache(cache_dir).store.counters()


def run_suite(name: str, cache_dir: Path, work: Path, enabled: bool, k: str | None,
              ignore: list[str], independent: bool) -> dict:
    out = work / name
    env = {**os.environ, "SOBUILD_CACHE_DIR": str(cache_dir),
           "SOBUILD_CODEGEN_CACHE": "1" if enabled else "0"}
    before = counters(cache_dir)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD,
                           json.dumps({"out": str(out), "k": k, "ignore": ignore,
                                       "independent": independent})],
                          env=env, cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (work / f"{name}.log").write_text(proc.stdout + proc.stderr)
    after = counters(cache_dir)
    delta = {key: round(after.get(key, 0) - before.get(key, 0), 3)
             for key in ("data_hits", "data_misses", "data_bypasses", "data_stored",
                         "data_corrupt", "data_saved_seconds")}
    results = outcomes(sorted(work.glob(f"{name}-*.xml")))
    summary = {kind: sum(1 for v in results.values() if v == kind)
               for kind in ("passed", "failure", "error", "skipped")}
    print(f"{name:>9}: exit {proc.returncode}, {seconds:7.1f} s, {summary}, codegen cache "
          f"{delta}", flush=True)
    return {"exit": proc.returncode, "results": results, "seconds": seconds,
            "log": str(work / f"{name}.log")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", choices=["ci"], help=f"run the CI subset: {CI_MODULES}")
    parser.add_argument("--modules", help="comma-separated test modules to run (default all)")
    parser.add_argument("-k", help="pytest -k expression selecting tests")
    parser.add_argument("--no-independent", action="store_true",
                        help="skip Brian2's codegen-independent tests")
    parser.add_argument("--work-dir", type=Path,
                        help="where logs, JUnit files and the shared cache go (kept)")
    args = parser.parse_args(argv)
    k = args.k
    modules = args.modules or (CI_MODULES if args.subset == "ci" else None)
    ignore = ignored_paths(modules)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="brian-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    cache_dir = work / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    selection = "".join([f" modules {modules}" if modules else "", f" -k {k!r}" if k else ""])
    print(f"Brian2's suite on numpy{selection}; files in {work}", flush=True)

    independent = not args.no_independent
    runs = {name: run_suite(name, cache_dir, work, enabled, k, ignore, independent)
            for name, enabled in (("uncached", False), ("cold", True), ("warm", True))}
    good = True
    for name, run in runs.items():
        failed = sorted(t for t, kind in run["results"].items() if kind in ("failure", "error"))
        if failed:
            good = False
            print(f"{name}: {len(failed)} test(s) failed: {failed[:10]}; see {run['log']}")
        if run["exit"] != runs["uncached"]["exit"]:
            good = False
            print(f"{name}: exit status {run['exit']}, uncached {runs['uncached']['exit']}: "
                  f"see {run['log']}")
    reference = runs["uncached"]["results"]
    for name in ("cold", "warm"):
        results = runs[name]["results"]
        differ = sorted(t for t in set(reference) | set(results)
                        if reference.get(t) != results.get(t))
        if differ:
            good = False
            print(f"{name}: {len(differ)} test(s) differ from the uncached run:")
            for test in differ[:30]:
                print(f"  {test}: uncached {reference.get(test)}, {name} {results.get(test)}")
    if not reference:
        good = False
        print("no test ran")
    print("OK: all runs pass with the same results" if good else "FAILED")
    if good and args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
