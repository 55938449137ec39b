"""``cannot_run``: what a test does when it cannot run here. Imported as ``from skipping import
cannot_run`` (pytest puts tests/ on sys.path; every conftest.py is a module named conftest,
so importing it gives whichever one pytest loaded last)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI") == "true"


def cannot_run(reason: str) -> None:
    """Skip the test, or fail it under CI=true."""
    if IN_CI:
        pytest.fail(f"cannot run under CI: {reason}")
    pytest.skip(reason)
