"""The C++ library headers of Brian2's standalone sources, precompiled once per compiler and
flags and shared by every project.

Every file of a standalone project parses ``<iostream>``, ``<fstream>``, ``<random>``,
``<map>`` ...: with GCC 12 about 1 s of a code object's 1.3 s, 0.5 s with them precompiled
(measured on CUBA's state updater). Each compile (but ``objects.cpp``, whose own code is most
of its time, and which so compiles while the header is being built) reads the
:data:`PRELUDE` first (``-include``), from the cache's precompiled copy when there is a
sound one: keyed by the compiler's identity, the project's flags and the text, its xxh3
checked by the store, and the size and mtime of the system headers it read compared before
use (``compilation.pch.stale``). One missing or stale is built in the same ninja run,
before the compiles that read it; one that fails to build leaves them reading the text. The
prelude's text is part of those objects' keys; its precompiled form changes nothing of
them. GCC only (``Toolchain.precompiled_headers``); ``SOBUILD_PCH=0`` turns it off.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..cache import Cache
from ..compilation.pch import read_depends, stale
from ..config import setting
from ..errors import UntrustedEntryError
from ..keys import build_identity, data_key
from ..store.store import BrokenEntryError
from ..toolchains.base import Toolchain

#: The headers of Brian2's templates (objects.h, main.cpp, the code objects, network.cpp).
PRELUDE = "".join(f"#include <{name}>\n" for name in (
    "algorithm", "chrono", "climits", "cmath", "cstdlib", "ctime", "fstream", "iostream",
    "map", "random", "set", "string", "tuple", "vector"))
HEADER_NAME = "sobuild_standalone_prelude.h"
#: Sources that do not read the prelude (their own code dominates their compile).
WITHOUT_PRELUDE = frozenset({"objects.cpp"})


@dataclass
class Prelude:
    """The prelude of one build: its ``key``, its header in the build directory, and whether
    its precompiled form is built in this build (else it was written from the cache)."""

    key: str
    header: Path
    built_here: bool

    @property
    def binary(self) -> Path:
        return self.header.with_name(self.header.name + ".gch")


def enabled(toolchain: Toolchain) -> bool:
    """Whether the compiles of a build with ``toolchain`` read the prelude."""
    return toolchain.precompiled_headers and setting("SOBUILD_PCH") is not False


def reads_prelude(name: str, toolchain: Toolchain) -> bool:
    """Whether the object of source ``name`` is compiled reading the prelude."""
    return name not in WITHOUT_PRELUDE and enabled(toolchain)


def prepare(cache: Cache, toolchain: Toolchain, flags: tuple[str, ...],
            build_dir: Path) -> Prelude:
    """The prelude for a build with ``flags`` in ``build_dir`` (its header written there,
    and its precompiled form when the cache has a sound one)."""
    payload = {**build_identity(toolchain, flags), "prelude": PRELUDE, "flags": list(flags)}
    key = data_key("brian2-standalone-prelude", json.dumps(payload, sort_keys=True))
    prelude = Prelude(key, build_dir / HEADER_NAME, built_here=True)
    prelude.header.write_text(PRELUDE)
    store = cache.store
    try:
        found = store.open_pch(key)
    except BrokenEntryError:
        store.discard_pch(key)
        found = None
    except UntrustedEntryError:
        found = None
    if found is not None and stale(found[1].get("depends")) is None:
        prelude.binary.write_bytes(found[0])
        prelude.built_here = False
    return prelude


def build_command(prelude: Prelude, project: Path, flags: tuple[str, ...],
                  toolchain: Toolchain) -> str:
    """The shell command precompiling the prelude with the project's flags (into a temporary
    name, renamed on success: a failure leaves no file and succeeds, so that the compiles
    waiting for it read the text)."""
    temporary = f"{prelude.binary}.tmp"
    argv = [*toolchain.command, "-x", "c++-header", *flags, f"-fdebug-prefix-map={project}=.",
            str(prelude.header), "-o", temporary, "-MD", "-MF", f"{prelude.binary}.d"]
    log = shlex.quote(f"{prelude.binary}.log")
    return (f"cd {shlex.quote(str(project))} && ({shlex.join(argv)} && mv -f "
            f"{shlex.quote(temporary)} {shlex.quote(str(prelude.binary))}) > {log} 2>&1 "
            f"|| rm -f {shlex.quote(temporary)}")


def publish(cache: Cache, prelude: Prelude) -> None:
    """Keep a prelude built in this build in the cache (with the system headers it read)."""
    if prelude.built_here and prelude.binary.is_file():
        depends = read_depends(prelude.binary.with_name(prelude.binary.name + ".d"))
        cache.store.publish_pch(prelude.key, PRELUDE, prelude.binary,
                                {"depends": depends, "origin": "brian2-standalone"})
