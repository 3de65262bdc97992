"""ConvTranspose2d == its loop reference in any memory layout, is Conv2d's input gradient, and passes gradcheck."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref

from helpers import assert_close, in_layout, layouts, record_chunks


@st.composite
def transpose_cases(draw):
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, (kh - 1) // 2)), draw(st.integers(0, (kw - 1) // 2))
    oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 5)),
                       draw(st.integers(1, 5))),
                cout=draw(st.integers(1, 3)), kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                output_padding=(oph, opw), seed=draw(st.integers(0, 2**32 - 1)), x_layout=draw(layouts),
                dy_layout=draw(layouts))


def make_layer(case, dtype):
    rng = np.random.default_rng(case["seed"])
    layer = tc.ConvTranspose2d(case["shape"][1], case["cout"], case["kernel"], case["stride"], case["padding"],
                               case["output_padding"], dtype=dtype, rng=rng)
    layer.bias.data[:] = rng.standard_normal(case["cout"])
    return layer, rng.standard_normal(case["shape"]).astype(dtype), rng


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=transpose_cases())
def test_conv_transpose_forward_and_backward_equal_reference(case, dtype):
    layer, x, rng = make_layer(case, dtype)
    y = layer.forward(in_layout(x, case["x_layout"]))
    assert y.dtype == dtype and y.shape[1:] == layer.output_shape(x.shape[1:])
    assert_close(y, ref.conv_transpose2d_forward(x, layer.weight.data, layer.bias.data, layer.stride,
                                                 layer.padding, layer.output_padding))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(in_layout(dy, case["dy_layout"]))
    ref_dx, ref_dw, ref_db = ref.conv_transpose2d_backward(x, layer.weight.data, dy, layer.stride, layer.padding)
    assert dx.dtype == layer.weight.grad.dtype == dtype
    assert_close(dx, ref_dx)
    assert_close(layer.weight.grad, ref_dw)
    assert_close(layer.bias.grad, ref_db)


@given(case=transpose_cases())
def test_conv_transpose_passes_gradcheck(case):
    layer, x, _ = make_layer(case, np.float64)
    assert tc.gradcheck(layer, in_layout(x, case["x_layout"]))


@given(case=transpose_cases())
def test_conv_transpose_is_the_input_gradient_of_the_matching_conv(case):
    """ConvTranspose2d(C, F, k, s, p) with weight w maps x like Conv2d(F, C, k, s, p).backward maps dy."""
    layer, x, _ = make_layer(case, np.float64)
    layer.bias = None
    y = layer.forward(x)
    conv = tc.Conv2d(case["cout"], case["shape"][1], case["kernel"], case["stride"], case["padding"],
                     dtype=np.float64)
    conv.weight.data[:] = layer.weight.data
    assert conv.forward(y).shape == x.shape                     # the decoder undoes the encoder's shape
    assert_close(conv.backward(x), y)


def test_conv_transpose_refuses_what_pytorch_refuses():
    with pytest.raises(ValueError, match=r"output_padding must be >= 0 and less than the stride \(2, 2\)"):
        tc.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"ConvTranspose2d.*expected input of shape \(N, 3, H, W\), got "
                                         r"\(1, 4, 5, 5\)"):
        tc.ConvTranspose2d(3, 4, 3).forward(np.ones((1, 4, 5, 5), np.float32))


def test_conv_transpose_in_chunks_of_one_image_equals_reference(monkeypatch):
    case = dict(shape=(3, 2, 4, 5), cout=3, kernel=(3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
                seed=7)
    layer, x, rng = make_layer(case, np.float64)
    chunks = record_chunks(monkeypatch, tc.layers.conv_transpose)
    layer.memory_budget = 1                                                         # one image per chunk
    y = layer.forward(x)
    assert_close(y, ref.conv_transpose2d_forward(x, layer.weight.data, layer.bias.data, layer.stride,
                                                 layer.padding, layer.output_padding))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    ref_dx, ref_dw, _ = ref.conv_transpose2d_backward(x, layer.weight.data, dy, layer.stride, layer.padding)
    assert_close(dx, ref_dx)
    assert_close(layer.weight.grad, ref_dw)
    assert [len(runs) for runs in chunks] == [3, 3]                                 # forward, backward
