"""One file per compiler family, plus detection."""

from .base import Toolchain, shared_suffix
from .clang import Clang
from .detect import detect
from .gcc import GCC
from .msvc import MSVC

__all__ = ["GCC", "MSVC", "Clang", "Toolchain", "detect", "shared_suffix"]
