"""The adapter's hooks into Brian2's internals: each is sobuild's after import; a missing one
makes the import fail naming it (before anything is patched); another Brian2 version warns
once.

The failures are real: a process imports Brian2, deletes one attribute a hook needs and only
then imports the adapter. It forks once per hook, so that Brian2 is imported once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def _sobuild_code(function, module: str) -> bool:
    """Whether ``function`` is defined in the adapter's ``module`` (functools.wraps copies
    ``__module__``, not the code)."""
    import sobuild.brian_adapter

    path = os.path.join(os.path.dirname(sobuild.brian_adapter.__file__), f"{module}.py")
    return os.path.samefile(function.__code__.co_filename, path)


def _wrapped(module, path):
    def check(name):
        value = _resolve(module, path)
        assert getattr(value, "_sobuild_hook", None) == name
        assert _sobuild_code(value, name.partition(":")[0])
    return check


def _resolve(module, path):
    import importlib

    obj = importlib.import_module(module)
    for part in path.split(".") if path else ():
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def _present(module, path):
    def check(name):
        _resolve(module, path)  # read by the adapter: there, and nothing of sobuild's
    return check


def _cell(module, path):
    def check(name):
        import inspect

        from sobuild.brian_adapter.codegen_cache import PersistentFunction

        *parents, last = path.split(".")
        raw = inspect.getattr_static(_resolve(module, ".".join(parents)), last)
        raw = getattr(raw, "__func__", raw)  # a staticmethod
        cell = raw.__closure__[raw.__code__.co_freevars.index("func")]
        assert isinstance(cell.cell_contents, PersistentFunction)
        assert cell.cell_contents.name == f"{module}.{path}"
    return check


def _random_implementation(kind):
    def check(name):
        from brian2.core.functions import DEFAULT_FUNCTIONS
        from brian2.devices.device import all_devices

        from sobuild.brian_adapter import SoBuildCodeObject, random_numbers

        implementation = DEFAULT_FUNCTIONS[kind].implementations[SoBuildCodeObject]
        namespace = implementation.get_namespace(None)
        assert namespace[f"_{kind}_generator"] is random_numbers.GENERATOR
        for suffix in ("_buffer", "_buffer_index"):
            assert namespace[f"_{kind}{suffix}"] is getattr(all_devices["runtime"], kind + suffix)
    return check


def _unit_registry(registry_name):
    def check(name):
        from brian2.units import fundamentalunits

        from sobuild.brian_adapter import codegen_effects

        registry = getattr(fundamentalunits, registry_name)
        assert codegen_effects._registry_name(registry) == registry_name
    return check


def _targets(name):
    from brian2.codegen.targets import codegen_targets

    from sobuild.brian_adapter import SoBuildCodeObject

    assert SoBuildCodeObject in codegen_targets


def _cache_dirs(name):
    import brian2

    root, files = brian2._cache_dirs_and_extensions["sobuild"]
    assert os.path.isabs(root) and files == ("index.sqlite",)


def _after_a_run():
    """A NeuronGroup run for one step on the sobuild target."""
    from brian2 import NeuronGroup, defaultclock, prefs, run

    prefs.codegen.target = "sobuild"
    group = NeuronGroup(3, "dv/dt = -v / (10*ms) : 1")
    run(defaultclock.dt)
    return group


def _advance(name):
    group = _after_a_run()
    advance = group.clock.__dict__.get("advance")
    # the clock's step in C (clock), followed by the steps in C (step_loop, the default)
    assert advance is not None and _sobuild_code(advance, "step_loop")


def _fused_run(name):
    updater = _after_a_run().state_updater  # the object with the group's code object
    fused = updater.__dict__.get("run")
    assert fused is not None and _sobuild_code(fused, "codeobject")


CELLS = ("brian2.stateupdaters.base", "StateUpdateMethod.apply_stateupdater"), \
    ("brian2.stateupdaters.exact", "LinearStateUpdater.__call__"), \
    ("brian2.codegen.translation", "make_statements"), \
    ("brian2.equations.equations", "parse_string_equations"), \
    ("brian2.parsing.sympytools", "_str_to_sympy"), \
    ("brian2.parsing.sympytools", "sympy_to_str"), \
    ("brian2.parsing.statements", "parse_statement")
REGISTRIES = ("standard_unit_register", "additional_unit_register", "user_unit_register")

#: What each hook looks like once installed, checked here from Brian2's side, by name.
CHECKS = {
    **{f"codegen_cache: {m}.{p}": _cell(m, p) for m, p in CELLS},
    "codegen_effects: brian2.utils.logger.BrianLogger._log":
        _wrapped("brian2.utils.logger", "BrianLogger._log"),
    "codegen_effects: brian2.units.fundamentalunits.UnitRegistry.add":
        _wrapped("brian2.units.fundamentalunits", "UnitRegistry.add"),
    **{f"codegen_effects: brian2.units.fundamentalunits.{r}": _unit_registry(r)
       for r in REGISTRIES},
    "batch: brian2.core.network.Network.before_run":
        _wrapped("brian2.core.network", "Network.before_run"),
    "clear: brian2.clear_cache": _wrapped("brian2", "clear_cache"),
    "clear: brian2._cache_dirs_and_extensions": _cache_dirs,
    **{f"random_numbers: brian2.core.functions.DEFAULT_FUNCTIONS.{kind}.implementations":
       _random_implementation(kind) for kind in ("rand", "randn")},
    **{f"random_numbers: brian2.devices.device.all_devices.runtime.{kind}{suffix}":
       _random_implementation(kind) for kind in ("rand", "randn")
       for suffix in ("_buffer", "_buffer_index")},
    "codeobject: brian2.codegen.targets.codegen_targets": _targets,
    "codeobject: brian2.core.base.BrianObject.run": _fused_run,
    "clock: brian2.core.clocks.Clock.advance": _advance,
    "step_loop: brian2.core.network.Network.run": _wrapped("brian2.core.network", "Network.run"),
    **{f"step_loop: brian2.core.network.{path}": _present("brian2.core.network", path)
       for path in ("Network._globally_stopped", "Network._nextclocks", "TextReport")},
    "step_loop: brian2.devices.device.all_devices.runtime._maximum_run_time":
        _present("brian2.devices.device", "all_devices.runtime._maximum_run_time"),
    "standalone: brian2.devices.cpp_standalone.device.CPPStandaloneDevice.compile_source":
        _wrapped("brian2.devices.cpp_standalone.device", "CPPStandaloneDevice.compile_source"),
    "standalone: brian2.devices.cpp_standalone.device.CPPStandaloneDevice.code_files_to_delete":
        _wrapped("brian2.devices.cpp_standalone.device",
                 "CPPStandaloneDevice.code_files_to_delete"),
    **{f"linear_exponential: brian2.stateupdaters.exact.{name}":
       _wrapped("brian2.stateupdaters.exact", name)
       for name in ("get_linear_system", "extract_method_options")},
}


def test_every_hook_is_checked_here():
    from sobuild.brian_adapter import hooks

    assert set(hooks.HOOKS) == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_hook_is_in_place_after_import(name):
    CHECKS[name](name)


def test_the_tested_versions_are_declared_and_this_is_one():
    import brian2

    from sobuild.brian_adapter import hooks

    assert hooks.TESTED_BRIAN2_VERSIONS and all(
        v.count(".") == 1 for v in hooks.TESTED_BRIAN2_VERSIONS)
    assert hooks.is_tested(brian2.__version__), (
        f"CI runs Brian2 {brian2.__version__}: add it to TESTED_BRIAN2_VERSIONS once these "
        "tests pass with it")
    assert hooks.is_tested("2.11.1.dev4+gabc") and not hooks.is_tested("2.1.0")
    assert not hooks.is_tested("unknown")


# -- in fresh processes: the adapter imported after Brian2 was changed ----------------------------

PROBE = textwrap.dedent("""
    import importlib, json, os, sys, warnings
    from collections.abc import Mapping

    import brian2  # everything Brian2 imports, before the adapter

    def resolve(module, path):
        obj = importlib.import_module(module)
        parts = path.split(".") if path else []
        for part in parts:
            obj = obj[part] if isinstance(obj, Mapping) else getattr(obj, part)
        return obj

    def patched(hooks):
        # the places that are sobuild's now (after a failed import: none may be)
        found = []
        for name, (module, path, kind) in hooks.items():
            try:
                value = resolve(module, path)
            except (AttributeError, KeyError):  # the one deleted
                continue
            if kind == "wrap" and getattr(value, "_sobuild_hook", None):
                found.append(name)
            if kind == "cell" and any(type(c.cell_contents).__name__ == "PersistentFunction"
                                      for c in getattr(value, "__closure__", None) or ()):
                found.append(name)
        targets = getattr(importlib.import_module("brian2.codegen.targets"), "codegen_targets", ())
        if any(t.__name__ == "SoBuildCodeObject" for t in targets):
            found.append("codegen_targets")
        return found

    def import_adapter():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                import sobuild.brian_adapter
                error = None
            except Exception as exc:
                error = {"type": type(exc).__name__, "message": str(exc)}
            if error is None:  # a second check: still one warning
                sobuild.brian_adapter.hooks.check_brian2_version()
        return error, [f"{w.category.__name__}: {w.message}" for w in caught
                       if "Brian2" in str(w.message)]

    def probe(change):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                change()
                error, warned = import_adapter()
                out = {"error": error, "warnings": warned, "patched": patched(hooks)}
            except BaseException as exc:
                out = {"probe_failed": repr(exc)}
            os.write(write, json.dumps(out).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        return json.loads(data)

    def deleting(module, path):
        def change():
            *parents, last = path.split(".")
            owner = resolve(module, ".".join(parents))
            if isinstance(owner, Mapping):
                del owner[last]
            elif isinstance(owner, type):  # gone from the class and the classes it inherits
                for klass in owner.__mro__:
                    if last in vars(klass) and klass is not object:
                        delattr(klass, last)
            else:
                delattr(owner, last)
        return change

    def version(value):
        def change():
            brian2.__version__ = value
        return change

    hooks = json.loads(sys.argv[1])
    results = {"version:" + v: probe(version(v)) for v in sys.argv[2:]}
    results.update({name: probe(deleting(module, path))
                    for name, (module, path, kind) in hooks.items()})
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """Per hook (and per Brian2 version "version:V"): what importing the adapter did in a
    process where that hook's attribute was deleted (or Brian2's version set) first."""
    from sobuild.brian_adapter import hooks

    declared = {name: (h.module, h.path, h.kind) for name, h in hooks.HOOKS.items()}
    env = {**os.environ, "SOBUILD_BRIAN_AUTOLOAD": "0",
           "SOBUILD_CACHE_DIR": str(tmp_path_factory.mktemp("hooks-cache"))}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(declared), "2.99.0", "2.11.0", "3.0"],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.needs_fork
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_a_missing_hook_is_an_error_naming_it(probes, name):
    result = probes[name]
    assert "probe_failed" not in result, result
    assert result["error"] is not None, f"the adapter imported without {name}"
    assert result["error"]["type"] == "HookError"
    message = result["error"]["message"]
    assert message.startswith(f"sobuild.brian_adapter: cannot install hook '{name}' — "), message
    assert "the adapter is tested with Brian2 2.11" in message
    assert result["patched"] == [], "a hook was installed before the import failed"


