"""Tests written for the layer mutants that survived the first mutation run (docs/mutation.md): the paper's
defaults, the edges of each argument check, and state that only a second step or a fresh Generator shows."""
import re

import numpy as np
import pytest

import tinycnn as tc


def raises_exactly(error, message):
    return pytest.raises(error, match="^" + re.escape(message) + "$")


def test_the_layers_defaults_are_the_papers():
    lrn = tc.LocalResponseNorm()
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.groups) == (5, 1e-4, 0.75, 2.0, 1)
    assert tc.Dropout().p == 0.5
    bn = tc.BatchNorm2d(3)
    assert (bn.eps, bn.momentum) == (1e-5, 0.1)


def test_forward_defaults_to_evaluation():
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(tc.Dropout(0.5, rng=0).forward(x), x)
    bn = tc.BatchNorm2d(3)
    y = bn.forward(x)
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3))             # nothing learned in evaluation
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_dropout_with_p_zero_returns_its_input_and_draws_nothing():
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    x = np.ones((3, 4), np.float32)
    assert tc.Dropout(0.0, rng=g).forward(x, training=True) is x
    assert g.bit_generator.state == state


@pytest.mark.parametrize("kwargs, message", [
    (dict(k=0.0), "LocalResponseNorm: expected k > 0 and alpha >= 0, got k=0.0, alpha=0.0001"),
    (dict(alpha=-1.0), "LocalResponseNorm: expected k > 0 and alpha >= 0, got k=2.0, alpha=-1.0"),
    (dict(groups=0), "LocalResponseNorm: groups must be >= 1, got 0")])
def test_lrn_refuses_what_has_no_meaning_and_says_what_it_expected(kwargs, message):
    with raises_exactly(ValueError, message):
        tc.LocalResponseNorm(**kwargs)


def test_lrn_with_alpha_zero_scales_by_k_to_the_minus_beta_and_shows_its_groups():
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3))
    np.testing.assert_allclose(tc.LocalResponseNorm(alpha=0.0).forward(x), x * 2.0 ** -0.75, rtol=1e-12)
    assert repr(tc.LocalResponseNorm(groups=2)).endswith(", groups=2)")
    assert "groups" not in repr(tc.LocalResponseNorm())
    with pytest.raises(ValueError, match=r"expected a channel count divisible by groups=2, got input of shape "
                                         r"\(2, 3, 3, 3\)"):
        tc.LocalResponseNorm(groups=2).forward(x[:, :3])


@pytest.mark.parametrize("args, message", [
    ((0,), "BatchNorm2d: expected num_features >= 1, eps > 0, 0 <= momentum <= 1, got 0, 1e-05, 0.1"),
    ((3, 0.0), "BatchNorm2d: expected num_features >= 1, eps > 0, 0 <= momentum <= 1, got 3, 0.0, 0.1"),
    ((3, 1e-5, 1.5), "BatchNorm2d: expected num_features >= 1, eps > 0, 0 <= momentum <= 1, got 3, 1e-05, 1.5")])
def test_batchnorm_refuses_arguments_outside_their_range(args, message):
    with raises_exactly(ValueError, message):
        tc.BatchNorm2d(*args)


def test_batchnorm_accepts_momentum_zero_and_one():
    tc.BatchNorm2d(3, momentum=0.0)
    tc.BatchNorm2d(3, momentum=1.0)


def test_batchnorm_running_statistics_over_two_steps():
    """running = (1 - m) running + m batch, the variance unbiased (n / (n - 1)); from 0 and 1 one step cannot
    tell (1 - m) from (1 + m) apart from the start values, two steps can."""
    rng = np.random.default_rng(0)
    bn = tc.BatchNorm1d(2, momentum=0.3, dtype=np.float64)
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(2):
        x = rng.standard_normal((5, 2)) * 3 + 1
        bn.forward(x, training=True)
        mean = 0.7 * mean + 0.3 * x.mean(axis=0)
        var = 0.7 * var + 0.3 * x.var(axis=0, ddof=1)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)


def test_batchnorm_training_on_one_value_per_channel_says_so():
    with pytest.raises(ValueError, match=r"training needs more than one value per channel, got input of shape "
                                         r"\(1, 3\)"):
        tc.BatchNorm1d(3).forward(np.ones((1, 3), np.float32), training=True)
