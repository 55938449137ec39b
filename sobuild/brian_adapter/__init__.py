"""Brian2 integration: ``import sobuild.brian_adapter; prefs.codegen.target = 'sobuild'``.

Importing this module registers the 'sobuild' runtime target with Brian2 and turns on the
persistent cache of Brian2's code generation for every target.
"""

from . import prefs as _prefs  # noqa: F401  (registers prefs.codegen.runtime.sobuild)
from .codegen_cache import install as _install_codegen_cache
from .codeobject import SoBuildCodeObject

_install_codegen_cache()

__all__ = ["SoBuildCodeObject"]
