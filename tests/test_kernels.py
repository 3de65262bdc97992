"""The numba kernels on their own: GEMM against numpy, and every kernel runnable without the JIT."""
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinycnn.kernels import gemm, get_backend, set_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

AWKWARD = [(1, 1, 1), (1, 7, 1), (7, 1, 5), (5, 3, 300), (300, 2, 3), (17, 33, 65), (64, 129, 31), (130, 70, 257),
           (6, 1600, 301), (3, 32, 1031), (9, 17, 600), (1, 2000, 1),   # k past two KC blocks; k = 1
           (17, 800, 100),                  # whole register tiles (8 x 48 or 4 x 24) summed over two blocks of k
           (16, 800, 64), (24, 500, 80)]    # last columns one or two whole vectors wide, whole rows: the narrow tile


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", AWKWARD)
def test_gemm_equals_numpy_for_awkward_sizes(m, k, n, dtype):
    rng = np.random.default_rng(m * k * n)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c = gemm(a, b)
    assert c.dtype == dtype
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 40), transpose_a=st.booleans(),
       transpose_b=st.booleans(), step=st.integers(1, 2))
def test_gemm_reads_transposed_and_strided_views(m, k, n, transpose_a, transpose_b, step, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m * step) if transpose_a else (m, k * step)).astype(dtype)
    b = rng.standard_normal((n, k * step) if transpose_b else (k, n * step)).astype(dtype)
    a = a[:, ::step].T if transpose_a else a[:, ::step]
    b = b[:, ::step].T if transpose_b else b[:, ::step]
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gemm(a, b), a.astype(np.float64) @ b.astype(np.float64), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(p=st.integers(1, 6), m=st.integers(1, 30), k=st.integers(1, 30), n=st.integers(1, 120),
       transpose_b=st.booleans())
def test_gemm_of_a_stack_is_each_product(p, m, k, n, transpose_b, dtype):
    """A stack (P, M, K) @ (P, K, N) in one call: product q of the stack is a[q] @ b[q]. b is cut from a taller
    array, so its products lie further apart than K rows (and with transpose_b its columns are contiguous)."""
    rng = np.random.default_rng(p * m * k * n)
    a = rng.standard_normal((p, m, k)).astype(dtype)
    if transpose_b:
        b = rng.standard_normal((p, n, k + 3)).astype(dtype)[:, :, 2:2 + k].transpose(0, 2, 1)
    else:
        b = rng.standard_normal((p, k + 3, n)).astype(dtype)[:, 2:2 + k]
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gemm(a, b), np.matmul(a.astype(np.float64), b.astype(np.float64)), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make_b", [
    lambda v: v[None, :50],                              # K = 1 made by indexing: its axis has stride 0
    lambda v: v[None, ::2],                              # ... and its columns two apart
    lambda v: np.broadcast_to(v[:50], (7, 50)),          # the same row 7 times: stride 0 along K
    lambda v: np.broadcast_to(v[:7, None], (7, 50)),     # each row one number: stride 0 along N
    lambda v: np.broadcast_to(v[:50], (3, 7, 50)),       # a stack of one B: stride 0 between products
], ids=["k1", "k1-strided", "broadcast-rows", "broadcast-columns", "broadcast-stack"])
def test_gemm_of_a_b_with_zero_strides(make_b, dtype):
    """Indexing and broadcasting give axes of stride 0 (Dense's dW at batch 1 is such a product)."""
    rng = np.random.default_rng(5)
    b = make_b(rng.standard_normal(100).astype(dtype))
    a = rng.standard_normal(b.shape[:-2] + (3, b.shape[-2])).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gemm(a, b), np.matmul(a.astype(np.float64), b.astype(np.float64)), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["rows", "transposed a", "transposed b", "reversed"])
