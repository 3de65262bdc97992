"""GEMM: C = A @ B, the one matrix multiply of the project (convolution and Dense, forward and backward).

Legend
    A (M, K), B (K, N), C (M, N)       any 2-D views: transposes are read through their strides, never copied
    KC   depth of one block of k        NS   most columns of C per task
    MR x NR = 4 x 3, the register tile of the micro-kernel

The structure is Goto's (as in BLIS and OpenBLAS):

    pack A once, cut into KC-deep blocks: Ap[p] (M, KC), each row contiguous along k
    in parallel over tasks, one slice of at most NS columns of C each:
        for each KC-deep block p of k:
            pack B[block p, slice] into Bp (NS, KC): column j of B becomes row j, contiguous along k
            for every 4 x 3 tile of C in the slice:
                12 dot products of length KC, one per output, held in 12 scalar accumulators

Why dot products: with A's rows and B's columns both contiguous along k, each accumulator is a sum over k
that LLVM vectorises (fastmath "reassoc" lets it reorder the sum): 8 float32 lanes per ymm register, 12 FMA
registers busy per step, 7 loads. A task's Bp (NS x KC, 288 KiB) stays in L2 while the 4 rows of Ap that a
tile reads stay in L1. Tasks write disjoint columns of C and every sum runs in a fixed order, so the result
does not depend on the number of threads.

A short k (Dense's weight gradient, where k is the batch size) leaves too little work per tile to pay for the
12 sums' final additions, so `_gemm_short_k` takes it instead: each row of C is a weighted sum of B's rows,
written in one pass per 8 rows of B, with nothing packed.

`set_backend("blas")` routes every call to `np.matmul` (OpenBLAS) so the two can be compared.
"""
import numba
import numpy as np

from .jit import kernel, prange

KC, NS = 768, 96
SHORT_K = 32     # up to this k, with B's rows contiguous, _gemm_short_k is faster than packing
SKEW = 16        # packed rows are KC + 16 long: a power-of-two stride would map every row to the same cache sets
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
    elif M and N and a.shape[1] <= SHORT_K and b.strides[1] == b.itemsize:
        _gemm_short_k(a, b, out, numba.get_num_threads())
    elif M and N:
        _gemm(a, b, out, numba.get_num_threads(), a.dtype.type(0))
    return out


@kernel(parallel=True)
def _pack_a(a, ap, zero):
    """ap[p, i, k] = a[i, p*KC + k]: A cut into KC-deep blocks, each row contiguous along k.

    ap: (k_blocks, m_pad, kc_max); rows M .. m_pad (the last tile's padding) are zero.
    """
    M, K = a.shape
    m_pad = ap.shape[1]
    for p in prange(ap.shape[0]):
        p0 = p * KC
        kc = min(KC, K - p0)
        if a.strides[0] >= a.strides[1]:             # rows of a are contiguous-ish: read along k
            for i in range(M):
                for k in range(kc):
                    ap[p, i, k] = a[i, p0 + k]
        else:                                        # a is a transposed view: read along i
            for k in range(kc):
                for i in range(M):
                    ap[p, i, k] = a[i, p0 + k]
        for i in range(M, m_pad):
            for k in range(kc):
                ap[p, i, k] = zero


