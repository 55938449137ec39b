"""The team secret and the HMAC that signs remote entries.

The secret is read from ``SOBUILD_REMOTE_SECRET`` or from the file that
``SOBUILD_REMOTE_SECRET_FILE`` names, which must be a regular file of this user readable by
nobody else (as ssh treats a private key). A signature covers the canonical JSON of an
entry's fields: kind, key, artifact digest, toolchain identity and the SHA-256 of the bytes
that travel with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat

from ..errors import ConfigError


class Signer:
    """Signs and checks entry fields with one secret (HMAC-SHA256)."""

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ConfigError("the remote secret is shorter than 16 bytes: make one with "
                              "`head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE`")
        self._secret = secret

    @property
    def key_id(self) -> str:
        """A name of this secret that does not reveal it: where its entries live."""
        return hmac.new(self._secret, b"sobuild remote key id", hashlib.sha256).hexdigest()[:16]

    def sign(self, fields: dict) -> str:
        return hmac.new(self._secret, canonical(fields), hashlib.sha256).hexdigest()

    def valid(self, fields: dict, signature: object) -> bool:
        return isinstance(signature, str) and hmac.compare_digest(self.sign(fields), signature)


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def signer_from_env(environ: dict | None = None) -> Signer | None:
    """The Signer of the configured secret; None when none is configured."""
    environ = os.environ if environ is None else environ
    secret = environ.get("SOBUILD_REMOTE_SECRET", "").strip()
    if secret:
        return Signer(secret.encode())
    path = environ.get("SOBUILD_REMOTE_SECRET_FILE", "").strip()
    if not path:
        return None
    return Signer(read_secret_file(os.path.expanduser(path)))


def read_secret_file(path: str) -> bytes:
    """The secret in ``path``: a regular file of this user that nobody else can read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"SOBUILD_REMOTE_SECRET_FILE: cannot open {path}: "
                          f"{exc.strerror} (a symbolic link is refused)") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"SOBUILD_REMOTE_SECRET_FILE: {path} is not a regular file")
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise ConfigError(f"SOBUILD_REMOTE_SECRET_FILE: {path} must belong to you and be "
                              f"readable by nobody else (it has mode "
                              f"{stat.S_IMODE(info.st_mode):o}, owner {info.st_uid}): "
                              f"chmod 600 {path}")
        return f.read().strip()
