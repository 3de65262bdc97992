"""LocalResponseNorm: the paper's formula (no division of alpha by n), with windows cut at the edge channels."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref

from helpers import assert_close


@st.composite
def lrn_cases(draw):
    # alpha around 1 so the sum over the window dominates k and a wrong window shows; C may be smaller than n.
    # beta = 0.75 (the paper's) takes the kernels' square-root path, any other beta takes pow.
    return dict(size=draw(st.sampled_from([1, 3, 5, 7])), alpha=draw(st.floats(0.5, 2.0)),
                beta=draw(st.one_of(st.just(0.75), st.floats(0.5, 1.0))), k=draw(st.floats(1.0, 3.0)),
                shape=(draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 5)),
                       draw(st.integers(1, 5))),
                seed=draw(st.integers(0, 999)))


def make(case, dtype):
    rng = np.random.default_rng(case["seed"])
    layer = tc.LocalResponseNorm(case["size"], case["alpha"], case["beta"], case["k"])
    return layer, rng.standard_normal(case["shape"]).astype(dtype), rng


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=lrn_cases())
def test_lrn_equals_reference(case, dtype):
    layer, x, rng = make(case, dtype)
    args = (case["size"], case["alpha"], case["beta"], case["k"])
    y = layer.forward(x)
    assert y.dtype == dtype
    assert_close(y, ref.lrn_forward(x, *args))
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_close(layer.backward(dy), ref.lrn_backward(x, dy, *args))


@given(case=lrn_cases())
def test_lrn_passes_gradcheck(case):
    layer, x, _ = make(case, np.float64)
    assert tc.gradcheck(layer, x)


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


def test_reference_comparison_catches_a_window_that_is_not_cut_at_the_edges():
    """Planted bug: wrapping the window around the channels (np.roll) instead of cutting it at 0 and C-1."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 2, 2))
    wrapped = x / (2.0 + sum(np.roll(x, s, axis=1) ** 2 for s in (-1, 0, 1))) ** 0.75
    with pytest.raises(AssertionError):
        assert_close(wrapped, ref.lrn_forward(x, 3, 1.0, 0.75, 2.0))
    assert_close(tc.LocalResponseNorm(3, 1.0, 0.75, 2.0).forward(x), ref.lrn_forward(x, 3, 1.0, 0.75, 2.0))


def test_even_size_is_refused():
    with pytest.raises(ValueError, match="odd"):
        tc.LocalResponseNorm(4)