@kernel
def _pack_b(b, p0, kc, j0, nc, bp, zero):
    """bp[j, k] = b[p0 + k, j0 + j] for j < nc (B transposed, so each column is contiguous along k)."""
    if b.strides[1] <= b.strides[0]:                 # b is row-major: walk 8 rows at once, so each
        k = 0                                        # column of bp gets 8 consecutive values per visit
        while k + 8 <= kc:
            r0, r1, r2, r3 = b[p0 + k], b[p0 + k + 1], b[p0 + k + 2], b[p0 + k + 3]
            r4, r5, r6, r7 = b[p0 + k + 4], b[p0 + k + 5], b[p0 + k + 6], b[p0 + k + 7]
            for j in range(nc):
                col = bp[j]
                col[k], col[k + 1], col[k + 2], col[k + 3] = r0[j0 + j], r1[j0 + j], r2[j0 + j], r3[j0 + j]
                col[k + 4], col[k + 5], col[k + 6], col[k + 7] = r4[j0 + j], r5[j0 + j], r6[j0 + j], r7[j0 + j]
            k += 8
        for k in range(k, kc):
            for j in range(nc):
                bp[j, k] = b[p0 + k, j0 + j]
    else:                                            # b is a transposed view: its columns are contiguous,
        for j in range(nc):                          # copied as slices (numba's slice copy is twice as fast)
            bp[j, :kc] = b[p0:p0 + kc, j0 + j]
    for j in range(nc, (nc + NR - 1) // NR * NR):
        for k in range(kc):
            bp[j, k] = zero


@kernel
def _put3(c, row, col, x0, x1, x2, accumulate):
    """C[row, col:col+3] (+)= (x0, x1, x2)."""
    if accumulate:
        c[row, col] += x0
        c[row, col + 1] += x1
        c[row, col + 2] += x2
    else:
        c[row, col] = x0
        c[row, col + 1] = x1
        c[row, col + 2] = x2


@kernel(fastmath=True)
def _tiles(ap, bp, kc, c, j0, nc, accumulate, zero):
    """C[i, j0 + j] (+)= sum_k ap[i, k] * bp[j, k] over 4 x 3 tiles, for every row i of C and j < nc."""
    M = c.shape[0]
    for i in range(0, M, MR):
        a0, a1, a2, a3 = ap[i], ap[i + 1], ap[i + 2], ap[i + 3]
        for j in range(0, nc, NR):
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
            if i + MR <= M and j + NR <= nc:         # a whole tile: four rows of three plain stores
                col = j0 + j
                _put3(c, i, col, c00, c01, c02, accumulate)
                _put3(c, i + 1, col, c10, c11, c12, accumulate)
                _put3(c, i + 2, col, c20, c21, c22, accumulate)
                _put3(c, i + 3, col, c30, c31, c32, accumulate)
                continue
            tile = ((c00, c01, c02), (c10, c11, c12), (c20, c21, c22), (c30, c31, c32))
            for r in range(min(MR, M - i)):
                for s in range(min(NR, nc - j)):
                    if accumulate:
                        c[i + r, j0 + j + s] += tile[r][s]
                    else:
                        c[i + r, j0 + j + s] = tile[r][s]


@kernel
def _slice_width(N, widest, multiple, threads):
    """Width of the column slices that tasks own: at most `widest` (rounded up to `multiple`), at least 4
    slices per thread, and a multiple of the thread count of them, so no thread waits for the last one."""
    slices = max((N + widest - 1) // widest, 4 * threads)
    slices = (slices + threads - 1) // threads * threads
    return ((N + slices - 1) // slices + multiple - 1) // multiple * multiple


@kernel(fastmath=True)
def _short_k_row(a, b, c, i, j0, nc):
    """C[i, j0:j0+nc] = sum_k a[i, k] * B[k, j0:j0+nc], for a short k: 8 rows of B per pass over C's row."""
    K = b.shape[0]
    c_row = c[i, j0:j0 + nc]
    k = 0
    while k + 8 <= K:
        b0, b1, b2, b3 = b[k, j0:j0 + nc], b[k + 1, j0:j0 + nc], b[k + 2, j0:j0 + nc], b[k + 3, j0:j0 + nc]
        b4, b5, b6, b7 = b[k + 4, j0:j0 + nc], b[k + 5, j0:j0 + nc], b[k + 6, j0:j0 + nc], b[k + 7, j0:j0 + nc]
        a0, a1, a2, a3 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        a4, a5, a6, a7 = a[i, k + 4], a[i, k + 5], a[i, k + 6], a[i, k + 7]
        for j in range(nc):
            s = a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j] + a4 * b4[j] + a5 * b5[j] + a6 * b6[j] + a7 * b7[j]
            c_row[j] = s if k == 0 else c_row[j] + s
        k += 8
    for k in range(k, K):                            # the last K % 8 rows of B, one at a time
        ak, bk = a[i, k], b[k, j0:j0 + nc]
        for j in range(nc):
            c_row[j] = ak * bk[j] if k == 0 else c_row[j] + ak * bk[j]


@kernel(parallel=True)
def _gemm_short_k(a, b, c, threads):
    """c = a @ b for a short k (b's rows contiguous): no packing, C is written in one or a few passes.

    Dense layers' weight gradient is such a product: k is the batch size.
    """
    M, N = c.shape
    ns = _slice_width(N, 512, 8, threads)
    for task in prange((N + ns - 1) // ns):
        j0 = task * ns
        for i in range(M):
            _short_k_row(a, b, c, i, j0, min(ns, N - j0))


@kernel(parallel=True)
def _gemm(a, b, c, threads, zero):
    """c = a @ b, with c C-contiguous. zero: 0 in the arrays' dtype."""
    M, K = a.shape
    N = b.shape[1]
    k_blocks = (K + KC - 1) // KC
    ap = np.empty((k_blocks, (M + MR - 1) // MR * MR, min(KC, K) + SKEW), a.dtype)
    _pack_a(a, ap, zero)
    ns = _slice_width(N, NS, NR, threads)
    for task in prange((N + ns - 1) // ns):
        j0 = task * ns
        nc = min(ns, N - j0)
        bp = np.empty((ns, min(KC, K) + SKEW), a.dtype)
        for p in range(k_blocks):
            kc = min(KC, K - p * KC)
            _pack_b(b, p * KC, kc, j0, nc, bp, zero)
            _tiles(ap[p], bp, kc, c, j0, nc, p > 0, zero)
