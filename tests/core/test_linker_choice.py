"""Kernels link with the fastest linker the compiler can use here, named in their keys; a
linker that is gone is noticed before a build needs it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import sobuild
from sobuild.store.layout import Layout
from sobuild.toolchains.linkers import PREFERRED

from .kernels import scale_spec

GXX = shutil.which("g++")
#: What each linker leaves in the shared objects it writes.
SIGNATURE = {"gold": b".note.gnu.gold-version", "lld": b"Linker: LLD", "mold": b"mold "}


def installed_linkers() -> list[str]:
    return [name for name in PREFERRED if shutil.which(f"ld.{name}")]


def bin_dir(tmp_path: Path, *programs: str) -> Path:
    """A PATH of its own holding only ``programs`` (links to the installed ones)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for name in programs:
        (directory / name).symlink_to(shutil.which(name))
    return directory


def build_and_run(cache: sobuild.Cache, scale: float) -> float:
    v = np.array([4.0])
    cache.load(scale_spec(scale))(v, 1)
    return float(v[0])


def artifacts(cache_dir: Path) -> list[bytes]:
    """The shared objects of the cache's artifacts."""
    return [lib.read_bytes() for directory in Layout(cache_dir).iter_artifact_dirs()
            for lib in directory.glob("*.so")]


def test_kernels_link_with_the_fastest_linker_installed(cache_dir):
    if not installed_linkers():
        pytest.fail("neither mold, lld nor gold is installed: `apt-get install binutils` "
                    "(gold), lld or mold")
    cache = sobuild.Cache(cache_dir)
    chosen = cache.toolchain.linker
    assert chosen == installed_linkers()[0]
    assert cache.toolchain.identity()["linker"].startswith(f"{chosen}: ")
    assert build_and_run(cache, 3.0) == 6.0
    (lib,) = artifacts(cache_dir)
    assert SIGNATURE[chosen] in lib


def test_without_a_faster_linker_the_drivers_own_links_under_another_key(
        cache_dir, tmp_path, monkeypatch):
    fast = sobuild.Cache(cache_dir)
    assert fast.toolchain.linker, "no faster linker installed (see the test above)"
    monkeypatch.setenv("PATH", str(bin_dir(tmp_path, "ld", "as")))
    monkeypatch.setenv("SOBUILD_CXX", GXX)
    own = sobuild.Cache(tmp_path / "other-cache")
    assert own.toolchain.linker == "" and "linker" not in own.toolchain.identity()
    assert own.key(scale_spec(3.0)) != fast.key(scale_spec(3.0))
    assert build_and_run(own, 3.0) == 6.0
    (lib,) = artifacts(tmp_path / "other-cache")
    assert not any(signature in lib for signature in SIGNATURE.values())


def test_a_linker_that_is_gone_is_probed_again_before_a_build_needs_it(
        cache_dir, tmp_path, monkeypatch):
    if "gold" not in installed_linkers():
        pytest.fail("gold is not installed: `apt-get install binutils`")
    path = bin_dir(tmp_path, "ld", "as", "ld.gold")
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setenv("SOBUILD_CXX", GXX)
    first = sobuild.Cache(cache_dir)
    assert (first.toolchain.linker, first.toolchain.linker_path) == ("gold", str(path / "ld.gold"))
    assert build_and_run(first, 2.0) == 4.0
    os.unlink(path / "ld.gold")  # binutils-gold removed, the probe record kept
    again = sobuild.Cache(cache_dir)
    assert again.toolchain.linker == ""
    assert build_and_run(again, 5.0) == 10.0  # not "cannot find ld.gold"
