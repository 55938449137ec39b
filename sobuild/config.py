"""Settings from the environment: where the cache lives, its tiers and limits; size and time units."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_SIZE = 5 * 1024**3

_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


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

    @classmethod
    def from_env(cls, cache_dir: str | os.PathLike | None = None) -> Settings:
        env = os.environ
        shared = env.get("SOBUILD_SHARED_DIR")
        return cls(
            cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
            shared_dir=Path(shared).expanduser() if shared else None,
            max_size=parse_size(env.get("SOBUILD_MAX_SIZE", DEFAULT_MAX_SIZE)),
            jobs=int(env.get("SOBUILD_JOBS") or os.cpu_count() or 1),
            trust_group=env.get("SOBUILD_TRUST_GROUP", "0").lower() in ("1", "true", "yes"),
        )
