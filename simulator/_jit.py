"""The one place for Numba options.

Every kernel of the package is compiled with these settings:

- ``cache=True``: compiled code is written next to the module and reused by later processes.
- ``fastmath=False``: no re-association or contraction of floating-point operations, so that
  the Numba engine and the SimPy reference engine produce bit-identical results.
- ``error_model="numpy"``: division by zero gives inf/nan instead of raising, as in NumPy.

`jit_inline` is for the small helpers of the event kernel (policy decision, heap operations): they are
inlined into their callers at the Numba IR level, which lets LLVM keep the request state in registers.
"""

from numba import njit

JIT_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def jit(function):
    """Compile `function` with the package's Numba options."""
    return njit(**JIT_OPTIONS)(function)


def jit_inline(function):
    """Compile `function` with the package's options, inlined into every jitted caller."""
    return njit(inline="always", **JIT_OPTIONS)(function)
