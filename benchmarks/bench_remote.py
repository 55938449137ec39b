#!/usr/bin/env python
"""Remote cache tiers (SOBUILD_REMOTE, issue #15): what a Brian2 process gains and risks.

    python benchmarks/bench_remote.py                      # redis and http, medians of 3
    python benchmarks/bench_remote.py --backends redis --repeats 1 -v

Starts a real redis-server and a real nginx with WebDAV PUT on loopback ports (the servers
of ``tests/remote/servers.py``) and runs Brian2's CUBA example (``examples/cuba.py sobuild``,
as ``bench_brian.py`` runs it: the adapter imported, ``prefs.codegen.target = 'sobuild'``,
Brian2's codegen cache on) in fresh processes, timing each whole process. Configurations:

  cold              an empty local cache, no remote
  local-warm        the cache a cold run filled, no remote
  cold, uploads     an empty local cache and an empty remote: the run that fills the remote
                    (one run per backend, kernels and data entries uploaded)
  remote-warm       an EMPTY local cache (a fresh SOBUILD_CACHE_DIR per run) and the remote
                    that run filled: kernels and Brian2's codegen come from the remote
  unreachable       the warm local cache, lacking one entry, and SOBUILD_REMOTE at a loopback
                    port where nothing listens (connections refused)
  hung              the warm local cache, lacking one entry, and the remote's server stopped
                    by SIGSTOP: the kernel accepts connections, nothing answers them

A warm process asks a remote only for what its local cache lacks. So that every unreachable
and hung run does ask, each lacks one data entry of Brian2's codegen (among those a warm
process reads, the one that took least time to compute; the run computes it again and puts
it back): what a hung remote costs is then the wait, cut to SOBUILD_REMOTE_BUDGET. (A warm
CUBA process may also ask on its own: a codegen result that does not pickle faithfully is
never stored, so every process looks it up.)

Whole processes on 2 shared cores vary by a second or more; two figures are steadier. *After
import* is the process minus Brian2's import (5-8 s of it; the remote is set up and asked
only after it). And a *probe*, a small process without Brian2, times on an empty cache what
a remote adds: making the Cache (its tiers, the client library's import), its first lookup
(a local miss, so it asks the remote) and 20 more, against a live, an unreachable and a hung
remote, and none.

Runs go round-robin (one of every configuration, then again), so that the load of a shared
machine drifts over all of them alike. The goals of the issue, reported and never asserted:
remote-warm at most 1.3x local-warm, and an unreachable or hung remote adding at most
0.5 s to a warm process (SOBUILD_REMOTE_BUDGET's default). Per run it also reads the remote
tier's counters from the run's index (hits, data hits, bytes in and out, errors, switched
off): what ``sobuild stats`` shows per tier.

Writes the table, the figures and a chart (needs matplotlib) to --out, benchmarks/results/
by default: bench_remote.txt, bench_remote.json, bench_remote.png. The defaults (1,000
steps, 3 repeats, both backends) take about 7 minutes on 2 loaded cores. Needs
redis-server and nginx (apt-get install redis-server nginx-light) and ``sobuild[remote]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import charts
from charts import RESULTS, describe, load_now, machine, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.remote.servers import NginxDavServer, RedisServer, find_program, free_port  # noqa: E402

BACKENDS = ("redis", "http")
STEPS = 1000
#: The issue's goals.
WARM_RATIO_GOAL = 1.3
ADDED_SECONDS_GOAL = 0.5
#: Settings of the parent's environment that would change what a run does.
CLEARED = ("SOBUILD_REMOTE", "SOBUILD_REMOTE_SECRET", "SOBUILD_REMOTE_SECRET_FILE",
           "SOBUILD_REMOTE_BUDGET", "SOBUILD_SHARED_DIR", "SOBUILD_CODEGEN_CACHE")
FIGURES = ("wall", "after_import", "setup")
charts.COLOURS.setdefault("after_import", "#8172b3")
charts.LABELS.setdefault("after_import", "after import (wall - Brian2's import)")
#: Remote counters shown in the table (``remote <tier> <name>`` in the index).
COUNTERS = ("hits", "data_hits", "bytes_in", "bytes_out", "uploads", "errors", "switched_off")

#: A process that times, on an empty cache, what a remote adds to a process: making the
#: Cache (its tiers, the client library's import), its first lookup (a local miss that asks
#: the remote) and 20 more; against a live, an unreachable and a hung remote, and none.
PROBE = """
import json, os, time, warnings
warnings.simplefilter("ignore")
import sobuild
t0 = time.perf_counter()
cache = sobuild.Cache()
t1 = time.perf_counter()
keys = [os.urandom(16).hex() for _ in range(21)]
cache.get_data(keys[0])
t2 = time.perf_counter()
for key in keys[1:]:
    cache.get_data(key)
