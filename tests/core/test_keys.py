"""The key covers everything that shapes the binary, and nothing that differs between runs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

import sobuild.keys as keys
from sobuild import KernelSpec
from sobuild.keys import check_key, kernel_key
from sobuild.toolchains import GCC

from .kernels import SCALE_ENTRY, scale_spec

TOOLCHAIN = GCC(command=("/usr/bin/g++",), version="g++ (Debian 12.2.0-14) 12.2.0",
                target="x86_64-linux-gnu", system="Linux")


def key(spec: KernelSpec, toolchain=TOOLCHAIN) -> str:
    return kernel_key(spec, toolchain)


BASE = KernelSpec(source="void run(double* v, int32_t n) {}", entry=SCALE_ENTRY,
                  flags=("-O2", "-g"), headers={"a.h": "#define A 1"}, defines={"X": "1"})

VARIANTS = {
    "source": dataclasses.replace(BASE, source="void run(double* v, int32_t n) { }"),
    "header content": dataclasses.replace(BASE, headers={"a.h": "#define A 2"}),
    "header name": dataclasses.replace(BASE, headers={"b.h": "#define A 1"}),
    "extra header": dataclasses.replace(BASE, headers={"a.h": "#define A 1", "b.h": ""}),
    "define value": dataclasses.replace(BASE, defines={"X": "2"}),
    "define without value": dataclasses.replace(BASE, defines={"X": None}),
    "flags": dataclasses.replace(BASE, flags=("-O3", "-g")),
    "flag order": dataclasses.replace(BASE, flags=("-g", "-O2")),
    "entry": dataclasses.replace(BASE, entry="void run(float* v, int32_t n)"),
    "namespace": dataclasses.replace(BASE, namespace="brian2"),
}


@pytest.mark.parametrize("what", sorted(VARIANTS))
def test_every_part_of_the_spec_changes_the_key(what):
    assert key(VARIANTS[what]) != key(BASE)


def test_all_variants_are_distinct():
    all_keys = {key(BASE)} | {key(v) for v in VARIANTS.values()}
    assert len(all_keys) == len(VARIANTS) + 1


def test_dict_order_and_entry_whitespace_do_not_change_the_key():
    reordered = KernelSpec(source=BASE.source, entry="void  run(double* v,  int32_t n)",
                           flags=BASE.flags, headers={"a.h": "#define A 1"},
                           defines={"X": "1"})
    assert key(reordered) == key(BASE)
    two = dataclasses.replace(BASE, defines={"X": "1", "Y": "2"})
    two_reversed = dataclasses.replace(BASE, defines={"Y": "2", "X": "1"})
    assert key(two) == key(two_reversed)


@pytest.mark.parametrize("field,value", [
    ("version", "g++ (Debian 12.2.0-15) 12.2.0"),
    ("target", "aarch64-linux-gnu"),
    ("command", ("/opt/gcc/bin/g++",)),
    ("system", "Darwin"),
])
def test_toolchain_identity_changes_the_key(field, value):
    other = dataclasses.replace(TOOLCHAIN, **{field: value})
    assert key(BASE, other) != key(BASE)


def test_compiler_family_changes_the_key():
    from sobuild.toolchains import Clang

    clang = Clang(command=TOOLCHAIN.command, version=TOOLCHAIN.version, target=TOOLCHAIN.target,
                  system="Linux")
    assert key(BASE, clang) != key(BASE)


def test_platform_changes_the_key(monkeypatch):
    before = key(BASE)
    monkeypatch.setattr(keys, "platform_identity", lambda: {"system": "Linux", "machine": "ppc64le"})
    assert key(BASE) != before


@pytest.mark.parametrize("variable", ["CPATH", "CPLUS_INCLUDE_PATH", "LIBRARY_PATH"])
def test_compiler_environment_changes_the_key(monkeypatch, variable):
    for name in keys.COMPILER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    before = key(BASE)
    monkeypatch.setenv(variable, "/opt/other/include")
    changed = key(BASE)
    monkeypatch.setenv(variable, "/opt/third/include")
    assert len({before, changed, key(BASE)}) == 3
    monkeypatch.setenv(variable, "")  # set but empty: as unset
    assert key(BASE) == before


def test_abi_version_changes_the_key(monkeypatch):
    before = key(BASE)
    monkeypatch.setattr(keys, "ABI_VERSION", keys.ABI_VERSION + 1)
    assert key(BASE) != before


def test_key_is_the_same_in_another_process_and_cache_directory(tmp_path, cache):
    spec = scale_spec(3.0)
    here = cache.key(spec)
    code = (
        "import sys, json, sobuild\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from core.kernels import scale_spec\n"
        "print(sobuild.Cache(sys.argv[2]).key(scale_spec(3.0)))\n"
    )
    tests_dir = str(__import__("pathlib").Path(__file__).parents[1])
    env_hash = {"PYTHONHASHSEED": "random"}
    out = subprocess.run([sys.executable, "-c", code, tests_dir, str(tmp_path / "elsewhere")],
                         capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, **env_hash})
    assert out.stdout.strip() == here


def test_canonical_bytes_sort_mappings_and_keep_the_flag_order():
    headers = {"b.h": "#define B 2", "a.h": "#define A 1"}
    defines = {"Y": "2", "X": None}
    spec = KernelSpec(source=BASE.source, entry=SCALE_ENTRY, flags=("-O2", "-g"),
                      headers=headers, defines=defines)
    reordered = KernelSpec(source=BASE.source, entry=SCALE_ENTRY, flags=("-O2", "-g"),
                           headers=dict(reversed(headers.items())),
                           defines=dict(reversed(defines.items())))
    assert spec.canonical_bytes() == reordered.canonical_bytes()
    data = json.loads(spec.canonical_bytes())
    assert data["headers"] == [["a.h", "#define A 1"], ["b.h", "#define B 2"]]
    assert data["defines"] == [["X", None], ["Y", "2"]]
    # flags are a command line: their order is meaning, kept as given
    swapped = dataclasses.replace(spec, flags=("-g", "-O2"))
    assert json.loads(swapped.canonical_bytes())["flags"] == ["-g", "-O2"]
    assert swapped.canonical_bytes() != spec.canonical_bytes()


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 32, "abc", "0" * 31 + "/", None])
def test_check_key_refuses_what_could_leave_the_cache(bad):
    with pytest.raises(ValueError):
        check_key(bad)


@pytest.mark.parametrize("kwargs,message", [
    ({"entry": "not a declaration"}, "not a C function declaration"),
    ({"headers": {"../escape.h": ""}}, "relative path"),
    ({"headers": {"/abs.h": ""}}, "relative path"),
    ({"defines": {"1BAD": "x"}}, "not a macro name"),
    ({"flags": "-O2"}, "sequence of strings"),
    ({"namespace": "a/b"}, "namespace"),
])
def test_bad_specs_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        KernelSpec(source="", **kwargs)
