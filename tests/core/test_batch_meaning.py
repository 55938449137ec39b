"""A kernel compiles in a batch exactly as it would alone: its neighbours in a translation
unit change neither what it includes, nor its macros, nor whether it compiles.

``jobs=1`` asks for one unit per batch: kernels end up in separate units only where sharing
one would change their meaning.
"""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys

import pytest

import sobuild
from sobuild import BuildError, KernelSpec
from sobuild.compilation.translation_unit import split_source
from sobuild.store.layout import Layout

ENTRY = "int32_t run(int32_t x)"

#: Loads a kernel from a cache where it must already be, and prints what run(1) returns.
CALL = """
import pickle, sys
import sobuild
cache = sobuild.Cache(sys.argv[1])
spec = pickle.loads(bytes.fromhex(sys.argv[2]))
assert cache.lookup(spec) is not None, "the kernel was not built by the test"
print(cache.load(spec)(1), flush=True)
"""


def call_in_subprocess(root, spec: KernelSpec) -> subprocess.CompletedProcess:
    """``run(1)`` of ``spec`` (built in ``root``) in a process of its own: it may abort."""
    return subprocess.run([sys.executable, "-c", CALL, str(root), pickle.dumps(spec).hex()],
                          capture_output=True, text=True)


def assert_returns(root, spec: KernelSpec, value: int) -> None:
    proc = call_in_subprocess(root, spec)
    assert (proc.returncode, proc.stdout.strip()) == (0, str(value)), proc.stderr


def assert_aborts(root, spec: KernelSpec) -> None:
    proc = call_in_subprocess(root, spec)
    assert proc.returncode == -signal.SIGABRT, (proc.returncode, proc.stdout, proc.stderr)
    assert "Assertion" in proc.stderr


def test_a_kernel_that_forgot_an_include_fails_in_a_batch_as_it_does_alone(tmp_path):
    forgot = KernelSpec("""
        int32_t run(int32_t x) { std::vector<int32_t> v(3, x); return (int32_t)v.size(); }
        """, entry=ENTRY)
    includes = KernelSpec("""
        #include <vector>
        int32_t run(int32_t x) { std::vector<int32_t> v(2, x); return 10 + (int32_t)v.size(); }
        """, entry=ENTRY)
    with pytest.raises(BuildError) as alone:
        sobuild.Cache(tmp_path / "alone", jobs=1).load(forgot)
    root = tmp_path / "c"
    cache = sobuild.Cache(root, jobs=1)
    with pytest.raises(BuildError) as batched:
        cache.load_many([includes, forgot])
    (failure,) = batched.value.failures
    assert failure.key == cache.key(forgot)
    errors = [line for line in failure.first_lines if "error" in line]
    assert errors and "vector" in errors[0]
    assert errors == [line for line in alone.value.failures[0].first_lines if "error" in line]
    assert cache.load(includes)(1) == 12


NDEBUG_FIRST = """
#define NDEBUG
#include <cassert>
int32_t run(int32_t x) { assert(x == 0); return 1; }
"""
ASSERTS = """
#include <cassert>
int32_t run(int32_t x) { assert(x == 0); return 2; }
"""


def test_a_define_before_an_include_keeps_its_meaning_in_a_batch(tmp_path):
    quiet, loud = KernelSpec(NDEBUG_FIRST, entry=ENTRY), KernelSpec(ASSERTS, entry=ENTRY)
    root = tmp_path / "c"
    sobuild.Cache(root, jobs=1).load_many([loud, quiet])
    assert_returns(root, quiet, 1)  # NDEBUG came before <cassert>: no assert
    assert_aborts(root, loud)


def brian_style(number: int, body_macros: str = "") -> KernelSpec:
    """Kernels as the Brian2 adapter makes them: the same includes, then support code,
    hash defines and the function."""
    return KernelSpec(f"""
#include "common.h"
#include <cassert>
#include <cmath>

// support code
static inline double _square(double x) {{ return x * x; }}
// hash defines
#define _OFFSET {number}
{body_macros}
int32_t run(int32_t x) {{
    assert(x == 0);
    return (int32_t)_square(COMMON) + _OFFSET;
}}
""", entry=ENTRY, headers={"common.h": "#define COMMON 3\n"}, flags=("-O1",))


def test_kernels_with_the_same_prologue_share_a_unit_and_keep_their_own_macros(tmp_path):
    # this kernel turns assert off for itself (its source is the longest: first in the unit)
    quiet = brian_style(100, "#undef assert\n#define assert(x) ((void)0)\n"
                             "// assert is off in this kernel, and only in this one")
    loud = [brian_style(n) for n in range(3)]
    root = tmp_path / "c"
    sobuild.Cache(root, jobs=1).load_many([*loud, quiet])
    assert len(list(Layout(root).iter_artifact_dirs())) == 1  # one unit for the batch
    assert_returns(root, quiet, 109)
    for kernel in loud:
        assert_aborts(root, kernel)


@pytest.mark.parametrize("source", [
    "#include <cmath>\nusing namespace std;\n#include <vector>\nvoid run() {}\n",
    "#ifdef __cplusplus\n#include <cmath>\n#endif\nvoid run() {}\n",
    '#include <cmath>\nextern "C" void run() {}\n',
    "#include <cmath>\n#pragma GCC optimize(\"O0\")\nvoid run() {}\n",
    "#include <cmath> /* a comment that\ngoes on */ void run() {}\n",
], ids=["code-among-includes", "include-in-if", "extern-c", "file-scope-pragma",
        "comment-across-the-prologue"])
def test_sources_whose_order_cannot_be_kept_in_a_shared_unit_get_one_of_their_own(source):
    assert split_source(source) is None


def test_the_prologue_is_every_directive_up_to_the_last_include_in_order():
    split = split_source("""// a kernel
#define N \\
  4
/* #include <map> is only a comment */
#  include <vector>  // vectors
#pragma once
#include "params.h"
#define LOCAL 1
#pragma omp simd
int f() { return N + LOCAL; }
""")
    assert split.prologue == ("#define N   4", "#include <vector>", "#pragma once",
                              '#include "params.h"')
    assert split.prologue_lines == (2, 5, 6, 7)
    assert split.macros == ("LOCAL",)
    assert split.body.split("\n")[:7] == [""] * 7  # blanked: its line numbers hold
    assert split.body.split("\n")[7] == "#define LOCAL 1"
