"""Tests written for the layer mutants that survived the first mutation run (docs/mutation.md): the paper's
defaults, the edges of each argument check, and state that only a second step or a fresh Generator shows. Below,
for the survivors of the later run (docs/mutation_layers_after.md), grouped by file: whole messages, reprs, macs,
non-square windows and inputs, dtypes, `layer(x)`, and each condition of an `or` alone."""
import re

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import reference as ref
from tinycnn.layers.base import expected_shape


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


# The survivors of the later layers/ run (docs/mutation_layers_after.md): each test below names the mutants it
# kills as function #number (mutmut's numbering) and the change.

RNG = np.random.default_rng(2026)


def floats(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.fixture
def blas():
    """np.matmul for gemm: these tests read a layer's logic, not the kernel (tests/test_kernels.py checks that),
    and with a cold numba cache gemm's compilation alone takes half a minute."""
    before = tc.get_backend()
    tc.set_backend("blas")
    yield
    tc.set_backend(before)


# -- base.py: Parameter, normal_weight ---------------------------------------------------------------------

def test_a_new_parameters_grad_has_its_datas_dtype():
    """Parameter.__init__ #7, #9: np.zeros(shape, None) / np.zeros(shape): a float64 grad for float32 data."""
    p = tc.Parameter(np.ones((2, 3), np.float32))
    assert p.grad.dtype == np.float32 and p.grad.shape == (2, 3) and not p.grad.any()


def read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("grad", [np.zeros((2, 3)),                                     # float64 for float32 data
                                  np.zeros((3, 2), np.float32),                         # another shape
                                  np.zeros((3, 2), np.float32).T,                       # F-ordered
                                  read_only(np.zeros((2, 3), np.float32))],
                         ids=["float64", "shape", "F-ordered", "read-only"])
def test_grad_buffer_refuses_a_grad_backward_may_not_overwrite(grad):
    """Parameter.grad_buffer #4 (`dtype ... or c_contiguous`), #5 (`shape ... or dtype`): each bad grad alone."""
    p = tc.Parameter(np.ones((2, 3), np.float32))
    p.grad = grad
    assert p.grad_buffer() is None
    p.grad = np.zeros((2, 3), np.float32)
    assert p.grad_buffer() is p.grad


def test_weight_std_is_the_std_drawn_and_he_is_sqrt_two_over_fan_in():
    """normal_weight #3 (`weight_std is None or True`: He always), #6 (`sqrt(3.0 / fan_in)`);
    Dense.__init__ #20 (weight_std dropped)."""
    assert tc.Dense(400, 300, weight_std=0.01, rng=0).weight.data.std() == pytest.approx(0.01, rel=0.02)
    assert tc.Dense(500, 200, rng=0).weight.data.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)


# -- base.py: Layer ----------------------------------------------------------------------------------------

def test_calling_a_layer_is_its_forward_evaluation_by_default():
    """Layer.__call__ #1 (training=True by default), #2 (forward(None, ...)), #4 (forward(training))."""
    x = floats(4, 6)
    dropout = tc.Dropout(0.5, rng=0)
    assert dropout(x) is x
    np.testing.assert_array_equal(tc.ReLU()(x), np.maximum(x, 0))


def test_calling_a_layer_with_training_true_trains():
    """Layer.__call__ #3 (forward(x, None)), #5 (forward(x)): the training flag is passed on."""
    x = np.ones((50, 20), np.float32)
    y = tc.Dropout(0.5, rng=0)(x, True)
    np.testing.assert_array_equal(y, tc.Dropout(0.5, rng=0).forward(x, training=True))
    assert 0 < (y == 0).mean() < 1 and set(np.unique(y)) == {0.0, 2.0}


