"""Brian2's cpp_standalone device builds its projects through sobuild.

``CPPStandaloneDevice.compile_source(directory, compiler, debug, clean)`` runs ``make`` in
the project directory once Brian2 has written the sources and the makefile. The adapter
wraps it: with ``prefs.codegen.runtime.sobuild.standalone`` (default True,
``SOBUILD_STANDALONE=0`` sets it False) the project is built by
``sobuild.standalone.build.build_project``, its objects keyed by content in the process's
Cache; else, and with MSVC, by Brian2's own ``make``. ``device.delete()`` then deletes the
project's build log and no object files (there are none in the project). ``clean`` has no meaning for objects
found by their content and is ignored. The build's time goes where Brian2 keeps make's
(``device.timers['compile']['make']``); what it did is :data:`last_build` and the project's
``sobuild_build.log``.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from brian2.core.preferences import prefs

from ..standalone import LOG_NAME
from . import hooks
from .prefs import get_cache

if TYPE_CHECKING:
    from ..standalone.build import BuildReport

_COMPILE_SOURCE = hooks.declare(__name__, "brian2.devices.cpp_standalone.device",
                                "CPPStandaloneDevice.compile_source", "wrap")

_CODE_FILES_TO_DELETE = hooks.declare(__name__, "brian2.devices.cpp_standalone.device",
                                      "CPPStandaloneDevice.code_files_to_delete", "wrap")

#: The report of this process's last standalone build through sobuild (None before one).
last_build: BuildReport | None = None


def enabled() -> bool:
    """Whether standalone projects are built through sobuild (the preference)."""
    return bool(prefs["codegen.runtime.sobuild.standalone"])


def _wrap(original):
    def compile_source(self, directory, compiler, debug, clean):
        if compiler == "msvc" or not enabled():
            return original(self, directory, compiler, debug, clean)
        from ..standalone.build import build_project

        global last_build
        start = time.time()
        last_build = build_project(directory, get_cache())
        timers = getattr(self, "timers", {}).get("compile")
        if isinstance(timers, dict):  # Brian2 logs it with its other times
            timers["make"] = time.time() - start

    return compile_source


def _wrap_files_to_delete(original):
    def code_files_to_delete(self):
        """Brian2's list without the object files ``make`` would have left (a build through
        sobuild keeps its objects in the cache), with sobuild's build log."""
        names = [name for name in original(self)
                 if not name.endswith(".o") or os.path.exists(os.path.join(self.project_dir, name))]
        if os.path.exists(os.path.join(self.project_dir, LOG_NAME)):
            names.append(LOG_NAME)
        return names

    return code_files_to_delete


def install() -> None:
    """Wrap ``CPPStandaloneDevice.compile_source`` and ``code_files_to_delete`` (once)."""
    _COMPILE_SOURCE.wrap(_wrap)
    _CODE_FILES_TO_DELETE.wrap(_wrap_files_to_delete)
