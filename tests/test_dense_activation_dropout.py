"""Dense, Flatten, ReLU, Tanh and Dropout against their twins, in any memory layout, and their gradients."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref

from helpers import assert_close, away_from_zero, in_layout, layouts

shapes = st.tuples(st.integers(1, 4), st.integers(1, 40), st.integers(1, 12))
maps = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))
dtypes = pytest.mark.parametrize("dtype", [np.float32, np.float64])


@dtypes
@given(shape=shapes, seed=st.integers(0, 999), x_layout=layouts, dy_layout=layouts)
def test_dense_equals_reference(shape, seed, x_layout, dy_layout, dtype):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    dense = tc.Dense(d, k, dtype=dtype, rng=rng)
    dense.bias.data[:] = rng.standard_normal(k)
    x = rng.standard_normal((n, d)).astype(dtype)
    assert_close(dense.forward(in_layout(x, x_layout)), ref.dense_forward(x, dense.weight.data, dense.bias.data))
    dy = rng.standard_normal((n, k)).astype(dtype)
    ref_dx, ref_dw, ref_db = ref.dense_backward(x, dense.weight.data, dy)
    assert_close(dense.backward(in_layout(dy, dy_layout)), ref_dx)
    assert_close(dense.weight.grad, ref_dw)
    assert_close(dense.bias.grad, ref_db)


@given(shape=shapes, seed=st.integers(0, 999), layout=layouts)
def test_dense_passes_gradcheck(shape, seed, layout):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    assert tc.gradcheck(tc.Dense(d, k, dtype=np.float64, rng=rng), in_layout(rng.standard_normal((n, d)), layout))


@dtypes
@given(shape=maps, seed=st.integers(0, 999), x_layout=layouts, dy_layout=layouts)
def test_relu_equals_reference(shape, seed, x_layout, dy_layout, dtype):
    rng = np.random.default_rng(seed)
    x, dy = away_from_zero(rng, shape, dtype), rng.standard_normal(shape).astype(dtype)
    relu = tc.ReLU()
    y = relu.forward(in_layout(x, x_layout))
    assert y.dtype == dtype
    assert_close(y, ref.relu_forward(x))
    assert_close(relu.backward(in_layout(dy, dy_layout)), ref.relu_backward(x, dy))


@dtypes
@given(shape=maps, seed=st.integers(0, 999), x_layout=layouts, dy_layout=layouts)
def test_tanh_equals_its_twin_written_from_exponentials(shape, seed, x_layout, dy_layout, dtype):
    rng = np.random.default_rng(seed)
    x, dy = (rng.standard_normal(shape) * 3).astype(dtype), rng.standard_normal(shape).astype(dtype)
    tanh = tc.Tanh()
    y = tanh.forward(in_layout(x, x_layout))
    assert y.dtype == dtype
    assert_close(y, ref.tanh_forward(x))
    assert_close(tanh.backward(in_layout(dy, dy_layout)), ref.tanh_backward(x, dy))


@dtypes
@given(shape=maps, seed=st.integers(0, 999), x_layout=layouts, dy_layout=layouts)
def test_flatten_equals_reference(shape, seed, x_layout, dy_layout, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    flatten = tc.Flatten()
    y = flatten.forward(in_layout(x, x_layout))
    np.testing.assert_array_equal(y, ref.flatten_forward(x))
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(flatten.backward(in_layout(dy, dy_layout)).reshape(len(dy), -1), dy)


@dtypes
@given(shape=maps, p=st.sampled_from([0.0, 0.1, 0.5, 0.9]), seed=st.integers(0, 999), x_layout=layouts,
       dy_layout=layouts)
def test_dropout_equals_its_twin_with_the_mask_drawn_the_same_way(shape, p, seed, x_layout, dy_layout, dtype):
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    drop = tc.Dropout(p, rng=seed + 1)
    mask = ref.dropout_mask(shape, dtype, p, np.random.default_rng(seed + 1))
    y = drop.forward(in_layout(x, x_layout), training=True)
    assert y.dtype == dtype
    assert_close(y, x * mask)
    assert_close(drop.backward(in_layout(dy, dy_layout)), dy * mask)


@given(shape=maps, seed=st.integers(0, 999), layout=layouts)
def test_elementwise_layers_pass_gradcheck_in_any_layout(shape, seed, layout):
    rng = np.random.default_rng(seed)
    x = in_layout(away_from_zero(rng, shape), layout)
    for layer in (tc.ReLU(), tc.Tanh(), tc.Flatten(), tc.Dropout(0.5, rng=seed)):
        assert tc.gradcheck(layer, x)


@dtypes
def test_relu_keeps_nan_and_infinities_as_np_maximum_does(dtype):
    """A NaN from a diverged layer below stays NaN (so the loss shows it), bit for bit as np.maximum(x, 0)."""
    x = np.array([[np.nan, -0.0, 0.0, -np.inf, np.inf, -2.5, 3.5]], dtype)
    y = tc.ReLU().forward(x)
    np.testing.assert_array_equal(y.view(f"u{y.itemsize}"), np.maximum(x, 0).view(f"u{y.itemsize}"))


def test_relu_backward_of_a_transposed_input_is_the_gradient():
    """Regression: y kept x's memory order, so the kernel wrote into a copy and dx was uninitialised memory."""
    x = away_from_zero(np.random.default_rng(0), (3, 4, 5))
    assert tc.gradcheck(tc.ReLU(), x.T)
    relu = tc.ReLU()
    images = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)     # as Preprocess hands them over
    relu.forward(images)
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), x > 0)


