"""``meta.json``: what an artifact is (digest, toolchain, flags, the kernels it holds).

Written and parsed here only: the Store writes it when it publishes, and everything that
reads it (lookups that heal, verify, prune, the index rebuild, ``sobuild show``) gets an
``ArtifactMeta`` from ``ArtifactMeta.parse``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..keys import KEY_RE


class BadMetaError(ValueError):
    """A ``meta.json`` that is not one sobuild wrote."""


@dataclass(frozen=True)
class ArtifactMeta:
    """The description of one built translation unit (one shared object)."""

    digest: str
    size: int
    abi: int
    toolchain: dict
    flags: list[str]
    defines: dict
    headers: list[str]
    namespace: str
    build_seconds: float
    created: float
    kernels: list[dict] = field(default_factory=list)

    @property
    def kernel_keys(self) -> list[str]:
        """The keys of the kernels this artifact holds."""
        return [k["key"] for k in self.kernels]

    @property
    def toolchain_name(self) -> str:
        return self.toolchain.get("short_name", "")

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def parse(cls, blob: bytes) -> ArtifactMeta:
        """The meta of ``blob``; BadMetaError when it is not a meta.json sobuild wrote."""
        try:
            data = json.loads(blob)
            meta = cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise BadMetaError(f"meta.json is unreadable ({exc})") from None
        if not (isinstance(meta.digest, str) and KEY_RE.match(meta.digest)
                and isinstance(meta.kernels, list)
                and all(isinstance(k, dict) and isinstance(k.get("key"), str)
                        for k in meta.kernels)):
            raise BadMetaError("meta.json does not describe an artifact")
        return meta
