"""BatchNorm1d and BatchNorm2d: batch statistics in training, running statistics in evaluation."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref

from helpers import assert_close


@st.composite
def bn_cases(draw):
    c = draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(draw(st.integers(2, 5)), c),
                                  (draw(st.integers(1, 3)), c, draw(st.integers(1, 4)), draw(st.integers(2, 4)))]))
    return dict(shape=shape, eps=draw(st.sampled_from([1e-5, 1e-3])), seed=draw(st.integers(0, 999)))


def make(case, dtype):
    rng = np.random.default_rng(case["seed"])
    cls = tc.BatchNorm1d if len(case["shape"]) == 2 else tc.BatchNorm2d
    layer = cls(case["shape"][1], eps=case["eps"], dtype=dtype)
    layer.weight.data[:] = rng.uniform(0.5, 2, case["shape"][1])
    layer.bias.data[:] = rng.standard_normal(case["shape"][1])
    return layer, (rng.standard_normal(case["shape"]) * 3 + 1).astype(dtype), rng


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=bn_cases())
def test_batchnorm_training_equals_reference(case, dtype):
    layer, x, rng = make(case, dtype)
    y = layer.forward(x, training=True)
    assert_close(y, ref.batchnorm_forward(x, layer.weight.data, layer.bias.data, case["eps"]), np.float64
                 if dtype == np.float64 else None)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(dy)
    ref_dx, ref_dg, ref_db = ref.batchnorm_backward(x, layer.weight.data, dy, case["eps"])
    tol = dict(rtol=1e-3, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dx, ref_dx, **tol)
    np.testing.assert_allclose(layer.weight.grad, ref_dg, **tol)
    np.testing.assert_allclose(layer.bias.grad, ref_db, **tol)


@given(case=bn_cases())
def test_batchnorm_evaluation_uses_running_statistics(case):
    layer, x, _ = make(case, np.float64)
    layer.running_mean[:] = np.arange(case["shape"][1])
    layer.running_var[:] = 1 + np.arange(case["shape"][1])
    y = layer.forward(x, training=False)
    assert_close(y, ref.batchnorm_forward(x, layer.weight.data, layer.bias.data, case["eps"],
                                          layer.running_mean, layer.running_var))


@pytest.mark.parametrize("training", [True, False])
@given(case=bn_cases())
def test_batchnorm_passes_gradcheck(case, training):
    layer, x, _ = make(case, np.float64)
    assert tc.gradcheck(layer, x, training=training)


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