t3 = time.perf_counter()
print(json.dumps({"cache": t1 - t0, "first": t2 - t1, "next20": t3 - t2, "total": t3 - t0}))
"""
PHASES = ("cache", "first", "next20", "total")


class Runner:
    """Runs CUBA in fresh processes, each with the cache directory and remote it is given."""

    def __init__(self, workdir: Path, steps: int, verbose: bool) -> None:
        self.workdir = workdir
        self.steps = steps
        self.verbose = verbose
        self.count = 0
        self.loads: list[float] = []  # the load after each run: others' work shows here
        self.secret = workdir / "secret"
        self.secret.write_text(os.urandom(32).hex() + "\n")
        self.secret.chmod(0o600)

    def fresh_dir(self, name: str) -> Path:
        self.count += 1
        path = self.workdir / f"{self.count:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def env(self, cache: Path, remote: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        env["SOBUILD_CACHE_DIR"] = str(cache)
        env["SOBUILD_BRIAN_AUTOLOAD"] = "0"
        if remote is not None:
            env["SOBUILD_REMOTE"] = remote
            env["SOBUILD_REMOTE_SECRET_FILE"] = str(self.secret)
        return env

    def probe(self, label: str, remote: str | None) -> dict[str, float]:
        """The phases of one small process (``PROBE``) on an empty cache and ``remote``."""
        proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                              env=self.env(self.fresh_dir("probe"), remote), cwd=self.workdir)
        if proc.returncode != 0:
            raise RuntimeError(f"{label}: the probe failed (exit {proc.returncode}):\n"
                               f"{proc.stderr[-4000:]}")
        figures = json.loads(proc.stdout.splitlines()[-1])
        if self.verbose:
            shown = " ".join(f"{k}={v:.4f}" for k, v in figures.items())
            print(f"    {label:<28} {shown}", file=sys.stderr, flush=True)
        return figures

    def run(self, label: str, cache: Path, remote: str | None = None) -> dict[str, float]:
        """One CUBA process on ``cache`` (and ``remote``): wall, set-up, remote counters."""
        cmd = [sys.executable, str(ROOT / "examples" / "cuba.py"), "sobuild",
               f"{self.steps}steps", "--quiet", "--seed", "4321"]
        env = self.env(cache, remote)
        before = remote_counters(cache)
        cpu0 = cpu_of_children()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.workdir)
        wall = time.perf_counter() - t0
        cpu = cpu_of_children() - cpu0
        if (load := load_now()) is not None:
            self.loads.append(load)
        if proc.returncode != 0:
            raise RuntimeError(f"{label}: {' '.join(cmd)} failed (exit {proc.returncode}):\n"
                               f"{proc.stderr[-4000:]}")
        line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
        result = json.loads(line[len("RESULT "):])
        after = remote_counters(cache)
        figures = {
            "wall": wall,
            # the process but Brian2's import (the noisiest part on a loaded machine, the same
            # in every configuration): the remote is configured and asked only after it
            "after_import": wall - result["import_s"],
            "cpu": cpu,
            # network construction, code generation and run() (its compilation) without
            # Brian2's import: where the remote is asked
            "setup": result["setup_s"] + result["run_s"] - result["loop_s"],
            "import": result["import_s"],
            **{name: after.get(name, 0) - before.get(name, 0) for name in COUNTERS},
            "switched_off_warnings": proc.stderr.count("is switched off for this process"),
        }
        if self.verbose:
            shown = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in figures.items() if v)
            print(f"    {label:<28} {shown}", file=sys.stderr, flush=True)
        return figures


def cpu_of_children() -> float:
    """User and system seconds of the children waited for (and of their children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def remote_counters(cache: Path) -> dict[str, float]:
    """The remote tiers' counters of ``cache``'s index, summed over tiers (what ``sobuild
    stats`` reads); empty when there is no index yet."""
    index = cache / "index.sqlite"
    if not index.exists():
        return {}
    conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT name, value FROM counters WHERE name LIKE 'remote %'")
        totals: dict[str, float] = {}
        for name, value in rows:
            what = name.rsplit(" ", 1)[1]
            totals[what] = totals.get(what, 0) + value
        return totals
    finally:
        conn.close()


def start_server(backend: str, directory: Path) -> RedisServer | NginxDavServer:
    if backend == "redis":
        return RedisServer(directory)
    return NginxDavServer(directory, program=find_program("nginx") or "/usr/sbin/nginx")


def closed_url(backend: str) -> str:
    """A URL of ``backend``'s kind at a loopback port where nothing listens."""
    port = free_port()
    return f"redis://127.0.0.1:{port}/0" if backend == "redis" else \
        f"http://127.0.0.1:{port}/cache/"


def cheapest_used_data_entry(cache: Path) -> Path:
    """The file of the data entry of ``cache`` that took least time to compute, among those
    a warm process reads (the index counts their hits; many are read only by a cold one)."""
    conn = sqlite3.connect(f"file:{cache / 'index.sqlite'}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT id FROM artifacts WHERE kind = 'data' AND hits > 0 "
                           "ORDER BY build_seconds LIMIT 1").fetchone()
    finally:
        conn.close()
    if row is None:
        raise RuntimeError(f"{cache}: no data entry was read by a warm run: is Brian2's "
                           "codegen cache off?")
    return cache / "data" / row[0][:2] / row[0]


def bench(runner: Runner, backends: list[str], repeats: int) -> dict[str, dict]:
    """Medians and runs: ``{"medians", "runs", "probe_medians", "probes"}``, each keyed by
    ``backend/configuration``."""
    runs: dict[str, list[dict]] = {}
    probes: dict[str, list[dict]] = {}

    def measure(name: str, cache: Path, remote: str | None = None) -> None:
        runs.setdefault(name, []).append(runner.run(name, cache, remote))

    def probe(name: str, remote: str | None) -> None:
        probes.setdefault(name, []).append(runner.probe(f"probe {name}", remote))

    def say(text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    say(f"cold, no remote (x{repeats})")
    warm = runner.workdir  # replaced by the last cold run's cache
    for _ in range(repeats):
        warm = runner.fresh_dir("cold")
        measure("-/cold", warm)
    runner.run("-/warm-up", warm)  # what a cold run left to a later one, unmeasured
    # Each unreachable and hung run lacks this entry, so that it asks the remote once.
    missing = cheapest_used_data_entry(warm)
    servers = {}
    try:
        for backend in backends:
            servers[backend] = server = start_server(backend, runner.fresh_dir(f"{backend}-server"))
            say(f"{backend}: {server.url}; cold with an empty remote, filling it (x1)")
            measure(f"{backend}/cold, uploads", runner.fresh_dir(f"{backend}-fill"), server.url)
        for round_ in range(repeats):
            say(f"round {round_ + 1} of {repeats}: local-warm, then per backend remote-warm, "
                "unreachable, hung (CUBA, then the probe)")
            measure("-/local-warm", warm)
            probe("-/none", None)
            for backend, server in servers.items():
                measure(f"{backend}/remote-warm", runner.fresh_dir(f"{backend}-remote-warm"),
                        server.url)
                missing.unlink(missing_ok=True)
                measure(f"{backend}/unreachable", warm, closed_url(backend))
                probe(f"{backend}/live", server.url)
                probe(f"{backend}/unreachable", closed_url(backend))
                missing.unlink(missing_ok=True)
                server.stop()
                try:
                    measure(f"{backend}/hung", warm, server.url)
                    probe(f"{backend}/hung", server.url)
                finally:
                    server.cont()
    finally:
        for server in servers.values():
            server.close()
    return {"medians": medians_of(runs), "runs": runs, "probe_medians": medians_of(probes),
            "probes": probes}


def medians_of(runs: dict[str, list[dict]]) -> dict[str, dict]:
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} | {"n": len(rs)}
            for name, rs in runs.items()}


