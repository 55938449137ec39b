#!/usr/bin/env python
"""sobuild's core on 20 small kernels, beside one compiler call per kernel and Brian2's cython
extensions, all measured in the same run.

    python benchmarks/bench_core.py                 # everything (about 1-2 minutes on 2 cores)
    python benchmarks/bench_core.py --cython 0      # without the Cython reference
    python benchmarks/bench_core.py --profile       # also cProfile the warm path

(a) cold build of the 20 kernels as one batch (one ninja run, a few translation units);
(b) one compiler call per kernel: sobuild with a batch per kernel, plain g++ in a row and
    plain g++ on all cores; Brian2's cython extension manager, one extension per kernel;
(c) a fresh process loading the 20 kernels from a warm cache: Cache() to all kernels
    loaded, per kernel, and ``python -X importtime -c "import sobuild"``;
(d) the cost of one call: Kernel.__call__ with numpy arrays, Kernel.func with pointers cast
    once, a plain Python function, a Cython function taking typed memoryviews.
Each figure is the median of --repeats runs. Ratios are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "void run(double* v, double* w, int32_t n)"
#: Building blocks that make the 20 kernels distinct (operations, constants, loop shapes).
UNARY = ("std::sin", "std::cos", "std::tanh", "std::exp", "std::log1p", "std::sqrt",
         "std::atan", "std::cbrt", "std::erf", "std::expm1")


def kernel_source(i: int) -> str:
    """A small kernel (~30 lines, <cmath>) whose operations and constants depend on ``i``."""
    f, g, h = UNARY[i % 10], UNARY[(i * 3 + 1) % 10], UNARY[(i * 7 + 2) % 10]
    a, b, c = 0.1 + i / 40, 1.0 + i / 7, 0.5 + i / 13
    return f"""\
#include <cmath>
#include <cstdint>

static inline double clamp_{i}(double x, double lo, double hi) {{
    return x < lo ? lo : (x > hi ? hi : x);
}}

static inline double drive_{i}(double x) {{
    double y = {f}(std::fabs(x) * {a:.4f} + 0.25);
    return y * {b:.4f} - {g}(std::fabs(y) + 0.5) * {c:.4f};
}}

static inline double relax_{i}(double v, double target, double tau) {{
    return target + (v - target) * std::exp(-1.0 / tau);
}}

void run(double* v, double* w, int32_t n) {{
    const double tau = {10.0 + i:.1f};
    double acc = 0.0;
    for (int32_t k = 0; k < n; k++) {{
        double x = v[k];
        double d = drive_{i}(x);
        double r = relax_{i}(x, d, tau);
        r += {h}(std::fabs(w[k]) + {1 + i % 4}.0) * {a:.4f};
        acc += r * {1.0 / (i + 2):.6f};
        v[k] = clamp_{i}(r, -{50 + i}.0, {50 + i}.0);
        w[k] = w[k] * 0.5 + acc * 0.5;
    }}
}}
"""


def kernel_sources(count: int) -> list[str]:
    return [kernel_source(i) for i in range(count)]


def median(values: list[float]) -> float:
    return statistics.median(values)


def fresh_dir(base: Path, name: str) -> Path:
    path = base / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# -- (a), (b): cold builds ------------------------------------------------------------------

def specs_of(sources: list[str]):
    import sobuild

    return [sobuild.KernelSpec(source=s, entry=ENTRY, flags=("-O3",)) for s in sources]


def sobuild_one_batch(sources: list[str], cache_dir: Path, toolchain) -> float:
    import sobuild

    start = time.perf_counter()
    cache = sobuild.Cache(cache_dir, toolchain=toolchain)
    cache.load_many(specs_of(sources))
    cache.flush()
    return time.perf_counter() - start


def sobuild_batch_per_kernel(sources: list[str], cache_dir: Path, toolchain) -> float:
    import sobuild

    start = time.perf_counter()
    cache = sobuild.Cache(cache_dir, toolchain=toolchain)
    for spec in specs_of(sources):
        cache.load(spec)
    cache.flush()
    return time.perf_counter() - start


def gxx_per_kernel(sources: list[str], work: Path, toolchain, jobs: int) -> float:
    """One plain compiler call per kernel, as a build without sobuild would do."""
    paths = []
    for i, source in enumerate(sources):
        path = work / f"k{i}.cpp"
        path.write_text(source.replace("void run(", 'extern "C" void run('))
        paths.append(path)

    def compile_one(path: Path) -> None:
        argv = toolchain.shared_object_argv(str(path), str(path.with_suffix(".so")),
                                            str(work), ("-O3",))
        subprocess.run(argv, check=True, capture_output=True)

    start = time.perf_counter()
    if jobs == 1:
        for path in paths:
            compile_one(path)
    else:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(compile_one, paths))
    return time.perf_counter() - start


CYTHON_TEMPLATE = '''\
# distutils: language = c++
cdef extern from *:
    """
{source}
    """
    void run(double* v, double* w, int n) nogil

def call(double[::1] v, double[::1] w, int n):
    run(&v[0], &w[0], n)
'''


def cython_code(source: str) -> str:
    return CYTHON_TEMPLATE.format(source="\n".join("    " + line for line in source.splitlines()))


def cython_setup(cache_dir: Path):
    """Brian2's own Cython extension manager, with its cache in ``cache_dir``."""
    from brian2 import prefs
    from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager

    prefs.codegen.runtime.cython.cache_dir = str(cache_dir)
    return cython_extension_manager


