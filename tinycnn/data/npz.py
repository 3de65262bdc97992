"""An .npz image set: x (N, H, W, 3) pixels, y (N,) labels, and optionally `classes`, the label names.

Nothing is guessed silently. Pixels are uint8 0..255; other integers are taken if they lie in 0..255. Float
pixels in [0, 1] are scaled by 255 (with one line saying so), floats in [0, 255] are taken as they are, and any
other floats are refused. Labels are 0, 1, ..., K-1: a gap or a negative label is refused, because a gap would
give the network outputs for classes that do not exist.
"""
import warnings

import numpy as np

from ..checkpoint import read_npz
from ..layers.base import check_finite
from .images import ImageSet, resize_array


def load_npz(path, size):
    """An .npz with x: uint8 (N, H, W, 3) and y: integer labels (N,); optional `classes`: names -> ImageSet."""
    arrays = read_npz(path, expected="an .npz archive with arrays x (images) and y (labels)")
    if "x" not in arrays or "y" not in arrays:
        raise ValueError(f"{path}: expected arrays 'x' and 'y', found {sorted(arrays)}")
    x, y = arrays["x"], arrays["y"]
    if x.ndim != 4 or x.shape[3] != 3 or len(x) == 0:
        raise ValueError(f"{path}: expected x of shape (N, H, W, 3) with N >= 1, got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"{path}: expected y of shape ({len(x)},), one label per image of x, got {y.shape}")
    classes = [str(c) for c in arrays["classes"].ravel()] if "classes" in arrays else None
    labels = check_labels(y, classes, path)
    return ImageSet(resize_array(pixels(x, path), size), labels, classes or [str(i) for i in range(labels.max() + 1)])


def pixels(x, path):
    """x as uint8 0..255, by the rules in this module's docstring."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf":
        raise ValueError(f"{path}: x holds {x.dtype} values; expected uint8 pixels 0..255 (or floats in [0, 1])")
    if x.dtype.kind == "f":
        check_finite(x, f"{path}: x")
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise ValueError(f"{path}: x holds {x.dtype} pixels from {low:g} to {high:g}; expected 0..255, or floats "
                         f"in [0, 1]")
    if x.dtype.kind == "f" and high <= 1:
        warnings.warn(f"{path}: x holds float pixels in [0, 1]; scaled by 255 to 0..255")
        x = x * 255.0
    return np.round(x).astype(np.uint8)


def check_labels(y, classes, path):
    """-> y as int64 labels 0..K-1; refuses non-integers, negative labels, and gaps when no names are given."""
    if y.dtype.kind not in "iu":
        raise ValueError(f"{path}: y must hold integer labels 0, 1, ..., got {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"{path}: y holds negative labels ({spans(np.unique(y[y < 0]))}); expected labels 0, 1, "
                         f"..., K-1")
    if classes is None:
        missing = np.setdiff1d(np.arange(y.max() + 1), y)
        if len(missing):
            raise ValueError(f"{path}: y has no images of labels {spans(missing)} (it holds labels 0 to {y.max()}); "
                             f"expected labels 0..K-1 with no gaps, or an array 'classes' naming every label")
    elif y.max() >= len(classes):
        raise ValueError(f"{path}: label {y.max()} has no name in 'classes' ({len(classes)} names)")
    return y


def spans(values, most=6):
    """Sorted integers as runs: [2, 3, ..., 49, 60] -> "2..49, 60" (at most `most` runs, then "...")."""
    runs = []
    for value in map(int, values):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    text = [str(a) if a == b else f"{a}..{b}" for a, b in runs]
    return ", ".join(text[:most] + (["..."] if len(text) > most else []))
