"""GEMM: C = A @ B, the one matrix multiply of the project (convolution and Dense, forward and backward).

Legend
    A (M, K), B (K, N), C (M, N)       any 2-D views: transposes are read through their strides, never copied
    KC   depth of one block of k        (A block MC x KC stays in L2, B panel KC x NC in L3)
    MC   rows of A per task             NC   columns of B packed at once
    NS   columns of C per task          MR x NR = 4 x 3, the register tile of the micro-kernel

The structure is Goto's (as in BLIS and OpenBLAS):

    for each NC-wide panel of columns, for each KC-deep block of k:
        pack B[k-block, panel] into Bp (NC, KC): column j of B becomes row j, contiguous along k
        in parallel over tasks (an MC-row block of A x an NS-column slice of the panel):
            pack A[rows, k-block] into Ap (MC, KC): row i contiguous along k
            for every 4 x 3 tile of C in the task:
                12 dot products of length KC, one per output, held in 12 scalar accumulators

Why dot products: with A's rows and B's columns both contiguous along k, each accumulator is a sum over k
that LLVM vectorises (fastmath "reassoc" lets it reorder the sum): 8 float32 lanes per ymm register, 12 FMA
registers busy per step, 7 loads. Tasks write disjoint tiles of C, and every sum runs in a fixed order, so the
result does not depend on the number of threads.

`set_backend("blas")` routes every call to `np.matmul` (OpenBLAS) so the two can be compared.
"""
import numpy as np

from .jit import kernel, prange

KC, MC, NC, NS = 256, 64, 4096, 192
MR, NR = 4, 3

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
    if a.shape[1] == 0:
        out[...] = 0
    elif _backend == "blas":
        np.matmul(a, b, out=out)
    elif M and N:
        _gemm(a, b, out, a.dtype.type(0))
    return out


@kernel
def _pack_a(a, i0, mc, p0, kc, ap, zero):
    """ap[i, k] = a[i0 + i, p0 + k] for i < mc; rows mc .. up to a multiple of MR are zero."""
    if a.strides[0] >= a.strides[1]:                 # rows of a are contiguous-ish: read along k
        for i in range(mc):
            for k in range(kc):
                ap[i, k] = a[i0 + i, p0 + k]
    else:                                            # a is a transposed view: read along i
        for k in range(kc):
            for i in range(mc):
                ap[i, k] = a[i0 + i, p0 + k]
    for i in range(mc, (mc + MR - 1) // MR * MR):
        for k in range(kc):
            ap[i, k] = zero


@kernel(parallel=True)
def _pack_b(b, p0, kc, j0, nc, bp, zero):
    """bp[j, k] = b[p0 + k, j0 + j] for j < nc (B transposed, so each column is contiguous along k)."""
    n_pad = (nc + NR - 1) // NR * NR
    if b.strides[1] <= b.strides[0]:                 # b is row-major: read along j in strips
        for s in prange((nc + 63) // 64):
            for k in range(kc):
                for j in range(s * 64, min(s * 64 + 64, nc)):
                    bp[j, k] = b[p0 + k, j0 + j]
    else:                                            # b is a transposed view: its columns are contiguous
        for j in prange(nc):
            for k in range(kc):
                bp[j, k] = b[p0 + k, j0 + j]
    for j in range(nc, n_pad):
        for k in range(kc):
            bp[j, k] = zero


@kernel(fastmath=True)
def _tiles(ap, bp, mc, kc, j_lo, j_hi, c, i0, jc, accumulate, zero):
    """C[i0 + i, jc + j] (+)= sum_k ap[i, k] * bp[j, k] over 4 x 3 tiles, i < mc, j_lo <= j < j_hi."""
    M, N = c.shape
    for i in range(0, mc, MR):
        a0, a1, a2, a3 = ap[i], ap[i + 1], ap[i + 2], ap[i + 3]
        for j in range(j_lo, j_hi, NR):
            b0, b1, b2 = bp[j], bp[j + 1], bp[j + 2]
            c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = zero
            for k in range(kc):
                c00 += a0[k] * b0[k]
                c01 += a0[k] * b1[k]
                c02 += a0[k] * b2[k]
                c10 += a1[k] * b0[k]
                c11 += a1[k] * b1[k]
                c12 += a1[k] * b2[k]
                c20 += a2[k] * b0[k]
                c21 += a2[k] * b1[k]
                c22 += a2[k] * b2[k]
                c30 += a3[k] * b0[k]
                c31 += a3[k] * b1[k]
                c32 += a3[k] * b2[k]
            tile = ((c00, c01, c02), (c10, c11, c12), (c20, c21, c22), (c30, c31, c32))
            for r in range(MR):
                row = i0 + i + r
                if row < M:
                    for s in range(NR):
                        col = jc + j + s
                        if col < N:
                            if accumulate:
                                c[row, col] += tile[r][s]
                            else:
                                c[row, col] = tile[r][s]


@kernel(parallel=True)
def _gemm(a, b, c, zero):
    """c = a @ b, with c C-contiguous. zero: 0 in the arrays' dtype."""
    M, K = a.shape
    N = b.shape[1]
    bp = np.empty((min(NC, N) + NR, KC), a.dtype)
    m_blocks = (M + MC - 1) // MC
    for jc in range(0, N, NC):
        nc = min(NC, N - jc)
        n_slices = (nc + NS - 1) // NS
        for p0 in range(0, K, KC):
            kc = min(KC, K - p0)
            _pack_b(b, p0, kc, jc, nc, bp, zero)
            for task in prange(m_blocks * n_slices):
                ib, js = task // n_slices, task % n_slices
                i0 = ib * MC
                mc = min(MC, M - i0)
                ap = np.empty((MC, KC), a.dtype)
                _pack_a(a, i0, mc, p0, kc, ap, zero)
                _tiles(ap, bp, mc, kc, js * NS, min(js * NS + NS, nc), c, i0, jc, p0 > 0, zero)
