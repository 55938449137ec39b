"""Build-only mode: run a Brian2 script so that every ``run()`` generates and builds its code
objects and simulates nothing (``sobuild prebuild SCRIPT``).

Every ``Network.run(duration)`` (``brian2.run`` goes through the magic network) becomes
``Network.run(0*second)``: Brian2 then does all of ``before_run`` -- code generation, which
fills Brian2's code generation cache, and the 'sobuild' target's one batch build of the
network's kernels -- and advances no time. Scripts run as ``__main__`` with ``sys.argv``
set, the matplotlib backend set to ``Agg`` (no window opens), and in the cache chosen with
``into``.

Target: the 'sobuild' target is selected before the script starts, so a script that leaves
``prefs.codegen.target`` alone builds sobuild kernels; a script that chooses another target
itself keeps it (what a later job of that script runs is what gets built). ``target`` forces
one target for every run, whatever the script chooses.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import SobuildError

#: Called after each run's build with (run number, network name, code objects in it).
RunCallback = Callable[[int, str, int], None]


class PrebuildError(SobuildError):
    """The script cannot be prebuilt (not found, or a device other than runtime)."""


@dataclass
class PrebuildResult:
    """What a prebuild did: runs seen, the cache counters it moved, the script's error."""

    script: Path
    cache_dir: Path
    runs: int = 0
    code_objects: int = 0
    counters: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@contextmanager
def _saved_state() -> Iterator[None]:
    """Restore sys.argv, sys.path, the environment variables, the prefs we touch, the device."""
    from brian2 import prefs
    from brian2.devices.device import get_device, reset_device

    argv, path = sys.argv[:], sys.path[:]
    env = {k: os.environ.get(k) for k in ("SOBUILD_CACHE_DIR", "MPLBACKEND")}
    saved = {k: prefs[k] for k in ("codegen.target", "codegen.runtime.sobuild.cache_dir")}
    device = get_device()
    try:
        yield
    finally:
        sys.argv[:], sys.path[:] = argv, path
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for k, v in saved.items():
            prefs[k] = v
        if get_device() is not device:
            reset_device(device)


@contextmanager
def build_only(target: str | None = None, into: Path | None = None,
               on_run: RunCallback | None = None) -> Iterator[None]:
    """Within this block every Brian2 ``Network.run`` builds its code and simulates nothing."""
    from brian2 import Network, prefs, second
    from brian2.devices.device import RuntimeDevice, get_device

    original, original_before_run = Network.run, Network.before_run
    runs = code_objects = 0

    def before_run(self, run_namespace):
        nonlocal code_objects
        original_before_run(self, run_namespace)
        code_objects = sum(len(obj.code_objects) for obj in self.sorted_objects if obj.active)

    def run(self, duration, report=None, report_period=10 * second, namespace=None,
            profile=None, level=0):
        nonlocal runs
        device = get_device()
        if not isinstance(device, RuntimeDevice):
            raise PrebuildError(f"prebuild needs Brian2's runtime device; the script chose "
                                f"{type(device).__name__} (standalone code is built by "
                                "device.build(), not by sobuild)")
        if target is not None:
            prefs.codegen.target = target
        if into is not None:
            prefs["codegen.runtime.sobuild.cache_dir"] = str(into)
        original(self, 0 * second, report=report, report_period=report_period,
                 namespace=namespace, profile=profile, level=level + 1)
        runs += 1
        if on_run is not None:
            on_run(runs, self.name, code_objects)

    Network.run, Network.before_run = run, before_run
    try:
        yield
    finally:
        Network.run, Network.before_run = original, original_before_run


def _script_traceback(exc: BaseException, script: Path) -> str:
    """The traceback from the script's first frame on (not prebuild's own frames)."""
    tb = exc.__traceback__
    while tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve() != script:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def prebuild(script: str | os.PathLike, args: list[str] | None = None, *,
             into: str | os.PathLike | None = None, target: str | None = None,
             progress: Callable[[int, int], None] | None = None) -> PrebuildResult:
    """Run ``script`` in build-only mode; its error, if any, is returned, not raised."""
    script = Path(script).resolve()
    if not script.is_file():
        raise PrebuildError(f"{script} is not a file: give the path of a Brian2 script")
    into_path = Path(into).expanduser().resolve() if into is not None else None
    with _saved_state():
        if into_path is not None:
            os.environ["SOBUILD_CACHE_DIR"] = str(into_path)
        os.environ["MPLBACKEND"] = "Agg"
        from brian2 import prefs

        from . import prefs as sobuild_prefs

        prefs.codegen.target = target or "sobuild"
        # name the directory: the process-wide cache may have been made for another one
        prefs["codegen.runtime.sobuild.cache_dir"] = str(into_path or
                                                         Settings.from_env().cache_dir)
        cache = sobuild_prefs.get_cache()
        before = cache.store.counters()
        result = PrebuildResult(script, cache.root)

        def on_run(number: int, name: str, code_objects: int) -> None:
            result.runs = number
            result.code_objects += code_objects

        sys.argv[:] = [str(script), *(args or [])]
        sys.path.insert(0, str(script.parent))
        saved_progress, cache.progress = cache.progress, progress
        try:
            with build_only(target, into_path, on_run):
                runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                result.error = f"the script exited with status {exc.code}"
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the script's own error: reported, not raised
            result.error = f"{type(exc).__name__}: {exc}"
            result.traceback = _script_traceback(exc, script)
        finally:
            cache.progress = saved_progress
        cache = sobuild_prefs.get_cache()
        cache.flush()
        after = cache.store.counters()
        result.cache_dir = cache.root
        result.counters = {k: v - before.get(k, 0) for k, v in after.items()
                           if v - before.get(k, 0)}
    return result
