"""Run Brian2's examples (examples/*.py) in fresh processes, with one target each. The
tests are marked ``brian``: without Brian2 they are skipped, and fail under CI=true.

Runs are memoised for the session, so a reference run is shared by the tests that need it.
The cython target compiles into one fixed cache directory across sessions
(``$SOBUILD_TEST_CYTHON_CACHE``, default ``~/.cache/sobuild/tests_brian_cython``): it is
only a reference here, and its cold compilation takes minutes. sobuild gets a fresh cache
per session, so its cold path is what is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def cython_cache_dir() -> Path:
    """The cython extension cache shared by every session's reference runs."""
    configured = os.environ.get("SOBUILD_TEST_CYTHON_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sobuild" / "tests_brian_cython"


@dataclass(frozen=True)
class Run:
    """What an example printed (its RESULT line) and recorded (its .npz arrays)."""

    result: dict
    arrays: dict[str, np.ndarray]

    def spikes(self) -> np.ndarray:
        """(neuron index, time step) pairs in the order Brian2 recorded them."""
        steps = np.round(self.arrays["spike_t"] / 1e-4).astype(np.int64)
        return np.stack([self.arrays["spike_i"].astype(np.int64), steps], axis=1)


class ExampleRunner:
    """Runs ``examples/MODEL.py TARGET DURATION`` in a subprocess, once per argument set."""

    def __init__(self, workdir: Path, sobuild_cache: Path) -> None:
        self.workdir = workdir
        self.sobuild_cache = sobuild_cache
        self._runs: dict[tuple, Run] = {}

    def __call__(
        self,
        model: str,
        target: str,
        duration: str,
        *,
        fixed: bool = False,
        seed: int = 4321,
        fresh: bool = False,
    ) -> Run:
        """The run's output; ``fresh`` runs it again even if this session has it already.

        String expressions (initial values) are evaluated with the target too, so that the
        target draws every random number of a model that is not ``fixed``.
        """
        key = (model, target, duration, fixed, seed)
        if fresh or key not in self._runs:
            self._runs[key] = self._run(*key, tag=len(self._runs))
        return self._runs[key]

    def _run(
        self, model: str, target: str, duration: str, fixed: bool, seed: int, tag: int
    ) -> Run:
        name = f"{model}-{target}-{duration}-{'fixed' if fixed else 'random'}-{seed}-{tag}"
        out = self.workdir / f"{name}.npz"
        cmd = [sys.executable, str(EXAMPLES / f"{model}.py"), target, duration, "--quiet"]
        cmd += ["--seed", str(seed), "--out", str(out), "--strings-with-target"]
        cmd += ["--cython-cache", str(cython_cache_dir())]
        if fixed:
            cmd.append("--fixed")
        if target == "cpp_standalone":
            cmd += ["--standalone-dir", str(self.workdir / name)]
        env = dict(os.environ, SOBUILD_CACHE_DIR=str(self.sobuild_cache))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.workdir)
        if proc.returncode != 0:
            pytest.fail(
                f"{' '.join(cmd)} failed (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}",
                pytrace=False,
            )
        line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
        with np.load(out) as data:
            arrays = {k: data[k] for k in data.files}
        return Run(json.loads(line[len("RESULT ") :]), arrays)


@pytest.fixture(scope="session")
def run_example(tmp_path_factory) -> ExampleRunner:
    """Session-wide runner of the examples; sobuild's cache is fresh for the session."""
    workdir = tmp_path_factory.mktemp("brian_examples")
    return ExampleRunner(workdir, workdir / "sobuild-cache")