@pytest.mark.needs_fork
@pytest.mark.parametrize("version", ["2.99.0", "3.0"])
def test_another_brian2_version_warns_once(probes, version):
    result = probes[f"version:{version}"]
    assert result["error"] is None
    assert len(result["warnings"]) == 1, result["warnings"]
    warning = result["warnings"][0]
    assert warning.startswith("UntestedBrian2Warning: ")
    assert f"Brian2 {version} is installed" in warning and "tested with Brian2 2.11" in warning
    assert len(result["patched"]) > 0  # a warning only: the adapter is installed


@pytest.mark.needs_fork
def test_a_tested_brian2_version_does_not_warn(probes):
    result = probes["version:2.11.0"]
    assert result["error"] is None and result["warnings"] == []


def test_the_hook_error_names_the_hook_and_says_what_to_do():
    from sobuild.brian_adapter import hooks
    from sobuild.errors import SobuildError

    hook = hooks.Hook("batch", "brian2.core.network", "Network.not_there", "wrap")
    with pytest.raises(hooks.HookError) as caught:
        hook.wrap(lambda original: original)
    assert isinstance(caught.value, SobuildError)
    assert caught.value.hook == "batch: brian2.core.network.Network.not_there"
    assert str(caught.value).startswith(
        "sobuild.brian_adapter: cannot install hook 'batch: brian2.core.network.Network."
        "not_there' — brian2.core.network.Network has no attribute 'not_there'.")
    assert "pip install 'brian2==2.11.*'" in str(caught.value)
