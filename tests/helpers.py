"""Inputs that keep gradient checks honest: values away from kinks (ReLU at 0) and ties (max-pooling)."""
import numpy as np


def away_from_zero(rng, shape, dtype=np.float64, margin=0.1):
    """Random values with |v| >= margin: central differences never step across ReLU's kink."""
    v = rng.standard_normal(shape)
    return (np.sign(v) * (margin + np.abs(v))).astype(dtype)


def distinct(rng, shape, dtype=np.float64, spacing=0.05):
    """Shuffled values at least `spacing` apart: no two pixels tie for a max-pooling window."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * spacing - size * spacing / 2).astype(dtype)


TOLERANCE = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


def assert_close(actual, expected, dtype=None):
    """Compare a fast result with the reference at the precision its dtype allows."""
    dtype = np.dtype(dtype or expected.dtype)
    np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])
