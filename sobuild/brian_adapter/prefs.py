"""Brian2 preferences of the sobuild target, and the one Cache a Brian2 process uses.

Brian2 users look for settings in ``prefs``: ``prefs.codegen.runtime.sobuild.*``.
Environment variables (``SOBUILD_CACHE_DIR``, ``SOBUILD_CODEGEN_CACHE``) are the defaults.
"""

from __future__ import annotations

import os

from brian2.core.preferences import BrianPreference, prefs

from ..cache import Cache
from ..errors import ConfigError
from . import prewarm
from .support_library import KERNEL_FLAGS


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


#: The values of ``codegen.runtime.sobuild.step_loop``.
STEP_LOOPS = ("c", "python")


def _step_loop_default() -> str:
    value = os.environ.get("SOBUILD_STEP_LOOP", "c").strip().lower()
    if value not in STEP_LOOPS:
        raise ConfigError(f"SOBUILD_STEP_LOOP={value!r} is not valid: give one of "
                          f"{', '.join(STEP_LOOPS)} (where a Brian2 network's steps loop)")
    return value


prefs.register_preferences(
    "codegen.runtime.sobuild",
    "sobuild runtime target and cache preferences",
    cache_dir=BrianPreference(
        default=None,
        validator=lambda x: x is None or isinstance(x, str),
        docs="""Cache directory of sobuild (None: ``$SOBUILD_CACHE_DIR`` or the user cache
        directory). Holds the compiled kernels and the cached code generation.""",
    ),
    extra_compile_args=BrianPreference(
        default=list(KERNEL_FLAGS),
        docs="""Compiler flags for sobuild kernels (GCC/Clang syntax; they are part of the
        cache key). Add ``-march=native`` only for a cache that is not shared between
        machines of different CPUs.""",
    ),
    step_loop=BrianPreference(
        default=_step_loop_default(),
        validator=lambda x: x in STEP_LOOPS,
        docs="""Where a network's time steps loop: ``'c'`` (steps that need no Python run in
        C, many per return to Python) or ``'python'`` (Brian2's loop calls every step).
        ``SOBUILD_STEP_LOOP`` sets the default (``'c'``).""",
    ),
    codegen_cache=BrianPreference(
        default=_env_flag("SOBUILD_CODEGEN_CACHE", True),
        docs="""Persist Brian2's code generation (the results of its ``@cached`` sympy
        work) across processes in the sobuild cache, for every target.
        ``SOBUILD_CODEGEN_CACHE=0`` sets the default to False.""",
    ),
    standalone=BrianPreference(
        default=_env_flag("SOBUILD_STANDALONE", True),
        docs="""Build ``cpp_standalone`` projects through sobuild: object files keyed by
        content and kept in the cache, shared by every project directory
        (``sobuild.standalone``). False (or ``SOBUILD_STANDALONE=0``): Brian2's own
        ``make``.""",
    ),
)

_cache: Cache | None = prewarm.cache


def get_cache() -> Cache:
    """The process-wide Cache, in ``prefs.codegen.runtime.sobuild.cache_dir`` if set."""
    global _cache
    wanted = prefs["codegen.runtime.sobuild.cache_dir"]
    if _cache is None or (wanted is not None and os.path.abspath(wanted) != str(_cache.root)):
        _cache = Cache(wanted)
    return _cache