def goals(result: dict, backends: list[str]) -> list[dict]:
    """Per backend and goal: the measures (whole process, after the import, in the probe),
    each with whether it meets the goal."""
    medians, probes = result["medians"], result["probe_medians"]
    rows: list[dict] = []

    def row(goal: str, limit: float, values: dict[str, float | None]) -> None:
        rows.append({"goal": goal, "limit": limit, **{
            measure: None if value is None else {"value": value, "met": value <= limit}
            for measure, value in values.items()}})

    def of(table: dict, name: str, figure: str) -> float | None:
        return table.get(name, {}).get(figure)

    for backend in backends:
        values: dict[str, float | None] = {}
        for figure in ("wall", "after_import"):
            warm, local = of(medians, f"{backend}/remote-warm", figure), \
                of(medians, "-/local-warm", figure)
            values[figure] = warm / local if warm and local else None
        row(f"{backend}: remote-warm / local-warm (x)", WARM_RATIO_GOAL, values)
        for kind in ("unreachable", "hung"):
            values = {}
            for figure in ("wall", "after_import"):
                seconds, local = of(medians, f"{backend}/{kind}", figure), \
                    of(medians, "-/local-warm", figure)
                values[figure] = seconds - local if seconds is not None and local else None
            seconds, none = of(probes, f"{backend}/{kind}", "total"), \
                of(probes, "-/none", "total")
            values["probe"] = seconds - none if seconds is not None and none else None
            row(f"{backend}: seconds a{'n' if kind[0] in 'aeiou' else ''} {kind} remote adds",
                ADDED_SECONDS_GOAL, values)
    return rows


