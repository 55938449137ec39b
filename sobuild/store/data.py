"""Data entries: small values (pickled Brian2 code generation, say) stored beside the kernels.

A data file is one JSON header line (digest, size, namespace, compute seconds) and the
payload. The digest is checked before the payload is handed out: unpickling runs code.
"""

from __future__ import annotations

import json
import time

import xxhash


class CorruptEntryError(ValueError):
    """An entry's bytes do not match its recorded digest."""


def encode(payload: bytes, namespace: str, seconds: float) -> bytes:
    header = {"format": 1, "digest": xxhash.xxh3_128_hexdigest(payload), "size": len(payload),
              "namespace": namespace, "seconds": round(seconds, 6), "created": time.time()}
    return json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def decode(blob: bytes) -> tuple[dict, bytes]:
    """(header, payload) of a data file, or CorruptEntryError."""
    head, sep, payload = blob.partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise CorruptEntryError("unreadable header") from exc
    if not sep or header.get("size") != len(payload) or \
            header.get("digest") != xxhash.xxh3_128_hexdigest(payload):
        raise CorruptEntryError("digest mismatch")
    return header, payload


def read_header(path) -> dict:
    with open(path, "rb") as f:
        return json.loads(f.readline())
