"""sobuild: a content-addressed build cache for generated C++ kernels, loaded with cffi."""

from .cache import Cache
from .errors import (
    BuildError,
    CacheDirectoryError,
    CompilerNotFoundError,
    SobuildError,
    UntrustedEntryError,
)
from .loader.cffi_loader import Kernel
from .spec import KernelSpec

__all__ = [
    "BuildError",
    "Cache",
    "CacheDirectoryError",
    "CompilerNotFoundError",
    "Kernel",
    "KernelSpec",
    "SobuildError",
    "UntrustedEntryError",
]
__version__ = "0.1.0"
