"""Load test of the store: 100,000 entries, lookups from fresh processes, stats, prune, and
32 processes hammering lookups at once. Prints the figures.

    python benchmarks/bench_store.py [--dir DIR] [--keys 100000] [--data 20000] [--procs 32]

The store is made with the real layout, formats and index code: a handful of artifacts
built for real by ``Cache.load_many`` (and loadable), ``--keys`` kernel key files pointing
at them and ``--data`` data entries in the real data format, indexed by ``Index.write``.
The key and data files are written without the fsync of ``write_file_atomic`` (6.5 ms
each here: 100,000 would take 11 minutes), which changes how they were made, not how
they are read. Reads run on a warm page cache (dropping it would disturb the machine's
other users). The floor for a lookup is one ``open``+``read`` of a small file, measured
in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f} µs"


# -- making the store -----------------------------------------------------------------------

def make_store(root: Path, n_keys: int, n_data: int, seed: int = 1) -> dict:
    import sobuild
    from sobuild.store import data as data_entries
    from sobuild.store.index import Index, IndexBatch

    rng = random.Random(seed)
    cache = sobuild.Cache(root, jobs=4)
    specs = [sobuild.KernelSpec(
        source=f"void run(double* v, int32_t n) {{ for (int i = 0; i < n; i++) v[i] += {i}; }}",
        entry="void run(double* v, int32_t n)") for i in range(8)]
    t0 = time.perf_counter()
    cache.load_many(specs)
    cache.flush()
    build_seconds = time.perf_counter() - t0
    digests = [d.name for d in cache.layout.iter_artifact_dirs()]

    t0 = time.perf_counter()
    batch = IndexBatch()
    now = time.time()
    for shard in range(256):
        os.makedirs(cache.layout.kernels / f"{shard:02x}", exist_ok=True)
        os.makedirs(cache.layout.data / f"{shard:02x}", exist_ok=True)
    keys = [f"{rng.getrandbits(128):032x}" for _ in range(n_keys)]
    for i, key in enumerate(keys):
        path = cache.layout.kernel_file(key)
        digest = digests[i % len(digests)]
        path.write_bytes(json.dumps({"artifact": digest}).encode())
        batch.keys[key] = digest
    data_keys = [f"{rng.getrandbits(128):032x}" for _ in range(n_data)]
    for i, key in enumerate(data_keys):
        path = cache.layout.data_file(key)
        blob = data_entries.encode(rng.randbytes(200 + i % 800), "brian2.codegen", 0.05)
        path.write_bytes(blob)
        created = now - 86400 * 60 * (i / n_data)  # used over the last 60 days
        batch.artifacts.append({"id": key, "kind": "data", "namespace": "brian2.codegen",
                                "bytes": len(blob), "toolchain": "", "build_seconds": 0.05,
                                "kernels": 1, "created": created})
    write_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert Index(cache.layout).write(batch)
    index_seconds = time.perf_counter() - t0
    (root / "bench-keys.json").write_text(json.dumps({"keys": keys, "data": data_keys}))
    return {"build": build_seconds, "write_files": write_seconds, "index_write": index_seconds,
            "artifacts": len(digests)}


# -- children ---------------------------------------------------------------------------------

def child_lookups(root: str, n: int, seed: int, barrier: str | None) -> None:
    """A fresh process: time its start, then ``n`` random lookups (4 in 5 kernels, 1 in 5 data)."""
    t_start = time.perf_counter()
    import sobuild

    cache = sobuild.Cache(root)
    t_ready = time.perf_counter()
    names = json.loads((Path(root) / "bench-keys.json").read_text())
    rng = random.Random(seed)
    first = rng.choice(names["keys"])
    t0 = time.perf_counter()
    assert cache._find(first) is not None
    first_lookup = time.perf_counter() - t0
    plan = [("k", rng.choice(names["keys"])) if rng.random() < 0.8 else
            ("d", rng.choice(names["data"])) for _ in range(n)]
    if barrier:
        Path(barrier, f"ready-{os.getpid()}").touch()
        while not Path(barrier, "go").exists():
            time.sleep(0.002)
    kernel_times, data_times, misses = [], [], 0
    t_all = time.perf_counter()
    for kind, key in plan:
        t0 = time.perf_counter()
        found = cache._find(key) if kind == "k" else cache.get_data(key)
        (kernel_times if kind == "k" else data_times).append(time.perf_counter() - t0)
        misses += found is None
    t_end = time.perf_counter()
    cache.flush()
    floor = []
    for key in names["keys"][:500]:
        path = cache.layout.kernel_file(key)
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            f.read()
        floor.append(time.perf_counter() - t0)
    print(json.dumps({"startup": t_ready - t_start, "first_lookup": first_lookup,
                      "kernel": kernel_times, "data": data_times, "misses": misses,
                      "span": [t_all, t_end], "floor": floor}))


def run_children(root: Path, procs: int, n: int) -> list[dict]:
    barrier = Path(tempfile.mkdtemp(prefix="bench-barrier-"))
    children = [subprocess.Popen([sys.executable, str(HERE), "--child", str(root), str(n),
                                  str(seed), str(barrier) if procs > 1 else ""],
                                 stdout=subprocess.PIPE, text=True) for seed in range(procs)]
    if procs > 1:
        while len(list(barrier.glob("ready-*"))) < procs:
            if any(c.poll() not in (None, 0) for c in children):
                raise SystemExit("a lookup process failed")
            time.sleep(0.01)
        (barrier / "go").touch()
    results = []
    for c in children:
        out, _ = c.communicate()
        if c.returncode != 0:
            raise SystemExit("a lookup process failed")
        results.append(json.loads(out.splitlines()[-1]))
    shutil.rmtree(barrier)
    return results


# -- the run ---------------------------------------------------------------------------------

def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to make the store (default: a temp dir)")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--data", type=int, default=10_000)
    parser.add_argument("--procs", type=int, default=32)
    parser.add_argument("--lookups", type=int, default=2000, help="per process")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    opts = parser.parse_args()

    from sobuild.cli import gather_stats
    from sobuild.store.index import Index
    from sobuild.store.layout import Layout
    from sobuild.store.prune import prune

    root = opts.dir or Path(tempfile.mkdtemp(prefix="sobuild-bench-store-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ["SOBUILD_CACHE_DIR"] = str(root)
    os.environ.pop("SOBUILD_SHARED_DIR", None)
    try:
        made = make_store(root, opts.keys, opts.data)
        layout = Layout(root)
        entries = opts.keys + opts.data
        print(f"store: {root}\n  {opts.keys:,} kernel keys over {made['artifacts']} real "
              f"artifacts, {opts.data:,} data entries ({entries:,} entries)")
        print(f"  built the artifacts in {made['build']:.2f} s, wrote the files in "
              f"{made['write_files']:.1f} s, indexed them in one transaction in "
              f"{made['index_write']:.2f} s")

        (one,) = run_children(root, 1, opts.lookups)
        k, d = one["kernel"], one["data"]
        floor = statistics.median(one["floor"])
        print("\nlookups from one fresh process (warm page cache)")
        print(f"  import sobuild + Cache()          {one['startup'] * 1e3:8.1f} ms")
        print(f"  first lookup (verifies artifact)  {us(one['first_lookup'])}")
        print(f"  kernel key lookup  median {us(statistics.median(k))}  p99 {us(percentile(k, .99))}"
              f"  ({statistics.median(k) / floor:.1f}x an open+read of a small file)")
        print(f"  data entry lookup  median {us(statistics.median(d))}  p99 {us(percentile(d, .99))}")
        print(f"  floor: open+read of a small file median {us(floor)}")
        assert one["misses"] == 0, "lookups missed"

        print("\nindex queries")
        t_stats, stats = timed(gather_stats, layout, 5 * 1024**3)
        assert stats["kernels"] >= opts.keys
        print(f"  stats (gather_stats)              {t_stats * 1e3:8.1f} ms")
        cli = shutil.which("sobuild", path=str(Path(sys.executable).parent))
        t_cli, proc = timed(subprocess.run, [cli or "sobuild", "stats", "--json"],
                            capture_output=True, text=True)
        if proc.returncode == 0:
            print(f"  `sobuild stats --json` (process)  {t_cli * 1e3:8.1f} ms")
        t_dry, planned = timed(prune, layout, older_than=30 * 86400, dry_run=True)
        print(f"  prune --older-than 30d --dry-run  {t_dry * 1e3:8.1f} ms "
              f"({len(planned.victims):,} entries would go)")
        t_prune, pruned = timed(prune, layout, older_than=54 * 86400)
        print(f"  prune --older-than 54d            {t_prune * 1e3:8.1f} ms "
              f"({len(pruned.victims):,} entries removed)")
        t_rebuild, counts = timed(Index(layout).rebuild)
        print(f"  index rebuild from the files      {t_rebuild:8.1f} s  "
              f"({counts['keys']:,} keys, {counts['artifacts']:,} entries: verify --repair)")

        t_wall, many = timed(run_children, root, opts.procs, opts.lookups)
        k = [t for r in many for t in r["kernel"]]
        d = [t for r in many for t in r["data"]]
        start = min(r["span"][0] for r in many)
        end = max(r["span"][1] for r in many)
        total = len(k) + len(d)
        misses = sum(r["misses"] for r in many)
        print(f"\n{opts.procs} processes hammering lookups at once ({opts.lookups} each, "
              f"{total:,} in all; entries pruned above are counted as misses: {misses:,})")
        print(f"  kernel key lookup  median {us(statistics.median(k))}  p99 {us(percentile(k, .99))}")
        print(f"  data entry lookup  median {us(statistics.median(d))}  p99 {us(percentile(d, .99))}")
        print(f"  throughput {total / (end - start):,.0f} lookups/s on {os.cpu_count()} cores; "
              f"all {opts.procs} processes started, looked up and wrote the index in "
              f"{t_wall:.1f} s")
        counters = Index(layout).counters()
        print(f"  index after the run: data_hits {counters.get('data_hits', 0):,.0f}, "
              f"data_misses {counters.get('data_misses', 0):,.0f}")
    finally:
        if not opts.keep and opts.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_lookups(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] or None)
    else:
        main()
