"""One process using a cache with remote tiers: the remote tests start it, as a job on another
machine would run. It loads ``--kernels`` kernels (kernel i computes v*2 + i; ``--tag`` gives a
test its own keys), calls each, and prints one JSON line: the values, the warnings, the
index's counters and the seconds the lookups and builds took. The environment configures the
tiers (SOBUILD_REMOTE, SOBUILD_REMOTE_SECRET_FILE ...); ``--data KEY=TEXT`` also reads or
stores a data entry.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import warnings
from pathlib import Path

import sobuild


def _cluster_worker():
    """The cluster worker's kernels, calls and barrier (loaded by path: both scripts are named
    worker.py)."""
    path = Path(__file__).parents[1] / "cluster" / "worker.py"
    spec = importlib.util.spec_from_file_location("_cluster_worker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", required=True)
    parser.add_argument("--kernels", type=int, default=2)
    parser.add_argument("--tag", default="t")
    parser.add_argument("--data", help="KEY=TEXT: get the data entry KEY; store TEXT on a miss")
    parser.add_argument("--barrier", help="write DIR/ready-<pid>, then wait for DIR/go")
    opts = parser.parse_args()
    shared = _cluster_worker()
    if opts.barrier:
        shared.barrier(opts.barrier)
    report: dict = {"pid": os.getpid()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = sobuild.Cache(opts.cache)
        start = time.perf_counter()
        kernels = cache.load_many(shared.kernel_specs(opts.kernels, opts.tag))
        report["seconds"] = time.perf_counter() - start
        report["values"] = shared.call_kernels(kernels)
        if opts.data:
            key, _, text = opts.data.partition("=")
            payload = cache.get_data(key)
            report["data"] = None if payload is None else payload.decode()
            if payload is None:
                cache.put_data(key, text.encode(), namespace="test")
        cache.flush()
        report["counters"] = cache.store.counters()
        report["modules"] = sorted(m for m in ("redis", "urllib3", "sobuild.remote")
                                   if m in sys.modules)
        tiers = sys.modules.get("sobuild.remote.tier")
        report["budget_left"] = tiers.process_budget().left if tiers else None
    report["warnings"] = [str(w.message) for w in caught]
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