def test_gemm_of_a_stack_past_one_block_of_k(layout, dtype):
    """Three products of k = 800 (two blocks of k each) with whole and cut register tiles, each operand as a
    transposed or a backwards view."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 19, 800)).astype(dtype), rng.standard_normal((3, 800, 101)).astype(dtype)
    if layout == "transposed a":
        a = np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)
    elif layout == "transposed b":
        b = np.ascontiguousarray(b.transpose(0, 2, 1)).transpose(0, 2, 1)
    elif layout == "reversed":
        a, b = np.ascontiguousarray(a[::-1])[::-1], np.ascontiguousarray(b[:, ::-1])[:, ::-1]
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(gemm(a, b), np.matmul(a.astype(np.float64), b.astype(np.float64)), **tol)


def test_gemm_refuses_an_out_it_cannot_write_safely():
    a, b = np.ones((2, 3)), np.ones((3, 3))
    read_only = np.zeros((2, 3))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="gemm: out must be a C-contiguous, writeable float64 array of shape "
                                         r"\(2, 3\), got a read-only float64 array"):
        gemm(a, b, out=read_only)
    with pytest.raises(ValueError, match="non-contiguous"):
        gemm(a, b, out=np.zeros((3, 2)).T)
    square = np.ones((3, 3))
    with pytest.raises(ValueError, match="gemm: out shares memory with a or b"):
        gemm(square, square, out=square)


@pytest.mark.parametrize("backend", ["numba", "blas"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 17, 800, 100), (3, 9, 20, 64), (2, 5, 0, 7)])   # k past one block; k = 0
def test_gemm_accumulate_adds_to_out(shape, dtype, backend):
    """accumulate=True: out += A @ B, on every block of k and every tile (here a stack; k = 0 leaves out as it
    was), on both backends; without an out to add to it is refused."""
    p, m, k, n = shape
    rng = np.random.default_rng(k)
    a, b = rng.standard_normal((p, m, k)).astype(dtype), rng.standard_normal((p, k, n)).astype(dtype)
    c = rng.standard_normal((p, m, n)).astype(dtype)
    expected = c.astype(np.float64) + np.matmul(a.astype(np.float64), b.astype(np.float64))
    set_backend(backend)
    try:
        assert gemm(a, b, out=c, accumulate=True) is c
    finally:
        set_backend("numba")
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c, expected, **tol)
    with pytest.raises(ValueError, match="gemm: accumulate=True adds to out, but no out was given"):
        gemm(a, b, accumulate=True)


def test_gemm_rejects_stacks_of_different_lengths():
    with pytest.raises(ValueError, match=r"got \(2, 3, 4\) @ \(3, 4, 5\)"):
        gemm(np.ones((2, 3, 4)), np.ones((3, 4, 5)))


WIDTH_PROBE = """
import numpy as np
from tinycnn.kernels import gemm, vector
g = __import__("tinycnn.kernels.gemm", fromlist=["micro_kernel"])
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    for m, k, n in [(1, 1, 1), (9, 17, 50), (13, 400, 97), (4, 800, 30), (8, 800, 40)]:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((n, k)).astype(dtype).T
        for bb in (b, np.ascontiguousarray(b)):
            tol = 1e-4 if dtype == np.float32 else 1e-12
            assert np.allclose(gemm(a, bb), a.astype(np.float64) @ bb.astype(np.float64), rtol=tol, atol=tol)
    stack = rng.standard_normal((3, 5, 7)).astype(dtype), rng.standard_normal((3, 7, 60)).astype(dtype)
    assert np.allclose(gemm(*stack), np.matmul(*stack), rtol=tol, atol=tol)
asm = g.micro_kernel.inspect_asm(g.micro_kernel.signatures[0])
fmas = {reg for reg in ("xmm", "ymm", "zmm") if any("vfmadd" in l and "%" + reg in l for l in asm.splitlines())}
print(vector.VECTOR_BYTES, g.MR, sorted(fmas))
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the widths below are x86's")
@pytest.mark.parametrize("cpu, features, expected", [
    ("haswell", "+avx2,+fma,+avx,+sse4.2", "32 4 ['ymm']"),                  # AVX2: the 4 x 3 micro-kernel
    ("x86-64", "+sse2", "16 4 []"),                                          # no FMA: multiply, then add
])
def test_gemm_for_a_narrower_cpu_than_this_one(cpu, features, expected, tmp_path):
    """Every micro-kernel of the table is tested on any machine: numba compiles for an older CPU when told to
    (NUMBA_CPU_NAME, NUMBA_CPU_FEATURES), and this one runs that code. The register tile's width follows, and
    the FMAs use that width's registers (AVX-512 itself is tested by the tests above on an AVX-512 machine)."""
    env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", WIDTH_PROBE], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