def table_text(result: dict, backends: list[str], steps: int, repeats: int, info: dict) -> str:
    medians, probes = result["medians"], result["probe_medians"]
    local = medians.get("-/local-warm")
    lines = [
        "",
        f"CUBA (examples/cuba.py sobuild, {steps:,} steps) in fresh processes; medians of "
        f"{repeats} (n: runs); {describe(info)}",
        "process = whole process, wall s; after import = process minus Brian2's import (the "
        "remote is used only after it); x and + = against local-warm; CPU = the process's user "
        "+ system s; set-up = construction + codegen + run() without the loop; remote counters "
        "of the run's cache: hits kernels/data entries, KiB in/out, errors, tier switched off",
        "| backend | configuration | n | process s | x | + s | after import s | x | + s | "
        "CPU s | set-up s | hits | KiB in/out | errors | off |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [("-", "cold"), ("-", "local-warm")] + [
        (b, c) for b in backends for c in ("cold, uploads", "remote-warm", "unreachable", "hung")]
    for backend, configuration in order:
        row = medians.get(f"{backend}/{configuration}")
        if row is None:
            continue
        against = []
        for figure in ("wall", "after_import"):
            against += [f"{row[figure]:.2f}",
                        f"{row[figure] / local[figure]:.2f}" if local else "n/a",
                        f"{row[figure] - local[figure]:+.2f}" if local else "n/a"]
        shown = "no remote" if backend == "-" else backend
        lines.append(
            f"| {shown} | {configuration} | {row['n']} | {' | '.join(against)} | "
            f"{row['cpu']:.2f} | {row['setup']:.2f} | {row['hits']:g}/{row['data_hits']:g} | "
            f"{row['bytes_in'] / 1024:.0f}/{row['bytes_out'] / 1024:.0f} | {row['errors']:g} | "
            f"{row['switched_off']:g} |")
    none = probes.get("-/none")
    lines += [
        "",
        "In one small process on an empty cache (no Brian2), seconds of: making the Cache (the "
        "remote's client library imported), the first lookup (a local miss that asks the "
        "remote), 20 more; + = total against no remote",
        "| backend | remote | n | Cache() | first lookup | 20 more | total | + s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ["-/none"] + [f"{b}/{k}" for b in backends for k in ("live", "unreachable", "hung")]:
        row = probes.get(name)
        if row is None:
            continue
        backend, kind = name.split("/")
        plus = f"{row['total'] - none['total']:+.3f}" if none else "n/a"
        lines.append(f"| {'-' if backend == '-' else backend} | {kind} | {row['n']} | "
                     f"{row['cache']:.3f} | {row['first']:.3f} | {row['next20']:.3f} | "
                     f"{row['total']:.3f} | {plus} |")
    lines += ["", "goals (measured, not asserted): whole process | after import | in one process",
              ""]
    for goal in goals(result, backends):
        cells = []
        for measure in ("wall", "after_import", "probe"):
            cell = goal.get(measure)
            cells.append("n/a" if cell is None else
                         f"{cell['value']:.2f} {'met' if cell['met'] else 'NOT met'}")
        text = f"{goal['goal']} <= {goal['limit']}"
        lines.append(f"  {text:<50} " + " | ".join(f"{c:<12}" for c in cells))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--steps", type=int, default=STEPS, help="CUBA steps of 0.1 ms")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="write bench_remote.txt, .json and .png here (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, help="keep caches and servers' files here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    missing = [p for p, b in (("redis-server", "redis"), ("nginx", "http"))
               if b in args.backends and find_program(p) is None]
    if missing:
        parser.error(f"{', '.join(missing)} not found (apt-get install redis-server nginx-light)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-remote-"))
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["load_start"] = info.pop("load")
    t0 = time.perf_counter()
    runner = Runner(workdir, args.steps, args.verbose)
    try:
        result = bench(runner, args.backends, args.repeats)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    info["load_end"] = load_now()
    info["load_peak"] = max(runner.loads, default=None)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    given = sys.argv[1:] if argv is None else argv
    info["command"] = " ".join(["benchmarks/bench_remote.py", *given])
    text = table_text(result, args.backends, args.steps, args.repeats, info)
    sys.stdout.write(text)
    data = {"steps": args.steps, "repeats": args.repeats, "machine": info, **result,
            "goals": goals(result, args.backends)}
    medians = result["medians"]
    configurations = ["cold", "local-warm", "cold, uploads", "remote-warm", "unreachable", "hung"]
    table = {}
    for backend in args.backends:
        for configuration in configurations:
            row = medians.get(f"{backend}/{configuration}") or medians.get(f"-/{configuration}")
            if row is not None:
                table[backend, configuration] = row
    chart = {
        "title": f"Remote tiers: CUBA on sobuild, {args.steps:,} steps, median of "
                 f"{args.repeats} (whole process and set-up)",
        "models": args.backends,
        "variants": configurations,
        "figures": list(FIGURES),
        "table": table,
        "note": f"{info['command']} - {describe(info)}",
    }
    write_results(args.out, "bench_remote", text, data, chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
