"""Conv2d: fast im2col + GEMM layer == the loop reference, and its gradients pass gradcheck."""
import numpy as np
import pytest
from hypothesis import example, given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref
from tinycnn.layers.conv import image_chunks

from helpers import TOLERANCE, assert_close, in_layout, layouts, record_chunks


@st.composite
def conv_cases(draw):
    """Shapes with groups 1-4, kernels 1-11, non-square images, padding, and strides larger than the kernel."""
    groups = draw(st.integers(1, 4))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh = draw(st.integers(1, 11))
    kw = draw(st.one_of(st.just(kh), st.integers(1, 11)))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), kh - 2 * ph + 7))
    w = draw(st.integers(max(1, kw - 2 * pw), kw - 2 * pw + 7))
    n = draw(st.integers(1, 2))
    return dict(shape=(n, cin, h, w), cout=cout, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                groups=groups, seed=draw(st.integers(0, 2**32 - 1)), x_layout=draw(layouts), dy_layout=draw(layouts))


def make_conv(case, dtype):
    rng = np.random.default_rng(case["seed"])
    conv = tc.Conv2d(case["shape"][1], case["cout"], case["kernel"], case["stride"], case["padding"],
                     case["groups"], dtype=dtype, rng=rng)
    conv.bias.data[:] = rng.standard_normal(case["cout"])
    return conv, rng.standard_normal(case["shape"]).astype(dtype), rng


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=conv_cases())
def test_conv_forward_and_backward_equal_reference(case, dtype):
    conv, x, rng = make_conv(case, dtype)
    y = conv.forward(in_layout(x, case["x_layout"]))
    assert y.dtype == dtype
    assert_close(y, ref.conv2d_forward(x, conv.weight.data, conv.bias.data, conv.stride, conv.padding,
                                       conv.groups))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = conv.backward(in_layout(dy, case["dy_layout"]))
    ref_dx, ref_dw, ref_db = ref.conv2d_backward(x, conv.weight.data, dy, conv.stride, conv.padding, conv.groups)
    assert dx.dtype == conv.weight.grad.dtype == dtype
    assert_close(dx, ref_dx)
    assert_close(conv.weight.grad, ref_dw)
    assert_close(conv.bias.grad, ref_db)


@st.composite
def winograd_cases(draw):
    """3x3 or 5x5 filters, stride 1, padding 0 to r-1 (each side its own), odd and even sizes, groups: the
    Winograd paths."""
    groups, r = draw(st.integers(1, 3)), draw(st.sampled_from([3, 5]))
    ph, pw = draw(st.integers(0, r - 1)), draw(st.integers(0, r - 1))
    h, w = draw(st.integers(max(1, r - 2 * ph), 9)), draw(st.integers(max(1, r - 2 * pw), 9))
    return dict(shape=(draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), h, w),
                cout=groups * draw(st.integers(1, 3)), kernel=(r, r), stride=(1, 1), padding=(ph, pw),
                groups=groups, seed=draw(st.integers(0, 2**32 - 1)), x_layout=draw(layouts), dy_layout=draw(layouts))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=winograd_cases())
# a draw where dx came out 1.16e-5 off at an entry of -0.0146: Winograd's rounding, past an elementwise tolerance
@example(case=dict(shape=(1, 4, 3, 6), cout=4, kernel=(5, 5), stride=(1, 1), padding=(3, 0), groups=2, seed=20663,
                   x_layout="contiguous", dy_layout="contiguous"))
def test_winograd_conv_equals_reference_and_the_im2col_path(case, dtype):
    conv, x, rng = make_conv(case, dtype)
    assert conv._takes_winograd()
    y = conv.forward(in_layout(x, case["x_layout"]))
    assert y.dtype == dtype
    r = conv.kernel_size[0]
    assert_close_but_for_winograd_rounding(y, ref.conv2d_forward(x, conv.weight.data, conv.bias.data, (1, 1),
                                                                 conv.padding, conv.groups), r)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = conv.backward(in_layout(dy, case["dy_layout"]))
    ref_dx, ref_dw, ref_db = ref.conv2d_backward(x, conv.weight.data, dy, (1, 1), conv.padding, conv.groups)
    assert dx.dtype == dtype
    assert_close_but_for_winograd_rounding(dx, ref_dx, r)
    assert_close_to_the_largest(conv.weight.grad, ref_dw, r)
    assert_close(conv.bias.grad, ref_db)
    grads = (conv.weight.grad.copy(), conv.bias.grad.copy())
    conv.winograd = False
    assert_close_but_for_winograd_rounding(y, conv.forward(x), r)
    assert_close_but_for_winograd_rounding(dx, conv.backward(dy), r)
    assert_close_to_the_largest(grads[0], conv.weight.grad, r)
    assert_close(conv.bias.grad, grads[1])