THREADS_PROBE = """
import sys
import numba
import numpy as np
from tinycnn.kernels.gemm import gemm
m, k, n = map(int, sys.argv[1:])
rng = np.random.default_rng(1)
a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
stack = rng.standard_normal((5, m, k), np.float32), rng.standard_normal((5, k, n), np.float32)
products = []
for threads in (1, 2, 3):
    numba.set_num_threads(threads)
    assert numba.get_num_threads() == threads
    summed = gemm(a, b)
    gemm(a, b, out=summed, accumulate=True)                 # 2 A @ B, the second product added block by block
    products += [gemm(a, b), gemm(*stack), summed]
print(all(np.array_equal(p, q) for p, q in zip(products[3:], products)))
"""


@pytest.mark.parametrize("shape", [(37, 600, 290), (100, 16, 700)])
def test_gemm_result_does_not_depend_on_the_thread_count(shape):
    """Threads own disjoint tiles and every sum runs in one fixed order: 1, 2 and 3 threads agree bit for bit.
    Run in a process of its own with 3 threads, whatever NUMBA_NUM_THREADS this one was started with."""
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    done = subprocess.run([sys.executable, "-c", THREADS_PROBE, *map(str, shape)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_gemm_rejects_mismatched_operands():
    with pytest.raises(ValueError, match=r"gemm: expected \(M, K\) @ \(K, N\) or \(P, M, K\) @ \(P, K, N\), got \(2, 3\) @ \(4, 5\)"):
        gemm(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="float32 and float64"):
        gemm(np.ones((2, 3), np.float32), np.ones((3, 5)))


def test_blas_backend_switch_routes_to_numpy_and_back():
    a, b = np.ones((3, 4), np.float32), np.ones((4, 2), np.float32)
    assert get_backend() == "numba"
    set_backend("blas")
    try:
        np.testing.assert_array_equal(gemm(a, b), 4)
    finally:
        set_backend("numba")
    with pytest.raises(ValueError, match="set_backend"):
        set_backend("cuda")


def strided(x):
    """The values of x as a view with gaps: every other element of an array twice as wide along the last axis."""
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    wide[..., ::2] = x
    return wide[..., ::2]


def reversed_rows(x):
    """The values of x as a view that runs backwards along axis 0."""
    return np.ascontiguousarray(x[::-1])[::-1]


def kernel_calls(rng):
    """(name, call) pairs: call(view) runs one kernel on views of fixed inputs and outputs and returns the outputs.

    view(array) turns each array, input or output, into a view with the same values (or the array itself).
    """
    from tinycnn import kernels
    t = np.float32
    x = rng.standard_normal((2, 3, 7, 6), t)
    a = np.abs(rng.standard_normal((2, 6, 9), t)) * 30
    dy = rng.standard_normal((2, 6, 9), t)

    def im2col(view):
        cols = view(np.zeros((3 * 9, 2 * 4 * 3), t))
        kernels.im2col(view(x), 3, 3, 2, 2, 1, 1, cols)
        return [cols]

    def col2im(view):
        dx = view(np.zeros(x.shape, t))
        kernels.col2im(view(rng.standard_normal((27, 24), t)), 3, 3, 2, 2, 1, 1, dx)
        return [dx]

    def maxpool(view):
        y, argmax = view(np.zeros((2, 3, 3, 2), t)), view(np.zeros((2, 3, 3, 2), np.int32))
        kernels.maxpool_forward(view(x), 3, 3, 2, 2, 0, 0, y, argmax)
        dx = view(np.zeros(x.shape, t))
        kernels.maxpool_backward(view(np.ones((2, 3, 3, 2), t)), argmax, dx)
        values = view(np.zeros((2, 3, 4, 3), t))
        kernels.maxpool_values(view(x), 3, 3, 2, 2, 1, 1, values)
        return [y, argmax, dx, values]

    def lrn(view):
        y, scale, dx = view(np.zeros(a.shape, t)), view(np.zeros(a.shape, t)), view(np.zeros(a.shape, t))
        kernels.lrn_forward(view(a), 5, t(1e-2), t(0.75), t(2), y, scale)
        kernels.lrn_backward(view(a), y, scale, view(dy), 5, t(1.5e-2), t(0.75), dx)
        return [y, scale, dx]

    def relu_forward(view):
        y = view(np.zeros(a.size, t))
        kernels.relu_forward(view(a.ravel() - 20), y)
        return [y]

    def relu_backward(view):
        dx = view(np.zeros(a.size, t))
        kernels.relu_backward(view(a.ravel() - 20), view(dy.ravel()), dx)
        return [dx]

    def sgd(view):
        w, v = view(a.ravel().copy()), view(dy.ravel().copy())
        kernels.sgd_update(w, view(a.ravel() - 20), v, t(0.1), t(0.9), t(1e-3))
        return [w, v]

    def winograd(r, filters, inputs, outputs):
        def call(view):                                 # 4 filters on x padded by 1, OH x OW in 2x2 tiles
            OH, OW, tile = 7 + 3 - r, 6 + 3 - r, (r + 1) ** 2
            TH, TW = (OH + 1) // 2, (OW + 1) // 2
            U, V = view(np.zeros((tile, 4, 3), t)), view(np.zeros((tile, 3, 2 * TH * TW), t))
            y = view(np.zeros((2, 4, OH, OW), t))
            filters(view(rng.standard_normal((4, 3, r, r), t)), U)
            inputs(view(x), 1, 1, TH, TW, V)
            outputs(view(rng.standard_normal((tile, 4, 2 * TH * TW), t)), view(rng.standard_normal(4, t)), TH, TW, y)
            return [U, V, y]
        return call

    def gradient_tiles(view):                          # dy of 7 x 6 outputs: 4 x 3 tiles, 2 groups of 2 filters
        E = view(np.zeros((16, 2, 2 * 4 * 3, 2), t))
        kernels.gradient_tiles(view(rng.standard_normal((2, 4, 7, 6), t)), view(rng.standard_normal((16, 4), t)),
                               4, 3, E)
        return [E]

    def turned_filters(view):                          # 6 filters of 4 channels in 2 groups -> 8 of 3
        turned = view(np.zeros((8, 3, 3, 3), t))
        kernels.turned_filters(view(rng.standard_normal((6, 4, 3, 3), t)), 2, turned)
        return [turned]

    return [("im2col", im2col), ("col2im", col2im), ("maxpool", maxpool), ("lrn", lrn),
            ("relu_forward", relu_forward), ("relu_backward", relu_backward), ("sgd_update", sgd),
            ("winograd_3x3", winograd(3, kernels.filters_3x3, kernels.inputs_3x3, kernels.outputs_3x3)),
            ("winograd_5x5", winograd(5, kernels.filters_5x5, kernels.inputs_5x5, kernels.outputs_5x5)),
            ("gradient_tiles", gradient_tiles), ("turned_filters", turned_filters)]


@pytest.mark.parametrize("r", [3, 5])
@pytest.mark.parametrize("OH, OW", [(5, 4), (4, 5), (1, 1), (6, 6)])
def test_gradient_tiles_is_A_e_A_transposed_for_every_block_of_dy(r, OH, OW):
    """E[k, g, tile, f] = (A e A^T)[k], e the tile's 2x2 block of filter g*F/G + f's dy, zero past an odd edge:
    against the products written out with np.einsum on dy padded to whole tiles."""
    from tinycnn import kernels
    AT = {3: kernels.AT_3x3, 5: kernels.AT_5x5}[r]
    rng = np.random.default_rng(r)
    n, G, Fg, TH, TW = 2, 2, 3, (OH + 1) // 2, (OW + 1) // 2
    dy = rng.standard_normal((n, G * Fg, OH, OW))
    padded = np.zeros((n, G * Fg, 2 * TH, 2 * TW))
    padded[:, :, :OH, :OW] = dy
    e = padded.reshape(n, G, Fg, TH, 2, TW, 2)                  # e[b, g, f, th, a, tw, c]
    expected = np.einsum("ai,cj,bgfhawc->ijgbhwf", AT, AT, e).reshape((r + 1) ** 2, G, n * TH * TW, Fg)
    E = np.full(expected.shape, np.nan)
    kernels.gradient_tiles(dy, np.kron(AT.T, AT.T), TH, TW, E)
    np.testing.assert_allclose(E, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", [1, 2, 3])
@pytest.mark.parametrize("r", [3, 5])
def test_turned_filters_turn_each_filter_and_swap_its_channels_group_by_group(groups, r):
    """turned[g*C/G + c, f] = w[g*F/G + f, c] turned 180 degrees, against NumPy's reversed views."""
    from tinycnn import kernels
    F, Cg = 2 * groups, 3
    w = np.random.default_rng(r).standard_normal((F, Cg, r, r))
    expected = np.concatenate([w[g * 2:(g + 1) * 2].transpose(1, 0, 2, 3)[:, :, ::-1, ::-1] for g in range(groups)])
    turned = np.full((groups * Cg, 2, r, r), np.nan)
    kernels.turned_filters(w, groups, turned)
    np.testing.assert_array_equal(turned, expected)


@pytest.mark.parametrize("name", [name for name, _ in kernel_calls(np.random.default_rng(0))])
@pytest.mark.parametrize("view", [strided, reversed_rows])
def test_kernels_read_and_write_views_with_gaps_or_negative_strides(name, view):
    """A kernel indexes its arrays; it never flattens one into a copy. The results on views equal the results on
    C-contiguous arrays, bit for bit, for inputs and outputs alike."""
    on_arrays = dict(kernel_calls(np.random.default_rng(0)))[name](lambda array: array)
    on_views = dict(kernel_calls(np.random.default_rng(0)))[name](view)
    for expected, actual in zip(on_arrays, on_views, strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_every_kernel_runs_as_plain_python_with_the_jit_disabled():
    """A learner can step through the kernels in a debugger: NUMBA_DISABLE_JIT=1 runs them as Python."""
    script = textwrap.dedent("""
        import numpy as np, numba, tinycnn as tc
        assert numba.config.DISABLE_JIT
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
        for layer in (tc.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, rng=rng), tc.MaxPool2d(3, 2),
                      tc.Conv2d(4, 4, 3, padding=1, rng=rng),      # Winograd: 3x3, stride 1
                      tc.Conv2d(4, 4, 5, padding=2, rng=rng),      # Winograd: 5x5, stride 1
                      tc.Conv2d(4, 4, 6, stride=2, rng=rng),       # Winograd on the phases: 6x6, stride 2
                      tc.LocalResponseNorm(3), tc.BatchNorm2d(4), tc.ReLU()):
            for training in (True, False):                 # evaluation: max-pool's values alone
                y = layer.forward(x, training=training)
                dx = layer.backward(np.ones_like(y))
                assert dx.shape == x.shape and dx.dtype == np.float32
        dense = tc.Dense(168, 5, rng=rng)                  # k = 168 and, for dW, k = 2
        dense.backward(np.ones_like(dense.forward(x.reshape(2, -1))))
        tc.SGD(dense.parameters(), lr=0.1).step()
        print("ok")
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


FLOAT32_STEP = textwrap.dedent(r"""
    import importlib, pkgutil, re
    import numpy as np
    from numba.core.registry import CPUDispatcher
    import tinycnn as tc
    import tinycnn.kernels

    rng = np.random.default_rng(0)
    model = tc.Sequential(dict([
        ("conv1", tc.Conv2d(3, 8, 5, stride=2, padding=2, rng=rng)), ("relu1", tc.ReLU()),
        ("norm1", tc.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)), ("pool1", tc.MaxPool2d(3, 2)),
        ("conv2", tc.Conv2d(8, 8, 3, padding=1, rng=rng)), ("norm2", tc.LocalResponseNorm(3, beta=0.6)),
        ("conv3", tc.Conv2d(8, 8, 5, padding=2, rng=rng)),
        ("flatten", tc.Flatten()), ("fc", tc.Dense(8 * 7 * 7, 5, rng=rng))]))
    loss, opt = tc.SoftmaxCrossEntropy(), tc.SGD(model.parameters(), lr=0.01)
    x, labels = rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng.integers(0, 5, 4)

    def step():
        loss.forward(model.forward(x, training=True), labels)
        model.backward(loss.backward())
        opt.step()

    kernels = {}
    for module in pkgutil.iter_modules(tinycnn.kernels.__path__):
        namespace = vars(importlib.import_module("tinycnn.kernels." + module.name))
        kernels.update({module.name + "." + k: v for k, v in namespace.items() if isinstance(v, CPUDispatcher)})
    step()
    compiled = {name: len(k.signatures) for name, k in kernels.items()}
    step()
    assert {name: len(k.signatures) for name, k in kernels.items()} == compiled, "a kernel compiled again"
    def native(ir):                       # the compiled kernels, not the wrappers that box results for Python
        return "\n".join(f for f in ir.split("\ndefine ") if not re.match(r"[^@]*@(_ZN7cpython|cfunc\.)", f))

    promoted = [name for name, k in kernels.items() for sig in k.signatures
                if re.search(r"fpext float .* to double|= f(add|sub|mul|div)[a-z ]* double",
                             native(k.inspect_llvm(sig)))]
    assert not promoted, f"float32 arithmetic promoted to float64 in {promoted}"
    print("ok", sum(compiled.values()))
""")


def test_a_float32_step_compiles_each_kernel_once_and_never_uses_float64(tmp_path):
    """Nothing recompiles per call, and no float64 literal sneaks into float32 kernels (checked in LLVM IR).

    A fresh numba cache in a subprocess: numba cannot show the IR of code it loaded from its cache.
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", FLOAT32_STEP], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_the_benchmark_multiplies_the_shapes_alexnet_multiplies():
    from benchmarks.gemm import alexnet_gemm_shapes
    shapes = {name: (m, k, n) for name, m, k, n, _ in alexnet_gemm_shapes(batch=1)}
    assert shapes["conv1 forward"] == (96, 363, 55 * 55)
    assert shapes["conv2 dW"] == (256, 27 * 27, 96 * 25)
    assert shapes["fc6 forward"] == (1, 9216, 4096)
    assert "conv1 dX" not in shapes                       # the first layer skips its input gradient


def test_vector_operations_compiled_equal_their_numpy_definitions():
    """kernels/vector.py: each operation is a NumPy function first; numba's LLVM version gives the same numbers
    (fma's one rounding aside: the values here are exact in float32)."""
    import numba

    from tinycnn.kernels import vector

    def combine(a, lanes, out):
        u, v = vector.load(a, 1), vector.load(a, 1 + lanes)
        vector.store(out, 0, vector.add(vector.fma(a[0], u, v), vector.zeros(a)))
        vector.store(out, 3, u)                          # any element, not only a vector boundary
    lanes = vector.lanes(np.float32)
    a = np.arange(1, 2 + 2 * lanes, dtype=np.float32)
    expected, compiled = np.zeros(len(a) + 3, np.float32), np.zeros(len(a) + 3, np.float32)
    combine(a, lanes, expected)
    numba.njit(combine)(a, lanes, compiled)
    np.testing.assert_array_equal(compiled, expected)
    assert expected[lanes + 2] != 0                       # the store at 3 reached past the first vector


def test_a_vector_store_into_a_read_only_array_is_refused():
    import numba

    from tinycnn.kernels import vector

    def write(a):
        vector.store(a, 0, vector.zeros(a))
    a = np.zeros(64, np.float32)
    a.flags.writeable = False
    with pytest.raises((TypeError, numba.core.errors.TypingError), match="vector.store: expected a writeable array"):
        numba.njit(write)(a)