def test_a_layer_without_output_shape_says_so_in_full():
    """Layer.output_shape #1 (NotImplementedError(None)), #2 (tuple(None))."""
    class Bare(tc.Layer):
        pass

    with raises_exactly(NotImplementedError, "Bare(): output_shape is not implemented; a layer must say what shape "
                                             "it returns (here for input shape (3, 4)): summary() and profile() "
                                             "ask every layer"):
        Bare().output_shape([3, 4])


def test_a_layer_that_computes_nothing_counts_no_macs():
    """Layer.macs #1 (`return 1`); MaxPool2d.macs #1 (`return 1`)."""
    assert tc.ReLU().macs((3, 4, 4)) == 0
    assert tc.MaxPool2d(3, 2).macs((3, 9, 9)) == 0


def test_named_buffers_lists_every_layers_buffers():
    """Layer.named_buffers #14 (`own = ...` for `own += ...`: only the last child's buffers)."""
    first, second = tc.BatchNorm2d(3), tc.BatchNorm2d(3)
    model = tc.Sequential([first, tc.ReLU(), second])
    buffers = model.named_buffers()
    assert [name for name, _ in buffers] == ["batch_norm2d.running_mean", "batch_norm2d.running_var",
                                             "batch_norm2d_1.running_mean", "batch_norm2d_1.running_var"]
    wanted = [first.running_mean, first.running_var, second.running_mean, second.running_var]
    assert all(b is want for (_, b), want in zip(buffers, wanted))


def test_freeze_false_makes_every_parameter_trainable_again():
    """Layer.freeze #2 (`p.trainable = None`)."""
    model = tc.Sequential([tc.Dense(3, 4), tc.ReLU(), tc.Dense(4, 2)])
    assert all(p.trainable is False for p in model.freeze().parameters())
    assert all(p.trainable is True for p in model.freeze(False).parameters())


def test_a_layers_repr_and_label():
    """Layer.__repr__ #1 (type(None).__name__), Layer.extra_repr #1 ("XXXX"), Layer.label #3 (`name or True`:
    an unnamed layer labelled 'None'), #4 ("XXXX" for no name)."""
    relu = tc.ReLU()
    assert repr(relu) == "ReLU()"
    assert relu.label() == "ReLU()"
    relu.name = "relu1"
    assert relu.label() == "ReLU 'relu1' ()"


def test_backward_with_a_list_for_dy_says_what_it_got():
    """Layer.check_dy #2 (ValueError(None)), #3 (type(None).__name__)."""
    relu = tc.ReLU()
    relu.forward(floats(2, 3))
    with raises_exactly(ValueError, "ReLU(): backward expected dy as a numpy array, got list"):
        relu.backward([1.0])


def test_expected_shape_writes_d_for_features_and_c_for_channels():
    """expected_shape #6 (`"C" if ndim == 4 or True`), #11 ("XXDXX"), #12 ("d")."""
    assert expected_shape(2) == "(N, D)"
    assert expected_shape(4) == "(N, C, H, W)"
    assert expected_shape(2, 10) == "(N, 10)"


# -- base.py: pair, window, window_output_hw ----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=(3, 3, 3)), "Conv2d kernel_size must be an int or a pair of ints, got (3, 3, 3)"),
    (dict(kernel_size=2.5), "Conv2d kernel_size must be an int or a pair of ints, got 2.5")],
    ids=["three-sizes", "float"])
def test_pair_refuses_three_sizes_and_a_float_whole_message(kwargs, message):
    """pair #6 (`len != 2 and not all ints`: three ints accepted), #11 (ValueError(None))."""
    with raises_exactly(ValueError, message):
        tc.Conv2d(3, 8, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=(3,)), "MaxPool2d kernel_size must be an int or a pair of ints, got (3,)"),
    (dict(kernel_size=3, stride=(1, 2, 3)), "MaxPool2d stride must be an int or a pair of ints, got (1, 2, 3)"),
    (dict(kernel_size=3, padding=1.5), "MaxPool2d padding must be an int or a pair of ints, got 1.5")],
    ids=["kernel_size", "stride", "padding"])
