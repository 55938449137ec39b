"""What ``sobuild stats`` and ``ls`` report: the index's entries, reconciled with the files.

The index is brought in line with the files first (``Index.reconcile``: entries that never
reached it are counted, rows of entries that are gone are not). Without an index, or when it
cannot be read (locked, corrupt, untrusted), the files alone are read and a warning on
stderr says why: counters then read as zero.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .index import Index, IndexUnavailableError, scan_files
from .layout import Layout


@dataclass
class Entries:
    """The entries of a cache, its kernel keys and counters, and where they were read."""

    rows: list[dict]
    keys: dict[str, str]
    counters: dict[str, float]
    source: str  # 'index' or 'files'


def read_index(layout: Layout, index: Index | None = None) -> Entries:
    """The entries of ``layout``: the index reconciled with the files, else the files."""
    index = index or Index(layout)
    if os.path.lexists(layout.index):
        try:
            view = index.reconcile()
        except IndexUnavailableError as exc:
            _warn(f"{exc}. Reading the files instead (counters are not shown).")
        else:
            if view.unsaved is not None:
                _warn(f"{view.unsaved}. The entries are counted from the files all the same.")
            return Entries(view.rows, view.keys, view.counters, "index")
    rows, keys = scan_files(layout, index.trusted_gid)
    return Entries(rows, keys, {}, "files")


#: What each remote tier counts (``remote <tier name> <what>`` in the index's counters).
REMOTE_COUNTERS = ("hits", "misses", "data_hits", "data_misses", "errors", "uploads",
                   "bytes_in", "bytes_out", "switched_off")


def tier_stats(counters: dict[str, float]) -> list[dict]:
    """Hits, misses, errors and bytes of each tier: local, shared directory, each remote.

    A remote tier's refusals are counted by reason (``refused_unsigned`` ...) and summed
    under ``refused``.
    """
    remotes: dict[str, dict] = {}
    for name, value in counters.items():
        if not name.startswith("remote "):
            continue
        tier, _, what = name[len("remote "):].rpartition(" ")
        row = remotes.setdefault(tier, {"tier": tier, "refused": 0,
                                        **dict.fromkeys(REMOTE_COUNTERS, 0)})
        if what.startswith("refused_"):
            row["refused"] += int(value)
            row[what] = int(value)
        elif what in REMOTE_COUNTERS:
            row[what] = int(value)
    shared = int(counters.get("shared_hits", 0))
    remote_hits = sum(r["hits"] for r in remotes.values())
    local = {"tier": "local", "hits": int(counters.get("hits", 0)) - shared - remote_hits,
             "misses": int(counters.get("misses", 0))}
    tiers = [local]
    if shared:
        tiers.append({"tier": "shared directory", "hits": shared})
    return tiers + sorted(remotes.values(), key=lambda r: r["tier"])


def _warn(message: str) -> None:
    print(f"sobuild: warning: {' '.join(message.split())}", file=sys.stderr)


def gather_stats(layout: Layout, max_size: int, index: Index | None = None) -> dict:
    """Everything ``sobuild stats`` shows, as one JSON-able dict."""
    exists = layout.root.is_dir()
    entries = read_index(layout, index) if exists else Entries([], {}, {}, "none")
    rows, counters = entries.rows, entries.counters
    objects = [r for r in rows if r["kind"] == "shared_object"]
    data = [r for r in rows if r["kind"] == "data"]

    def saved(r: dict) -> float:
        return r["hits"] * r["build_seconds"] / max(1, r["kernels"])

    per_toolchain: dict[str, dict] = {}
    for r in objects:
        t = per_toolchain.setdefault(r["toolchain"], {
            "toolchain": r["toolchain"], "shared_objects": 0, "kernels": 0, "bytes": 0,
            "build_seconds": 0.0, "hits": 0, "saved_seconds": 0.0})
        t["shared_objects"] += 1
        t["kernels"] += r["kernels"]
        t["bytes"] += r["bytes"]
        t["build_seconds"] += r["build_seconds"]
        t["hits"] += r["hits"]
        t["saved_seconds"] += saved(r)
    hits, misses = int(counters.get("hits", 0)), int(counters.get("misses", 0))
    namespaces: dict[str, dict] = {}
    for r in data:
        n = namespaces.setdefault(r["namespace"], {"namespace": r["namespace"], "entries": 0,
                                                   "bytes": 0})
        n["entries"] += 1
        n["bytes"] += r["bytes"]
    return {
        "cache_dir": str(layout.root),
        "exists": exists,
        "entries": len(rows),
        "bytes": sum(r["bytes"] for r in rows),
        "max_size": max_size,
        "shared_objects": len(objects),
        "kernels": len(entries.keys),
        "data_entries": len(data),
        "hits": hits,
        "misses": misses,
        "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
        "builds": int(counters.get("builds", 0)),
        "build_seconds": round(counters.get("build_seconds", 0.0), 3),
        "saved_seconds": round(sum(saved(r) for r in objects), 3),
        "build_errors": int(counters.get("build_errors", 0)),
        "corrupt": int(counters.get("corrupt", 0)),
        "toolchains": sorted(per_toolchain.values(), key=lambda t: -t["bytes"]),
        "tiers": tier_stats(counters),
        "data": {
            "namespaces": sorted(namespaces.values(), key=lambda n: -n["bytes"]),
            "entries": len(data),
            "bytes": sum(r["bytes"] for r in data),
            "hits": int(counters.get("data_hits", 0)),
            "misses": int(counters.get("data_misses", 0)),
            "bypasses": int(counters.get("data_bypasses", 0)),
            "stored": int(counters.get("data_stored", 0)),
            "corrupt": int(counters.get("data_corrupt", 0)),
            "saved_seconds": round(counters.get("data_saved_seconds", 0.0), 3),
        },
    }
