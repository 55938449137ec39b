"""Settings from the environment: where the cache lives, its tiers, limits and bounds.

Every ``SOBUILD_*`` variable is declared once in ``VARIABLES`` with its parser and default,
and read through ``setting(name)``: one true/false parser, one size parser, one duration
parser. A value that does not parse raises ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_MAX_SIZE = 5 * 1024**3

_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def parse_size(text: str | int) -> int:
    """Bytes from ``500M``, ``2G``, ``1.5T``, ``4096`` (powers of 1024; ``KiB``/``KB`` accepted)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.I)
    if not m:
        raise ValueError(f"{text!r} is not a size: use a number with K, M, G or T, e.g. 500M or 2G")
    return int(float(m[1]) * _SIZE_UNITS[m[2].upper()])


def parse_duration(text: str | float) -> float:
    """Seconds from ``90s``, ``15m``, ``12h``, ``30d``, ``2w`` or a plain number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration: use a number with s, m, h, d or w, e.g. 30d")
    return float(m[1]) * _TIME_UNITS[m[2]]


def parse_flag(text: str) -> bool:
    """True for ``1``/``true``/``yes``/``on``, False for ``0``/``false``/``no``/``off``/empty."""
    value = str(text).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true or false: use 1 or 0")


def parse_optional_flag(text: str) -> bool | None:
    """``parse_flag``, with ``auto`` (or nothing) meaning None: let sobuild decide."""
    return None if str(text).strip().lower() in ("", "auto") else parse_flag(text)


def parse_jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text!r}: use a whole number of at least 1")
    return value


def parse_lock_kind(text: str) -> str:
    value = str(text).strip().lower() or "auto"
    if value not in ("auto", "flock", "file"):
        raise ValueError(f"{text!r}: use 'auto', 'flock' or 'file'")
    return value


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def cpu_count() -> int:
    """CPUs this process may run on: the scheduler's affinity (what SLURM or taskset gives
    the job), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse_remotes(text: str) -> tuple:
    """The remote tiers of ``SOBUILD_REMOTE`` (``sobuild.remote.urls``, imported only when set)."""
    from .remote.urls import parse_remotes as parse

    return parse(text)


def redact_passwords(text: str) -> str:
    """``text`` with the passwords of its URLs (``scheme://user:password@host``) hidden."""
    return re.sub(r"(://[^/@\s:]*):[^/@\s]*@", r"\1:***@", text)


@dataclass(frozen=True)
class Variable:
    """One ``SOBUILD_*`` environment variable: how it is parsed, its default, what it does.

    ``shown`` turns a value into what an error message may print (passwords hidden).
    """

    parse: Callable[[str], Any]
    default: Any
    meaning: str
    shown: Callable[[str], str] = repr


VARIABLES: dict[str, Variable] = {
    "SOBUILD_MAX_SIZE": Variable(parse_size, DEFAULT_MAX_SIZE, "size limit of automatic pruning"),
    "SOBUILD_JOBS": Variable(parse_jobs, None, "parallel compiler jobs (default: the CPUs "
                                               "this process may use)"),
    "SOBUILD_TRUST_GROUP": Variable(parse_flag, False, "trust the entries of a setgid group cache"),
    "SOBUILD_LOCKS": Variable(parse_lock_kind, "auto", "lock kind: auto, flock or file"),
    "SOBUILD_LOCK_TIMEOUT": Variable(parse_duration, 120.0, "age after which a lock file "
                                                            "not refreshed by its holder is stale"),
    "SOBUILD_LOCK_WAIT": Variable(parse_duration, 600.0, "longest wait for another process's "
                                                         "build of the same kernel"),
    "SOBUILD_BUILD_TIMEOUT": Variable(parse_duration, 600.0, "longest time one build may take"),
    "SOBUILD_RETRY_FAILED": Variable(parse_flag, False, "build kernels again whose earlier "
                                                        "build failed"),
    "SOBUILD_SQLITE_TIMEOUT": Variable(parse_duration, 10.0, "wait for a locked index "
                                                             "(unset: 10 s for commands, 1 s "
                                                             "for a run)"),
    "SOBUILD_SQLITE_WAL": Variable(parse_optional_flag, None, "sqlite WAL (default: off on "
                                                              "network filesystems)"),
    "SOBUILD_REMOTE": Variable(parse_remotes, (), "remote tiers: redis:// or http(s):// URLs",
                               lambda text: repr(redact_passwords(text))),
    "SOBUILD_REMOTE_BUDGET": Variable(parse_duration, 0.5, "longest time failing remote "
                                                           "operations may cost a process"),
    "SOBUILD_BRIAN_PREWARM": Variable(parse_flag, True, "build the Brian2 support library "
                                                        "and the kernels' precompiled header "
                                                        "in the background from the adapter's "
                                                        "import"),
    "SOBUILD_PCH": Variable(parse_optional_flag, None, "precompiled headers of heavy "
                                                      "prologues: auto, 0 (none) or 1 (all)"),
}
# The team secret that signs remote entries, SOBUILD_REMOTE_SECRET_FILE (a file of mode 600)
# or SOBUILD_REMOTE_SECRET, is read by sobuild.remote.signing alone, only when a remote is set.


def setting(name: str) -> Any:
    """The value of the environment variable ``name`` (declared in ``VARIABLES``), parsed."""
    variable = VARIABLES[name]
    text = os.environ.get(name)
    if text is None or (text.strip() == "" and variable.default is not None):
        return variable.default
    try:
        return variable.parse(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={variable.shown(text)} is not valid ({variable.meaning}): "
                          f"{exc}") from None


def default_cache_dir() -> Path:
    """``$SOBUILD_CACHE_DIR``, else the platform's user cache directory for sobuild."""
    if os.environ.get("SOBUILD_CACHE_DIR"):
        return Path(os.environ["SOBUILD_CACHE_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("sobuild", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once from the environment."""

    cache_dir: Path
    shared_dir: Path | None
    max_size: int
    jobs: int
    trust_group: bool
    lock_wait: float = VARIABLES["SOBUILD_LOCK_WAIT"].default
    build_timeout: float = VARIABLES["SOBUILD_BUILD_TIMEOUT"].default
    remotes: tuple = ()

    @classmethod
    def from_env(cls, cache_dir: str | os.PathLike | None = None) -> Settings:
        shared = os.environ.get("SOBUILD_SHARED_DIR")
        return cls(
            cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
            shared_dir=Path(shared).expanduser() if shared else None,
            max_size=setting("SOBUILD_MAX_SIZE"),
            jobs=setting("SOBUILD_JOBS") or cpu_count(),
            trust_group=setting("SOBUILD_TRUST_GROUP"),
            lock_wait=setting("SOBUILD_LOCK_WAIT"),
            build_timeout=setting("SOBUILD_BUILD_TIMEOUT"),
            remotes=setting("SOBUILD_REMOTE"),
        )
