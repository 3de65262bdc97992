"""Scratch buffers: the same memory call after call, grown when needed, per dtype and per thread; and the
convolutions that take theirs from it give the same results whatever an earlier layer left in it."""
import threading

import numpy as np

import tinycnn as tc
from tinycnn import reference as ref
from tinycnn.layers import scratch as scratch_module
from tinycnn.layers.scratch import release, scratch


def test_a_name_gets_the_same_memory_until_a_call_needs_more():
    release()
    first = scratch("a", 100, np.float32)
    assert first.shape == (100,) and first.dtype == np.float32
    smaller = scratch("a", 40, np.float32)
    assert smaller.shape == (40,) and np.shares_memory(first, smaller)
    larger = scratch("a", 101, np.float32)
    assert larger.shape == (101,) and not np.shares_memory(first, larger)
    assert np.shares_memory(scratch("a", 101, np.float32), larger)


def test_names_dtypes_and_threads_each_have_their_own_buffer():
    release()
    a = scratch("a", 10, np.float32)
    assert not np.shares_memory(a, scratch("b", 10, np.float32))
    assert not np.shares_memory(a, scratch("a", 10, np.float64))
    other = []
    thread = threading.Thread(target=lambda: other.append(scratch("a", 10, np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(a, other[0])


def test_release_drops_every_buffer():
    a = scratch("a", 10, np.float32)
    release()
    assert scratch_module._buffers.__dict__.get("held") is None
    assert not np.shares_memory(a, scratch("a", 10, np.float32))


def test_convolutions_reuse_their_buffers_and_ignore_what_another_layer_left():
    """conv (Winograd, odd output: dy's last tiles reach past its last row and column) and a strided one (im2col)
    after layers whose buffers were then filled with NaN equal the reference, and the Winograd one's second step
    takes no new buffer."""
    rng = np.random.default_rng(0)
    release()
    for other in (tc.Conv2d(4, 6, 3, padding=1, rng=1), tc.Conv2d(4, 6, 3, stride=2, padding=1, rng=1)):
        y = other.forward(rng.standard_normal((2, 4, 8, 8)).astype(np.float32) * 1e3)   # Winograd, im2col
        other.backward(rng.standard_normal(y.shape).astype(np.float32) * 1e3)
    for buffer in scratch_module._buffers.held.values():      # what a read before a write would find
        buffer[:] = np.nan
    conv = tc.Conv2d(3, 5, 3, padding=0, rng=2)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    dy = rng.standard_normal((2, 5, 5, 7)).astype(np.float32)
    for step in range(2):
        y = conv.forward(x)
        dx = conv.backward(dy)
        if step == 0:
            held = dict(scratch_module._buffers.held)
    assert {"winograd", "winograd dW"} <= {name for name, _ in held}
    assert all(buffer is held[key] for key, buffer in scratch_module._buffers.held.items())
    ref_dx, ref_dw, _ = ref.conv2d_backward(x, conv.weight.data, dy, (1, 1), (0, 0), 1)
    np.testing.assert_allclose(y, ref.conv2d_forward(x, conv.weight.data, conv.bias.data, (1, 1), (0, 0), 1),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv.weight.grad, ref_dw, rtol=1e-4, atol=1e-4)
    strided = tc.Conv2d(3, 5, 3, stride=2, rng=3)                  # im2col's columns and products, after NaN
    y = strided.forward(x)
    dx = strided.backward(np.ones_like(y))
    ref_dx, ref_dw, _ = ref.conv2d_backward(x, strided.weight.data, np.ones_like(y), (2, 2), (0, 0), 1)
    np.testing.assert_allclose(y, ref.conv2d_forward(x, strided.weight.data, strided.bias.data, (2, 2), (0, 0), 1),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(strided.weight.grad, ref_dw, rtol=1e-4, atol=1e-4)
