"""GEMM: C = A @ B, the one matrix multiply of the project (convolution and Dense, forward and backward).

Legend: A (M, K), B (K, N), C (M, N). A and B may be any 2-D views, transposes included: the kernel reads
them through their strides, so `gemm(w.T, dy)` multiplies by a transpose without copying it.

`set_backend("blas")` routes every call to `np.matmul` (OpenBLAS) so the two can be compared; the default
"numba" runs the kernel below.
"""
import numpy as np

from .jit import kernel, prange

_backend = "numba"


def set_backend(name):
    """Choose "numba" (the hand-written kernel, default) or "blas" (np.matmul, for comparison only)."""
    global _backend
    if name not in ("numba", "blas"):
        raise ValueError(f"set_backend: expected 'numba' or 'blas', got {name!r}")
    _backend = name


def get_backend():
    return _backend


def gemm(a, b, out=None):
    """Return A @ B. a: (M, K), b: (K, N), both float32 or both float64 -> (M, N) of that dtype.

    out: optional C-contiguous (M, N) array to write into.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm: expected (M, K) @ (K, N), got {a.shape} @ {b.shape}")
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"gemm: expected two float32 or two float64 arrays, got {a.dtype} and {b.dtype}")
    M, N = a.shape[0], b.shape[1]
    if out is None:
        out = np.empty((M, N), a.dtype)
    elif out.shape != (M, N) or out.dtype != a.dtype or not out.flags.c_contiguous:
        raise ValueError(f"gemm: out must be a C-contiguous {a.dtype} array of shape {(M, N)}, "
                         f"got {out.dtype} {out.shape}")
    if _backend == "blas":
        np.matmul(a, b, out=out)
    else:
        _gemm(a, b, out)
    return out


@kernel(parallel=True, fastmath=True)
def _gemm(a, b, c):
    """c[i, :] = sum_k a[i, k] * b[k, :], one row of C per task."""
    M, K = a.shape
    N = b.shape[1]
    for i in prange(M):
        for j in range(N):
            c[i, j] = 0
        for k in range(K):
            aik = a[i, k]
            for j in range(N):
                c[i, j] += aik * b[k, j]
