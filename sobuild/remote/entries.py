"""What travels to and from a remote tier, and the checks an entry must pass to be used.

    sobuild/1/<key id>/kernel/<key>       a signed record: {kind, key, artifact, toolchain, sig}
    sobuild/1/<key id>/artifact/<digest>  a bundle: a signed header, meta.json, library, source
    sobuild/1/<key id>/data/<key>         a signed header line, then a local data entry's bytes

The key id names the team secret (an HMAC of a constant under it): teams, and a secret and
the one that replaced it, keep to their own names and never overwrite each other's entries.

The record of a kernel names the artifact that holds it; its signature covers the kernel
key, the artifact digest and the toolchain identity. A bundle's header is signed too, over
the artifact digest and the SHA-256 of what follows it. Each part is checked on its own, so
that two processes uploading the same artifact (with other build times in its meta) never
make a pair that does not check. The artifact's xxh3 digest is checked as well, on the
library's bytes; on its own it would not do, since xxh3 is not collision-resistant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import xxhash

from ..keys import KEY_RE
from ..store.meta import ArtifactMeta, BadMetaError
from .signing import Signer

FORMAT = 1
PREFIX = f"sobuild/{FORMAT}"


class RefusedEntry(ValueError):
    """A remote entry that must not be used; the message says why (for counters and warnings)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Names:
    """The names of entries on a remote, under one key id."""

    key_id: str

    def kernel(self, key: str) -> str:
        return f"{PREFIX}/{self.key_id}/kernel/{key}"

    def artifact(self, digest: str) -> str:
        return f"{PREFIX}/{self.key_id}/artifact/{digest}"

    def data(self, key: str) -> str:
        return f"{PREFIX}/{self.key_id}/data/{key}"


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def toolchain_identity(identity: dict) -> str:
    """A short digest of a toolchain's identity (what goes into its kernel keys)."""
    return xxhash.xxh3_128_hexdigest(json.dumps(identity, sort_keys=True).encode())


# -- kernels ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelRecord:
    """Where a kernel is: the artifact holding it, built by which toolchain."""

    key: str
    artifact: str
    toolchain: str

    def fields(self) -> dict:
        return {"kind": "kernel", "key": self.key, "artifact": self.artifact,
                "toolchain": self.toolchain}

    def encode(self, signer: Signer) -> bytes:
        return json.dumps({**self.fields(), "sig": signer.sign(self.fields())},
                          sort_keys=True).encode()


def read_kernel_record(value: bytes, key: str, toolchain: str, signer: Signer | None,
                       trust_unsigned: bool) -> KernelRecord:
    """The record stored for ``key``, checked; RefusedEntry saying why it cannot be used."""
    try:
        data = json.loads(value)
        record = KernelRecord(data["key"], data["artifact"], data["toolchain"])
        if data.get("kind") != "kernel" or not all(
                isinstance(v, str) for v in record.fields().values()):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise RefusedEntry("corrupt", "the kernel record is unreadable") from None
    _check_signature(record.fields(), data.get("sig"), signer, trust_unsigned)
    if record.key != key:
        raise RefusedEntry("wrong key", f"the record of {key[:12]}… is {record.key[:12]}…'s")
    if record.toolchain != toolchain:
        raise RefusedEntry("other toolchain", "it was built by another compiler")
    if not KEY_RE.match(record.artifact):
        raise RefusedEntry("corrupt", "the record names no artifact")
    return record


def _check_signature(fields: dict, signature: object, signer: Signer | None,
                     trust_unsigned: bool) -> None:
    if trust_unsigned:
        return
    if signature is None:
        raise RefusedEntry("unsigned")
    if signer is None:
        raise RefusedEntry("unchecked", "no secret to check its signature")
    if not signer.valid(fields, signature):
        raise RefusedEntry("bad signature")


# -- artifacts ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Bundle:
    """An artifact as it travels: its meta, shared object and source."""

    meta: ArtifactMeta
    library: bytes
    source: str

    def encode(self, signer: Signer) -> bytes:
        parts = [self.meta.to_bytes(), self.library, self.source.encode()]
        body = b"".join(parts)
        fields = _bundle_fields(self.meta.digest, body)
        header = {**fields, "sizes": [len(p) for p in parts], "sig": signer.sign(fields)}
        return json.dumps(header, sort_keys=True).encode() + b"\n" + body


def _bundle_fields(digest: str, body: bytes) -> dict:
    return {"kind": "artifact", "artifact": digest, "sha256": sha256(body)}


def read_bundle(blob: bytes, record: KernelRecord, signer: Signer | None,
                trust_unsigned: bool) -> Bundle:
    """The bundle ``record`` names, checked byte for byte; RefusedEntry when it is not."""
    head, _, rest = blob.partition(b"\n")
    try:
        header = json.loads(head)
        sizes = header["sizes"]
        fields = {name: header[name] for name in ("kind", "artifact", "sha256")}
    except (ValueError, KeyError, TypeError):
        raise RefusedEntry("corrupt", f"artifact {record.artifact[:12]}… is unreadable") from None
    _check_signature(fields, header.get("sig"), signer, trust_unsigned)
    if fields != _bundle_fields(record.artifact, rest):
        raise RefusedEntry("corrupt", f"artifact {record.artifact[:12]}… does not match its "
                                      "signed SHA-256 (truncated or altered)")
    try:
        if not (isinstance(sizes, list) and len(sizes) == 3 and sum(sizes) == len(rest)):
            raise ValueError
        meta_bytes, library, source = (rest[sum(sizes[:i]):sum(sizes[:i + 1])] for i in range(3))
        meta = ArtifactMeta.parse(meta_bytes)
        bundle = Bundle(meta, library, source.decode())
    except (ValueError, KeyError, TypeError, BadMetaError, UnicodeDecodeError):
        raise RefusedEntry("corrupt", f"artifact {record.artifact[:12]}… is unreadable") from None
    if meta.digest != record.artifact or xxhash.xxh3_128_hexdigest(library) != record.artifact:
        raise RefusedEntry("corrupt", f"artifact {record.artifact[:12]}… holds other bytes")
    if record.key not in meta.kernel_keys:
        raise RefusedEntry("wrong key", f"artifact {record.artifact[:12]}… does not hold "
                                        f"kernel {record.key[:12]}…")
    return bundle


# -- data entries -------------------------------------------------------------------------

def encode_data(key: str, blob: bytes, signer: Signer) -> bytes:
    fields = {"kind": "data", "key": key, "sha256": sha256(blob)}
    return json.dumps({**fields, "sig": signer.sign(fields)}, sort_keys=True).encode() + \
        b"\n" + blob


def read_data(value: bytes, key: str, signer: Signer | None, trust_unsigned: bool) -> bytes:
    """The local data entry's bytes sent under ``key``, checked; RefusedEntry otherwise."""
    head, sep, blob = value.partition(b"\n")
    try:
        data = json.loads(head)
        fields = {"kind": data["kind"], "key": data["key"], "sha256": data["sha256"]}
    except (ValueError, KeyError, TypeError):
        raise RefusedEntry("corrupt", "the data entry is unreadable") from None
    _check_signature(fields, data.get("sig"), signer, trust_unsigned)
    if not sep or fields["kind"] != "data" or fields["sha256"] != sha256(blob):
        raise RefusedEntry("corrupt", f"data entry {key[:12]}… is truncated or altered")
    if fields["key"] != key:
        raise RefusedEntry("wrong key", f"the data entry of {key[:12]}… is another's")
    return blob