def cython_per_kernel(sources: list[str], cache_dir: Path) -> float:
    manager = cython_setup(cache_dir)
    start = time.perf_counter()
    for source in sources:
        manager.create_extension(cython_code(source), extra_compile_args=["-O3"])
    return time.perf_counter() - start


# -- (c): a warm process ----------------------------------------------------------------------

WARM_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import sobuild
t1 = time.perf_counter()
sources = json.load(open(sys.argv[2]))
cache = sobuild.Cache(sys.argv[1])
t2 = time.perf_counter()
per = []
kernels = []
for s in sources:
    a = time.perf_counter()
    kernels.append(cache.load(sobuild.KernelSpec(source=s, entry=sys.argv[3], flags=("-O3",))))
    per.append(time.perf_counter() - a)
t3 = time.perf_counter()
cache.flush()
t4 = time.perf_counter()
many = sobuild.Cache(sys.argv[1])
a = time.perf_counter()
many.load_many([sobuild.KernelSpec(source=s, entry=sys.argv[3], flags=("-O3",)) for s in sources])
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "cache": t2 - t1, "all": t3 - t1, "per": per,
                  "flush": t4 - t3, "load_many_again": t5 - a}))
"""

CYTHON_WARM_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import brian2
from brian2 import prefs
from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager as m
sys.path.insert(0, sys.argv[3])
from bench_core import cython_code
prefs.codegen.runtime.cython.cache_dir = sys.argv[1]
t1 = time.perf_counter()
per = []
for s in json.load(open(sys.argv[2])):
    a = time.perf_counter()
    m.create_extension(cython_code(s), extra_compile_args=["-O3"])
    per.append(time.perf_counter() - a)
print(json.dumps({"import": t1 - t0, "all": sum(per), "per": per}))
"""


FIRST_CDEF = r"""
import json, time
t = time.perf_counter()
import cffi
ffi = cffi.FFI()
ffi.cdef("void* sobuild_lookup(const char* key);")
ffi.typeof("void(*)(double* v, double* w, int32_t n)")
print(json.dumps({"cdef": time.perf_counter() - t}))
"""
OUT_OF_LINE = r"""
import json, sys, time
t = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from _bench_ffi import ffi
ffi.typeof("void(*)(double* v, double* w, int32_t n)")
print(json.dumps({"cdef": time.perf_counter() - t}))
"""


def out_of_line_ffi(directory: Path) -> None:
    """cffi's out-of-line ABI mode: the cdef parsed now, into a module that needs no pycparser."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef("void* sobuild_lookup(const char* key);")
    ffi.set_source("_bench_ffi", None)
    ffi.compile(tmpdir=str(directory))


def run_json(argv: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{argv[:3]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_time_us(module: str) -> int:
    """Cumulative microseconds of ``import module`` from ``python -X importtime``."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         capture_output=True, text=True, check=True).stderr
    for line in reversed(err.splitlines()):
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1])
    raise RuntimeError(f"no importtime line for {module}")


def profile_warm(cache_dir: Path, sources_file: Path, top: int = 18) -> str:
    """cProfile of WARM_SCRIPT, imports included, sorted by cumulative time."""
    script = Path(tempfile.mkdtemp(prefix="bench-profile-")) / "warm.py"
    script.write_text(WARM_SCRIPT)
    out = subprocess.run([sys.executable, "-m", "cProfile", "-s", "cumulative", str(script),
                          str(cache_dir), str(sources_file), ENTRY],
                         capture_output=True, text=True, check=True).stdout
    shutil.rmtree(script.parent, ignore_errors=True)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start:start + top + 1])


# -- (d): one call ----------------------------------------------------------------------------

