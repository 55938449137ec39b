"""Brian2's own test suite with the 'sobuild' target passes what the 'cython' target passes.

CI runs sobuild alone on a subset that meets every runtime template
(``scripts/compare_brian_suite.py --subset --targets sobuild``): cython's cold compilation of
the same subset takes many minutes on two shared cores. The comparisons with cython, on the
subset and on the whole runtime suite (~30 min for cython alone), are ``slow``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, cython_cache_dir

pytestmark = pytest.mark.brian

SCRIPT = ROOT / "scripts" / "compare_brian_suite.py"


def compare(tmp_path, *options: str) -> dict:
    """Run the comparison script; its JSON report plus its printed output."""
    report = tmp_path / "report.json"
    cmd = [sys.executable, str(SCRIPT), *options, "--json", str(report)]
    cmd += ["--cython-cache", str(cython_cache_dir()), "--sobuild-cache", str(tmp_path / "so")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if not report.exists():
        pytest.fail(f"{' '.join(cmd)} gave no report:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    result = json.loads(report.read_text())
    result["output"] = proc.stdout
    result["returncode"] = proc.returncode
    return result


def test_suite_subset_passes_with_sobuild(tmp_path):
    result = compare(tmp_path, "--subset", "--targets", "sobuild")
    counts = result["counts"]["sobuild"]
    assert result["regressions"] == [], result["output"]
    assert counts.get("passed", 0) >= 25, result["output"]  # the subset was collected and ran
    assert result["returncode"] == 0


@pytest.mark.slow
def test_suite_subset_passes_what_cython_passes(tmp_path):
    result = compare(tmp_path, "--subset")
    assert result["counts"]["cython"].get("passed", 0) >= 25, result["output"]
    assert result["regressions"] == [], result["output"]


@pytest.mark.slow
def test_whole_runtime_suite_passes_what_cython_passes(tmp_path):
    result = compare(tmp_path, "-n", "2")
    assert result["counts"]["cython"].get("passed", 0) >= 250, result["output"]
    assert result["regressions"] == [], result["output"]