def test_window_names_the_layer_and_the_argument(kwargs, message):
    """window #3, #8, #13 (pair's `what` None for kernel_size, stride, padding)."""
    with raises_exactly(ValueError, message):
        tc.MaxPool2d(**kwargs)


@pytest.mark.parametrize("kwargs, got", [(dict(stride=0), "(3, 3), (0, 0), (0, 0)"),
                                         (dict(padding=-1), "(3, 3), (1, 1), (-1, -1)")],
                         ids=["stride-0", "padding-minus-1"])
def test_window_refuses_a_zero_stride_or_a_negative_padding_alone(kwargs, got):
    """window #16 (`stride < 1 and padding < 0`)."""
    with raises_exactly(ValueError, "Conv2d: expected kernel_size >= 1, stride >= 1, padding >= 0, got " + got):
        tc.Conv2d(3, 8, 3, **kwargs)


def test_too_small_an_input_for_a_non_square_padded_window():
    """window_output_hw #22, #24, #26, #27, #29, #30, #31, #34: every index and sign of the message, on a window,
    padding and input whose two sides all differ."""
    conv = tc.Conv2d(3, 8, (7, 6), padding=(2, 1))
    with raises_exactly(ValueError, "Conv2d(3, 8, kernel_size=(7, 6), stride=(1, 1), padding=(2, 1)): input of 2x6 "
                                    "pixels is too small for a 7x6 window with padding (2, 1); expected at least "
                                    "3x4"):
        conv.output_shape((3, 2, 6))


# -- activation.py -------------------------------------------------------------------------------------------

def test_relu_output_is_c_ordered_for_a_transposed_input():
    """ReLU.forward #6 (out=None), #9 (no out=) of the 2026-12-01 run: np.maximum keeps x's F order, the docstring
    promises C order. (The forward pass is now the relu_forward kernel on a flat y = np.empty(x.shape): the
    promise and this test stay.)"""
    x = floats(3, 5).T
    y = tc.ReLU().forward(x)
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_relu_backward_of_a_two_axis_input():
    """ReLU.backward #26 (dx.reshape(None): the kernel gets the 2-D dx, fills rows with single values and writes
    past its end; the run reported it 'suspicious': the process aborts on the corrupted heap)."""
    relu = tc.ReLU()
    x = floats(3, 2)
    relu.forward(x)
    dy = floats(3, 2)
    np.testing.assert_array_equal(relu.backward(dy), np.where(x > 0, dy, 0))


def test_tanh_output_shape_is_its_input_shape():
    """Tanh.output_shape #1 (tuple(None))."""
    assert tc.Tanh().output_shape([3, 5, 7]) == (3, 5, 7)


# -- conv.py -------------------------------------------------------------------------------------------------

def test_conv2d_window_refusal_names_conv2d():
    """Conv2d.__init__ #6, #14, #15, #16 (window's kind None, "XXConv2dXX", "conv2d", "CONV2D")."""
    with raises_exactly(ValueError, "Conv2d: expected kernel_size >= 1, stride >= 1, padding >= 0, got (0, 0), "
                                    "(1, 1), (0, 0)"):
        tc.Conv2d(3, 8, 0)


@pytest.mark.parametrize("args, kwargs", [((0, 8, 3), {}), ((3, 0, 3), {}), ((4, 8, 3), dict(groups=0))],
                         ids=["in-0", "out-0", "groups-0"])
def test_conv2d_refuses_each_bad_count_alone(args, kwargs):
    """Conv2d.__init__ #19 (`out_channels < 1 and groups < 1`), #20 (`in_channels < 1 and out_channels < 1`)."""
    groups = kwargs.get("groups", 1)
    with raises_exactly(ValueError, f"Conv2d: in_channels ({args[0]}) and out_channels ({args[1]}) must be "
                                    f"positive multiples of groups ({groups})"):
        tc.Conv2d(*args, **kwargs)


