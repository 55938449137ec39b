"""The errors sobuild raises: each says what went wrong and what to do."""

from __future__ import annotations

from dataclasses import dataclass


class SobuildError(Exception):
    """Base class of every sobuild error."""


class CompilerNotFoundError(SobuildError):
    """No usable C++ compiler was found."""


class CacheDirectoryError(SobuildError):
    """The cache directory cannot be used (unwritable, full, not a directory)."""


class UntrustedEntryError(SobuildError):
    """An entry's owner or permissions do not allow running its code."""


class ConfigError(SobuildError, ValueError):
    """A setting (an ``SOBUILD_*`` variable, a preference) has a value sobuild cannot use."""


class SpecError(SobuildError, ValueError):
    """A kernel spec holds something that cannot be built safely or at all."""


@dataclass
class BuildFailure:
    """One kernel that did not compile."""

    key: str
    source_path: str
    log_path: str
    first_lines: list[str]
    #: True when an earlier process's failure was remembered and nothing was compiled.
    remembered: bool = False


class BuildError(SobuildError):
    """One or more kernels did not compile; the rest of their batch was still built."""

    def __init__(self, failures: list[BuildFailure]):
        self.failures = failures
        parts = [f"{len(failures)} kernel(s) failed to compile:"]
        for f in failures:
            parts.append(f"\n--- kernel {f.key}\n    source kept at {f.source_path}"
                         f"\n    full log at {f.log_path}")
            if f.remembered:
                parts.append("    (this build failed before and was not run again: set "
                             "SOBUILD_RETRY_FAILED=1 or run `sobuild clear --failed` once the "
                             "cause is fixed outside the kernel's source and flags)")
            parts.extend(f"    | {line}" for line in f.first_lines)
        super().__init__("\n".join(parts))
