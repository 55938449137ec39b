"""Nothing from a spec reaches a shell or a ninja binding, and a spec that cannot be built
says why before any build.

The attack: a newline in a flag (flags come from configuration too, e.g. Brian2's
``extra_compile_args``) became a line of build.ninja, and a ``command =`` line there ran a
shell command.
"""

from __future__ import annotations

import shlex
import shutil
import uuid

import numpy as np
import pytest

import sobuild
from sobuild import KernelSpec
from sobuild.errors import SpecError
from sobuild.toolchains.detect import from_command

ENTRY = "void run(double* v, int32_t n)"
SOURCE = "void run(double* v, int32_t n) { for (int32_t i = 0; i < n; i++) v[i] += 1; }\n"


@pytest.fixture
def marker(tmp_path):
    """Where the injected command would leave its trace: a name nothing else creates."""
    path = tmp_path / f"PWNED-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), "the injected command ran"


def attack(marker) -> str:
    """A build.ninja binding that runs ``touch marker`` as the compile command; the last
    line turns the closing quote of the shell-quoted flag into a ninja comment."""
    return f"-O2\n  command = touch {marker}\nbuild x: phony\n#"


@pytest.mark.parametrize("where", ["flag", "define value", "header name", "entry"])
def test_a_line_break_in_a_spec_is_refused_and_runs_nothing(tmp_path, marker, where):
    payload = attack(marker)
    fields = {
        "flag": {"flags": ("-O1", payload)},
        "define value": {"defines": {"X": payload}},
        "header name": {"headers": {payload: "#define X 1"}},
        "entry": {"entry": f"void run(double* v, int32_t n{payload})"},
    }[where]
    with pytest.raises(SpecError) as info:
        sobuild.Cache(tmp_path / "cache").load(KernelSpec(**{"source": SOURCE, "entry": ENTRY, **fields}))
    message = str(info.value)
    assert where.split()[0] in message and repr(payload)[1:-1] in message


@pytest.mark.parametrize("char", ["\r", "\0"])
def test_a_carriage_return_or_nul_in_a_flag_is_refused(char):
    with pytest.raises(SpecError, match="flag 0"):
        KernelSpec(source=SOURCE, entry=ENTRY, flags=(f"-O2{char}-O0",))


def test_a_spec_changed_after_its_checks_still_never_reaches_build_ninja(tmp_path, marker):
    """A spec is re-checked where build.ninja is written (one unpickled, or changed through
    ``object.__setattr__``, never went through ``__post_init__``)."""
    spec = KernelSpec(source=SOURCE, entry=ENTRY, flags=("-O2",))
    object.__setattr__(spec, "flags", ("-O1", attack(marker)))
    with pytest.raises(SpecError, match="flag 1"):
        sobuild.Cache(tmp_path / "cache").load(spec)


def test_a_dollar_in_a_flag_reaches_the_compiler_as_plain_text(tmp_path, marker):
    # ninja would read $HOME, ${PATH} and $$ as its own; a shell, $(...) and $HOME
    text = f"$HOME${{PATH}}$$$(touch{marker})"
    spec = KernelSpec(source="""
        #define STRING2(x) #x
        #define STRING(x) STRING2(x)
        void run(char* out, int32_t n) { std::strncpy(out, STRING(X), n); }
        """, entry="void run(char* out, int32_t n)", flags=("-O1", f"-DX={text}"))
    out = np.zeros(256, dtype=np.int8)
    sobuild.Cache(tmp_path / "cache").load(spec)(out, out.size - 1)
    assert out.tobytes().rstrip(b"\0").decode() == text


def test_a_compiler_whose_path_holds_a_dollar_runs_from_that_very_path(tmp_path, marker):
    bin_dir = tmp_path / "bin$HOME$(touch MARKER)".replace("MARKER", str(marker))
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "g++"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("g++")} "$@"\n')
    wrapper.chmod(0o755)
    cache = sobuild.Cache(tmp_path / "cache", toolchain=from_command(shlex.quote(str(wrapper))))
    v = np.array([1.0])
    cache.load(KernelSpec(source=SOURCE, entry=ENTRY))(v, 1)
    assert v[0] == 2.0


# -- what a spec may hold -------------------------------------------------------------------

@pytest.mark.parametrize("entry,shown", [
    ("void run(std::vector<double>& v)", "& :: < >"),
    ("void run(double& x, int32_t n)", "&"),
    ("int32_t run(ns::Thing* t)", "::"),
    ("void run(Array<float> a)", "< >"),
])
def test_an_entry_with_cxx_only_types_is_refused_before_any_build(entry, shown):
    with pytest.raises(SpecError) as info:
        KernelSpec(source="void run() {}", entry=entry)
    message = str(info.value)
    assert repr(entry) in message and f"({shown})" in message
    assert "C declaration" in message and "<stdint.h>" in message and "pointers" in message


def test_a_source_that_is_not_utf8_names_the_position():
    raw = b"void run(double* v, int32_t n) {\n    // caf\xe9\n}\n"
    with pytest.raises(SpecError, match=r"source is not valid UTF-8: .*line 2, column 11"):
        KernelSpec(source=raw, entry=ENTRY)
    escaped = raw.decode("utf-8", "surrogateescape")  # what os.fsdecode and friends give
    with pytest.raises(SpecError, match=r"source is not valid UTF-8: .*line 2, column 11"):
        KernelSpec(source=escaped, entry=ENTRY)
    with pytest.raises(SpecError, match=r"header 'params.h' is not valid UTF-8"):
        KernelSpec(source=SOURCE, entry=ENTRY, headers={"params.h": escaped})
    decoded = KernelSpec(source="// café\n".encode() + SOURCE.encode(), entry=ENTRY)
    assert decoded.source == "// café\n" + SOURCE
