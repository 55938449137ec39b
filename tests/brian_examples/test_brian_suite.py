"""Brian2's own test suite with the 'sobuild' target passes what the 'cython' target passes.

CI runs a subset that meets every runtime template (scripts/compare_brian_suite.py --subset,
a few minutes); the whole runtime suite is ``slow`` (cython alone takes ~30 min on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, cython_cache_dir

pytestmark = pytest.mark.brian

SCRIPT = ROOT / "scripts" / "compare_brian_suite.py"


def compare(tmp_path, *selection: str) -> dict:
    report = tmp_path / "report.json"
    cmd = [sys.executable, str(SCRIPT), *selection, "--json", str(report)]
    cmd += ["--cython-cache", str(cython_cache_dir()), "--sobuild-cache", str(tmp_path / "so")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if not report.exists():
        pytest.fail(f"{' '.join(cmd)} gave no report:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    result = json.loads(report.read_text())
    result["output"] = proc.stdout
    return result


def check(result: dict, at_least: int) -> None:
    counts = result["counts"]
    assert counts["cython"].get("passed", 0) >= at_least, result["output"]
    assert result["regressions"] == [], result["output"]
    assert counts["sobuild"].get("passed", 0) >= counts["cython"].get("passed", 0), result["output"]


def test_suite_subset_passes_what_cython_passes(tmp_path):
    check(compare(tmp_path, "--subset"), at_least=20)


@pytest.mark.slow
def test_whole_runtime_suite_passes_what_cython_passes(tmp_path):
    check(compare(tmp_path, "-n", "2"), at_least=250)