def test_conv2d_dtype_refusal_names_conv2d():
    """Conv2d.__init__ #33, #36, #37, #38 (check_dtype's `where` None, "XXConv2dXX", "conv2d", "CONV2D")."""
    with raises_exactly(ValueError, "Conv2d: dtype must be float32 or float64, got int32"):
        tc.Conv2d(3, 8, 3, dtype=np.int32)


def test_conv2d_weights_he_std_of_a_non_square_kernel_and_weight_std():
    """Conv2d.__init__ #43 (fan_in kernel_size[1] * kernel_size[1]), #48 (weight_std dropped)."""
    assert tc.Conv2d(64, 32, (3, 5), rng=0).weight.data.std() == pytest.approx(np.sqrt(2 / (64 * 3 * 5)), rel=0.03)
    assert tc.Conv2d(64, 8, 3, weight_std=0.01, rng=0).weight.data.std() == pytest.approx(0.01, rel=0.03)


def test_conv2d_bias_has_the_layers_dtype():
    """Conv2d.__init__ #63, #65 (np.zeros(F, None) / np.zeros(F): a float64 bias)."""
    conv = tc.Conv2d(3, 8, 3)
    assert conv.bias.data.dtype == np.float32 and conv.bias.grad.dtype == np.float32


@pytest.mark.parametrize("layer, text", [
    (lambda: tc.Conv2d(4, 8, 3), "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1))"),
    (lambda: tc.Conv2d(4, 8, 3, groups=2), "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), groups=2)"),
    (lambda: tc.Conv2d(4, 8, (3, 5), 2, padding=1, bias=False),
     "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), bias=False)")],
    ids=["plain", "groups", "padding-no-bias"])
def test_conv2d_repr(layer, text):
    """Conv2d.extra_repr #5-#9 (groups shown never / always / for groups >= 1 / only above 2, "XXXX");
    convolution_repr #2 (`s = ` for `s += `: the sizes lost), #4, #5, #7 (padding never / always, "XXXX"),
    #10-#15 (bias=False never / always, "XXXX", "XX, bias=FalseXX", "bias=false", "BIAS=FALSE")."""
    assert repr(layer()) == text


def test_conv2d_macs_on_a_non_square_input():
    """Conv2d.macs #1 (`oh, ow = None`), #2 (output_shape(None)), #3 (oh / ow), #4 (size / oh)."""
    assert tc.Conv2d(3, 8, 3).macs((3, 10, 12)) == 8 * 3 * 9 * 8 * 10


# -- conv_transpose.py ---------------------------------------------------------------------------------------

def test_conv_transpose_defaults_stride_one_no_padding():
    """ConvTranspose2d.__init__ #1 (stride=2), #2 (padding=1)."""
    layer = tc.ConvTranspose2d(3, 4, 3)
    assert (layer.stride, layer.padding, layer.output_padding) == ((1, 1), (0, 0), (0, 0))
    assert layer.output_shape((3, 5, 6)) == (4, 7, 8)


@pytest.mark.parametrize("args, kwargs, message", [
    ((3, 4, 0), {}, "ConvTranspose2d: expected kernel_size >= 1, stride >= 1, padding >= 0, got (0, 0), (1, 1), "
                    "(0, 0)"),
    ((3, 4, 3), dict(stride=2, output_padding=(1, 1, 1)),
     "ConvTranspose2d output_padding must be an int or a pair of ints, got (1, 1, 1)"),
    ((0, 4, 3), {}, "ConvTranspose2d: expected positive channel counts, got 0 and 4"),
    ((3, 0, 3), {}, "ConvTranspose2d: expected positive channel counts, got 3 and 0"),
    ((3, 4, 3), dict(dtype=np.int32), "ConvTranspose2d: dtype must be float32 or float64, got int32")],
    ids=["kernel-0", "output-padding-3", "in-0", "out-0", "int32"])
