"""MaxPool2d, including the paper's overlapping 3x3 stride-2 windows, where gradients must add up."""
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref

from helpers import assert_close, distinct, in_layout, layouts


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 12))
    w = draw(st.integers(max(1, kw - 2 * pw), 12))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return dict(shape=shape, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), seed=draw(st.integers(0, 999)),
                x_layout=draw(layouts), dy_layout=draw(layouts))


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=pool_cases())
def test_maxpool_equals_reference(case, dtype, training):
    """Training finds the winners with the values (maxpool_forward); evaluation the values alone (maxpool_values),
    and a backward after it finds the winners then."""
    rng = np.random.default_rng(case["seed"])
    pool = tc.MaxPool2d(case["kernel"], case["stride"], case["padding"])
    x = distinct(rng, case["shape"], dtype)
    y = pool.forward(in_layout(x, case["x_layout"]), training)
    assert y.dtype == dtype
    assert_close(y, ref.maxpool2d_forward(x, pool.kernel_size, pool.stride, pool.padding))
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(pool.backward(in_layout(dy, case["dy_layout"])),
                 ref.maxpool2d_backward(x, dy, pool.kernel_size, pool.stride, pool.padding))


@given(case=pool_cases())
def test_maxpool_passes_gradcheck(case):
    pool = tc.MaxPool2d(case["kernel"], case["stride"], case["padding"])
    x = distinct(np.random.default_rng(case["seed"]), case["shape"])
    assert tc.gradcheck(pool, in_layout(x, case["x_layout"]))


def test_overlapping_pool_adds_gradients_of_a_pixel_that_wins_two_windows():
    """Hand-computed: in a 1x5 row the middle pixel is in both 3-wide stride-2 windows and wins both."""
    x = np.array([[[[1.0, 2.0, 9.0, 3.0, 4.0]]]])
    pool = tc.MaxPool2d((1, 3), stride=(1, 2))
    np.testing.assert_array_equal(pool.forward(x), [[[[9.0, 9.0]]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[[10.0, 100.0]]]])), [[[[0, 0, 110.0, 0, 0]]]])


def test_ties_go_to_the_first_pixel_in_row_major_order():
    x = np.array([[[[5.0, 5.0], [5.0, 5.0]]]])
    pool = tc.MaxPool2d(2)
    pool.forward(x)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1))), [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_paper_pooling_shapes():
    """Section 3.4: z=3, s=2 takes 55 -> 27 -> 13 -> 6 in AlexNet."""
    pool = tc.MaxPool2d(3, 2)
    assert pool.output_shape((96, 55, 55)) == (96, 27, 27)
    assert pool.output_shape((256, 27, 27)) == (256, 13, 13)
    assert pool.output_shape((256, 13, 13)) == (256, 6, 6)


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("at", [(h, w) for h in range(3) for w in range(3)])
def test_a_nan_anywhere_in_a_window_propagates(at, training):
    """A NaN in any row and column of the window, the first row (where the column maxima start) or a later one
    (where they are compared), padded or not."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    x[(0, 0) + at] = np.nan
    assert np.isnan(tc.MaxPool2d(3).forward(x, training)).all()
    y = tc.MaxPool2d(3, 2, padding=1).forward(x, training)                  # 2x2 windows, the NaN in 1, 2 or 4
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref.maxpool2d_forward(x, (3, 3), (2, 2), (1, 1))))
    assert 1 <= np.isnan(y).sum() < 4 or at == (1, 1)


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padding_never_wins_even_against_minus_infinity(dtype, training):
    """Every window holds a pixel, so the max is a pixel's value: -inf everywhere gives -inf, not the padding's
    fill or 0; and -inf beside finite pixels loses to them."""
    x = np.full((1, 2, 4, 5), -np.inf, dtype)
    y = tc.MaxPool2d(3, 2, padding=1).forward(x, training)
    assert y.dtype == dtype and y.shape == (1, 2, 2, 3) and np.all(y == -np.inf)
    x[0, 1] = -np.arange(20, dtype=dtype).reshape(4, 5) * dtype(1e30)
    y = tc.MaxPool2d(3, 2, padding=1).forward(x, training)
    np.testing.assert_array_equal(y, ref.maxpool2d_forward(x, (3, 3), (2, 2), (1, 1)))
    assert np.all(y[0, 0] == -np.inf) and np.isfinite(y[0, 1]).all()


@pytest.mark.parametrize("shape", [(1, 1, 0, 3), (1, 1, 3, 0), (2, 3, 0, 0)])
def test_an_image_without_pixels_is_refused(shape):
    with pytest.raises(ValueError, match=r"MaxPool2d.*at least 1x1 pixels.*" + re.escape(str(shape))):
        tc.MaxPool2d(2, padding=1).forward(np.zeros(shape))


def test_gradcheck_catches_a_pool_backward_that_overwrites_instead_of_adding():
    """Planted bug: the classic missing `+=`. 2x2 stride-2 pooling would hide it; 3x3 stride 2 exposes it."""

    class OverwritingMaxPool(tc.MaxPool2d):
        def backward(self, dy):
            saved = self.saved()
            x_shape, dtype, argmax = saved.x_shape, saved.dtype, saved.argmax
            dx = np.zeros(x_shape, dtype).reshape(x_shape[0], x_shape[1], -1)
            for n in range(x_shape[0]):
                for c in range(x_shape[1]):
                    dx[n, c, argmax[n, c].ravel()] = dy[n, c].ravel()     # = where += is needed
            return dx.reshape(x_shape)

    x = distinct(np.random.default_rng(0), (1, 2, 7, 7))
    x[:, :, 2::2, 2::2] += 100          # pixels on the borders between windows win every window they are in
    assert tc.gradcheck(OverwritingMaxPool(2, 2), x[..., :6, :6])             # non-overlapping: bug hidden
    with pytest.raises(tc.GradcheckError, match="input"):
        tc.gradcheck(OverwritingMaxPool(3, 2), x)
