"""BatchNorm1d and BatchNorm2d: batch statistics in training, running statistics in evaluation."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref

from helpers import in_layout, layouts, mixed_magnitudes


@st.composite
def bn_cases(draw):
    c = draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(draw(st.integers(2, 5)), c),
                                  (draw(st.integers(1, 3)), c, draw(st.integers(1, 4)), draw(st.integers(2, 4)))]))
    return dict(shape=shape, eps=draw(st.sampled_from([1e-5, 1e-3])), seed=draw(st.integers(0, 999)),
                magnitudes=draw(st.sampled_from(["normal", "from 1e-4 to 1e4"])),
                x_layout=draw(layouts), dy_layout=draw(layouts))


def make(case, dtype):
    """A layer with random gamma, beta and running statistics (so a missing 1/sqrt(var + eps) shows), and x."""
    rng = np.random.default_rng(case["seed"])
    C = case["shape"][1]
    layer = (tc.BatchNorm1d if len(case["shape"]) == 2 else tc.BatchNorm2d)(C, eps=case["eps"], dtype=dtype)
    layer.weight.data[:] = rng.uniform(0.5, 2, C)
    layer.bias.data[:] = rng.standard_normal(C)
    layer.running_mean[:] = rng.standard_normal(C)
    layer.running_var[:] = rng.uniform(0.1, 10, C)
    if case["magnitudes"] == "normal":
        x = rng.standard_normal(case["shape"]) * 3 + 1
    else:
        x = mixed_magnitudes(rng, case["shape"])
    return layer, x.astype(dtype), rng


# float32 against a float64 computation: relative to the normalised values, which are O(1)
TOLERANCE = {np.float32: dict(rtol=1e-3, atol=1e-4), np.float64: dict(rtol=1e-8, atol=1e-10)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=bn_cases())
def test_batchnorm_training_equals_reference(case, dtype):
    layer, x, rng = make(case, dtype)
    x64 = x.astype(np.float64)
    gamma = layer.weight.data.astype(np.float64)
    y = layer.forward(in_layout(x, case["x_layout"]), training=True)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref.batchnorm_forward(x64, gamma, layer.bias.data, case["eps"]),
                               **TOLERANCE[dtype])
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(in_layout(dy, case["dy_layout"]))
    ref_dx, ref_dg, ref_db = ref.batchnorm_backward(x64, gamma, dy.astype(np.float64), case["eps"])
    # dx = gamma/sigma * (...): in float32, relative to the size of the terms inside the bracket
    scale = np.abs(gamma).max() / np.sqrt(x64.var(axis=(0,) + tuple(range(2, x.ndim))).min() + case["eps"])
    np.testing.assert_allclose(dx, ref_dx, rtol=TOLERANCE[dtype]["rtol"],
                               atol=TOLERANCE[dtype]["atol"] * scale * np.abs(dy).max())
    np.testing.assert_allclose(layer.weight.grad, ref_dg, **TOLERANCE[dtype])
    np.testing.assert_allclose(layer.bias.grad, ref_db, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=bn_cases())
def test_batchnorm_evaluation_equals_reference_with_running_statistics(case, dtype):
    layer, x, rng = make(case, dtype)
    stats = (layer.running_mean.astype(np.float64), layer.running_var.astype(np.float64))
    x64, gamma = x.astype(np.float64), layer.weight.data.astype(np.float64)
    y = layer.forward(in_layout(x, case["x_layout"]), training=False)
    exact = ref.batchnorm_forward(x64, gamma, layer.bias.data, case["eps"], *stats)
    np.testing.assert_allclose(y, exact, rtol=TOLERANCE[dtype]["rtol"],
                               atol=TOLERANCE[dtype]["atol"] * np.abs(exact).max())
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(in_layout(dy, case["dy_layout"]))
    ref_dx, ref_dg, ref_db = ref.batchnorm_eval_backward(x64, gamma, dy.astype(np.float64), case["eps"], *stats)
    np.testing.assert_allclose(dx, ref_dx, **TOLERANCE[dtype])
    np.testing.assert_allclose(layer.weight.grad, ref_dg, rtol=TOLERANCE[dtype]["rtol"],
                               atol=TOLERANCE[dtype]["atol"] * np.abs(ref_dg).max())
    np.testing.assert_allclose(layer.bias.grad, ref_db, **TOLERANCE[dtype])


@pytest.mark.parametrize("training", [True, False])
@given(case=bn_cases())
def test_batchnorm_passes_gradcheck(case, training):
    """Evaluation mode too, with running statistics far from (0, 1): a backward without 1/sqrt(var + eps)
    would pass with running_var = 1."""
    layer, x, _ = make(case, np.float64)
    if case["magnitudes"] != "normal":
        x = x / np.abs(x).max()                   # central differences need values of similar size
    assert tc.gradcheck(layer, in_layout(x, case["x_layout"]), training=training)


@pytest.mark.parametrize("training", [True, False])
def test_a_frozen_batchnorm_never_writes_its_gradients(training):
    rng = np.random.default_rng(0)
    layer = tc.BatchNorm2d(3, dtype=np.float64)
    layer.running_var[:] = [0.5, 2.0, 4.0]
    x, dy = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))
    layer.forward(x, training)
    expected_dx = layer.backward(dy)
    layer.freeze()
    sentinels = [np.full(3, 7.0), np.full(3, 8.0)]
    layer.weight.grad, layer.bias.grad = sentinels
    layer.forward(x, training)
    np.testing.assert_array_equal(layer.backward(dy), expected_dx)
    assert layer.weight.grad is sentinels[0] and layer.bias.grad is sentinels[1]
    np.testing.assert_array_equal(sentinels, [np.full(3, 7.0), np.full(3, 8.0)])


def test_running_statistics_follow_momentum_with_unbiased_variance():
    x = np.array([[1.0], [3.0]])                                  # mean 2, biased var 1, unbiased var 2
    layer = tc.BatchNorm1d(1, momentum=0.1, dtype=np.float64)
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.running_mean, [0.9 * 0 + 0.1 * 2])
    np.testing.assert_allclose(layer.running_var, [0.9 * 1 + 0.1 * 2])


def test_gradcheck_leaves_running_statistics_as_they_were():
    layer = tc.BatchNorm2d(2, dtype=np.float64)
    tc.gradcheck(layer, np.random.default_rng(0).standard_normal((2, 2, 3, 3)))
    np.testing.assert_array_equal(layer.running_mean, 0)
    np.testing.assert_array_equal(layer.running_var, 1)