def test_conv_transpose_refusals_name_the_layer(args, kwargs, message):
    """ConvTranspose2d.__init__ #6, #14-#16 (window's kind), #19, #22-#24 (output_padding's `what`),
    #25 (`in_channels < 1 and out_channels < 1`), #30 (ValueError(None)), #44, #47-#49 (check_dtype's where)."""
    with raises_exactly(ValueError, message):
        tc.ConvTranspose2d(*args, **kwargs)


def test_conv_transpose_he_std_counts_the_inputs_reaching_one_output_pixel():
    """ConvTranspose2d.__init__ #57-#61 (fan_in = C*KH*KW / (SH*SW) with * for /, / for *, stride[1] for
    stride[0]), #56 (max(2.0, ...): fan_in 1/4 is raised to 1, not 2), #66 (weight_std dropped), #68 (rng
    dropped)."""
    std = tc.ConvTranspose2d(64, 32, (3, 5), stride=(1, 2), rng=0).weight.data.std()
    assert std == pytest.approx(np.sqrt(2 / (64 * 3 * 5 / 2)), rel=0.03)
    assert tc.ConvTranspose2d(1, 10000, 1, stride=2, rng=0).weight.data.std() == pytest.approx(np.sqrt(2), rel=0.03)
    assert tc.ConvTranspose2d(64, 8, 3, weight_std=0.01, rng=0).weight.data.std() == pytest.approx(0.01, rel=0.03)
    np.testing.assert_array_equal(tc.ConvTranspose2d(3, 4, 3, rng=0).weight.data,
                                  tc.ConvTranspose2d(3, 4, 3, rng=0).weight.data)


def test_conv_transpose_without_bias_has_none():
    """ConvTranspose2d.__init__ #76 (`bias or True`)."""
    layer = tc.ConvTranspose2d(3, 4, 3, bias=False)
    assert layer.bias is None and len(layer.parameters()) == 1
    assert repr(layer) == "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(1, 1), bias=False)"


@pytest.mark.parametrize("kwargs, text", [
    (dict(stride=2), "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(2, 2))"),
    (dict(stride=2, output_padding=1), "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(2, 2), "
                                       "output_padding=(1, 1))")], ids=["plain", "output-padding"])
def test_conv_transpose_repr_shows_output_padding_only_when_set(kwargs, text):
    """ConvTranspose2d.extra_repr #5 (never), #6 (always), #8 ("XXXX")."""
    assert repr(tc.ConvTranspose2d(3, 4, 3, **kwargs)) == text


def test_conv_transpose_output_shape_refuses_other_channels_in_full():
    """ConvTranspose2d.output_shape #1 (`rank != 3 and channels differ`: the channel check alone), #6-#12 (the
    message: ValueError(None), join(None), "XX, XX", map(None), map(str, None), map(shape), map(str))."""
    with raises_exactly(ValueError, "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(1, 1)): expected input of "
                                    "shape (N, 3, H, W), got (N, 5, 8, 8)"):
        tc.ConvTranspose2d(3, 4, 3).output_shape((5, 8, 8))


def test_conv_transpose_output_shape_of_a_padded_non_square_case():
    """ConvTranspose2d.output_shape #16 (+ 2p), #18 ((n + 1) s), #41 (out[1], out[1])."""
    layer = tc.ConvTranspose2d(3, 4, (3, 5), stride=(2, 3), padding=(1, 2), output_padding=(1, 2))
    assert layer.output_shape((3, 4, 5)) == (4, 3 * 2 - 2 + 3 + 1, 4 * 3 - 4 + 5 + 2)


def test_conv_transpose_empty_output_message_on_a_non_square_case():
    """ConvTranspose2d.output_shape #36 (ValueError(None)), #37-#40 (the sides' indices)."""
    layer = tc.ConvTranspose2d(3, 4, (1, 3), padding=(2, 0))
    with raises_exactly(ValueError, "ConvTranspose2d(3, 4, kernel_size=(1, 3), stride=(1, 1), padding=(2, 0)): "
                                    "input of 1x2 pixels gives an empty -3x4 output; expected padding below half "
                                    "the kernel"):
        layer.output_shape((3, 1, 2))


