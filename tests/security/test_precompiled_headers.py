"""A precompiled header is code: one planted in a private cache is never compiled in.

GCC checks only that a ``.gch`` was built with the options of the compile that reads it, not
that it holds the header it stands for. So a ``.gch`` built by Mallory from a prologue of her
own (here: the victim's prologue plus a constructor) would be compiled into every unit of the
victim that includes that prologue, and run at dlopen. What stops her is the store's owner
check: her files (chowned to her, as a directory she could write would allow; their digest
made to match) are refused, and the header is built again.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import xxhash
from cluster.conftest import GROUP_GID, MALLORY
from core.test_precompiled_header import check, heavy_spec, pch_dirs

import sobuild
from sobuild.toolchains.detect import from_command

EVIL_TAIL = """#include <cstdio>
__attribute__((constructor)) static void mallory_was_here() { std::fclose(std::fopen("@MARKER@", "w")); }
"""


def plant_precompiled_header(key_dir, gxx, marker, workdir) -> None:
    """Replace the ``.gch`` in ``key_dir`` with Mallory's, built from the same prologue plus
    her constructor with the very options the victim's compiles use; its digest recorded."""
    meta = json.loads((key_dir / "meta.json").read_text())
    text = (key_dir / "prologue.h").read_text()
    evil = workdir / "prologue.h"
    evil.write_text(text + EVIL_TAIL.replace("@MARKER@", str(marker)))
    base = [flag for flag in gxx.base_flags if flag != "-shared"]
    subprocess.run([*gxx.command, "-x", "c++-header", *base, *meta["flags"],
                    "-o", str(workdir / "prologue.h.gch"), str(evil)], check=True, timeout=300)
    content = (workdir / "prologue.h.gch").read_bytes()
    (key_dir / meta["file"]).write_bytes(content)
    meta.update(digest=xxhash.xxh3_128_hexdigest(content), size=len(content))
    (key_dir / "meta.json").write_text(json.dumps(meta))
    for path in (key_dir, *key_dir.iterdir()):
        os.chown(path, MALLORY, GROUP_GID)


@pytest.mark.needs_root
def test_planted_precompiled_header_of_another_user_is_never_compiled_in(cache_dir, tmp_path,
                                                                         monkeypatch):
    monkeypatch.delenv("SOBUILD_PCH", raising=False)
    gxx = from_command("g++")
    cache = sobuild.Cache(cache_dir, toolchain=gxx)
    check(cache.load(heavy_spec(2.0)), 2.0)  # builds the prologue's precompiled header
    cache.flush()
    (key_dir,) = pch_dirs(cache_dir)
    marker = tmp_path / "mallory-ran"
    workdir = tmp_path / "mallory"
    workdir.mkdir()
    plant_precompiled_header(key_dir, gxx, marker, workdir)

    cache = sobuild.Cache(cache_dir, toolchain=gxx)
    check(cache.load(heavy_spec(3.0)), 3.0)  # a new unit with the same prologue
    cache.flush()
    assert not marker.exists(), "Mallory's precompiled header was compiled into the victim's unit"
    (rebuilt,) = pch_dirs(cache_dir)
    assert rebuilt == key_dir
    assert {path.stat().st_uid for path in (rebuilt, *rebuilt.iterdir())} == {os.geteuid()}
