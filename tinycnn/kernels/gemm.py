"""GEMM: C = A @ B, the one matrix multiply of the project (convolution and Dense, forward and backward).

Legend
    A (M, K), B (K, N), C (M, N)     any 2-D views: transposes are read through their strides, never copied
                                     (but a B that runs backward in memory is copied first); or stacks of them,
                                     (P, M, K) @ (P, K, N): each product below, P at once
    L      lanes: numbers per vector register (vector.py): 16 float32 with AVX-512, 8 with AVX2
    MR x NR   the register tile of C: MR rows x 3 vectors (NR = 3L columns); MR = 8 with AVX-512, 4 with AVX2
    KC     most depth of one block of k (K is cut into blocks of equal depth)    NS     most columns of C per task

The structure is Goto's (as in BLIS and OpenBLAS):

    pack A once, cut into blocks of depth D <= KC and MR-row strips: Ap[p, strip][k*MR + r] = A[strip*MR + r, p*D + k]
    in parallel over tasks, one slice of at most NS columns of C each:
        for each block p of k:
            pack B[block p, slice] into NR-column strips: Bp[strip][k*NR + s] = B[p*D + k, slice + strip*NR + s]
            for every MR x NR tile of C in the slice:
                the micro-kernel: for k in the block, C_tile += A[:, k] (outer product) B[k, :]
                (where C's last columns fill at most two vectors: a tile one vector wide, once per vector)

The micro-kernel is the outer-product form: the MR x NR tile of C lives in MR * 3 vector registers for the
whole block. Each step of k loads 3 vectors of B's row k, and for each of the MR rows broadcasts A[r, k] and
does 3 fused multiply-adds: 3 * MR FMAs for 3 + MR loads, so the FMA units, not memory, set the pace. With
AVX-512's 32 registers that is 8 x 3 (24 accumulators); with AVX2's 16 it is 4 x 3 (12). The strips are
packed so both walk forward through memory: the strip of Ap (MR x KC) stays in L1 while the task's Bp
(up to NS x KC: 1.1 MiB in float32) streams from L2, or from L3 on a CPU with a smaller L2.

Tasks write disjoint columns of C and every sum runs in one fixed order (block by block of k, each block's
sum added to C, k ascending within a block), so the result does not depend on the number of threads.

`set_backend("blas")` routes every call to `np.matmul` (OpenBLAS) so the two can be compared.
"""
import numba
import numpy as np

from . import vector
from .jit import kernel, prange

KC, NS = 384, 768
FEW_ROWS = 32                  # at most this many rows of A: slices of one strip when B is transposed

_backend = "numba"


def set_backend(name):
    """Choose "numba" (the hand-written kernel, default) or "blas" (np.matmul, for comparison only)."""
    global _backend
    if name not in ("numba", "blas"):
        raise ValueError(f"set_backend: expected 'numba' or 'blas', got {name!r}")
    _backend = name


def get_backend():
    return _backend


