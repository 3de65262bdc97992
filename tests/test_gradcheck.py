"""gradcheck itself: it must fail loudly on wrong gradients, and refuse float32."""
import os

import numpy as np
import pytest

import tinycnn as tc


class WrongInputGradientConv(tc.Conv2d):
    def backward(self, dy):
        return super().backward(dy) * 1.01                       # 1% off


class WrongWeightGradientConv(tc.Conv2d):
    def backward(self, dy):
        dx = super().backward(dy)
        self.weight.grad[1, 0, 2, 0] += 0.05                    # one entry off
        return dx


def conv(cls=tc.Conv2d):
    return cls(2, 3, 3, padding=1, dtype=np.float64, rng=0)


def test_gradcheck_passes_a_correct_layer():
    assert tc.gradcheck(conv(), np.random.default_rng(0).standard_normal((2, 2, 5, 5)))


def test_gradcheck_names_a_wrong_input_gradient():
    with pytest.raises(tc.GradcheckError, match=r"gradient of input is wrong at \(.*numerical .* analytical"):
        tc.gradcheck(conv(WrongInputGradientConv), np.random.default_rng(0).standard_normal((2, 2, 5, 5)))


def test_gradcheck_names_the_parameter_and_the_worst_index():
    with pytest.raises(tc.GradcheckError, match=r"gradient of weight is wrong at \(1, 0, 2, 0\)"):
        tc.gradcheck(conv(WrongWeightGradientConv), np.random.default_rng(0).standard_normal((2, 2, 5, 5)))


def test_random_directions_catch_a_wrong_gradient_in_a_large_tensor():
    layer = conv(WrongInputGradientConv)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    with pytest.raises(tc.GradcheckError, match="input is wrong at direction"):
        tc.gradcheck(layer, x, full_limit=10)


def test_gradcheck_holds_the_dropout_mask_fixed():
    """Without restoring the Generator, every forward pass would draw a new mask and the check would fail."""
    x = np.random.default_rng(0).standard_normal((4, 30))
    assert tc.gradcheck(tc.Dropout(0.5, rng=0), x)

    class FreshMaskDropout(tc.Dropout):                          # hides its Generator from gradcheck
        def forward(self, x, training=False):
            self._stream = getattr(self, "_stream", np.random.default_rng(1))
            self.rng = None
            mask = (self._stream.random(x.shape) >= self.p) * 2.0
            self.save_for_backward(x_shape=x.shape, dtype=x.dtype, mask=mask)
            return x * mask

    with pytest.raises(tc.GradcheckError):
        tc.gradcheck(FreshMaskDropout(0.5), x)


def test_gradcheck_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        tc.gradcheck(tc.Conv2d(1, 1, 1), np.ones((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="float64"):
        tc.gradcheck(tc.ReLU(), np.ones((1, 3), np.float32))


def test_gradient_errors_reports_every_entry_in_index_order():
    records = tc.gradient_errors(tc.Dense(3, 2, dtype=np.float64, rng=0), np.ones((2, 3)))
    assert [(r["name"], r["index"]) for r in records] == (
        [("input", i) for i in np.ndindex(2, 3)] + [("weight", i) for i in np.ndindex(2, 3)]
        + [("bias", i) for i in np.ndindex(2)])
    assert max(r["rel_error"] for r in records) < 1e-6


def test_gradcheck_explains_a_layer_that_skips_its_input_gradient():
    layer = conv()
    layer.needs_input_grad = False
    with pytest.raises(ValueError, match="needs_input_grad = False"):
        tc.gradcheck(layer, np.random.default_rng(0).standard_normal((1, 2, 5, 5)))


def test_ci_draws_the_same_examples_on_every_run():
    """.ci/run sets CI: hypothesis is derandomised there, so a red CI run can be reproduced."""
    import subprocess
    import sys
    script = "import conftest; from hypothesis import settings; print(settings.default.derandomize, " \
             "settings.default.database)"
    tests = os.path.dirname(os.path.abspath(__file__))
    for ci, expected in (("true", "True None"), (None, "False")):
        env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci else {})
        done = subprocess.run([sys.executable, "-c", script], cwd=tests, env=env, capture_output=True, text=True)
        assert done.stdout.startswith(expected), done.stderr