def test_conv_transpose_macs_on_a_non_square_input():
    """ConvTranspose2d.macs #1 (H / W), #2 (size / H), #3 (W * W), #4 (input_shape[3])."""
    assert tc.ConvTranspose2d(3, 4, 3, 2).macs((3, 5, 6)) == 3 * 4 * 9 * 5 * 6


def test_conv_transpose_backward_of_a_wide_kernel_equals_reference(blas):
    """ConvTranspose2d._column_rows #3 (F * KW * KW rows: backward's column matrix the wrong height)."""
    layer = tc.ConvTranspose2d(3, 2, (2, 3), stride=(1, 2), dtype=np.float64, rng=0)
    x = floats(2, 3, 4, 3, dtype=np.float64)
    y = layer.forward(x)
    dy = floats(*y.shape, dtype=np.float64)
    dx = layer.backward(dy)
    ref_dx, ref_dw, ref_db = ref.conv_transpose2d_backward(x, layer.weight.data, dy, layer.stride, layer.padding)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, ref_dw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, ref_db, rtol=1e-10, atol=1e-12)


def test_conv_transpose_refuses_float64_input_to_float32_weights():
    """ConvTranspose2d.forward #5, #9 (check_input's dtype None / left out)."""
    with raises_exactly(ValueError, "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(1, 1)): expected float32 "
                                    "input like its parameters, got float64"):
        tc.ConvTranspose2d(3, 4, 3).forward(np.ones((2, 3, 4, 4)))


def test_conv_transpose_skips_its_input_gradient_when_told(blas):
    """ConvTranspose2d.backward #26 (`needs_input_grad or True`): dx computed anyway."""
    layer = tc.ConvTranspose2d(3, 4, 3, dtype=np.float64, rng=0)
    layer.needs_input_grad = False
    y = layer.forward(floats(2, 3, 4, 4, dtype=np.float64))
    assert layer.backward(np.ones_like(y)) is None
    assert layer.weight.grad.any()


# -- dense.py ------------------------------------------------------------------------------------------------

def test_dense_dtype_refusal_names_dense():
    """Dense.__init__ #10, #13, #14, #15 (check_dtype's where None, "XXDenseXX", "dense", "DENSE")."""
    with raises_exactly(ValueError, "Dense: dtype must be float32 or float64, got int32"):
        tc.Dense(2, 2, dtype=np.int32)


def test_dense_bias_false_and_the_bias_dtype():
    """Dense.__init__ #30 (`bias or True`), #33, #35 (np.zeros(K, None) / np.zeros(K): a float64 bias)."""
    layer = tc.Dense(3, 2, bias=False)
    assert layer.bias is None and len(layer.parameters()) == 1
    assert tc.Dense(3, 2).bias.data.dtype == np.float32


@pytest.mark.parametrize("bias, text", [(True, "Dense(3, 2)"), (False, "Dense(3, 2, bias=False)")],
                         ids=["bias", "no-bias"])
def test_dense_repr(bias, text):
    """Dense.extra_repr #2-#7 (bias=False never / always, "XXXX", "XX, bias=FalseXX", "bias=false",
    "BIAS=FALSE")."""
    assert repr(tc.Dense(3, 2, bias=bias)) == text


def test_dense_refuses_float64_input_to_float32_weights():
    """Dense.forward #5, #9 (check_input's dtype None / left out)."""
    with raises_exactly(ValueError, "Dense(10, 2): expected float32 input like its parameters, got float64"):
        tc.Dense(10, 2).forward(np.ones((2, 10)))


