"""The one place that says how kernels are compiled.

Every kernel is a plain Python function first: run with NUMBA_DISABLE_JIT=1 and step through it in a debugger.
`cache=True` keeps the compiled code on disk so the next run starts fast.
"""
import numba

# Let LLVM reorder and fuse float arithmetic (what vectorising a sum needs), but keep NaN and inf semantics:
# fastmath=True would also assume "no NaNs", which breaks NaN propagation and isnan checks.
FASTMATH = {"contract", "reassoc", "nsz", "arcp", "afn"}


def kernel(fn=None, *, parallel=False, fastmath=False):
    """numba.njit with the project's settings: @kernel or @kernel(parallel=True)."""
    def wrap(f):
        return numba.njit(cache=True, parallel=parallel, fastmath=FASTMATH if fastmath else False)(f)
    return wrap(fn) if fn is not None else wrap


prange = numba.prange
