"""The content address of a kernel: xxh3-128 over spec, toolchain, platform and ABI version."""

from __future__ import annotations

import json
import os
import platform
import re

import xxhash

from .spec import KernelSpec
from .toolchains.base import Toolchain

#: Bump when anything sobuild adds to a kernel's build changes (prelude, wrapper, layout).
ABI_VERSION = 1

KEY_RE = re.compile(r"^[0-9a-f]{32}$")


#: Environment variables that change what the compiler and linker read (GCC and Clang
#: honour them all; a kernel built with other headers on CPATH is another binary).
COMPILER_ENVIRONMENT = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "LIBRARY_PATH",
                        "COMPILER_PATH", "GCC_EXEC_PREFIX", "SDKROOT", "MACOSX_DEPLOYMENT_TARGET")


def platform_identity() -> dict:
    return {"system": platform.system(), "machine": platform.machine()}


def compiler_environment() -> dict:
    """The values of ``COMPILER_ENVIRONMENT`` that are set."""
    return {name: os.environ[name] for name in COMPILER_ENVIRONMENT if os.environ.get(name)}


def build_identity(toolchain: Toolchain, flags: tuple[str, ...]) -> dict:
    """What shapes any output of ``toolchain`` with ``flags`` besides its input: the part of a
    key that precompiled headers and standalone objects share (merge their own fields in)."""
    return {"abi": ABI_VERSION, "toolchain": toolchain.key_identity(flags),
            "platform": platform_identity(), "environment": compiler_environment()}


def kernel_key(spec: KernelSpec, toolchain: Toolchain) -> str:
    """32 hex digits; equal on every process and machine that would build the same binary."""
    payload = {
        "abi": ABI_VERSION,
        "spec": spec.canonical(),
        "toolchain": toolchain.key_identity(spec.flags or toolchain.default_flags),
        "platform": platform_identity(),
    }
    environment = compiler_environment()
    if environment:  # absent when none is set: keys made before this part stay valid
        payload["environment"] = environment
    return xxhash.xxh3_128_hexdigest(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())


def data_key(*parts: bytes | str) -> str:
    """A key for a data entry from the caller's canonical description of it."""
    h = xxhash.xxh3_128()
    h.update(f"sobuild-data-{ABI_VERSION}".encode())
    for part in parts:
        b = part.encode() if isinstance(part, str) else part
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def check_key(key: str) -> str:
    """A key as a safe file name: refuses anything that could leave the cache directory."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise ValueError(f"{key!r} is not a sobuild key (32 lowercase hex digits)")
    return key
