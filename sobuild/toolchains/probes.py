"""Asking a compiler about itself, and remembering the answer in ``<cache>/toolchains/``.

A probe costs a compiler start (10-60 ms); its answer is cached in a JSON file named by a
fingerprint of what could change it (the compiler's path and file status, the host CPU),
so a warm process only stats the compiler and reads one small file. Anyone can compute
that name, and a record says which command runs as the compiler, so records are read and
written under the cache's trust rules (``ProbeRecords``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import subprocess
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import xxhash

from ..errors import CompilerNotFoundError, UntrustedEntryError
from ..store.files import SAFE_OPEN, ensure_dir, read_entry
from ..store.trust import check_trusted_directory, tighten

PROBE_TIMEOUT = 60
#: The directory of a cache that holds probe records.
PROBE_DIR = "toolchains"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

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


def file_status(path: str) -> str:
    """``stat_fingerprint(path)``, or "" when ``path`` is empty or names no file."""
    if not path:
        return ""
    try:
        return stat_fingerprint(path)
    except OSError:
        return ""


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


@dataclass(frozen=True)
class ProbeRecords:
    """Where probes are remembered: <root>/toolchains/, read and written under the tier's trust rules.

    A record is used only if it is a regular file, reached without symbolic links, owned by
    the user (or the trusted group) and not writable by others; otherwise the compiler is
    probed again, the record replaced and a RuntimeWarning says why. What it creates gets
    exactly ``file_mode`` and ``dir_mode``, whatever the umask or a setgid parent.
    """

    root: Path
    trusted_gid: int | None
    file_mode: int = 0o644
    dir_mode: int = 0o755

    def get(self, name: str, fingerprint: str | None, compute: Callable[[], dict],
            fields: tuple[str, ...] = (), check: Callable[[dict], str | None] | None = None,
            fresh: Callable[[dict], bool] | None = None) -> dict:
        """``compute()``, remembered as ``toolchains/<name>-<fingerprint>.json``.

        Without a fingerprint it is computed every time. A record that is missing, not JSON,
        lacks one of ``fields`` or that ``fresh`` finds out of date (something it names has
        changed since) is computed and written again; so is one that cannot be read, is
        untrusted, a link, not a regular file, or that ``check`` refuses (it returns why),
        with a RuntimeWarning saying so. A record that cannot be written only costs the
        probe in the next process.
        """
        if fingerprint is None:
            return compute()
        file_name = f"{name}-{fingerprint}.json"
        refused = None
        try:
            data = json.loads(read_entry(self.root, f"{PROBE_DIR}/{file_name}", self.trusted_gid))
            if isinstance(data, dict) and all(f in data for f in fields):
                refused = check(data) if check is not None else None
                if refused is not None:
                    refused = f"{self.root / PROBE_DIR / file_name} {refused}"
                elif fresh is None or fresh(data):
                    return data
        except (FileNotFoundError, ValueError):
            pass  # not there yet, or not JSON: probed and written again
        except (UntrustedEntryError, OSError) as exc:  # a link, a FIFO, someone else's ...
            refused = str(exc)
        if refused is not None:
            warnings.warn(f"sobuild: not using a compiler probe record, the compiler is probed "
                          f"again: {refused}", RuntimeWarning, stacklevel=2)
        data = compute()
        try:
            self._write(file_name, data, replace=refused is not None)
        except (OSError, UntrustedEntryError):
            pass  # a read-only cache still works; the next process probes again
        return data

    def _write(self, file_name: str, data: dict, replace: bool) -> None:
        """Write a record atomically into ``toolchains/``, if that directory is trusted.

        ``replace``: the record there was refused, so it is removed first (a directory or
        anything else that a rename could not replace).
        """
        directory = ensure_dir(self.root / PROBE_DIR, self.dir_mode)
        dir_fd = self._open_directory() if SAFE_OPEN else None
        tmp = f".{file_name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        if dir_fd is None:
            file_name, tmp = str(directory / file_name), str(directory / tmp)
        try:
            if replace:
                with contextlib.suppress(OSError):
                    os.unlink(file_name, dir_fd=dir_fd)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                         self.file_mode, dir_fd=dir_fd)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    if SAFE_OPEN:
                        os.fchmod(f.fileno(), self.file_mode)
                    f.write(json.dumps(data, sort_keys=True))
                os.replace(tmp, file_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
                raise
        finally:
            if dir_fd is not None:
                os.close(dir_fd)

    def _open_directory(self) -> int:
        """``toolchains/``, opened in the root without following a link, made private outside
        a group cache, and checked to be held by trusted owners."""
        root = os.open(self.root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        try:
            fd = os.open(PROBE_DIR, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                         dir_fd=root)
        finally:
            os.close(root)
        try:
            st = os.fstat(fd)
            tighten(fd, st, self.trusted_gid)
            check_trusted_directory(self.root / PROBE_DIR, st, self.trusted_gid)
        except BaseException:
            os.close(fd)
            raise
        return fd