# Winograd's float32 error, as a fraction of the largest entry: for dW 2x the worst of 300 drawn layers (4.6e-7 for
# 3x3, 1.06e-5 for 5x5; im2col's: 3e-7), and y and dx stay below it (the worst of 400 draws on 2026-12-02: 3x3 y
# 2.3e-7, dx 3.4e-7; 5x5 y 2.9e-6, dx 4.4e-6). The transforms' rounding scales with the largest entries, not with
# each one: an entry that should be 0 (a tap that sees only padding) or is small gets that much too, which an
# elementwise tolerance alone would not allow.
WINOGRAD_FLOAT32 = {3: 1e-6, 5: 2.5e-5}


def assert_close_to_the_largest(dw, expected, r):
    """dW by Winograd in float32: within WINOGRAD_FLOAT32[r] of the largest expected entry (float64: assert_close)."""
    if dw.dtype == np.float32:
        assert np.abs(dw - expected).max() <= WINOGRAD_FLOAT32[r] * max(np.abs(expected).max(), 1e-30)
    else:
        assert_close(dw, expected)


def assert_close_but_for_winograd_rounding(actual, expected, r):
    """y or dx by Winograd: assert_close, entry by entry, with the absolute tolerance in float32 raised to
    WINOGRAD_FLOAT32[r] of the largest expected entry where that is more (a 5x5 dx entry of -0.0146 came out
    1.16e-5 off, 5.8e-6 of the largest: past 1e-5 + 1e-4 * 0.0146, and within F(2x2, 5x5)'s rounding)."""
    if actual.dtype == np.float32:
        atol = max(TOLERANCE[np.dtype(np.float32)]["atol"], WINOGRAD_FLOAT32[r] * np.abs(expected).max())
        np.testing.assert_allclose(actual, expected, rtol=TOLERANCE[np.dtype(np.float32)]["rtol"], atol=atol)
    else:
        assert_close(actual, expected)


def test_winograd_takes_only_3x3_and_5x5_stride_1_padding_up_to_r_minus_1():
    assert tc.Conv2d(4, 4, 3, padding=1)._takes_winograd()
    assert tc.Conv2d(4, 4, 5, padding=(4, 2))._takes_winograd()
    assert not tc.Conv2d(4, 4, 3, stride=2)._takes_winograd()
    assert not tc.Conv2d(4, 4, 5, stride=2, padding=2)._takes_winograd()
    assert not tc.Conv2d(4, 4, 3, padding=3)._takes_winograd()
    assert not tc.Conv2d(4, 4, 5, padding=5)._takes_winograd()
    assert not tc.Conv2d(4, 4, (5, 3), padding=1)._takes_winograd()
    assert not tc.Conv2d(4, 4, 7, padding=3)._takes_winograd()