def test_dense_skips_its_input_gradient_when_told(blas):
    """Dense.backward #22 (`needs_input_grad or True`)."""
    layer = tc.Dense(4, 3, rng=0)
    layer.needs_input_grad = False
    layer.forward(floats(2, 4))
    assert layer.backward(np.ones((2, 3), np.float32)) is None
    assert layer.weight.grad.any()


def test_flatten_takes_a_two_axis_input_as_it_is():
    """Flatten.forward #4 (`ndim <= 2`), #5 (`ndim < 3`): a (N, D) input refused."""
    x = floats(2, 3)
    np.testing.assert_array_equal(tc.Flatten().forward(x), x)


def test_flatten_refusing_a_list_says_list():
    """Flatten.forward #9 (getattr's default None), #12 (no default: AttributeError), #15 (type(None))."""
    with raises_exactly(ValueError, "Flatten(): expected input of shape (N, ...) with at least 2 axes, got list"):
        tc.Flatten().forward([1, 2])


# -- norm.py -------------------------------------------------------------------------------------------------

def test_lrn_repr_without_groups_is_exact():
    """LocalResponseNorm.extra_repr #7 ("XXXX" for no groups)."""
    assert repr(tc.LocalResponseNorm()) == "LocalResponseNorm(size=5, alpha=0.0001, beta=0.75, k=2.0)"


def test_lrn_normalises_float32_in_float32_when_nothing_overflows():
    """LocalResponseNorm.forward #24 (`overflowed or float32`: every float32 input redone in float64). The
    docstring: a, y and s are saved as the kernel sees them, in float64 only when the float32 squares
    overflowed."""
    lrn = tc.LocalResponseNorm()
    y = lrn.forward(floats(2, 6, 3, 3), training=True)
    saved = lrn.saved()
    assert y.dtype == saved.a.dtype == saved.y.dtype == saved.s.dtype == np.float32
    lrn.forward(floats(2, 6, 3, 3) * np.float32(1e20))
    assert lrn.saved().a.dtype == np.float64


def test_batchnorm_dtype_refusal_names_the_class():
    """_BatchNorm.__init__ #18 (check_dtype's where None), #21 (type(None).__name__)."""
    with raises_exactly(ValueError, "BatchNorm2d: dtype must be float32 or float64, got int32"):
        tc.BatchNorm2d(3, dtype=np.int32)


def test_batchnorm_output_shape_is_its_input_shape():
    """_BatchNorm.output_shape #1 (tuple(None))."""
    assert tc.BatchNorm2d(3).output_shape([3, 4, 5]) == (3, 4, 5)


def test_batchnorm_refuses_float64_input_to_float32_parameters():
    """_BatchNorm.forward #5, #9 (check_input's dtype None / left out)."""
    with raises_exactly(ValueError, "BatchNorm2d(4, eps=1e-05, momentum=0.1): expected float32 input like its "
                                    "parameters, got float64"):
        tc.BatchNorm2d(4).forward(np.ones((2, 4, 3, 3)))


