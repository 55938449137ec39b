"""Brian2 integration: ``import sobuild.brian_adapter; prefs.codegen.target = 'sobuild'``.

Importing this module registers the 'sobuild' runtime target with Brian2 and turns on the
persistent cache of Brian2's code generation for every target. It also sets
``SOBUILD_BRIAN_AUTOLOAD=1`` (unless set already) for the Python processes this one starts,
so that they, too, know the target as soon as they import ``brian2`` (see
``autoload/_sobuild_autoload.py``).
"""

import os as _os

from . import prefs as _prefs  # noqa: F401  (registers prefs.codegen.runtime.sobuild)
from .codegen_cache import install as _install_codegen_cache
from .codeobject import SoBuildCodeObject

_install_codegen_cache()
_os.environ.setdefault("SOBUILD_BRIAN_AUTOLOAD", "1")

__all__ = ["SoBuildCodeObject"]
