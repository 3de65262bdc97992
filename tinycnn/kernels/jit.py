"""The one place that says how kernels are compiled.

Every kernel is a plain Python function first: run with NUMBA_DISABLE_JIT=1 and step through it in a debugger.
`cache=True` keeps the compiled code on disk so the next run starts fast; the options below are part of that
cache's key, so changing them here recompiles every kernel instead of running the old machine code.
"""
import numba
from numba.core.caching import FunctionCache

# Let LLVM reorder and fuse float arithmetic (what vectorising a sum needs), but keep NaN and inf semantics:
# fastmath=True would also assume "no NaNs", which breaks NaN propagation and isnan checks.
FASTMATH = {"contract", "reassoc", "nsz", "arcp", "afn"}


class _CacheKeyedByOptions(FunctionCache):
    """numba's disk cache for one kernel, its key extended by the compile options: numba keys cached code by the
    kernel's own file and bytecode only, not by how it was compiled."""

    def __init__(self, py_func, options):
        super().__init__(py_func)
        self.options = repr(sorted((key, sorted(value) if isinstance(value, set) else value)
                                   for key, value in options.items()))

    def _index_key(self, sig, codegen):
        return super()._index_key(sig, codegen) + (self.options,)


def kernel(fn=None, *, parallel=False, fastmath=False):
    """numba.njit with the project's settings: @kernel or @kernel(parallel=True).

    error_model="numpy": a division by zero gives inf or nan, as in NumPy, instead of raising. A kernel must never
    raise inside a parallel loop (a worker's exception surfaces as garbage or SystemError), and the check
    before every division also stops LLVM from vectorising the loop around it.
    """
    options = dict(parallel=parallel, error_model="numpy", fastmath=FASTMATH if fastmath else False)

    def wrap(f):
        compiled = numba.njit(**options)(f)
        if hasattr(compiled, "enable_caching"):          # not under NUMBA_DISABLE_JIT, where f comes back as is
            compiled._cache = _CacheKeyedByOptions(f, options)    # what cache=True sets, with the options added
        return compiled
    return wrap(fn) if fn is not None else wrap


prange = numba.prange
