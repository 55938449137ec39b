"""``sobuild doctor``: what sobuild would use here, and what is broken with what to do.

Each check gives a status: ``ok``, ``used``/``found``/``absent`` for compilers, ``warn``
(works, but worth knowing) or ``FAIL`` (sobuild cannot work as configured). Nothing is
created: a missing cache directory is reported, not made.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .config import Settings, format_size, setting
from .errors import SobuildError
from .store.filesystems import filesystem_type, is_network_filesystem, use_wal
from .store.index import IndexLockedError
from .store.store import Store


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    todo: str = ""


def _compilers() -> list[Check]:
    from .toolchains.detect import candidates, detect, probe

    try:
        used = detect().command
    except SobuildError as exc:
        return [Check("compiler", "FAIL", str(exc).splitlines()[0],
                      "install g++ or clang++, or export SOBUILD_CXX=/path/to/c++")]
    checks, chosen = [], False
    for reason, command in candidates(os.environ):
        name = f"compiler {' '.join(command)} ({reason})"
        found = shutil.which(command[-1])
        if found is None:
            checks.append(Check(name, "absent", "not found"))
            continue
        resolved = (*command[:-1], os.path.abspath(found))
        try:
            version = probe(resolved).version.splitlines()[0]
        except (SobuildError, OSError, subprocess.SubprocessError) as exc:
            checks.append(Check(name, "warn", f"{resolved[-1]}: {exc}"))
            continue
        why = ""
        if resolved == used and not chosen:
            chosen = True
            why = (f"; used: {reason} is set" if reason != "PATH"
                   else "; used: first compiler on the PATH (set SOBUILD_CXX to choose)")
        checks.append(Check(name, "used" if why else "found", f"{resolved[-1]}: {version}{why}"))
    return checks


def _ninja() -> Check:
    from .compilation.ninja import ninja_binary

    try:
        binary = ninja_binary()
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
    except (SobuildError, OSError, subprocess.SubprocessError) as exc:
        return Check("ninja", "FAIL", str(exc), "pip install ninja")
    return Check("ninja", "ok", f"{binary} {version}")


def _writable(directory: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _cache(root: Path) -> list[Check]:
    todo = "fix its permissions or export SOBUILD_CACHE_DIR=/a/writable/directory"
    if root.is_dir():
        ok = _writable(root)
        checks = [Check("cache directory", "ok" if ok else "FAIL",
                        f"{root} ({'writable' if ok else 'not writable'})", "" if ok else todo)]
    else:
        parent = root
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        ok = parent.is_dir() and _writable(parent)
        state = "created on first build" if ok else f"{parent} is not writable"
        checks = [Check("cache directory", "ok" if ok else "FAIL", f"{root} (missing; {state})",
                        "" if ok else todo)]
    fstype = filesystem_type(root)
    network = is_network_filesystem(fstype)
    checks.append(Check("filesystem", "warn" if network else "ok",
                        f"{fstype}" + (" (network filesystem: sqlite without WAL, lock files "
                                       "where flock is refused)" if network else ""),
                        "keep the writable tier on a local disk and share a prebuilt tier "
                        "read-only (SOBUILD_SHARED_DIR)" if network else ""))
    store = Store(root, trust_group=setting("SOBUILD_TRUST_GROUP"))
    if os.path.lexists(store.layout.index):
        repair = "run `sobuild verify --repair` to rebuild it"
        try:
            mode = store.index.journal_mode()
            check = store.index.query("PRAGMA quick_check")[0][0]
            advice = "" if check == "ok" else repair
        except IndexLockedError as exc:  # busy, not broken: repairing would lose its records
            mode, check, advice = "?", str(exc), "wait for that process; the index is not damaged"
        except (sqlite3.Error, OSError) as exc:
            mode, check, advice = "?", str(exc), repair
        ok = check == "ok"
        checks.append(Check("sqlite index", "ok" if ok else "FAIL",
                            f"journal mode {mode}; integrity {check}", advice))
    else:
        mode = "WAL" if use_wal(root) else "DELETE (rollback journal)"
        checks.append(Check("sqlite index", "ok", f"none yet; it will use journal mode {mode}"))
    return checks


def _shared(shared: Path | None) -> list[Check]:
    if shared is None:
        return []
    if not shared.is_dir():
        return [Check("shared tier", "warn", f"{shared} does not exist",
                      "unset SOBUILD_SHARED_DIR or fill it: sobuild prebuild --into DIR SCRIPT")]
    readable = os.access(shared, os.R_OK | os.X_OK)
    return [Check("shared tier", "ok" if readable else "FAIL",
                  f"{shared} ({'readable' if readable else 'not readable'}, read only)",
                  "" if readable else "ask its owner for read access (group)")]


def _remotes(settings: Settings) -> list[Check]:
    """Each remote tier: reachable, writable, and whether its entries' signatures check."""
    if not settings.remotes:
        return []
    import warnings

    from .remote.entries import toolchain_identity
    from .remote.tier import configured_tiers
    from .toolchains.detect import detect

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            tiers = configured_tiers(settings.remotes, lambda name, amount: None)
        except SobuildError as exc:
            return [Check("remote tiers", "FAIL", str(exc), "fix SOBUILD_REMOTE or the secret")]
    checks = []
    for url in settings.remotes:
        if not any(tier.url == url for tier in tiers):
            checks.append(Check(f"remote {url.name}", "FAIL", "not used: no secret to check "
                                "signatures, and not marked |trust-unsigned",
                                "set SOBUILD_REMOTE_SECRET_FILE to the team secret (mode 600)"))
    if not tiers:
        return checks
    store = Store(settings.cache_dir, trust_group=setting("SOBUILD_TRUST_GROUP"))
    keys = [p.name for _, p in zip(range(20), store.layout.iter_kernel_files())]
    try:
        toolchain = toolchain_identity(detect().identity())
    except SobuildError:
        toolchain = ""
    for tier in tiers:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            results = tier.self_test(keys, toolchain)
        for name, status, detail in results:
            todo = {"reachable": "check the URL, the server and the network",
                    "writable": "check the server allows PUT (nginx: dav_methods PUT)",
                    "signatures": "do all machines use the same team secret?"}[name]
            checks.append(Check(f"remote {tier.name}: {name}", status, detail, todo))
    return checks


def _brian() -> Check:
    try:
        return Check("Brian2", "ok", f"brian2 {metadata.version('brian2')}")
    except metadata.PackageNotFoundError:
        return Check("Brian2", "-", "not installed (pip install 'sobuild[brian]')")


def run_checks(cache_dir: Path | None = None) -> list[Check]:
    """Every check, in the order a person reads them."""
    from . import __version__

    checks = [Check("sobuild", "ok", __version__)]
    try:
        settings = Settings.from_env(cache_dir)
    except ValueError as exc:
        return checks + [Check("settings", "FAIL", str(exc),
                               "fix the variable it names in the environment")]
    checks.append(Check("settings", "ok", f"max size {format_size(settings.max_size)}, "
                                          f"{settings.jobs} build jobs"))
    checks += _compilers()
    checks.append(_ninja())
    checks += _cache(settings.cache_dir)
    checks += _shared(settings.shared_dir)
    checks += _remotes(settings)
    checks.append(_brian())
    return checks
