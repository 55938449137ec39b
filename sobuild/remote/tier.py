"""RemoteTier: one remote backend, wrapped with the checks, counters and bounds of a tier.

A remote never makes a run fail or crawl. Every operation has a connect and an operation
timeout (the URL's, 100 ms and 1 s by default), cut to what is left of the process's wait
budget (``SOBUILD_REMOTE_BUDGET``, 0.5 s): the time all remotes together may cost in
operations that fail, or that succeed slowly (taking longer than a connect may). After
three errors in a row, or once the budget is spent, a tier is switched off for the rest of
the process with one warning, and kernels are built locally. The backend (and its client
library) is made at a tier's first operation: a process that finds everything locally
never imports it.

Entries are checked before anything is written locally (see ``entries``); one that fails a
check is refused, counted under its reason, and built locally instead.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from . import entries
from .backend import Backend, RemoteUnavailable, Timeouts
from .entries import Bundle, KernelRecord, RefusedEntry
from .signing import Signer, signer_from_env
from .urls import RemoteURL

#: Errors in a row after which a tier is switched off for the rest of the process.
MAX_CONSECUTIVE_ERRORS = 3


class WaitBudget:
    """Seconds that failing remote operations may still cost this process."""

    def __init__(self, seconds: float):
        self.left = seconds


#: What ``RemoteTier._call`` returns when an operation failed or the tier is off.
FAILED: Any = object()

_budget: WaitBudget | None = None
_switched_off: dict[str, str] = {}  # tier name -> why, for the rest of the process
_unused_warned: set[str] = set()


def process_budget() -> WaitBudget:
    global _budget
    if _budget is None:
        from ..config import setting

        _budget = WaitBudget(setting("SOBUILD_REMOTE_BUDGET"))
    return _budget


def check_client(url: RemoteURL) -> None:
    """ConfigError now, rather than at the first operation, when ``url``'s client library is
    not installed (looked up without importing it)."""
    library = "redis" if url.scheme in ("redis", "rediss") else "urllib3"
    if importlib.util.find_spec(library) is None:
        raise ConfigError(f"SOBUILD_REMOTE names {url.name}, but its client library is not "
                          f"installed ({library}): pip install 'sobuild[remote]'")


def make_backend(url: RemoteURL) -> Backend:
    """The backend of ``url``'s scheme (its client library is imported here, only)."""
    try:
        if url.scheme in ("redis", "rediss"):
            from .redis import RedisBackend

            return RedisBackend(url.url)
        from .http import HttpBackend

        return HttpBackend(url.url)
    except ImportError as exc:
        raise ConfigError(f"SOBUILD_REMOTE names {url.name}, but its client library is not "
                          f"installed ({exc.name}): pip install 'sobuild[remote]'") from None


def configured_tiers(urls: tuple[RemoteURL, ...], count: Callable[[str, float], None]
                     ) -> list[RemoteTier]:
    """The tiers of ``SOBUILD_REMOTE`` that this process may use, in order.

    Without a secret a tier is read-only, and used only when marked ``trust-unsigned``:
    nothing else could vouch for the code it returns.
    """
    signer = signer_from_env()
    tiers = []
    for url in urls:
        if signer is None and not url.trust_unsigned:
            if url.name not in _unused_warned:
                _unused_warned.add(url.name)
                warnings.warn(f"sobuild: the remote tier {url.name} is not used: there is no "
                              "secret to check the signatures of its entries (set "
                              "SOBUILD_REMOTE_SECRET_FILE), and it is not marked "
                              "|trust-unsigned.", RuntimeWarning, stacklevel=4)
            continue
        check_client(url)
        tiers.append(RemoteTier(url, signer, count))
    return tiers


