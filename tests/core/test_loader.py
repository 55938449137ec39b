"""Calling kernels: numpy arrays as raw pointers with checks, plain pointers, the bare function."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sobuild import KernelSpec
from sobuild.loader.cffi_loader import ffi
from sobuild.toolchains.base import shared_suffix

from .kernels import SCALE_ENTRY, scale_spec

MIXED = KernelSpec(
    source="""
    int64_t run(const float* x, int32_t* out, int64_t n, double scale, void* raw) {
        for (int64_t i = 0; i < n; i++) out[i] = (int32_t)(x[i] * scale);
        return raw == nullptr ? n : -n;
    }
    """,
    entry="int64_t run(const float* x, int32_t* out, int64_t n, double scale, void* raw)",
)


def test_numpy_arrays_are_passed_as_pointers_and_results_come_back(cache):
    kernel = cache.load(MIXED)
    x = np.array([1.5, 2.5, 3.5], dtype=np.float32)
    out = np.zeros(3, dtype=np.int32)
    assert kernel(x, out, 3, 2.0, None) == 3
    assert out.tolist() == [3, 5, 7]
    assert kernel(x, out, 3, 1.0, x) == -3  # any array goes to void*


def test_dtype_contiguity_and_argument_count_are_checked(cache):
    kernel = cache.load(scale_spec())
    with pytest.raises(TypeError, match="float64"):
        kernel(np.zeros(3, dtype=np.float32), 3)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel(np.zeros(6)[::2], 3)
    with pytest.raises(TypeError, match="takes 2 argument"):
        kernel(np.zeros(3))


def test_plain_addresses_and_the_bare_cffi_function(cache):
    kernel = cache.load(scale_spec(1.0))
    v = np.array([4.0, 25.0])
    kernel(v.ctypes.data, 2)  # an int is an address
    assert v.tolist() == [2.0, 5.0]
    pointer = ffi.cast("double*", v.ctypes.data)
    kernel.func(pointer, 2)  # no conversion at all
    assert v.tolist() == pytest.approx([2.0 ** 0.5, 5.0 ** 0.5])


def test_kernels_with_a_void_pointer_argument_block(cache):
    spec = KernelSpec(
        source="""
        void run(void* const* args) {
            double* v = static_cast<double*>(args[0]);
            const int32_t n = *static_cast<int32_t*>(args[1]);
            for (int32_t i = 0; i < n; i++) v[i] += 1;
        }""",
    )
    kernel = cache.load(spec)
    v = np.zeros(3)
    n = np.array([3], dtype=np.int32)
    block = ffi.new("void*[]", [ffi.cast("void*", v.ctypes.data), ffi.cast("void*", n.ctypes.data)])
    kernel.func(block)
    kernel.func(block)
    assert v.tolist() == [2.0, 2.0, 2.0]


#: How a loadable shared object of each suffix begins (ELF, Mach-O 64-bit or fat, PE).
MAGIC = {".so": (b"\x7fELF",), ".dylib": (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"),
         ".dll": (b"MZ",)}


def test_the_published_library_is_named_for_this_platform_and_is_what_loads(cache, cache_dir):
    """The one library of an artifact carries this platform's suffix (the name the store
    looks up) and holds a shared object of this platform, whose kernel runs."""
    kernel = cache.load(scale_spec(1.0))
    (directory,) = (p for p in (cache_dir / "artifacts").glob("??/*") if p.is_dir())
    (library,) = (p for p in directory.iterdir() if p.name.startswith("lib.") and
                  p.name != "lib.cpp")
    assert library.name == "lib" + shared_suffix()
    assert library.read_bytes().startswith(MAGIC[shared_suffix()])
    v = np.array([9.0])
    kernel(v, 1)
    assert v[0] == 3.0


def test_entry_must_be_a_declaration():
    with pytest.raises(ValueError):
        KernelSpec(source="", entry=SCALE_ENTRY.replace("(", ""))


def test_the_committed_out_of_line_ffi_module_is_current(tmp_path):
    from sobuild.loader import ffi_build

    fresh = tmp_path / "_ffi.py"
    ffi_build.generate(fresh)
    committed = Path(ffi_build.__file__).with_name("_ffi.py")
    assert fresh.read_text() == committed.read_text(), \
        "run `python -m sobuild.loader.ffi_build` to regenerate sobuild/loader/_ffi.py"


def test_loading_kernels_never_imports_pycparser(cache_dir):
    code = ("import sys, sobuild\n"
            f"sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
            "from core.kernels import scale_spec\n"
            "import numpy as np\n"
            "k = sobuild.Cache().load(scale_spec(1.0)); v = np.array([4.0]); k(v, 1)\n"
            "assert v[0] == 2.0\n"
            "print('pycparser' in sys.modules)\n")
    for _ in range(2):  # cold (builds), then warm
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "SOBUILD_CACHE_DIR": str(cache_dir)})
        assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
