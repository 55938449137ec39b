"""Make the 'sobuild' Brian2 target known in every Python process of this environment.

A process that uses the 'sobuild' target may start other Python processes (Brian2's own
tests do, and so do parameter sweeps) that read the same preferences but never import
``sobuild.brian_adapter``; Brian2 would then report 'sobuild' as an unknown target. The
``sobuild-brian-autoload.pth`` file installed beside this module calls :func:`install` at
start-up when ``SOBUILD_BRIAN_AUTOLOAD`` is set (and not ``0``); ``sobuild.brian_adapter``
sets it for the processes it starts. :func:`install` only adds an import hook: the adapter
is imported right after ``brian2`` itself, in processes that import ``brian2`` at all.

This is a top-level module, not part of the ``sobuild`` package, so that the check at
start-up imports nothing (the pattern of setuptools' ``_distutils_hack``).
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

ENVIRONMENT_VARIABLE = "SOBUILD_BRIAN_AUTOLOAD"


class _ImportAdapterAfterBrian2(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of ``brian2`` to import the adapter after it."""

    def find_spec(self, name, path, target=None):  # noqa: ANN001 (importlib's signature)
        if name != "brian2":
            return None
        sys.meta_path.remove(self)
        spec = _find_with_the_other_finders(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        exec_brian2 = spec.loader.exec_module

        def exec_module(module):  # noqa: ANN001, ANN202
            exec_brian2(module)
            try:
                import sobuild.brian_adapter  # noqa: F401
            except Exception as error:  # a broken adapter must not break Brian2 itself
                warnings.warn(
                    f"{ENVIRONMENT_VARIABLE} is set but sobuild.brian_adapter could not be "
                    f"imported ({error!r}); the 'sobuild' target is not available in this process",
                    stacklevel=2,
                )

        spec.loader.exec_module = exec_module
        return spec


def _find_with_the_other_finders(name, path, target):  # noqa: ANN001, ANN202
    """The spec the rest of ``sys.meta_path`` gives (an editable install's finder too)."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        spec = find_spec(name, path, target) if find_spec else None
        if spec is not None:
            return spec
    return None


def install() -> None:
    """Import ``sobuild.brian_adapter`` as soon as ``brian2`` has been imported."""
    if "brian2" in sys.modules:
        import sobuild.brian_adapter  # noqa: F401
    elif not any(isinstance(f, _ImportAdapterAfterBrian2) for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportAdapterAfterBrian2())
