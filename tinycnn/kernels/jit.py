"""The one place that says how kernels are compiled.

Every kernel is a plain Python function first: run with NUMBA_DISABLE_JIT=1 and step through it in a debugger.
`cache=True` keeps the compiled code on disk so the next run starts fast.
"""
import numba

# Let LLVM reorder and fuse float arithmetic (what vectorising a sum needs), but keep NaN and inf semantics:
# fastmath=True would also assume "no NaNs", which breaks NaN propagation and isnan checks.
FASTMATH = {"contract", "reassoc", "nsz", "arcp", "afn"}


def kernel(fn=None, *, parallel=False, fastmath=False):
    """numba.njit with the project's settings: @kernel or @kernel(parallel=True).

    error_model="numpy": a division by zero gives inf or nan, as in NumPy, instead of raising. A kernel must never
    raise inside a parallel loop (a worker's exception surfaces as garbage or SystemError), and the check
    before every division also stops LLVM from vectorising the loop around it.
    """
    def wrap(f):
        return numba.njit(cache=True, parallel=parallel, error_model="numpy",
                          fastmath=FASTMATH if fastmath else False)(f)
    return wrap(fn) if fn is not None else wrap


prange = numba.prange