@dtypes
def test_layers_keep_the_dtype(dtype):
    x = np.ones((2, 3, 4, 4), dtype)
    for layer in (tc.ReLU(), tc.Tanh(), tc.Dropout(0.5, rng=0), tc.Flatten()):
        y = layer.forward(x, training=True)
        assert y.dtype == dtype and layer.backward(y).dtype == dtype


def test_flatten_is_c_order_and_backward_restores_the_shape():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    flat = tc.Flatten()
    np.testing.assert_array_equal(flat.forward(x), x.reshape(2, 12))
    assert flat.backward(np.ones((2, 12))).shape == x.shape


def test_dropout_is_inverted_and_reproducible():
    x = np.ones((200, 500))
    y = tc.Dropout(0.5, rng=7).forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 2.0}                      # survivors scaled by 1/(1-p)
    assert abs(y.mean() - 1.0) < 0.01                            # the expectation is unchanged
    np.testing.assert_array_equal(y, tc.Dropout(0.5, rng=7).forward(x, training=True))   # same seed, same mask
    assert not np.array_equal(y, tc.Dropout(0.5, rng=8).forward(x, training=True))


def test_dropout_backward_uses_the_forward_mask_and_evaluation_is_identity():
    drop = tc.Dropout(0.4, rng=np.random.default_rng(3))
    x = np.ones((4, 50))
    y = drop.forward(x, training=True)
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), y)
    assert drop.forward(x, training=False) is x
    assert drop.backward(x) is x


def test_dense_writes_its_weight_gradient_into_the_same_array_each_step():
    """fc6's gradient is 151 MB: a new array every step would cost page zeroing. Values stay right."""
    rng = np.random.default_rng(0)
    layer = tc.Dense(6, 4, rng=rng, dtype=np.float64)
    x, dy = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))
    layer.forward(x)
    layer.backward(dy)
    first = layer.weight.grad
    layer.forward(2 * x)
    layer.backward(dy)
    assert layer.weight.grad is first
    assert_close(first, ref.dense_backward(2 * x, layer.weight.data, dy)[1])
    layer.weight.grad = np.zeros((4, 6)).T                # not C-contiguous: backward allocates a new one
    layer.backward(dy)
    assert layer.weight.grad.flags.c_contiguous
    assert_close(layer.weight.grad, ref.dense_backward(2 * x, layer.weight.data, dy)[1])