def gemm(a, b, out=None, accumulate=False):
    """Return A @ B. a: (M, K), b: (K, N), both float32 or both float64 -> (M, N) of that dtype.

    Or a stack of P products, as np.matmul: a (P, M, K), b (P, K, N) -> (P, M, N), all P in one parallel region
    (Winograd's 16 or 36 small products per layer).
    out: optional C-contiguous, writeable array of the result's shape to write into, sharing no memory with a or b.
    accumulate: add A @ B to out instead (out += A @ B, the sum over chunks of images of a weight gradient;
    the numba backend adds as it goes, without a temporary the size of out).
    """
    stacked = a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0]
    if not (stacked or (a.ndim == 2 and b.ndim == 2)) or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"gemm: expected (M, K) @ (K, N) or (P, M, K) @ (P, K, N), got {a.shape} @ {b.shape}")
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"gemm: expected two float32 or two float64 arrays, got {a.dtype} and {b.dtype}")
    shape = a.shape[:-1] + b.shape[-1:]
    if out is None and accumulate:
        raise ValueError("gemm: accumulate=True adds to out, but no out was given")
    if out is None:
        out = np.empty(shape, a.dtype)
    elif out.shape != shape or out.dtype != a.dtype or not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"gemm: out must be a C-contiguous, writeable {a.dtype} array of shape {shape}, got a "
                         f"{'' if out.flags.c_contiguous else 'non-contiguous '}"
                         f"{'' if out.flags.writeable else 'read-only '}{out.dtype} array of shape {out.shape}")
    elif np.may_share_memory(out, a) or np.may_share_memory(out, b):
        raise ValueError("gemm: out shares memory with a or b (C is written while B is still being read)")
    if a.shape[-1] == 0:
        if not accumulate:
            out[...] = 0
    elif _backend == "blas":
        if accumulate:
            out += np.matmul(a, b)
        else:
            np.matmul(a, b, out=out)
    elif out.size:
        a3, b3, c3 = (a, b, out) if stacked else (a[None], b[None], out[None])
        _gemm(a3, *_flat_view(b3), b3.shape[2], c3, 3 * vector.lanes(a.dtype), numba.get_num_threads(),
              a.dtype.type(0), accumulate)
    return out


