"""SoftmaxCrossEntropy, MSELoss and SGD."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref

from helpers import LossAsLayer, in_layout, layouts, mixed_magnitudes


# float32 results against the twin computed in float64 from the same float32 inputs
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-15)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(n=st.integers(1, 5), k=st.integers(2, 10), seed=st.integers(0, 999),
       magnitudes=st.sampled_from(["normal", "from 1e-4 to 1e4"]), layout=layouts)
def test_softmax_cross_entropy_equals_reference(n, k, seed, magnitudes, layout, dtype):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * 3 if magnitudes == "normal" else mixed_magnitudes(rng, (n, k))
    logits, labels = logits.astype(dtype), rng.integers(0, k, n)
    loss_fn = tc.SoftmaxCrossEntropy()
    loss = loss_fn.forward(in_layout(logits, layout), labels)
    grad = loss_fn.backward()
    assert grad.dtype == dtype
    ref_loss, ref_grad = ref.softmax_cross_entropy(logits.astype(np.float64), labels)
    # a loss near 0 is a difference of two O(1) numbers, exact only to a few units in the last place
    np.testing.assert_allclose(loss, ref_loss, rtol=TOLERANCE[dtype]["rtol"], atol=TOLERANCE[dtype]["atol"])
    np.testing.assert_allclose(grad, ref_grad, rtol=TOLERANCE[dtype]["rtol"], atol=TOLERANCE[dtype]["atol"] / n)


@given(n=st.integers(1, 5), k=st.integers(2, 10), seed=st.integers(0, 999), layout=layouts)
def test_softmax_cross_entropy_passes_gradcheck(n, k, seed, layout):
    rng = np.random.default_rng(seed)
    loss = LossAsLayer(tc.SoftmaxCrossEntropy(), rng.integers(0, k, n))
    assert tc.gradcheck(loss, in_layout(rng.standard_normal((n, k)) * 3, layout))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 2**32 - 1),
       p_layout=layouts, t_layout=layouts)
def test_mse_equals_reference(shape, seed, p_layout, t_layout, dtype):
    rng = np.random.default_rng(seed)
    p, t = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    mse = tc.MSELoss()
    loss, grad = mse.forward(in_layout(p, p_layout), in_layout(t, t_layout)), mse.backward()
    assert grad.dtype == dtype
    ref_loss, ref_grad = ref.mse(p.astype(np.float64), t.astype(np.float64))
    np.testing.assert_allclose(loss, ref_loss, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad, ref_grad, **TOLERANCE[dtype])


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 2**32 - 1), layout=layouts)
def test_mse_passes_gradcheck(shape, seed, layout):
    rng = np.random.default_rng(seed)
    loss = LossAsLayer(tc.MSELoss(), rng.standard_normal(shape))
    assert tc.gradcheck(loss, in_layout(rng.standard_normal(shape), layout))


def test_loss_gradchecks_catch_a_wrong_loss_gradient():
    """Planted bugs: the softmax gradient without the 1/N of the mean, and the MSE gradient without its 2."""

    class SumNotMean(tc.SoftmaxCrossEntropy):
        def backward(self):
            return super().backward() * len(self.labels)

    class HalfMSE(tc.MSELoss):
        def backward(self):
            return super().backward() / 2

    rng = np.random.default_rng(0)
    with pytest.raises(tc.GradcheckError, match="input"):
        tc.gradcheck(LossAsLayer(SumNotMean(), np.array([0, 2, 1])), rng.standard_normal((3, 4)))
    with pytest.raises(tc.GradcheckError, match="input"):
        tc.gradcheck(LossAsLayer(HalfMSE(), rng.standard_normal((2, 3))), rng.standard_normal((2, 3)))


def test_mse_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"MSELoss: the prediction has shape \(2, 3\), expected the target's \(3, 2\)"):
        tc.MSELoss().forward(np.ones((2, 3)), np.ones((3, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_finite_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype)
    loss_fn = tc.SoftmaxCrossEntropy()
    loss = loss_fn.forward(logits, np.array([1, 2]))
    assert np.isfinite(loss) and np.isclose(loss, 1e4, rtol=1e-6)       # (2e4 + 0) / 2
    grad = loss_fn.backward()
    assert np.isfinite(grad).all() and grad.dtype == dtype


def test_loss_of_uniform_logits_is_log_k():
    assert np.isclose(tc.SoftmaxCrossEntropy().forward(np.zeros((2, 10)), np.array([3, 7])), np.log(10))


def test_loss_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        tc.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))


def test_sgd_follows_the_papers_update_rule():
    """v <- 0.9 v - 0.0005 lr w - lr g;  w <- w + v  (section 5), two steps by hand."""
    p = tc.Parameter(np.array([1.0, -2.0]))
    opt = tc.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
    w, v = p.data.copy(), np.zeros(2)
    for g in (np.array([0.5, 0.25]), np.array([-1.0, 2.0])):
        p.grad = g.copy()
        opt.step()
        v = 0.9 * v - 5e-4 * 0.1 * w - 0.1 * g
        w = w + v
        np.testing.assert_allclose(p.data, w, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_kernel_is_bit_identical_to_numpy_update(dtype):
    """The fused one-pass kernel does NumPy's arithmetic in NumPy's order: not close, equal."""
    rng = np.random.default_rng(0)
    p = tc.Parameter(rng.standard_normal((37, 11), dtype), lr_mult=2.0, decay_mult=0.5)
    opt = tc.SGD([p], lr=0.03, momentum=0.9, weight_decay=5e-4)
    w, v = p.data.copy(), np.zeros_like(p.data)
    for _ in range(3):
        p.grad = rng.standard_normal(p.shape, dtype)
        opt.step()
        ref.sgd_step(w, p.grad, v, dtype(0.06), dtype(0.9), dtype(5e-4 * 0.5) * dtype(0.06))
        np.testing.assert_array_equal(p.data, w)
        np.testing.assert_array_equal(opt.velocity[0], v)


def test_sgd_respects_lr_and_decay_multipliers_and_keeps_float32():
    p = tc.Parameter(np.ones(3, np.float32), lr_mult=2.0, decay_mult=0.0)
    p.grad = np.ones(3, np.float32)
    tc.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5).step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, 1 - 0.2, rtol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(lr=0), dict(lr=-1), dict(momentum=1.0), dict(weight_decay=-1)])
def test_sgd_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="SGD"):
        tc.SGD([tc.Parameter(np.ones(1))], **kwargs)
