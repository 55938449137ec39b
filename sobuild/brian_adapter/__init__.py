"""Brian2 integration: ``import sobuild.brian_adapter; prefs.codegen.target = 'sobuild'``.

Importing this module registers the 'sobuild' runtime target with Brian2 and turns on the
persistent cache of Brian2's code generation for every target, and the closed-form matrix
exponential of its linear state updater (``linear_exponential``: the same code, seconds
sooner). It also sets
``SOBUILD_BRIAN_AUTOLOAD=1`` (unless set already) for the Python processes this one starts,
so that they, too, know the target as soon as they import ``brian2`` (see
``autoload/_sobuild_autoload.py``).

The adapter hooks into Brian2's internals (see ``hooks``): with a Brian2 it is not tested
with (``hooks.TESTED_BRIAN2_VERSIONS``) the import warns once, and a hook that cannot be
installed raises ``hooks.HookError`` naming it, before any hook is installed.
"""

import os as _os

from . import prewarm as _prewarm

_prewarm.start()  # before Brian2 is imported: it builds while Brian2 loads

from . import hooks as _hooks  # noqa: E402

_hooks.check_brian2_version()

from . import codegen_cache as _codegen_cache  # noqa: E402
from . import codeobject as _codeobject  # noqa: E402
from . import linear_exponential as _linear_exponential  # noqa: E402
from . import prefs as _prefs  # noqa: E402,F401  (registers prefs.codegen.runtime.sobuild)
from . import standalone as _standalone  # noqa: E402
from . import step_loop as _step_loop  # noqa: E402
from .codeobject import SoBuildCodeObject  # noqa: E402

_hooks.check_declared()
_codeobject.install()
_step_loop.install()
_codegen_cache.install()
_linear_exponential.install()
_standalone.install()
_os.environ.setdefault("SOBUILD_BRIAN_AUTOLOAD", "1")

__all__ = ["SoBuildCodeObject"]
