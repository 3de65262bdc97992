"""LocalResponseNorm: the paper's formula (no division of alpha by n), with windows cut at the edge channels,
right in float32 for activations of any size."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
import tinycnn.layers.norm
from tinycnn import reference as ref

from helpers import assert_close, in_layout, layouts, mixed_magnitudes


@st.composite
def lrn_cases(draw):
    # alpha around 1 so the sum over the window dominates k and a wrong window shows; C may be smaller than n.
    # beta = 0.75 (the paper's) takes the kernels' square-root path, any other beta takes pow.
    return dict(size=draw(st.sampled_from([1, 3, 5, 7])), alpha=draw(st.floats(0.5, 2.0)),
                beta=draw(st.one_of(st.just(0.75), st.floats(0.5, 1.0))), k=draw(st.floats(1.0, 3.0)),
                shape=(draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 5)),
                       draw(st.integers(1, 5))),
                seed=draw(st.integers(0, 999)), x_layout=draw(layouts), dy_layout=draw(layouts))


def make(case, dtype):
    rng = np.random.default_rng(case["seed"])
    layer = tc.LocalResponseNorm(case["size"], case["alpha"], case["beta"], case["k"])
    return layer, rng.standard_normal(case["shape"]).astype(dtype), rng


def args(case):
    return case["size"], case["alpha"], case["beta"], case["k"]


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=lrn_cases())
def test_lrn_equals_reference(case, dtype, training):
    """Training keeps s for backward; evaluation writes it to scratch memory, and a backward after it
    normalises again."""
    layer, x, rng = make(case, dtype)
    y = layer.forward(in_layout(x, case["x_layout"]), training)
    assert y.dtype == dtype
    assert_close(y, ref.lrn_forward(x, *args(case)))
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(in_layout(dy, case["dy_layout"]))
    assert dx.dtype == dtype
    assert_close(dx, ref.lrn_backward(x, dy, *args(case)))


@given(case=lrn_cases())
def test_lrn_passes_gradcheck(case):
    layer, x, _ = make(case, np.float64)
    assert tc.gradcheck(layer, in_layout(x, case["x_layout"]))


def size_of_the_terms(x, dy, size, alpha, beta, k):
    """|dy_j| s_j^-beta + 2 alpha beta |a_j| sum_i |dy_i a_i| s_i^(-beta-1), in float64: how large the terms of
    dx_j are. Where they cancel, no float32 computation can be closer to dx_j than a small part of this."""
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    C = x.shape[1]
    window = [range(max(0, i - size // 2), min(C, i + size // 2 + 1)) for i in range(C)]
    s = [k + alpha * sum(x[:, j] ** 2 for j in window[i]) for i in range(C)]
    return np.stack([np.abs(dy[:, j]) * s[j] ** -beta + 2 * alpha * beta * np.abs(x[:, j]) * sum(
        np.abs(dy[:, i] * x[:, i]) * s[i] ** (-beta - 1) for i in window[j]) for j in range(C)], axis=1)


def assert_float32_lrn_is_exact(x, size, alpha, beta, k, dy):
    """float32 forward within 1e-4 relative of float64 on the same inputs, every entry; backward within 1e-4
    of the size of its terms (rounding cannot do better where they cancel). No exception, nothing non-finite."""
    layer = tc.LocalResponseNorm(size, alpha, beta, k)
    x, dy = x.astype(np.float32), dy.astype(np.float32)
    exact = ref.lrn_forward(x.astype(np.float64), size, alpha, beta, k)
    np.testing.assert_allclose(layer.forward(x), exact, rtol=1e-4, atol=0)
    dx = layer.backward(dy)
    exact_dx = ref.lrn_backward(x.astype(np.float64), dy.astype(np.float64), size, alpha, beta, k)
    assert np.isfinite(dx).all()
    assert (np.abs(dx - exact_dx) <= 1e-4 * size_of_the_terms(x, dy, size, alpha, beta, k)).all()


@given(size=st.sampled_from([3, 5]), constants=st.sampled_from([(1e-4, 0.75, 2.0), (1.0, 0.75, 2.0),
                                                                 (1.0, 0.6, 1.0), (1e-3, 0.75, 1e-3)]),
       shape=st.tuples(st.integers(1, 2), st.integers(1, 16), st.integers(1, 4), st.integers(1, 4)),
       seed=st.integers(0, 2**32 - 1))
def test_float32_lrn_is_exact_for_activations_from_1e_4_to_1e4(size, constants, shape, seed):
    rng = np.random.default_rng(seed)
    x = np.abs(mixed_magnitudes(rng, shape))              # after a ReLU: large channels beside small ones
    assert_float32_lrn_is_exact(x, size, *constants, rng.standard_normal(shape))


@pytest.mark.parametrize("channels, size, alpha, beta, k", [
    # the paper's constants: a sliding float32 window sum was 2.2e-4 off
    ([0.25, 1732, 0.25, 3791, 0.75, 0.75, 1821, 0.25, 2277, 0.5, 0.5, 0, 0.5, 0.75, 0, 0.25], 5, 1e-4, 0.75, 2.0),
    # alpha = 1: the sliding sum reached exactly -k / alpha, so s = 0 and y = inf, then -0.0625
    ([4512, 2327, 0.25, 0.5, 0.25, 0], 3, 1.0, 0.75, 1.0),
    ([0.5, 0.75, 1450, 0.5, 4186, 0.25, 0.5, 0.75, 2389, 0, 0.25, 0, 2229, 0, 0, 0.25], 5, 1.0, 0.75, 2.0),
])
def test_float32_lrn_regressions_from_a_sliding_window_sum(channels, size, alpha, beta, k):
    x = np.array(channels, np.float64).reshape(1, -1, 1, 1)
    assert_float32_lrn_is_exact(x, size, alpha, beta, k, np.random.default_rng(0).standard_normal(x.shape))


def test_float32_lrn_is_exact_for_huge_activations():
    """|a| = 1e13: s = 1e26 is finite, but s * sqrt(s) is not. |a| = 1e20: a^2 is inf in float32, so that batch
    is normalised in float64 and cast back."""
    for x in ([1e13, 1e-3, 3.0, 5e12, 0.0], [1e20, 1e-3, 3.0, 1e25, 0.0]):
        x = np.array(x).reshape(1, 5, 1, 1)
        assert_float32_lrn_is_exact(x, 3, 1.0, 0.75, 2.0, np.ones(x.shape))
        assert_float32_lrn_is_exact(x, 3, 1e-4, 0.6, 1.0, np.ones(x.shape))


def test_lrn_by_hand_on_three_channels():
    """n=3, alpha=1, beta=1, k=1 on channels (1, 2, 3): s = (1+1+4, 1+1+4+9, 1+4+9) = (6, 15, 14)."""
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    y = tc.LocalResponseNorm(3, alpha=1.0, beta=1.0, k=1.0).forward(x)
    np.testing.assert_allclose(y.ravel(), [1 / 6, 2 / 15, 3 / 14])


def test_paper_lrn_equals_pytorch_convention_with_alpha_times_n():
    """PyTorch/Caffe divide alpha by n: their (n=5, alpha=5e-4, k=2) is the paper's (alpha=1e-4)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 3, 3)) * 30
    y = tc.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0).forward(x)
    sq = np.pad(x ** 2, ((0, 0), (2, 2), (0, 0), (0, 0)))
    torch_style = x / (2.0 + 5e-4 * np.mean([sq[:, i:i + 8] for i in range(5)], axis=0)) ** 0.75
    np.testing.assert_allclose(y, torch_style, rtol=1e-12)


