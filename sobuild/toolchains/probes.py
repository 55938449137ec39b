"""Asking a compiler about itself, and remembering the answer in ``<cache>/toolchains/``.

A probe costs a compiler start (10-60 ms); its answer is cached in a JSON file named by a
fingerprint of what could change it (the compiler's path and file status, the host CPU),
so a warm process only stats the compiler and reads one small file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import xxhash

from ..errors import CompilerNotFoundError

PROBE_TIMEOUT = 60

#: /proc/cpuinfo fields that tell one CPU model and its features from another.
_CPUINFO_FIELDS = ("vendor_id", "cpu family", "model", "model name", "stepping", "flags",
                   "CPU implementer", "CPU architecture", "CPU variant", "CPU part",
                   "Features", "isa", "uarch")


def run_compiler(argv: list[str], env: Mapping[str, str] | None = None) -> str:
    """stdout and stderr of ``argv``; a compiler that cannot be run raises CompilerNotFoundError."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL,
                              env=dict(env) if env is not None else None)
    except subprocess.TimeoutExpired:
        raise CompilerNotFoundError(
            f"`{' '.join(argv)}` did not answer within {PROBE_TIMEOUT} s: is {argv[0]} a C++ "
            "compiler? Point SOBUILD_CXX at one, e.g. export SOBUILD_CXX=g++") from None
    except OSError as exc:
        raise CompilerNotFoundError(
            f"cannot run {argv[0]}: {exc.strerror or exc}. Point SOBUILD_CXX at an executable "
            "C++ compiler, e.g. export SOBUILD_CXX=/usr/bin/g++") from None
    return (proc.stdout + proc.stderr).strip()


def stat_fingerprint(path: str, *extra: str) -> str:
    """A short hash that changes when the file at ``path`` (or anything in ``extra``) does."""
    st = os.stat(path)
    parts = [path, os.path.realpath(path), str(st.st_mtime_ns), str(st.st_size),
             str(st.st_ino), *extra]
    return xxhash.xxh3_64_hexdigest("\0".join(parts).encode())


def cpu_descriptor() -> str | None:
    """What distinguishes this host's CPU (model and feature flags), or None if unknown.

    Read from ``/proc/cpuinfo`` (Linux); elsewhere None, and the callers probe per process.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            first = f.read(65536).split("\n\n", 1)[0]
    except OSError:
        return None
    fields = {}
    for line in first.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in _CPUINFO_FIELDS:
            fields[name.strip()] = " ".join(value.split())
    if not fields:
        return None
    return platform.machine() + "\0" + json.dumps(fields, sort_keys=True)


def cached(probe_dir: str | os.PathLike | None, name: str, fingerprint: str | None,
           compute: Callable[[], dict], fields: tuple[str, ...] = ()) -> dict:
    """``compute()``, remembered as ``<probe_dir>/<name>-<fingerprint>.json``.

    Without a directory or a fingerprint it is computed every time. A cache file that
    cannot be read, is not JSON or lacks one of ``fields`` is computed and written again;
    one that cannot be written only costs the probe in the next process.
    """
    if probe_dir is None or fingerprint is None:
        return compute()
    path = Path(probe_dir) / f"{name}-{fingerprint}.json"
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and all(f in data for f in fields):
            return data
    except (OSError, ValueError):
        pass
    data = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache still works; the next process probes again
    return data