class RemoteTier:
    """One remote tier; ``count(name, amount)`` adds to the process's counters."""

    def __init__(self, url: RemoteURL, signer: Signer | None,
                 count: Callable[[str, float], None], backend: Backend | None = None):
        self.url = url
        self.name = url.name
        self.signer = signer
        #: uploads need a secret to sign with; without one a tier is only read
        self.writable = not url.read_only and signer is not None
        self.names = entries.Names(url.key_id or (signer.key_id if signer else "unsigned"))
        self._count = count
        self._backend = backend
        self._errors_in_a_row = 0
        self.last_error = ""
        self._warned: set[str] = set()
        #: artifacts this process found damaged here: its upload replaces them
        self._damaged: set[str] = set()

    def __repr__(self) -> str:
        return f"<sobuild.RemoteTier {self.name} ({'writable' if self.writable else 'read-only'})>"

    @property
    def on(self) -> bool:
        return self.name not in _switched_off

    def count(self, what: str, amount: float = 1) -> None:
        self._count(f"remote {self.name} {what}", amount)

    # -- kernels --------------------------------------------------------------------------

    def fetch_kernels(self, keys: list[str], toolchain: str) -> dict[str, Bundle]:
        """The checked bundles holding ``keys``' kernels (those this tier has and may give)."""
        values = self._call("get_many", [self.names.kernel(k) for k in keys])
        if values is FAILED:
            return {}
        records: dict[str, KernelRecord] = {}
        for key, value in zip(keys, values):
            if value is None:
                self.count("misses")
                continue
            self.count("bytes_in", len(value))
            try:
                records[key] = entries.read_kernel_record(value, key, toolchain, self.signer,
                                                          self.url.trust_unsigned)
            except RefusedEntry as exc:
                self._refuse(exc)
        digests = sorted({r.artifact for r in records.values()})
        blobs = self._call("get_many", [self.names.artifact(d) for d in digests])
        if blobs is FAILED:
            return {}
        by_digest = dict(zip(digests, blobs))
        found: dict[str, Bundle] = {}
        for key, record in records.items():
            blob = by_digest[record.artifact]
            if blob is None:  # evicted, or not uploaded yet
                self.count("misses")
                continue
            try:
                found[key] = entries.read_bundle(blob, record, self.signer,
                                                 self.url.trust_unsigned)
            except RefusedEntry as exc:
                self._damaged.add(record.artifact)
                self._refuse(exc)
                continue
            self.count("hits")
        self.count("bytes_in", sum(len(b) for b in by_digest.values() if b))
        return found

    def upload_bundle(self, bundle: Bundle, toolchain: str) -> None:
        """Put an artifact, then the signed records of its kernels (a writable tier only)."""
        if not (self.writable and self.on):
            return
        digest = bundle.meta.digest
        present = digest not in self._damaged and self._call("exists", self.names.artifact(digest))
        if present is FAILED:
            return
        if not present:
            blob = bundle.encode(self.signer)
            if self._call("put_many", {self.names.artifact(digest): blob}) is FAILED:
                return
            self.count("bytes_out", len(blob))
        records = {self.names.kernel(key): KernelRecord(key, digest, toolchain).encode(self.signer)
                   for key in bundle.meta.kernel_keys}
        if self._call("put_many", records) is not FAILED:
            self.count("uploads", len(records))
            self.count("bytes_out", sum(len(v) for v in records.values()))

    # -- data entries ---------------------------------------------------------------------

    def fetch_data(self, key: str) -> bytes | None:
        """The checked bytes of the data entry ``key`` (as the local store keeps them)."""
        values = self._call("get_many", [self.names.data(key)])
        if values is FAILED:
            return None
        if values[0] is None:
            self.count("data_misses")
            return None
        self.count("bytes_in", len(values[0]))
        try:
            blob = entries.read_data(values[0], key, self.signer, self.url.trust_unsigned)
        except RefusedEntry as exc:
            self._refuse(exc)
            return None
        self.count("data_hits")
        return blob

    def upload_data(self, key: str, blob: bytes) -> None:
        if not (self.writable and self.on):
            return
        value = entries.encode_data(key, blob, self.signer)
        if self._call("put_many", {self.names.data(key): value}) is not FAILED:
            self.count("uploads")
            self.count("bytes_out", len(value))

    # -- sobuild doctor -------------------------------------------------------------------

    def self_test(self, kernel_keys: list[str], toolchain: str) -> list[tuple[str, str, str]]:
        """(check, status, detail) for ``sobuild doctor``: reachable, writable (a signed
        probe written, read back, checked and removed), and whether the entries this tier
        holds for ``kernel_keys`` (some of the local cache's) carry valid signatures."""
        probe_key = "0" * 32
        name = self.names.data(probe_key)
        present = self._call("exists", name)
        if present is FAILED:
            return [("reachable", "FAIL", self.last_error or _switched_off.get(self.name, ""))]
        checks = [("reachable", "ok", f"{self.url.connect_timeout * 1000:.0f} ms connect, "
                                      f"{self.url.operation_timeout * 1000:.0f} ms operation "
                                      f"timeouts; entries under key id {self.names.key_id}")]
        if not self.writable:
            why = "|read-only" if self.url.read_only else "no secret to sign with"
            checks.append(("writable", "-", f"read-only ({why})"))
        else:
            value = entries.encode_data(probe_key, b"sobuild doctor", self.signer)
            stored = self._call("put_many", {name: value})
            back = self._call("get_many", [name]) if stored is not FAILED else FAILED
            self._call("delete", name)
            if back is FAILED or back[0] != value:
                checks.append(("writable", "FAIL", self.last_error or
                               "a probe written could not be read back unchanged"))
            else:
                checks.append(("writable", "ok", "a signed probe was written, read back and "
                                                 "removed"))
        values = self._call("get_many", [self.names.kernel(k) for k in kernel_keys])
        if values is FAILED or not any(values):
            checks.append(("signatures", "-", "none of this cache's kernels is on the tier under "
                           f"key id {self.names.key_id} (another secret has another key id)"))
            return checks
        refused: dict[str, int] = {}
        found = 0
        for key, value in zip(kernel_keys, values):
            if value is None:
                continue
            found += 1
            try:
                entries.read_kernel_record(value, key, toolchain, self.signer, False)
            except RefusedEntry as exc:
                refused[exc.reason] = refused.get(exc.reason, 0) + 1
        detail = f"{found - sum(refused.values())} of {found} entries of this cache's kernels " \
                 "check" + "".join(f"; {n} {reason}" for reason, n in refused.items())
        checks.append(("signatures", "warn" if refused else "ok", detail))
        return checks

    # -- bounds ---------------------------------------------------------------------------

    def _call(self, operation: str, *args: Any) -> Any:
        """The backend's ``operation(*args, timeouts)``; FAILED when it fails or the tier is
        off. Failures, and successes slower than a connect may take, spend the budget."""
        if not self.on:
            return FAILED
        budget = process_budget()
        operation_timeout = min(self.url.operation_timeout, budget.left)
        if operation_timeout <= 0:
            self._switch_off("the remote wait budget (SOBUILD_REMOTE_BUDGET) is spent")
            return FAILED
        timeouts = Timeouts(min(self.url.connect_timeout, operation_timeout), operation_timeout)
        if self._backend is None:
            self._backend = make_backend(self.url)
        start = time.monotonic()
        try:
            result = getattr(self._backend, operation)(*args, timeouts)
        except RemoteUnavailable as exc:
            budget.left -= time.monotonic() - start
            self.last_error = str(exc)
            self.count("errors")
            self._errors_in_a_row += 1
            if self._errors_in_a_row >= MAX_CONSECUTIVE_ERRORS:
                self._switch_off(f"{self._errors_in_a_row} errors in a row, the last: {exc}")
            elif budget.left <= 0:
                self._switch_off(f"the remote wait budget (SOBUILD_REMOTE_BUDGET) is spent; "
                                 f"the last error: {exc}")
            return FAILED
        self._errors_in_a_row = 0
        elapsed = time.monotonic() - start
        if elapsed > self.url.connect_timeout:  # answering, but slowly
            budget.left -= elapsed
            if budget.left <= 0:
                self._switch_off(f"it answers slowly ({elapsed:.2f} s for one operation) and "
                                 "the remote wait budget (SOBUILD_REMOTE_BUDGET) is spent")
        return result

    def _switch_off(self, why: str) -> None:
        _switched_off[self.name] = why
        self.count("switched_off")
        warnings.warn(f"sobuild: the remote tier {self.name} is switched off for this process "
                      f"({why}); kernels are looked up locally and built here.",
                      RuntimeWarning, stacklevel=5)

    def _refuse(self, exc: RefusedEntry) -> None:
        self.count(f"refused_{exc.reason.replace(' ', '_')}")
        if exc.reason not in self._warned:
            self._warned.add(exc.reason)
            warnings.warn(f"sobuild: refused an entry of the remote tier {self.name} ({exc}); "
                          "it is not used, and the kernel is built here.",
                          RuntimeWarning, stacklevel=5)