def test_batchnorm_in_evaluation_with_only_the_weight_frozen_still_gives_the_bias_its_grad():
    """_BatchNorm.backward #19 (`weight.trainable and bias.trainable`: no sums, bias.grad None)."""
    bn = tc.BatchNorm2d(3)
    bn.weight.trainable = False
    x, dy = floats(2, 3, 2, 2), floats(2, 3, 2, 2)
    bn.forward(x)
    dx = bn.backward(dy)
    np.testing.assert_allclose(bn.bias.grad, dy.sum(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(dx, dy / np.sqrt(np.float32(1 + 1e-5)), rtol=1e-6)


# -- pool.py -------------------------------------------------------------------------------------------------

def test_maxpool_window_refusal_names_maxpool():
    """MaxPool2d.__init__ #3, #11, #12, #13 (window's kind None, "XXMaxPool2dXX", "maxpool2d", "MAXPOOL2D")."""
    with raises_exactly(ValueError, "MaxPool2d: expected kernel_size >= 1, stride >= 1, padding >= 0, got (0, 0), "
                                    "(0, 0), (0, 0)"):
        tc.MaxPool2d(0)


@pytest.mark.parametrize("args, text", [((3, 2), "MaxPool2d(kernel_size=(3, 3), stride=(2, 2))"),
                                        ((3, 2, 1), "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))")],
                         ids=["no-padding", "padding"])
def test_maxpool_repr_shows_padding_only_when_there_is_some(args, text):
    """MaxPool2d.extra_repr #3 (never), #4 (always), #6 ("XXXX")."""
    assert repr(tc.MaxPool2d(*args)) == text


@pytest.mark.parametrize("size, message", [
    ((1, 2, 3), "AdaptiveAvgPool2d output_size must be an int or a pair of ints, got (1, 2, 3)"),
    (0, "AdaptiveAvgPool2d: output_size must be positive, got (0, 0)")], ids=["three-sizes", "zero"])
def test_adaptive_pool_refuses_a_bad_output_size_in_full(size, message):
    """AdaptiveAvgPool2d.__init__ #3, #6, #7, #8 (pair's `what`), #12 (ValueError(None))."""
    with raises_exactly(ValueError, message):
        tc.AdaptiveAvgPool2d(size)


def test_adaptive_pool_output_shape():
    """AdaptiveAvgPool2d.output_shape #1 (tuple - tuple), #2 (input_shape[1] for the channels)."""
    assert tc.AdaptiveAvgPool2d((2, 3)).output_shape((5, 7, 9)) == (5, 2, 3)


def test_adaptive_pool_refuses_a_three_axis_input():
    """AdaptiveAvgPool2d.forward #3, #5 (check_input's ndim None / left out)."""
    with raises_exactly(ValueError, "AdaptiveAvgPool2d(output_size=(2, 2)): expected input of shape (N, C, H, W), "
                                    "got (3, 4, 4)"):
        tc.AdaptiveAvgPool2d(2).forward(np.ones((3, 4, 4), np.float32))


def test_adaptive_pool_dx_has_the_inputs_dtype():
    """AdaptiveAvgPool2d.backward #13, #15 (np.zeros(shape, None) / np.zeros(shape): a float64 dx)."""
    pool = tc.AdaptiveAvgPool2d((2, 3))
    x = floats(2, 3, 5, 7)
    y = pool.forward(x)
    dy = floats(*y.shape)
    dx = pool.backward(dy)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, ref.adaptive_avgpool2d_backward(x.shape, dy), rtol=1e-6)


# -- the chunking issue #23 rewrote: chunks of two images over three (the last one shorter) ----------------------

@pytest.mark.parametrize("layer", ["conv", "conv_transpose"])
def test_chunks_of_two_images_over_three_give_the_one_chunk_results(layer):
    """Conv2d._chunks #43 and ConvTranspose2d.backward #55, `n1 + n0` for `n1 - n0` in the buffer's slice: invisible
    in chunks of one image (the slice stops at the buffer's end either way), it breaks the last, shorter chunk."""
    rng = np.random.default_rng(0)
    if layer == "conv":
        make = lambda: tc.Conv2d(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=0)          # noqa: E731
    else:
        make = lambda: tc.ConvTranspose2d(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=0)  # noqa: E731
    whole, chunked = make(), make()
    x = rng.standard_normal((3, 3, 5, 5))
    y = whole.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = whole.backward(dy)
    rows = 3 * 9 if layer == "conv" else 4 * 9
    pixels = (3 * 3) if layer == "conv" else 5 * 5                  # the column matrix's columns per image
    chunked.memory_budget = 2 * rows * pixels * 8                   # two images' columns, float64
    np.testing.assert_allclose(chunked.forward(x, training=True), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked.backward(dy), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked.weight.grad, whole.weight.grad, rtol=1e-12, atol=1e-12)
