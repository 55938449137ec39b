"""One file per compiler family, plus detection."""

from .base import Toolchain, shared_suffix
from .clang import Clang
from .detect import detect, from_command
from .gcc import GCC
from .msvc import MSVC

__all__ = ["GCC", "MSVC", "Clang", "Toolchain", "detect", "from_command", "shared_suffix"]
