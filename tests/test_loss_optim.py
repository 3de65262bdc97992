"""SoftmaxCrossEntropy and SGD."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref


@given(n=st.integers(1, 5), k=st.integers(2, 10), seed=st.integers(0, 999))
def test_loss_and_gradient_equal_reference(n, k, seed):
    rng = np.random.default_rng(seed)
    logits, labels = rng.standard_normal((n, k)) * 3, rng.integers(0, k, n)
    loss_fn = tc.SoftmaxCrossEntropy()
    ref_loss, ref_grad = ref.softmax_cross_entropy(logits, labels)
    # atol: a loss near 0 is a difference of two O(1) numbers, exact only to about 1e-16 in either formula
    np.testing.assert_allclose(loss_fn.forward(logits, labels), ref_loss, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss_fn.backward(), ref_grad, rtol=1e-10, atol=1e-15)


def test_loss_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((3, 4)), np.array([0, 3, 1])
    loss_fn = tc.SoftmaxCrossEntropy()
    loss_fn.forward(logits, labels)
    grad = loss_fn.backward()
    eps = 1e-6
    for index in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[index] = eps
        numerical = (loss_fn.forward(logits + step, labels) - loss_fn.forward(logits - step, labels)) / (2 * eps)
        assert abs(numerical - grad[index]) < 1e-8


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