def test_reference_comparison_catches_a_kernel_whose_window_is_not_cut_at_the_edges(monkeypatch):
    """Planted bug in the library: the layer's kernel wraps the window around the channels (np.roll) instead of
    cutting it at 0 and C-1. The comparison the property tests make must fail."""
    def wrapping_lrn_forward(a, size, alpha, beta, k, y, scale):
        squares = sum(np.roll(a, shift, axis=1) ** 2 for shift in range(-(size // 2), size // 2 + 1))
        scale[...] = k + alpha * squares
        y[...] = a * scale ** -beta
        return 0

    x = np.random.default_rng(0).standard_normal((1, 4, 2, 2))
    layer = tc.LocalResponseNorm(3, 1.0, 0.75, 2.0)
    assert_close(layer.forward(x), ref.lrn_forward(x, 3, 1.0, 0.75, 2.0))
    monkeypatch.setattr(tinycnn.layers.norm, "lrn_forward", wrapping_lrn_forward)
    with pytest.raises(AssertionError):
        assert_close(layer.forward(x), ref.lrn_forward(x, 3, 1.0, 0.75, 2.0))


def test_training_keeps_s_in_one_array_and_follows_a_new_shape():
    """s lives in the layer's own array, the same one pass after pass of one shape; a pass of another shape (or
    dtype) gets a new one, and every backward still matches the reference."""
    rng = np.random.default_rng(0)
    layer = tc.LocalResponseNorm(3, 1e-2, 0.75, 2.0)
    kept = []
    for shape, dtype in [((2, 5, 3, 3), np.float64), ((2, 5, 3, 3), np.float64), ((1, 5, 6, 3), np.float64),
                         ((1, 5, 6, 3), np.float32), ((1, 5, 6, 3), np.float32)]:
        x, dy = (rng.standard_normal(shape) * 3).astype(dtype), rng.standard_normal(shape).astype(dtype)
        assert_close(layer.forward(x, training=True), ref.lrn_forward(x, 3, 1e-2, 0.75, 2.0))
        kept.append(layer.saved().s)
        assert kept[-1].dtype == dtype
        assert_close(layer.backward(dy), ref.lrn_backward(x, dy, 3, 1e-2, 0.75, 2.0))
    assert kept[0] is kept[1] and kept[3] is kept[4]
    assert kept[1] is not kept[2] and kept[2] is not kept[3]     # same size, new shape; then a new dtype


@pytest.mark.parametrize("scale", [3.0, 1e20], ids=["float32", "redone in float64"])
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
def test_another_lrn_layers_pass_between_forward_and_backward_changes_nothing(training, scale):
    """Evaluation writes s to scratch memory that the next LRN layer's pass overwrites: so it keeps none, and
    its backward normalises again. Training keeps each layer's own s (also when squares overflow float32 and
    the layer works in float64). Either way a layer's backward after another layer's forward pass is right."""
    rng = np.random.default_rng(0)
    first, second = tc.LocalResponseNorm(3, 1e-2, 0.75, 2.0), tc.LocalResponseNorm(3, 1e-2, 0.75, 2.0)
    x = (rng.standard_normal((2, 5, 3, 3)) * scale).astype(np.float32)
    first.forward(x, training)
    second.forward(x[:, ::-1] * np.float32(0.5), training)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    expected = ref.lrn_backward(x.astype(np.float64), dy, 3, 1e-2, 0.75, 2.0)
    np.testing.assert_allclose(first.backward(dy), expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_a_models_evaluation_pass_lets_the_kept_s_go():
    """Training keeps s in the layer's own array; a model's evaluation pass keeps nothing, that array included."""
    model = tc.Sequential([tc.LocalResponseNorm(3)])
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 3))
    model.forward(x, training=True)
    assert model[0]._s is not None
    model.forward(x)
    assert model[0]._s is None
    model.forward(x, training=True)
    model.backward(np.ones_like(x))                     # and the next training pass makes a new one


def test_even_size_is_refused():
    with pytest.raises(ValueError, match="odd"):
        tc.LocalResponseNorm(4)
