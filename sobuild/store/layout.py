"""Where everything lives inside a cache directory.

    artifacts/<d[:2]>/<digest>/  lib.so lib.cpp meta.json build.log   one built translation unit
    kernels/<k[:2]>/<key>        {"artifact": digest}                   one kernel, after its artifact
    data/<k[:2]>/<key>           header line + payload                  a small data entry (pickled values)
    locks/<k[:2]>/<key>.lock     per-key single-flight build lock
    failed/<key>/                the kept source and log of a kernel that did not compile
    pch/<key>/                   prologue.h prologue.h.gch meta.json: a precompiled header
    tmp/                         builds and publishes in progress (same filesystem, so rename is atomic)
    toolchains/                  cached compiler probes
    index.sqlite                 the index: sizes, use, counters
"""

from __future__ import annotations

from pathlib import Path

from ..keys import check_key

ARTIFACT_FILES = ("lib.cpp", "meta.json", "build.log")
#: The files of a precompiled header's directory: its text, the record of its digest (and
#: the name of its precompiled file, ``prologue.h.gch`` for GCC).
PCH_HEADER = "prologue.h"
PCH_META = "meta.json"


class Layout:
    """Paths of one cache directory (one tier)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self.kernels = self.root / "kernels"
        self.data = self.root / "data"
        self.locks = self.root / "locks"
        self.failed = self.root / "failed"
        self.pch = self.root / "pch"
        self.tmp = self.root / "tmp"
        self.index = self.root / "index.sqlite"

    def artifact_dir(self, digest: str) -> Path:
        check_key(digest)
        return self.artifacts / digest[:2] / digest

    def kernel_file(self, key: str) -> Path:
        check_key(key)
        return self.kernels / key[:2] / key

    def data_file(self, key: str) -> Path:
        check_key(key)
        return self.data / key[:2] / key

    def lock_file(self, key: str) -> Path:
        check_key(key)
        return self.locks / key[:2] / f"{key}.lock"

    def failed_dir(self, key: str) -> Path:
        check_key(key)
        return self.failed / key

    def pch_dir(self, key: str) -> Path:
        check_key(key)
        return self.pch / key

    def iter_pch_dirs(self):
        yield from (p for p in self.pch.glob("*") if p.is_dir())

    def iter_artifact_dirs(self):
        yield from (p for p in self.artifacts.glob("??/*") if p.is_dir())

    def iter_kernel_files(self):
        yield from self.kernels.glob("??/*")

    def iter_data_files(self):
        yield from self.data.glob("??/*")