@pytest.mark.parametrize("r", [3, 5])
def test_winograd_float32_error_at_a_conv2_like_depth(r):
    """A sum over 48 channels x r x r in float32, against the float64 twin on the same inputs: F(2x2, 3x3) within
    1e-6 of the largest output and F(2x2, 5x5) within 1e-5 (measured: 1.4e-7 and 1.4e-6; im2col 1.0e-7)."""
    rng = np.random.default_rng(0)
    conv = tc.Conv2d(48, 8, r, padding=r // 2, rng=rng)
    x = np.maximum(rng.standard_normal((1, 48, 13, 13)), 0).astype(np.float32)        # after a ReLU
    exact = ref.conv2d_forward(x.astype(np.float64), conv.weight.data.astype(np.float64), None, (1, 1),
                               conv.padding, 1)
    scale = np.abs(exact).max()
    winograd = np.abs(conv.forward(x) - exact).max() / scale
    conv.winograd = False
    im2col = np.abs(conv.forward(x) - exact).max() / scale
    assert winograd <= (1e-6 if r == 3 else 1e-5) and im2col <= 1e-6


@pytest.mark.parametrize("r", [3, 5])
def test_winograd_weight_gradient_float32_error_at_a_conv2_like_depth(r):
    """dW summed over 2 images x 48 channels' tiles in float32 against the float64 twin, as a fraction of the
    largest entry: within WINOGRAD_FLOAT32 (measured at this depth: 4.4e-7 for 3x3, 7.1e-6 for 5x5)."""
    rng = np.random.default_rng(0)
    conv = tc.Conv2d(48, 8, r, padding=r // 2, rng=rng)
    x = np.maximum(rng.standard_normal((2, 48, 13, 13)), 0).astype(np.float32)
    dy = rng.standard_normal((2, 8, 13, 13)).astype(np.float32)
    conv.forward(x, training=True)
    conv.backward(dy)
    exact = ref.conv2d_backward(x.astype(np.float64), conv.weight.data.astype(np.float64), dy.astype(np.float64),
                                (1, 1), conv.padding, 1)[1]
    error = np.abs(conv.weight.grad - exact).max() / np.abs(exact).max()
    assert error <= WINOGRAD_FLOAT32[r], error


# (K, s) pairs whose K x K filters at stride s cut into 3x3 or 5x5 phases with at most 0.6 of im2col's products
PHASE_FILTERS = [(6, 2), (8, 3), (9, 2), (9, 3), (10, 2), (11, 4), (12, 4)]


@st.composite
def phase_cases(draw):
    """Strided convolutions that take Winograd on the image's phases: padding 0 to K/2 (each side its own),
    sizes that leave 1-3 outputs or a few more, whose last rows and columns no window reads, and groups."""
    groups, (k, s) = draw(st.integers(1, 2)), draw(st.sampled_from(PHASE_FILTERS))
    ph, pw = draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))
    h, w = draw(st.integers(k - 2 * ph, k - 2 * ph + 3 * s)), draw(st.integers(k - 2 * pw, k - 2 * pw + 3 * s))
    return dict(shape=(draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), h, w),
                cout=groups * draw(st.integers(1, 2)), kernel=(k, k), stride=(s, s), padding=(ph, pw),
                groups=groups, seed=draw(st.integers(0, 2**32 - 1)), x_layout=draw(layouts), dy_layout=draw(layouts))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=phase_cases())
