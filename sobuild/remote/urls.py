"""``SOBUILD_REMOTE``: one or more remote tiers, as ccache's ``remote_storage`` writes them.

    SOBUILD_REMOTE="redis://cache.lan:6379/0 http://cache.lan/sobuild/|read-only"

Entries are separated by spaces; each is a URL, then attributes after ``|``:

    read-only              never upload to this tier
    connect-timeout=MS     connect timeout in milliseconds (default 100)
    operation-timeout=MS   timeout of one operation in milliseconds (default 1000)
    trust-unsigned         use entries without a valid signature (an explicit opt-out)
    key-id=ID              whose entries to read without their secret (with trust-unsigned;
                           `sobuild doctor` shows a secret's key id)
    reshare                upload also the kernels this process found in its own cache
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError

SCHEMES = ("redis", "rediss", "http", "https")
DEFAULT_CONNECT_TIMEOUT = 0.1
DEFAULT_OPERATION_TIMEOUT = 1.0


@dataclass(frozen=True)
class RemoteURL:
    """One configured remote tier: its URL (without attributes) and its attributes."""

    url: str
    read_only: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT
    trust_unsigned: bool = False
    reshare: bool = False
    key_id: str = ""

    def __repr__(self) -> str:
        return f"<sobuild.RemoteURL {self.name}{''.join(self.attributes())}>"

    def attributes(self) -> list[str]:
        """The attributes that differ from the defaults, as ``|name`` or ``|name=value``."""
        flags = [f"|{name}" for name, on in (("read-only", self.read_only),
                                              ("trust-unsigned", self.trust_unsigned),
                                              ("reshare", self.reshare)) if on]
        return flags + [f"|{name}={round(seconds * 1000)}" for name, seconds, default in (
            ("connect-timeout", self.connect_timeout, DEFAULT_CONNECT_TIMEOUT),
            ("operation-timeout", self.operation_timeout, DEFAULT_OPERATION_TIMEOUT))
            if seconds != default] + ([f"|key-id={self.key_id}"] if self.key_id else [])

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def name(self) -> str:
        """The URL without user and password: how stats, warnings and doctor name the tier."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_remotes(text: str) -> tuple[RemoteURL, ...]:
    """The tiers of a ``SOBUILD_REMOTE`` value; ConfigError naming what is wrong."""
    return tuple(_parse_one(entry) for entry in text.split())


def _parse_one(entry: str) -> RemoteURL:
    url, *attributes = entry.split("|")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(f"{_redacted(url)!r} is not a remote tier: use "
                          "redis://host:port/db or http(s)://host/path/")
    options: dict = {}
    for attribute in attributes:
        name, sep, value = attribute.partition("=")
        try:
            if name in ("read-only", "trust-unsigned", "reshare") and not sep:
                options[name.replace("-", "_")] = True
            elif name == "key-id" and re.fullmatch(r"[0-9a-f]{16}", value):
                options["key_id"] = value
            elif name in ("connect-timeout", "operation-timeout") and sep:
                milliseconds = float(value)
                if milliseconds <= 0:
                    raise ValueError
                options[name.replace("-", "_")] = milliseconds / 1000
            else:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"{attribute!r} (of {_redacted(url)}) is not an attribute: use "
                "read-only, connect-timeout=MS, operation-timeout=MS, trust-unsigned, "
                "key-id=ID (16 hex digits) or reshare") from None
    return RemoteURL(url, **options)


def _redacted(url: str) -> str:
    return RemoteURL(url).name
