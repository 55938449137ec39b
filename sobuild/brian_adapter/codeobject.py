"""SoBuildCodeObject: a Brian2 code object whose blocks are plain C++ kernels built by sobuild.

Brian2's C++ code generator (``CPPCodeGenerator``, so every "cpp" function implementation
applies) fills the C++ runtime templates in ``templates/``; each non-empty block
(before_run, run, after_run) becomes one kernel ``int run(void* const* _args)``. Kernels
are built through the process-wide sobuild cache (``prefs.get_cache()``), batched per
network (see ``batch``), and called through cffi with one argument block that is filled
once (see ``arguments``): the per-step call is one cffi call and one test of its result.
"""

from __future__ import annotations

import numpy as np
from brian2.codegen.codeobject import CodeObject, constant_or_scalar
from brian2.codegen.generators.cpp_generator import CPPCodeGenerator, c_data_type
from brian2.codegen.templates import Templater
from brian2.core.base import BrianObject, BrianObjectException
from brian2.core.preferences import prefs
from brian2.devices.device import get_device
from brian2.utils.stringtools import get_identifiers

from ..config import Settings
from ..loader.cffi_loader import ffi
from ..spec import KernelSpec
from . import batch, clear, hooks, prewarm, random_numbers
from .arguments import FIRST_SLOT, RUNTIME_SLOT, build_arguments
from .names import canonicalizer
from .prefs import get_cache
from .support_library import KERNEL_PROLOGUE, LIBRARY, kernel_headers

__all__ = ["SoBuildCodeObject", "install", "load_kernels"]

TARGETS = hooks.declare(__name__, "brian2.codegen.targets", "codegen_targets", "register",
                        hooks.an_instance_of(set))
#: What an object's fused run (``fuse_runs``) shadows.
RUN = hooks.declare(__name__, "brian2.core.base", "BrianObject.run", "shadow")

BLOCKS = ("before_run", "run", "after_run")
ENTRY = "int run(void* const* _args)"
ARGUMENTS_PLACEHOLDER = "%SOBUILD_ARGUMENTS%"
ERROR_BUFFER_SIZE = 1024  # sobuild_brian::ERROR_BUFFER_SIZE
INDEX_ERROR = 1

def _output_size(codeobj) -> int:
    """Elements of the array a group_get kernel fills."""
    if codeobj.template_name == "group_variable_get":
        return len(codeobj.variables["_group_idx"].get_value())
    return int(np.asarray(codeobj.variables["N"].get_value()).reshape(-1)[0])


#: Templates whose run block returns an array: template -> variable giving its dtype.
_OUTPUT_TEMPLATES = {
    "group_get_indices": None,
    "group_variable_get": "_variable",
    "group_variable_get_conditional": "_variable",
}


class SoBuildCodeObject(CodeObject):
    """Brian2 code object running C++ kernels built and cached by sobuild."""

    templater = Templater(
        "sobuild.brian_adapter",
        ".cpp",
        env_globals={"c_data_type": c_data_type, "constant_or_scalar": constant_or_scalar,
                     "kernel_prologue": KERNEL_PROLOGUE},
    )
    generator_class = CPPCodeGenerator
    class_name = "sobuild"

    def __init__(self, owner, code, variables, variable_indices, template_name,
                 template_source, compiler_kwds, name="sobuild_code_object*"):
        unsupported = {k: v for k, v in (compiler_kwds or {}).items() if v}
        if unsupported:
            raise NotImplementedError(
                f"The sobuild target does not support compiler keywords {sorted(unsupported)} "
                "(extra headers, sources or libraries of user functions); use the 'cython' "
                "target for this model.")
        super().__init__(owner, code, variables, variable_indices, template_name,
                         template_source, compiler_kwds={}, name=name)
        random_numbers.refresh_generator()
        blocks = {}
        for block in BLOCKS:
            text = getattr(code, block, "").strip()
            blocks[block] = text if text and "EMPTY_CODE_BLOCK" not in text else None
        identifiers = set()
        for text in blocks.values():
            if text:
                identifiers |= get_identifiers(text)
        self.arguments = build_arguments(self, identifiers)
        declarations = self.arguments.source()
        canonical = canonicalizer(variables, get_device())
        #: The C++ source of each block's kernel (None: nothing to run).
        self.sources = {
            block: canonical(text.replace(ARGUMENTS_PLACEHOLDER, declarations)) if text else None
            for block, text in blocks.items()}
        self.specs: dict[str, KernelSpec] = {}
        self._funcs: dict | None = None
        self._run_func = None
        self._argblock = None
        self._error = None
        self._output_dtype = None
        if template_name in _OUTPUT_TEMPLATES:
            var = _OUTPUT_TEMPLATES[template_name]
            self._output_dtype = np.int32 if var is None else variables[var].dtype

    @classmethod
    def is_available(cls) -> bool:
        try:
            get_cache().toolchain  # noqa: B018  (detects the compiler)
        except Exception:
            return False
        return True

    # -- building -------------------------------------------------------------------------

    def compile_block(self, block):
        source = self.sources[block]
        if source is None:
            return None
        return KernelSpec(
            source=source,
            entry=ENTRY,
            flags=tuple(prefs["codegen.runtime.sobuild.extra_compile_args"]),
            headers=kernel_headers(),
            namespace="brian2",
        )

    def compile(self):
        """Render the kernels; queue them while a network prepares, else build them now."""
        self.specs = {}
        for block in BLOCKS:
            spec = self.compiled_code[block] = self.compile_block(block)
            if spec is not None:
                self.specs[block] = spec
        self._funcs = None
        self._run_func = None
        batch.queue(self)
        if not batch.collecting():
            batch.build_pending()

    def _bind(self, funcs: dict) -> None:
        """Fill the argument block (once) and keep the loaded entry points."""
        if self._argblock is None:
            addresses = self.arguments.addresses
            self._error = ffi.new("char[]", ERROR_BUFFER_SIZE)
            self._argblock = ffi.new("void*[]", FIRST_SLOT + len(addresses))
            self._argblock[0] = self._error
            if self.arguments.uses_runtime:
                self._argblock[RUNTIME_SLOT] = ffi.cast("void*", LIBRARY.address)
            for slot, address in enumerate(addresses, FIRST_SLOT):
                self._argblock[slot] = ffi.cast("void*", address)
            if self._output_dtype is not None:
                self._count = np.zeros(1, dtype=np.int64)
                self._argblock[2] = ffi.cast("void*", self._count.ctypes.data)
        self._funcs = funcs
        if self._output_dtype is None:
            self._run_func = funcs.get("run")

    def _ensure_built(self) -> None:
        if self._funcs is None:
            if self not in batch._pending:
                batch.queue(self)
            batch.build_pending()

    # -- running --------------------------------------------------------------------------

    def __call__(self, **kwds):
        if kwds:
            raise NotImplementedError("sobuild code objects take no namespace arguments")
        func = self._run_func
        if func is None:
            return self.run_block("run")
        code = func(self._argblock)
        if code:
            self._raise("run", code)
        return None

    def run_block(self, block):
        self._ensure_built()
        func = self._funcs.get(block)
        if func is None:
            return None
        if block == "run" and self._output_dtype is not None:
            output = np.empty(_output_size(self), dtype=self._output_dtype)
            self._argblock[1] = ffi.cast("void*", output.ctypes.data)
            code = func(self._argblock)
            if code:
                self._raise(block, code)
            return output[: self._count[0]]
        code = func(self._argblock)
        if code:
            self._raise(block, code)
        return None

    def before_run(self):
        if self.template_name == "synapses_push_spikes":
            self.owner.initialise_queue()
        if "before_run" not in self.specs:
            return None
        if self._funcs is None and batch.collecting():
            batch.defer(lambda: self.run_block("before_run"))
            return None
        return self.run_block("before_run")

    def _raise(self, block: str, code: int):
        message = ffi.string(self._error).decode(errors="replace")
        exc_type = IndexError if code == INDEX_ERROR else RuntimeError
        raise BrianObjectException(
            f"An exception occurred during the execution of the '{block}' block of code "
            f"object '{self.name}'.\n", self.owner) from exc_type(message)