def test_strided_conv_on_phases_equals_reference_and_the_im2col_path(case, dtype):
    conv, x, rng = make_conv(case, dtype)
    assert conv._takes_phases() and not conv._takes_winograd()
    r = -(-case["kernel"][0] // case["stride"][0])                     # the phases' filter size, 3 or 5
    y = conv.forward(in_layout(x, case["x_layout"]), training=True)
    assert y.dtype == dtype
    assert_close_but_for_winograd_rounding(y, ref.conv2d_forward(x, conv.weight.data, conv.bias.data, conv.stride,
                                                                 conv.padding, conv.groups), r)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = conv.backward(in_layout(dy, case["dy_layout"]))
    ref_dx, ref_dw, ref_db = ref.conv2d_backward(x, conv.weight.data, dy, conv.stride, conv.padding, conv.groups)
    assert dx.dtype == conv.weight.grad.dtype == dtype
    assert_close_but_for_winograd_rounding(dx, ref_dx, r)
    assert_close_to_the_largest(conv.weight.grad, ref_dw, r)
    assert_close(conv.bias.grad, ref_db)
    grads = conv.weight.grad.copy()
    conv.winograd = False
    assert not conv._takes_phases()
    assert_close_but_for_winograd_rounding(y, conv.forward(x), r)
    assert_close_but_for_winograd_rounding(dx, conv.backward(dy), r)
    assert_close_to_the_largest(grads, conv.weight.grad, r)


@given(case=phase_cases())
def test_strided_conv_on_phases_passes_gradcheck(case):
    conv, x, _ = make_conv(case, np.float64)
    assert tc.gradcheck(conv, in_layout(x, case["x_layout"]))


def test_strided_conv_on_phases_in_chunks_equals_one_chunk(monkeypatch):
    """conv1's 11x11 at stride 4 on phases, a memory budget of one byte: every image its own chunk."""
    rng = np.random.default_rng(0)
    conv = tc.Conv2d(3, 4, 11, stride=4, padding=2, dtype=np.float64, rng=rng)
    x, dy = rng.standard_normal((3, 3, 23, 21)), rng.standard_normal((3, 4, 5, 4))
    chunks = record_chunks(monkeypatch, tc.layers.conv)
    y, dx = conv.forward(x, training=True), conv.backward(dy)
    dw = conv.weight.grad.copy()
    conv.memory_budget = 1
    assert_close(conv.forward(x, training=True), y)
    assert_close(conv.backward(dy), dx)
    assert_close(conv.weight.grad, dw)
    assert [len(runs) for runs in chunks] == [1, 1, 1, 3, 3, 3]      # forward, dW, dx: in one chunk, then three


def test_phases_take_strided_filters_that_cut_into_3x3_or_5x5_and_save_products():
    assert [(k, s) for k in range(1, 13) for s in range(2, 6) if tc.Conv2d(1, 1, k, stride=s)._takes_phases()] \
        == sorted(PHASE_FILTERS)
    assert tc.Conv2d(3, 96, 11, stride=4)._takes_phases()           # the paper's conv1: 0.53 of the products
    assert not tc.Conv2d(3, 32, 5, stride=2, padding=2)._takes_phases()    # the mini network's: 0.64
    assert not tc.Conv2d(3, 4, 11, stride=(4, 2))._takes_phases()
    assert not tc.Conv2d(3, 4, (11, 9), stride=4)._takes_phases()
    conv = tc.Conv2d(3, 4, 11, stride=4)
    conv.winograd = False
    assert not conv._takes_phases()


@pytest.mark.parametrize("n, most, runs", [
    (16, 13, [(0, 8), (8, 16)]),                         # not 13 + 3
    (16, 3, [(0, 2), (2, 5), (5, 8), (8, 10), (10, 13), (13, 16)]),
    (16, 16, [(0, 16)]), (16, 40, [(0, 16)]), (3, 1, [(0, 1), (1, 2), (2, 3)]), (1, 0, [(0, 1)]), (0, 5, [(0, 0)]),
])
def test_image_chunks_are_as_few_and_as_equal_as_the_budget_allows(n, most, runs):
    """A budget of `most` images (10 bytes each); chunk is the longest run, and at least one image a run."""
    chunk, got = image_chunks(n, 10, most * 10 + 9)
    assert got == runs and chunk == max(n1 - n0 for n0, n1 in runs)


@pytest.mark.parametrize("r", [3, 5])
def test_winograd_conv_in_chunks_equals_one_chunk(monkeypatch, r):
    """A memory budget of one byte makes every image its own chunk (forward's, dW's and dx's Winograd); the
    results must not change."""
    rng = np.random.default_rng(0)
    conv = tc.Conv2d(4, 6, r, padding=r // 2, groups=2, dtype=np.float64, rng=rng)
    assert conv._takes_winograd()
    x, dy = rng.standard_normal((3, 4, 6, 5)), rng.standard_normal((3, 6, 6, 5))
    chunks = record_chunks(monkeypatch, tc.layers.conv)
    y, dx = conv.forward(x), conv.backward(dy)
    dw = conv.weight.grad.copy()
    conv.memory_budget = 1
    assert_close(conv.forward(x), y)
    assert_close(conv.backward(dy), dx)
    assert_close(conv.weight.grad, dw)
    assert [len(runs) for runs in chunks] == [1, 1, 1, 3, 3, 3]      # forward, dW, dx: in one chunk, then three


@given(case=winograd_cases())
def test_winograd_conv_passes_gradcheck(case):
    conv, x, _ = make_conv(case, np.float64)
    assert tc.gradcheck(conv, in_layout(x, case["x_layout"]))


@given(case=conv_cases())
def test_conv_passes_gradcheck(case):
    conv, x, _ = make_conv(case, np.float64)
    assert tc.gradcheck(conv, in_layout(x, case["x_layout"]))


def test_conv_without_bias_has_only_a_weight():
    conv = tc.Conv2d(2, 4, 3, bias=False, dtype=np.float64, rng=0)
    assert [name for name, _ in conv.named_parameters()] == ["weight"]
    assert tc.gradcheck(conv, np.random.default_rng(1).standard_normal((1, 2, 5, 5)))


# im2col convolutions (no Winograd): conv1's 11x11 at stride 4, a strided 3x3, and two groups of 5x5 at stride 2
IM2COL_CASES = [dict(in_channels=3, out_channels=4, kernel_size=11, stride=4, padding=2, groups=1, side=23),
                dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1, groups=1, side=7),
                dict(in_channels=4, out_channels=6, kernel_size=5, stride=2, padding=2, groups=2, side=9)]


@pytest.mark.parametrize("case", IM2COL_CASES)
def test_conv_in_chunks_of_images_equals_the_reference(monkeypatch, case):
    """A column budget of one byte makes every image its own chunk (the paper's conv1 at batch 128 runs 19):
    each chunk's output and input gradient must land at its own images, and dW sums over every chunk."""
    case = dict(case)
    side = case.pop("side")
    rng = np.random.default_rng(0)
    conv = tc.Conv2d(**case, dtype=np.float64, rng=rng)
    conv.winograd = False                                           # conv1 would take Winograd on its phases
    assert not conv._takes_winograd() and not conv._takes_phases()
    x = rng.standard_normal((5, case["in_channels"], side, side))
    chunks = record_chunks(monkeypatch, tc.layers.conv)
    conv.memory_budget = 1
    y = conv.forward(x, training=True)
    expected = ref.conv2d_forward(x, conv.weight.data, conv.bias.data, conv.stride, conv.padding, conv.groups)
    assert_close(y, expected)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ref.conv2d_backward(x, conv.weight.data, dy, conv.stride, conv.padding, conv.groups)
    assert_close(conv.backward(dy), dx)
    assert_close(conv.weight.grad, dw)
    assert_close(conv.bias.grad, db)
    assert [len(runs) for runs in chunks] == [5, 5, 5]                # forward, dW, dx: five chunks each


def test_paper_conv1_output_is_55_by_55():
    """Section 3.5: 96 kernels of 11x11x3, stride 4, on a 227x227 input give 55x55 maps (224 would not)."""
    conv = tc.Conv2d(3, 96, 11, stride=4)
    assert conv.output_shape((3, 227, 227)) == (96, 55, 55)
    assert conv.output_shape((3, 224, 224)) == (96, 54, 54)


def test_a_first_layer_can_skip_its_input_gradient_without_changing_the_weight_gradients():
    rng = np.random.default_rng(0)
    model = tc.Sequential([tc.Conv2d(3, 4, 3, rng=rng, dtype=np.float64), tc.ReLU(),
                           tc.Conv2d(4, 2, 3, rng=rng, dtype=np.float64)])
    x, dy = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((2, 2, 3, 3))
    model.forward(x, training=True)
    assert model.backward(dy).shape == x.shape
    grads = [p.grad.copy() for p in model.parameters()]
    model.skip_input_gradient()
    assert model[0].needs_input_grad is False and model[2].needs_input_grad is True
    model.forward(x, training=True)
    assert model.backward(dy) is None
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("make", [lambda: tc.Conv2d(3, 4, 3, stride=2, padding=1, rng=0),     # im2col's dW
                                  lambda: tc.Conv2d(3, 4, 3, padding=1, rng=0),               # Winograd's dW
                                  lambda: tc.ConvTranspose2d(3, 4, 3, stride=2, rng=0)])
def test_weight_gradient_of_weights_assigned_as_a_transposed_view(make):
    """Weights a user assigned in another axis order (Keras keeps filters last) are a view, not C-ordered:
    backward gives the same dx and dW as for the same weights in C order."""
    layer, same = make(), make()
    w = np.random.default_rng(1).standard_normal(layer.weight.shape).astype(np.float32)
    layer.weight.data = np.ascontiguousarray(w.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    same.weight.data = w
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 7)).astype(np.float32)
    dy = np.random.default_rng(3).standard_normal(layer.forward(x, training=True).shape).astype(np.float32)
    same.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(dy), same.backward(dy))
    np.testing.assert_array_equal(layer.weight.grad, same.weight.grad)