def _flat_view(b):
    """b, or a copy of it if it runs backward or repeats itself (a broadcast) -> (flat, ldp, ldk, ldn):
    flat[q * ldp + i * ldk + j * ldn] = b[q, i, j], a 1-D view of b's memory (the kernels then index it with plain
    arithmetic, whatever b's layout). An axis of length 1 gets step 1: its stride, often 0, is never used."""
    if any(step < 0 or step % b.itemsize or (step == 0 and n > 1) for n, step in zip(b.shape, b.strides)):
        b = np.ascontiguousarray(b)
    ldp, ldk, ldn = (step // b.itemsize if n > 1 else 1 for n, step in zip(b.shape, b.strides))
    for whole in (b, b.transpose(0, 2, 1)):        # B or B^T in C order, most calls: reshape gives the flat view,
        if whole.flags.c_contiguous:                # where as_strided takes 8 us (a small product takes 10)
            flat = whole.reshape(-1)
            flat.flags.writeable = False            # read-only like as_strided's: one compiled _gemm, not two
            return flat, ldp, ldk, ldn
    size = sum((n - 1) * step for n, step in zip(b.shape, (ldp, ldk, ldn))) + 1
    return np.lib.stride_tricks.as_strided(b, (size,), (b.itemsize,), writeable=False), ldp, ldk, ldn


@kernel(parallel=True)
def _pack_a(a, ap, mr, depth, zero):
    """ap[(q * k_blocks + p) * strips + strip, k * mr + r] = a[q, strip * mr + r, p * depth + k]: each A of the
    stack cut into blocks of k and strips of mr rows, each strip k-major so the micro-kernel reads it forward;
    rows past M are zero (their products are never stored, but leftover memory could hold denormals, which
    slow the FMAs).

    (A 2-D ap lets the micro-kernel index a[t, mr * k + r] with k from a range: numba then knows the index is not
    negative and drops its wraparound check, which a flat a[a0 + mr * k + r] would keep in the innermost loop.)"""
    P, M, K = a.shape
    k_blocks, strips = (K + depth - 1) // depth, (M + mr - 1) // mr
    for task in prange(P * k_blocks * strips):
        q, p, strip = task // (k_blocks * strips), task // strips % k_blocks, task % strips
        p0, i0 = p * depth, strip * mr
        kc, rows = min(depth, K - p0), min(mr, M - i0)
        if a.strides[2] <= a.strides[1]:             # rows of a run along k: read each row forward
            for r in range(rows):
                for k in range(kc):
                    ap[task, k * mr + r] = a[q, i0 + r, p0 + k]
        else:                                        # a is a transposed view: read along i
            for k in range(kc):
                for r in range(rows):
                    ap[task, k * mr + r] = a[q, i0 + r, p0 + k]
        for k in range(kc):
            for r in range(rows, mr):
                ap[task, k * mr + r] = zero


@kernel
def _pack_b(b, ldp, ldk, ldn, q, p0, kc, j0, nc, nr, bp, zero):
    """bp[(strip * kc + k) * nr + s] = B_q[p0 + k, j0 + strip * nr + s]: a block of the stack's B number q cut into
    strips of nr columns, each k-major; columns past nc (the last strip's padding) are zero.
    b: the flat view of B (see _flat_view), B_q[i, j] = b[q * ldp + i * ldk + j * ldn].
    """
    strips, whole = (nc + nr - 1) // nr, nc // nr
    lanes = nr // 3
    if ldn == 1:                                    # rows of B contiguous: copy whole strips by vectors
        for k in range(kc):
            row = q * ldp + (p0 + k) * ldk + j0
            for strip in range(whole):
                at, src = (strip * kc + k) * nr, row + strip * nr
                vector.store(bp, at, vector.load(b, src))
                vector.store(bp, at + lanes, vector.load(b, src + lanes))
                vector.store(bp, at + 2 * lanes, vector.load(b, src + 2 * lanes))
            if whole < strips:                      # and the last, short strip, zero-padded, row by row too
                at, src, cols = (whole * kc + k) * nr, row + whole * nr, nc - whole * nr
                for s in range(cols):
                    bp[at + s] = b[src + s]
                for s in range(cols, nr):
                    bp[at + s] = zero
        return
    for strip in range(strips):                     # a transposed B, strip by strip:
        cols, at = min(nr, nc - strip * nr), strip * kc * nr
        for k0 in range(0, kc, 16):
            # 16 steps of k at a time: each column (contiguous in a transposed B) is read 16 entries forward,
            # and the 16 x nr corner of bp being written (3 KiB in float32) stays in L1 until all its columns are in
            k1 = min(kc, k0 + 16)
            for s in range(cols):
                start = q * ldp + (p0 + k0) * ldk + (j0 + strip * nr + s) * ldn
                column = b[start:start + (k1 - k0) * ldk:ldk]
                for k in range(k1 - k0):
                    bp[at + (k0 + k) * nr + s] = column[k]
            for k in range(k0, k1):
                for s in range(cols, nr):
                    bp[at + k * nr + s] = zero


@kernel
def _put_vector(c, at, u, accumulate):
    """c[at : at + lanes] (+)= the vector u."""
    if accumulate:
        u = vector.add(u, vector.load(c, at))
    vector.store(c, at, u)


@kernel
def _put_row(c, at, lanes, u0, u1, u2, accumulate):
    """c[at : at + 3 * lanes] (+)= the three vectors u0, u1, u2."""
    _put_vector(c, at, u0, accumulate)
    _put_vector(c, at + lanes, u1, accumulate)
    _put_vector(c, at + 2 * lanes, u2, accumulate)


@kernel
def _tile_8x3(a, t, b, b0, kc, nr, c, c0, ldc, accumulate):
    """One 8 x nr tile of C (+)= the sum over k < kc of A_tile[:, k] (outer product) B_tile[k, :], in 24 registers.

    a[t, 8k + r] = A_tile[r, k]  (strip t of Ap)     b[b0 + nr k + s] = B_tile[k, s]  (a strip of Bp)
    c[c0 + r ldc + s] is C_tile[r, s]: C flattened, ldc its row length.   nr = 3 lanes.
    """
    L = nr // 3
    c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = vector.zeros(b)
    c40 = c41 = c42 = c50 = c51 = c52 = c60 = c61 = c62 = c70 = c71 = c72 = vector.zeros(b)
    for k in range(kc):
        at = b0 + k * nr                             # B_tile's row k: three vectors
        v0, v1, v2 = vector.load(b, at), vector.load(b, at + L), vector.load(b, at + 2 * L)
        x = a[t, 8 * k]
        c00, c01, c02 = vector.fma(x, v0, c00), vector.fma(x, v1, c01), vector.fma(x, v2, c02)
        x = a[t, 8 * k + 1]
        c10, c11, c12 = vector.fma(x, v0, c10), vector.fma(x, v1, c11), vector.fma(x, v2, c12)
        x = a[t, 8 * k + 2]
        c20, c21, c22 = vector.fma(x, v0, c20), vector.fma(x, v1, c21), vector.fma(x, v2, c22)
        x = a[t, 8 * k + 3]
        c30, c31, c32 = vector.fma(x, v0, c30), vector.fma(x, v1, c31), vector.fma(x, v2, c32)
        x = a[t, 8 * k + 4]
        c40, c41, c42 = vector.fma(x, v0, c40), vector.fma(x, v1, c41), vector.fma(x, v2, c42)
        x = a[t, 8 * k + 5]
        c50, c51, c52 = vector.fma(x, v0, c50), vector.fma(x, v1, c51), vector.fma(x, v2, c52)
        x = a[t, 8 * k + 6]
        c60, c61, c62 = vector.fma(x, v0, c60), vector.fma(x, v1, c61), vector.fma(x, v2, c62)
        x = a[t, 8 * k + 7]
        c70, c71, c72 = vector.fma(x, v0, c70), vector.fma(x, v1, c71), vector.fma(x, v2, c72)
    _put_row(c, c0, L, c00, c01, c02, accumulate)
    _put_row(c, c0 + 1 * ldc, L, c10, c11, c12, accumulate)
    _put_row(c, c0 + 2 * ldc, L, c20, c21, c22, accumulate)
    _put_row(c, c0 + 3 * ldc, L, c30, c31, c32, accumulate)
    _put_row(c, c0 + 4 * ldc, L, c40, c41, c42, accumulate)
    _put_row(c, c0 + 5 * ldc, L, c50, c51, c52, accumulate)
    _put_row(c, c0 + 6 * ldc, L, c60, c61, c62, accumulate)
    _put_row(c, c0 + 7 * ldc, L, c70, c71, c72, accumulate)


@kernel
def _tile_4x3(a, t, b, b0, kc, nr, c, c0, ldc, accumulate):
    """One 4 x nr tile of C (+)= the sum over k < kc of A_tile[:, k] (outer product) B_tile[k, :], in 12 registers.

    a[t, 4k + r] = A_tile[r, k]  (strip t of Ap)     b[b0 + nr k + s] = B_tile[k, s]  (a strip of Bp)
    c[c0 + r ldc + s] is C_tile[r, s]: C flattened, ldc its row length.   nr = 3 lanes.
    """
    L = nr // 3
    c00 = c01 = c02 = c10 = c11 = c12 = c20 = c21 = c22 = c30 = c31 = c32 = vector.zeros(b)
    for k in range(kc):
        at = b0 + k * nr                             # B_tile's row k: three vectors
        v0, v1, v2 = vector.load(b, at), vector.load(b, at + L), vector.load(b, at + 2 * L)
        x = a[t, 4 * k]
        c00, c01, c02 = vector.fma(x, v0, c00), vector.fma(x, v1, c01), vector.fma(x, v2, c02)
        x = a[t, 4 * k + 1]
        c10, c11, c12 = vector.fma(x, v0, c10), vector.fma(x, v1, c11), vector.fma(x, v2, c12)
        x = a[t, 4 * k + 2]
        c20, c21, c22 = vector.fma(x, v0, c20), vector.fma(x, v1, c21), vector.fma(x, v2, c22)
        x = a[t, 4 * k + 3]
        c30, c31, c32 = vector.fma(x, v0, c30), vector.fma(x, v1, c31), vector.fma(x, v2, c32)
    _put_row(c, c0, L, c00, c01, c02, accumulate)
    _put_row(c, c0 + 1 * ldc, L, c10, c11, c12, accumulate)
    _put_row(c, c0 + 2 * ldc, L, c20, c21, c22, accumulate)
    _put_row(c, c0 + 3 * ldc, L, c30, c31, c32, accumulate)


@kernel
def _tile_8x1(a, t, b, b0, kc, nr, c, c0, ldc, accumulate):
    """The same for an 8 x L tile, one vector wide: C_tile[r, :L] (+)= the sum over k < kc of A_tile[r, k] B[k, :L],
    B's row k read at b[b0 + nr k] (a strip of Bp, so b0 may point to its second or third vector). For the last
    columns of C when they fill at most two vectors (N = 64 is a 48-column tile and one of these, not two
    48-column tiles, one of them two thirds padding)."""
    c0v = c1v = c2v = c3v = c4v = c5v = c6v = c7v = vector.zeros(b)
    for k in range(kc):
        v = vector.load(b, b0 + k * nr)
        c0v, c1v = vector.fma(a[t, 8 * k], v, c0v), vector.fma(a[t, 8 * k + 1], v, c1v)
        c2v, c3v = vector.fma(a[t, 8 * k + 2], v, c2v), vector.fma(a[t, 8 * k + 3], v, c3v)
        c4v, c5v = vector.fma(a[t, 8 * k + 4], v, c4v), vector.fma(a[t, 8 * k + 5], v, c5v)
        c6v, c7v = vector.fma(a[t, 8 * k + 6], v, c6v), vector.fma(a[t, 8 * k + 7], v, c7v)
    _put_vector(c, c0, c0v, accumulate)
    _put_vector(c, c0 + 1 * ldc, c1v, accumulate)
    _put_vector(c, c0 + 2 * ldc, c2v, accumulate)
    _put_vector(c, c0 + 3 * ldc, c3v, accumulate)
    _put_vector(c, c0 + 4 * ldc, c4v, accumulate)
    _put_vector(c, c0 + 5 * ldc, c5v, accumulate)
    _put_vector(c, c0 + 6 * ldc, c6v, accumulate)
    _put_vector(c, c0 + 7 * ldc, c7v, accumulate)


@kernel
def _tile_4x1(a, t, b, b0, kc, nr, c, c0, ldc, accumulate):
    """The same for a 4 x L tile, one vector wide (see _tile_8x1)."""
    c0v = c1v = c2v = c3v = vector.zeros(b)
    for k in range(kc):
        v = vector.load(b, b0 + k * nr)
        c0v, c1v = vector.fma(a[t, 4 * k], v, c0v), vector.fma(a[t, 4 * k + 1], v, c1v)
        c2v, c3v = vector.fma(a[t, 4 * k + 2], v, c2v), vector.fma(a[t, 4 * k + 3], v, c3v)
    _put_vector(c, c0, c0v, accumulate)
    _put_vector(c, c0 + 1 * ldc, c1v, accumulate)
    _put_vector(c, c0 + 2 * ldc, c2v, accumulate)
    _put_vector(c, c0 + 3 * ldc, c3v, accumulate)


# The micro-kernels for the widest vectors numba compiles for, and their rows: AVX-512 has 32 vector registers, so
# 24 accumulators fit; AVX2 (and 16-byte SSE or NEON) has 16, so 12 do. The second of each pair is one vector wide.
MICRO_KERNELS = {64: (_tile_8x3, _tile_8x1, 8), 32: (_tile_4x3, _tile_4x1, 4), 16: (_tile_4x3, _tile_4x1, 4)}
micro_kernel, narrow_kernel, MR = MICRO_KERNELS[vector.VECTOR_BYTES]


@kernel
def _put_edge(c, c0, ldc, rows, cols, edge, nr, accumulate):
    """C_tile[:rows, :cols] (+)= the top-left corner of a tile that the micro-kernel wrote into edge (MR x nr,
    flat): the tiles that the edges of C cut short. c[c0 + r ldc + s] is C_tile[r, s], as for the micro-kernel.
    Each row goes by whole vectors as far as they fit, the rest one number at a time."""
    lanes = nr // 3
    whole = cols // lanes * lanes
    for r in range(rows):
        at, to = r * nr, c0 + r * ldc
        for s in range(0, whole, lanes):
            _put_vector(c, to + s, vector.load(edge, at + s), accumulate)
        for s in range(whole, cols):
            if accumulate:
                c[to + s] += edge[at + s]
            else:
                c[to + s] = edge[at + s]


@kernel
def _slice_width(N, products, widest, multiple, threads):
    """Width of the column slices that tasks own: a multiple of `multiple`, at most `widest` (rounded up to it),
    aiming at enough slices that the products' tasks make at least 4 per thread (a multiple of the thread count
    for one product, so no thread waits for the last one). Rounding the width up can leave fewer slices."""
    slices = max((N + widest - 1) // widest, (4 * threads + products - 1) // products)
    if products == 1:
        slices = (slices + threads - 1) // threads * threads
    return ((N + slices - 1) // slices + multiple - 1) // multiple * multiple


@kernel(parallel=True)
def _gemm(a, b, ldp, ldk, ldn, N, c, nr, threads, zero, accumulate):
    """C_q = A_q @ B_q (or C_q += A_q @ B_q if accumulate) for every q: a (P, M, K), c (P, M, N) C-contiguous,
    B (P, K, N) as the flat view b, ldp, ldk, ldn of _flat_view, N its columns. nr: columns of the register
    tile (3 vectors); zero: 0 in the dtype."""
    P, M, K = a.shape
    k_blocks, strips = (K + KC - 1) // KC, (M + MR - 1) // MR
    depth = (K + k_blocks - 1) // k_blocks              # equal blocks: K = 800 is 2 x 400, not 384 + 384 + 32
    ap = np.empty((P * k_blocks * strips, depth * MR), a.dtype)
    _pack_a(a, ap, MR, depth, zero)
    flat_c = c.reshape(P * M * N)                       # the kernels index flat arrays: no views in the loops
    # a transposed B used by few rows of A (Dense's forward: M = the batch) costs its packing more than its
    # products: one strip per task then streams whole rows of B^T (W's rows) through the blocks of k
    ns = _slice_width(N, P, nr if (ldk == 1 and ldn != 1 and M <= FEW_ROWS) else NS, nr, threads)
    lanes = nr // 3
    slices = (N + ns - 1) // ns
    for task in prange(P * slices):
        q, j0 = task // slices, task % slices * ns
        nc = min(ns, N - j0)
        bp = np.empty(ns * depth, a.dtype)
        edge = np.empty(MR * nr, a.dtype)
        for p in range(k_blocks):
            kc, add = min(depth, K - p * depth), accumulate or p > 0   # block 0 writes C (unless accumulating)
            _pack_b(b, ldp, ldk, ldn, q, p * depth, kc, j0, nc, nr, bp, zero)
            for strip in range(strips):
                i, t = strip * MR, (q * k_blocks + p) * strips + strip
                rows = min(MR, M - i)
                for s in range((nc + nr - 1) // nr):
                    j, b0 = j0 + s * nr, s * kc * nr
                    c0, cols = (q * M + i) * N + j, min(nr, N - j)
                    if cols > nr - lanes:                   # the tile needs all three vectors
                        if rows == MR and cols == nr:
                            micro_kernel(ap, t, bp, b0, kc, nr, flat_c, c0, N, add)
                        else:
                            micro_kernel(ap, t, bp, b0, kc, nr, edge, 0, nr, False)
                            _put_edge(flat_c, c0, N, rows, cols, edge, nr, add)
                    else:                                   # one or two: a vector at a time
                        for v in range(0, cols, lanes):
                            if rows == MR and v + lanes <= cols:
                                narrow_kernel(ap, t, bp, b0 + v, kc, nr, flat_c, c0 + v, N, add)
                            else:
                                narrow_kernel(ap, t, bp, b0 + v, kc, nr, edge, 0, nr, False)
                                _put_edge(flat_c, c0 + v, N, rows, min(lanes, cols - v), edge, nr, add)