def fuse_runs(brian_objects) -> bool:
    """Give each object whose code objects are all sobuild kernels a ``run`` that calls the
    kernels directly (one cffi call each, no method dispatch per code object). True if any
    object has a sobuild code object.

    Called at the end of ``Network.before_run``; code objects are made anew for each run, so
    the fused ``run`` (an instance attribute shadowing ``BrianObject.run``) is too.
    """
    uses_sobuild = False
    for obj in brian_objects:
        obj.__dict__.pop("run", None)
        if type(obj).run is not BrianObject.run or not obj._code_objects:
            continue  # e.g. NetworkOperation: a run of its own
        calls = []
        for codeobj in obj._code_objects:
            codeobj = codeobj.__repr__.__self__  # a weakref.proxy's referent
            if not isinstance(codeobj, SoBuildCodeObject):
                break
            uses_sobuild = True
            codeobj._ensure_built()
            if codeobj._output_dtype is not None:
                break
            if codeobj._run_func is not None:
                calls.append((codeobj._run_func, codeobj._argblock, codeobj))
        else:
            obj.run = _fused(tuple(calls))
    return uses_sobuild


def _fused(calls):
    def run():
        for func, argblock, codeobj in calls:
            code = func(argblock)
            if code:
                codeobj._raise("run", code)

    run.calls = calls  # what the step loop in C calls (``step_loop``)
    return run


def load_kernels(objects: list[SoBuildCodeObject]) -> None:
    """Build (one batch) and load the kernels of ``objects``, and bind them; the runtime
    support library too (first), with the first code objects that call it."""
    if any(getattr(obj, "arguments", None) and obj.arguments.uses_runtime for obj in objects):
        LIBRARY.queue()
        if LIBRARY.specs:
            objects = [LIBRARY, *objects]
    specs = [(obj, block, spec) for obj in objects for block, spec in obj.specs.items()]
    cache = get_cache()
    prewarm.wait(cache.root)  # it may be building the library, the kernels' header
    clear.register(cache.root)
    kernels = cache.load_many([spec for _, _, spec in specs]) if specs else []
    funcs: dict[int, dict] = {id(obj): {} for obj in objects}
    for (obj, block, _), kernel in zip(specs, kernels):
        funcs[id(obj)][block] = kernel.func
    for obj in objects:
        obj._bind(funcs[id(obj)])


def install() -> None:
    """Make 'sobuild' a Brian2 target: its rand()/randn(), its place among the targets, the
    batch build of a network, ``clear_cache('sobuild')``."""
    RUN.get()
    random_numbers.register(SoBuildCodeObject)
    TARGETS.get().add(SoBuildCodeObject)
    batch.install(load_kernels, fuse_runs)
    clear.install()
    clear.register(Settings.from_env(prefs["codegen.runtime.sobuild.cache_dir"]).cache_dir)
