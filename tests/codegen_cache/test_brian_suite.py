"""Brian2's own tests (numpy target) pass with the same results without the codegen cache,
on a cold one and on the same cache warm (scripts/brian_suite_twice.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "brian_suite_twice.py"


def _run(tmp_path: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--work-dir", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=3600 * 3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "OK: all runs pass with the same results" in proc.stdout


def test_brian_suite_subset_twice_on_one_cache(tmp_path):
    _run(tmp_path, "--subset", "ci", "--no-independent")


@pytest.mark.slow
def test_brian_suite_twice_on_one_cache(tmp_path):
    _run(tmp_path)
