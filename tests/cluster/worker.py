"""One cache user in a process of its own, as a cluster job would be: the cluster tests start it.

It loads ``--kernels`` tiny kernels (tagged with ``--tag`` so each test has its own keys),
calls each and checks its result, then prints one JSON line: what it computed, the cache
directory it used, the warnings it saw. Options make it behave like a job in a bad spot:

--user UID:GID[:G1,G2]  drop to another user before touching the cache (the interpreter
                        lives under /root, so the process starts as root, imports, then
                        drops, like a setuid launcher would: every module the run
                        needs is imported at the top for that reason)
--umask 002             the umask of that user
--barrier DIR           write DIR/ready-<pid>, then wait for DIR/go (all start at once)
--stop-at POINT         stop (SIGSTOP) at a real point of publication, after writing
                        ``--marker``: ``staging`` (writing meta.json of a staged artifact),
                        ``publish`` (renaming the staged artifact into place), ``keys``
                        (renaming a kernel key into place); the test then kills it with -9
"""

from __future__ import annotations

import argparse
import ctypes  # noqa: F401
import fcntl  # noqa: F401
import json
import linecache  # noqa: F401
import os
import signal
import sqlite3  # noqa: F401
import subprocess  # noqa: F401
import sys
import time
import tokenize  # noqa: F401
import warnings

import numpy as np

import sobuild
import sobuild.builder  # noqa: F401
import sobuild.cache  # noqa: F401
import sobuild.compilation.ninja  # noqa: F401
import sobuild.compilation.translation_unit  # noqa: F401
import sobuild.store.prune  # noqa: F401

ENTRY = "void run(double* v, int32_t n)"


def kernel_specs(count: int, tag: str, first: int = 0) -> list[sobuild.KernelSpec]:
    """Kernel i computes v*2 + i; the tag (a comment) gives each test its own keys."""
    return [sobuild.KernelSpec(
        source=f"// {tag}\nvoid run(double* v, int32_t n) "
               f"{{ for (int i = 0; i < n; i++) v[i] = v[i] * 2 + {i}; }}",
        entry=ENTRY) for i in range(first, first + count)]


def _drop_privileges(user: str, umask: str | None) -> None:
    uid, gid, *rest = user.split(":")
    groups = [int(g) for g in rest[0].split(",")] if rest and rest[0] else []
    os.setgroups(groups)
    os.setgid(int(gid))
    os.setuid(int(uid))
    if umask is not None:
        os.umask(int(umask, 8))


def _stop_at(point: str, marker: str) -> None:
    def matches(event: str, args: tuple) -> bool:
        if point == "staging":
            return (event == "open" and isinstance(args[0], str)
                    and args[0].endswith("meta.json") and "/tmp/publish-" in args[0])
        if event != "os.rename":
            return False
        src, dst = os.fspath(args[0]), os.fspath(args[1])
        if point == "publish":
            return os.path.basename(src).startswith("publish-") and "/artifacts/" in dst
        return point == "keys" and "/kernels/" in dst

    def hook(event: str, args: tuple) -> None:
        if matches(event, args):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGSTOP)

    sys.addaudithook(hook)


def call_kernels(kernels: list) -> list[list[float]]:
    """What each kernel makes of [1, 2, 3]."""
    values = []
    for kernel in kernels:
        v = np.array([1.0, 2.0, 3.0])
        kernel(v, v.size)
        values.append(v.tolist())
    return values


def barrier(directory: str) -> None:
    """Write DIR/ready-<pid>, then wait for DIR/go (all workers start at once)."""
    with open(os.path.join(directory, f"ready-{os.getpid()}"), "w"):
        pass
    go = os.path.join(directory, "go")
    while not os.path.exists(go):
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", required=True)
    parser.add_argument("--kernels", type=int, default=1)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--tag", default="t")
    parser.add_argument("--user")
    parser.add_argument("--umask")
    parser.add_argument("--barrier")
    parser.add_argument("--stop-at", choices=["staging", "publish", "keys"])
    parser.add_argument("--marker")
    opts = parser.parse_args()
    if opts.user:
        _drop_privileges(opts.user, opts.umask)
    if opts.stop_at:
        _stop_at(opts.stop_at, opts.marker)
    specs = kernel_specs(opts.kernels, opts.tag, opts.first)
    if opts.barrier:
        barrier(opts.barrier)
    report: dict = {"pid": os.getpid(), "uid": os.getuid()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cache = sobuild.Cache(opts.cache)
            report["root"] = str(cache.root)
            report["values"] = call_kernels(cache.load_many(specs))
            cache.flush()
        except sobuild.SobuildError as exc:
            report["error"] = type(exc).__name__
            report["message"] = str(exc)
    report["warnings"] = [str(w.message) for w in caught]
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
