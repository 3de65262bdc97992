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


class WrongReLU(tc.ReLU):
    def backward(self, dy):
        return super().backward(dy) * 1.05                      # 5% off


class NoBiasGradientDense(tc.Dense):
    def backward(self, dy):
        x = self.saved().x
        self.weight.grad = dy.T @ x                              # forgets to set bias.grad
        return dy @ self.weight.data


def small_cnn(relu=tc.ReLU, dense=tc.Dense):
    """conv1 -> relu1 -> conv2 -> flatten -> fc: a fault in relu1 spreads into conv1's gradients below it."""
    rng = np.random.default_rng(0)
    conv1 = tc.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    conv1.bias.data[:] = [0.3, -0.2, 0.1]                       # ReLUs both on and off
    return tc.Sequential({"conv1": conv1, "relu1": relu(), "conv2": tc.Conv2d(3, 2, 3, dtype=np.float64, rng=rng),
                          "flatten": tc.Flatten(), "fc": dense(2 * 2 * 2, 3, dtype=np.float64, rng=rng)})


def test_a_model_that_fails_names_the_first_layer_that_fails_alone():
    """Issue #22: the worst gradient of the model is conv1's, below the fault; the message must name relu1."""
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4))
    assert tc.gradcheck(small_cnn(), x)
    with pytest.raises(tc.GradcheckError) as error:
        tc.gradcheck(small_cnn(WrongReLU), x)
    assert "the first to fail is WrongReLU 'relu1'" in str(error.value)


def test_a_gradient_backward_never_set_is_reported_as_never_set():
    """Not as "analytical 0", which reads like a wrong formula; in a model, the layer that forgot is named."""
    rng = np.random.default_rng(0)
    with pytest.raises(tc.GradcheckError, match=r"gradient of bias was never set"):
        tc.gradcheck(NoBiasGradientDense(3, 2, dtype=np.float64, rng=rng), rng.standard_normal((2, 3)))
    with pytest.raises(tc.GradcheckError) as error:
        tc.gradcheck(small_cnn(dense=NoBiasGradientDense), rng.standard_normal((2, 2, 4, 4)))
    assert "gradient of fc.bias was never set" in str(error.value)
    assert "the first to fail is NoBiasGradientDense 'fc'" in str(error.value)


def test_a_layer_with_several_inputs_is_checked_on_each():
    """Concat alone, as the layer-by-layer check of a Graph sees it: one record name per input."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 1, 2, 2)), rng.standard_normal((2, 3, 2, 2))]
    assert tc.gradcheck(tc.Concat(), xs)
    assert {r["name"] for r in tc.gradient_errors(tc.Concat(), xs)} == {"input[0]", "input[1]"}

    class WrongConcat(tc.Concat):
        def backward(self, dy):
            first, second = super().backward(dy)
            return [first, second * 1.01]

    with pytest.raises(tc.GradcheckError, match=r"gradient of input\[1\] is wrong"):
        tc.gradcheck(WrongConcat(), xs)