def call_overheads(kernel, cython_module, number: int) -> dict[str, float]:
    import numpy as np

    from sobuild.loader.cffi_loader import ffi

    v, w = np.zeros(1), np.zeros(1)
    pv, pw = ffi.cast("double*", v.ctypes.data), ffi.cast("double*", w.ctypes.data)
    func = kernel.func
    double_p = ffi.typeof("double*")

    def python_function(a, b, n):
        return None

    cases = {
        "Kernel(v, w, 1), numpy arrays": lambda: kernel(v, w, 1),
        "Kernel.func(pv, pw, 1), pointers cast once": lambda: func(pv, pw, 1),
        "Kernel.func(cast(v.ctypes.data), ...) each call": lambda: func(
            ffi.cast("double*", v.ctypes.data), ffi.cast("double*", w.ctypes.data), 1),
        "Kernel.func(from_buffer(v), ...) each call": lambda: func(
            ffi.from_buffer(double_p, v), ffi.from_buffer(double_p, w), 1),
        "plain Python function (baseline)": lambda: python_function(v, w, 1),
    }
    if cython_module is not None:
        cases["Cython def f(double[::1] v, ...)"] = lambda: cython_module.call(v, w, 1)
    empty = min(timeit.repeat(lambda: None, number=number, repeat=5)) / number
    result = {}
    for name, call in cases.items():
        per = min(timeit.repeat(call, number=number, repeat=5)) / number
        result[name] = max(per - empty, 0.0)  # the lambda's own call is not the case's
    return result


# -- the table --------------------------------------------------------------------------------

