"""Find an entry by a key prefix and read what a person wants to see of it (``sobuild show``).

A prefix may name a shared object (artifact digest), a kernel key (shown with the artifact
holding it), a data entry, or a kernel that failed to build (its kept source and log).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .data import read_header
from .layout import Layout

Section = tuple[str, str, "str | None"]  # title, text, language for highlighting


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        return f"({path.name} unreadable: {exc.strerror})"


@dataclass(frozen=True)
class Entry:
    """One entry found under a prefix."""

    kind: str  # 'shared object', 'kernel', 'data', 'failed build'
    id: str
    path: Path
    layout: Layout

    def sections(self) -> list[Section]:
        if self.kind == "kernel":
            try:
                digest = json.loads(self.path.read_bytes())["artifact"]
                artifact = self.layout.artifact_dir(digest)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                return [(f"kernel {self.id}", f"unreadable key file ({exc})", None)]
            head = (f"kernel {self.id}", f"held by shared object {digest}"
                    + ("" if artifact.is_dir() else " (missing: the next load rebuilds it)"),
                    None)
            return [head, *_artifact_sections(artifact)] if artifact.is_dir() else [head]
        if self.kind == "shared object":
            return _artifact_sections(self.path)
        if self.kind == "data":
            try:
                header = json.dumps(read_header(self.path), indent=1, sort_keys=True)
                size = self.path.stat().st_size
            except (OSError, ValueError) as exc:
                return [(f"data entry {self.id}", f"unreadable ({exc})", None)]
            return [(f"data entry {self.id}", header, "json"),
                    ("payload", f"{size} bytes on disk (a pickled value: not shown)", None)]
        sources = sorted(self.path.glob("kernel-*.cpp"))
        return [(f"failed build {self.id}", f"kept at {self.path}", None),
                *[(f"source {s.name}", _read(s), "cpp") for s in sources],
                ("build log", _read(self.path / "build.log"), None)]


def _artifact_sections(directory: Path) -> list[Section]:
    return [(f"shared object {directory.name}: meta.json", _read(directory / "meta.json"),
             "json"),
            ("source lib.cpp", _read(directory / "lib.cpp"), "cpp"),
            ("build log", _read(directory / "build.log") or "(empty: no warnings)", None)]


def find_entries(layout: Layout, prefix: str) -> list[Entry]:
    """Every entry whose id starts with ``prefix`` (at least 2 hex digits)."""
    found: list[Entry] = []
    pattern = f"{prefix[:2]}/{prefix}*"
    for kind, base in (("shared object", layout.artifacts), ("kernel", layout.kernels),
                       ("data", layout.data)):
        found += [Entry(kind, p.name, p, layout) for p in sorted(base.glob(pattern))]
    found += [Entry("failed build", p.name, p, layout)
              for p in sorted(layout.failed.glob(f"{prefix}*")) if p.is_dir()]
    return found
