"""The matrix exponential of Brian2's ``linear`` state updater in closed form, when the
system has no feedback loops: the same abstract code, without sympy's Jordan form.

Brian2 integrates linear equations dX/dt = M·X + B exactly, with sympy's ``exp()`` of
M·dt, which computes a Jordan form. For CUBA's three equations that costs about 3 s of a
cold process (nearly all of Brian2's code generation for it), spent in sympy's zero tests
(``equals``, numeric sampling and pslq) deciding that eigenvalues such as -dt/taum and
-dt/taue differ.

Most neuron models have no feedback among their variables: synaptic currents decay on their
own and feed the membrane potential, filters feed filters. Then M is triangular up to the
order of its variables, its eigenvalues are its diagonal, and, when those are pairwise
distinct, the exponential is Sylvester's formula:
exp(M) = sum_i exp(l_i) prod_(j != i) (M - l_j)/(l_i - l_j). That is the same rational function
of the exp(l_i) as sympy's P·exp(J)·P^-1 (the spectral projectors are unique), so after the
simplification Brian2 applies by default (``factor_terms(cancel(signsimp(x)))``, whose
``cancel`` puts a rational function in one canonical form) the abstract code is the very
same text; ``tests/brian/test_linear_exponential.py`` compares it with Brian2's own on a
set of models. Everything else goes to sympy as before: feedback between variables,
repeated eigenvalues (Jordan blocks), and ``method_options={'simplify': False}``, where
Brian2 uses the exponential as sympy writes it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import sympy as sp

from . import hooks

GET_LINEAR_SYSTEM = hooks.declare(__name__, "brian2.stateupdaters.exact", "get_linear_system",
                                  "wrap")
METHOD_OPTIONS = hooks.declare(__name__, "brian2.stateupdaters.exact",
                               "extract_method_options", "wrap")

#: Whether the linear state updater running in this context simplifies its exponential
#: (set from the options it extracts, just before it asks for the linear system).
_simplifies: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sobuild_linear_simplifies", default=False)


def sylvester_exponential(matrix: sp.MatrixBase) -> sp.Matrix | None:
    """exp(``matrix``) by Sylvester's formula, or None when its eigenvalues are not its
    pairwise distinct diagonal (a feedback loop among its variables, or a repeated one)."""
    n = matrix.rows
    if n != matrix.cols or not _acyclic(matrix):
        return None
    eigenvalues = [matrix[i, i] for i in range(n)]
    if any(sp.cancel(eigenvalues[i] - eigenvalues[j]) == 0
           for i in range(n) for j in range(i + 1, n)):
        return None
    identity = sp.eye(n)
    result = sp.zeros(n, n)
    for i, eigenvalue in enumerate(eigenvalues):
        projector = identity
        for j, other in enumerate(eigenvalues):
            if j != i:
                projector = projector * (matrix - other * identity) / (eigenvalue - other)
        result += sp.exp(eigenvalue) * projector
    return result


def _acyclic(matrix: sp.MatrixBase) -> bool:
    """Whether no variable depends on itself through others (off-diagonal entries only):
    then a reordering of the variables makes ``matrix`` triangular."""
    n = matrix.rows
    depends = {i: {j for j in range(n) if j != i and matrix[i, j] != 0} for i in range(n)}
    done: set[int] = set()
    while len(done) < n:
        ready = [i for i in range(n) if i not in done and depends[i] <= done]
        if not ready:
            return False
        done.update(ready)
    return True


class LinearSystemMatrix(sp.MutableDenseMatrix):
    """The coefficients of a linear system (and what sympy derives from them, such as
    M·dt): ``exp()`` takes Sylvester's formula where it gives Brian2's result."""

    def exp(self):
        if _simplifies.get():
            closed_form = sylvester_exponential(self)
            if closed_form is not None:
                return closed_form
        return super().exp()


def _with_closed_form(get_linear_system: Callable) -> Callable:
    def get_linear_system_with_closed_form(eqs, variables):
        names, coefficients, constants = get_linear_system(eqs, variables)
        return names, LinearSystemMatrix(coefficients), constants

    return get_linear_system_with_closed_form


def _noting_simplify(extract_method_options: Callable) -> Callable:
    def extract_method_options_noting_simplify(method_options, default_options):
        options = extract_method_options(method_options, default_options)
        _simplifies.set(bool(options.get("simplify", False)))
        return options

    return extract_method_options_noting_simplify


def install() -> None:
    """Let Brian2's linear state updater use the closed form."""
    GET_LINEAR_SYSTEM.wrap(_with_closed_form)
    METHOD_OPTIONS.wrap(_noting_simplify)