def row(label: str, seconds: float, ref: float | None = None, ref2: float | None = None,
        unit: str = "s") -> str:
    scale = {"s": 1, "ms": 1e3, "us": 1e6}[unit]
    ratio = f"{seconds / ref:8.2f}x" if ref else " " * 9
    ratio2 = f"{seconds / ref2:8.2f}x" if ref2 else " " * 9
    return f"  {label:<64} {seconds * scale:10.3f} {unit:<2} {ratio} {ratio2}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cython", type=int, default=4,
                        help="kernels built as Cython extensions for the reference (0: none)")
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the warm process")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory")
    args = parser.parse_args()

    import sobuild
    from sobuild.toolchains import detect
    from sobuild.toolchains.probes import ProbeRecords

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-core-"))
    work.mkdir(parents=True, exist_ok=True)
    sources = kernel_sources(args.kernels)
    sources_file = work / "sources.json"
    sources_file.write_text(json.dumps(sources))
    lines = sum(s.count("\n") for s in sources) / len(sources)
    toolchain = detect(records=ProbeRecords(work / "probe", None))
    jobs = int(os.environ.get("SOBUILD_JOBS") or os.cpu_count() or 1)
    print(f"{len(sources)} kernels of {lines:.0f} lines; {toolchain.short_name}; "
          f"{jobs} jobs; {os.cpu_count()} CPUs; median of {args.repeats}; load average "
          f"{os.getloadavg()[0]:.1f} at the start", flush=True)

    # (a), (b)
    cold = {name: [] for name in ("batch", "per_kernel", "gxx_serial", "gxx_parallel")}
    for r in range(args.repeats):
        cold["batch"].append(sobuild_one_batch(sources, fresh_dir(work, f"a{r}"), toolchain))
        cold["per_kernel"].append(
            sobuild_batch_per_kernel(sources, fresh_dir(work, f"b{r}"), toolchain))
        cold["gxx_serial"].append(gxx_per_kernel(sources, fresh_dir(work, f"g{r}"), toolchain, 1))
        cold["gxx_parallel"].append(
            gxx_per_kernel(sources, fresh_dir(work, f"p{r}"), toolchain, jobs))
        print(f"  cold round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in cold.items()),
              flush=True)
    cold_m = {k: median(v) for k, v in cold.items()}
    cython_cold = cython_mod = None
    if args.cython:
        n = min(args.cython, len(sources))
        cython_dir = fresh_dir(work, "cython")
        cython_cold = cython_per_kernel(sources[:n], cython_dir) / n * len(sources)
        print(f"  cython: {n} extensions, {cython_cold / len(sources):.2f} s each", flush=True)

    # (c)
    warm_dir = work / "a0"
    env = {**os.environ, "SOBUILD_CACHE_DIR": str(warm_dir)}
    run_json([sys.executable, "-c", WARM_SCRIPT, str(warm_dir), str(sources_file), ENTRY], env)
    warm_runs = [run_json([sys.executable, "-c", WARM_SCRIPT, str(warm_dir), str(sources_file),
                           ENTRY], env) for _ in range(max(5, args.repeats))]
    warm = {k: median([r[k] for r in warm_runs]) for k in ("import", "cache", "all",
                                                            "load_many_again", "flush")}
    first = median([r["per"][0] for r in warm_runs])
    rest = median([statistics.mean(r["per"][1:]) for r in warm_runs])
    imports = {m: median([import_time_us(m) for _ in range(3)]) / 1e6
               for m in ("sobuild", "cffi", "numpy", "xxhash", "platformdirs")}
    bare = median([_bare_python() for _ in range(3)])
    first_cdef = median([run_json([sys.executable, "-c", FIRST_CDEF])["cdef"] for _ in range(3)])
    out_of_line_ffi(work)
    ool = median([run_json([sys.executable, "-c", OUT_OF_LINE, str(work)])["cdef"]
                  for _ in range(3)])
    cython_warm = None
    if args.cython:
        n = min(args.cython, len(sources))
        (work / "cython_sources.json").write_text(json.dumps(sources[:n]))
        runs = [run_json([sys.executable, "-c", CYTHON_WARM_SCRIPT, str(cython_dir),
                          str(work / "cython_sources.json"), str(Path(__file__).parent)])
                for _ in range(3)]
        cython_warm = {"import": median([r["import"] for r in runs]),
                       "per": median([statistics.mean(r["per"]) for r in runs])}
        sys.path.insert(0, str(cython_dir))
        cython_mod = cython_setup(cython_dir).create_extension(cython_code(sources[0]),
                                                               extra_compile_args=["-O3"])

    # (d)
    kernel = sobuild.Cache(warm_dir, toolchain=toolchain).load(specs_of(sources[:1])[0])
    calls = call_overheads(kernel, cython_mod, args.calls)

    n = len(sources)
    print()
    print(f"(a), (b) cold build, {n} kernels (ratios: to (a), to Brian2 cython)")
    print(row("sobuild, one batch (one ninja run)", cold_m["batch"], cold_m["batch"], cython_cold))
    print(row("sobuild, one batch per kernel (20 ninja runs)", cold_m["per_kernel"],
              cold_m["batch"], cython_cold))
    print(row("g++, one call per kernel, in a row", cold_m["gxx_serial"], cold_m["batch"],
              cython_cold))
    print(row(f"g++, one call per kernel, {jobs} at a time", cold_m["gxx_parallel"],
              cold_m["batch"], cython_cold))
    if cython_cold:
        print(row(f"Brian2 cython, one extension per kernel (x{n} from {args.cython})",
                  cython_cold, cold_m["batch"], cython_cold))
    print("(c) warm process: cache hit, digest check, dlopen, bind (ratios: to one kernel, "
          "to Brian2 cython)")
    print(row(f"Cache() to all {n} kernels loaded (one load() each)", warm["all"], unit="ms"))
    print(row("  per kernel, first (cffi types, first dlopen)", first, rest, unit="ms"))
    print(row("  per kernel, the others", rest, rest,
              cython_warm["per"] if cython_warm else None, unit="ms"))
    if cython_warm:
        print(row("  Brian2 cython: per extension, warm (import of the .so)", cython_warm["per"],
                  rest, cython_warm["per"], unit="ms"))
    print(row(f"load_many of the same {n} in a second Cache() (all hits)",
              warm["load_many_again"], unit="ms"))
    print(row("Cache() itself (settings, toolchain probe from disk)", warm["cache"], unit="ms"))
    print(row("index write at exit (flush)", warm["flush"], unit="ms"))
    print(row("import sobuild (measured in the process)", warm["import"], unit="ms"))
    print(row("python -X importtime: import sobuild (cumulative)", imports["sobuild"], unit="ms"))
    print(row("  of which: import cffi, cdef, typeof (pycparser), fresh process", first_cdef,
              first_cdef, unit="ms"))
    print(row("  the same with cffi's out-of-line ABI module (no pycparser)", ool, first_cdef,
              unit="ms"))
    for m in ("cffi", "xxhash", "platformdirs", "numpy"):
        print(row(f"  for scale, alone: import {m}", imports[m], unit="ms"))
    print(row("python -c pass (interpreter start, for scale)", bare, unit="ms"))
    if cython_warm:
        print(row("Brian2 cython warm process: import brian2 (for scale)", cython_warm["import"],
                  unit="ms"))
    base = calls["plain Python function (baseline)"]
    ref = calls.get("Cython def f(double[::1] v, ...)")
    print("(d) one call, n = 1 (ratios: to a plain Python call, to a Cython call)")
    for name, seconds in calls.items():
        print(row(name, seconds, base, ref, unit="us"))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.profile:
        print("\ncProfile of the warm process (cumulative):")
        print(profile_warm(warm_dir, sources_file))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def _bare_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
