"""The content address of a kernel: xxh3-128 over spec, toolchain, platform and ABI version."""

from __future__ import annotations

import json
import platform
import re

import xxhash

from .spec import KernelSpec
from .toolchains.base import Toolchain

#: Bump when anything sobuild adds to a kernel's build changes (prelude, wrapper, layout).
ABI_VERSION = 1

KEY_RE = re.compile(r"^[0-9a-f]{32}$")


def platform_identity() -> dict:
    return {"system": platform.system(), "machine": platform.machine()}


def kernel_key(spec: KernelSpec, toolchain: Toolchain) -> str:
    """32 hex digits; equal on every process and machine that would build the same binary."""
    payload = {
        "abi": ABI_VERSION,
        "spec": spec.canonical(),
        "toolchain": toolchain.key_identity(spec.flags or toolchain.default_flags),
        "platform": platform_identity(),
    }
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
