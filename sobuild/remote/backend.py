"""What a remote tier's backend does, and how it fails: one file per backend implements it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RemoteUnavailable(Exception):
    """A remote operation failed: the server is down, slow, full or answered an error."""


@dataclass(frozen=True)
class Timeouts:
    connect: float
    operation: float


class Backend(Protocol):
    """What a remote tier's server does: get, put, test and delete named byte strings.

    Each method raises RemoteUnavailable when the operation fails.
    """

    def get_many(self, names: list[str], timeouts: Timeouts) -> list[bytes | None]: ...

    def put_many(self, items: dict[str, bytes], timeouts: Timeouts) -> None: ...

    def exists(self, name: str, timeouts: Timeouts) -> bool: ...

    def delete(self, name: str, timeouts: Timeouts) -> None: ...
