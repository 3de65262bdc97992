"""Inputs that keep tests honest: values away from kinks (ReLU at 0) and ties (max-pooling), arrays in every
memory layout, magnitudes that mix 1e-4 with 1e4, and tolerances per dtype."""
import numpy as np
from hypothesis import strategies as st

import tinycnn as tc
from tinycnn.exercise_checks import away_from_zero, distinct   # noqa: F401 (the grader's inputs are the tests')


def mixed_magnitudes(rng, shape, dtype=np.float64, smallest=1e-4, largest=1e4):
    """Random signs and magnitudes spread evenly in log scale from `smallest` to `largest`: activations near 0
    beside activations of thousands, as after a ReLU on raw pixels."""
    magnitude = np.exp(rng.uniform(np.log(smallest), np.log(largest), shape))
    return (rng.choice([-1.0, 1.0], shape) * magnitude).astype(dtype)


LAYOUTS = ("contiguous", "transposed", "channels-last", "strided", "reversed")
layouts = st.sampled_from(LAYOUTS)


def in_layout(x, layout):
    """The values of x, stored in another memory layout (a view, never C-contiguous unless layout says so).

    transposed: every axis reversed in memory (x.T of a C array); channels-last: (N, H, W, C) memory seen as
    (N, C, H, W), as Preprocess's images.transpose(0, 3, 1, 2) (axis 1 moved last for other ranks); strided:
    every other element of an array twice as wide; reversed: axis 1 runs backwards in memory.
    """
    if layout == "contiguous":
        return np.ascontiguousarray(x)
    if layout == "transposed":
        return np.ascontiguousarray(x.T).T
    if layout == "channels-last":
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    if layout == "strided":
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "reversed":
        return np.ascontiguousarray(x[:, ::-1])[:, ::-1]
    raise ValueError(f"in_layout: unknown layout {layout!r}")


TOLERANCE = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


def assert_close(actual, expected, dtype=None):
    """Compare a fast result with the reference at the precision its dtype allows."""
    dtype = np.dtype(dtype or expected.dtype)
    np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


class LossAsLayer(tc.Layer):
    """A loss with its target fixed, seen as a layer from prediction to the (scalar) loss, so gradcheck can
    check the loss's backward like any layer's: dL/dprediction = upstream * loss.backward()."""

    def __init__(self, loss, target):
        self.loss, self.target = loss, target

    def forward(self, x, training=False):
        return np.asarray(self.loss.forward(x, self.target))

    def backward(self, dy):
        return dy * self.loss.backward()


def record_chunks(monkeypatch, module):
    """From now on, record the runs of images [(n0, n1), ...] that every call of module.image_chunks cuts a batch
    into (a layer that ignores its memory_budget, or skips the helper, shows in the list)."""
    calls, image_chunks = [], module.image_chunks

    def spy(*args):
        chunk, runs = image_chunks(*args)
        calls.append(runs)
        return chunk, runs
    monkeypatch.setattr(module, "image_chunks", spy)
    return calls
