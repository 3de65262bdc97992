"""The built-in dataset: six kinds of shape drawn on cluttered, noisy backgrounds. Nothing is downloaded.

Every image is drawn from its own Generator, seeded by (seed, index), so image i is the same at any
resolution and in any subset. Within a class the position, size, rotation and colour of the shape vary, and so
do the background's colour gradient, the clutter of lines and blobs drawn over it, and the pixel noise: no
pixel or colour says the class, only the shape does, so a linear classifier on pixels does poorly.
"""
import numpy as np

CLASSES = ("disc", "square", "triangle", "cross", "ring", "bars")


def _shape_mask(kind, u, v):
    """Boolean mask of a unit-sized shape in its own rotated coordinates u, v (the shape fills about [-1, 1])."""
    r = np.hypot(u, v)
    if kind == "disc":
        return r <= 1.0
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if kind == "triangle":                        # equilateral, pointing along +v
        return (v >= -0.5) & (v <= 1.0 - np.sqrt(3) * np.abs(u))
    if kind == "cross":
        return ((np.abs(u) <= 0.28) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.28) & (np.abs(u) <= 1.0))
    if kind == "ring":
        return (r <= 1.0) & (r >= 0.6)
    if kind == "bars":                            # two parallel bars
        return (np.abs(np.abs(u) - 0.55) <= 0.2) & (np.abs(v) <= 1.0)
    raise ValueError(f"unknown shape {kind!r}")


def draw_image(seed, index, label, size):
    """One (size, size, 3) uint8 image of class `label`, from Generator (seed, index)."""
    rng = np.random.default_rng([seed, index])
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size * 2 - 1           # pixel centres in [-1, 1]
    # background: a random colour gradient
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = ((np.cos(angle) * x + np.sin(angle) * y) + 1.5) / 3
    image = c0 + (c1 - c0) * t[..., None]
    # clutter: thin lines and small blobs in random colours
    for _ in range(rng.integers(1, 4)):             # 1 to 3 pieces of clutter
        colour = rng.uniform(0, 1, 3)
        if rng.random() < 0.5:
            a, offset = rng.uniform(0, np.pi), rng.uniform(-1, 1)
            image[np.abs(np.cos(a) * x + np.sin(a) * y - offset) < rng.uniform(0.01, 0.025)] = colour
        else:
            cx, cy = rng.uniform(-1, 1, 2)
            image[np.hypot(x - cx, y - cy) < rng.uniform(0.03, 0.07)] = colour
    # the shape: position, scale, rotation and a colour that stands out from the local background
    scale = rng.uniform(0.45, 0.7)
    cx, cy = rng.uniform(-0.95 + scale, 0.95 - scale, 2)
    theta = rng.uniform(0, 2 * np.pi)
    u = (np.cos(theta) * (x - cx) + np.sin(theta) * (y - cy)) / scale
    v = (-np.sin(theta) * (x - cx) + np.cos(theta) * (y - cy)) / scale
    mask = _shape_mask(CLASSES[label], u, v)
    colour = rng.uniform(0, 1, 3)
    behind = image[mask].mean(axis=0) if mask.any() else image.mean(axis=(0, 1))
    if np.abs(colour - behind).sum() < 0.9:
        colour = np.where(behind > 0.5, rng.uniform(0, 0.25, 3), rng.uniform(0.75, 1, 3))
    image[mask] = colour
    image += rng.normal(0, rng.uniform(0.01, 0.05), image.shape)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


def make_shapes(n, size=72, seed=0, start=0):
    """n images (n, size, size, 3) uint8 and labels (n,) int64; classes cycle so every class gets n/6 images.

    start: index of the first image, so make_shapes(n, start=k) continues a sequence (e.g. a validation set).
    """
    if n < 1 or size < 8:
        raise ValueError(f"make_shapes: expected n >= 1 and size >= 8, got n={n}, size={size}")
    labels = np.arange(start, start + n) % len(CLASSES)
    images = np.stack([draw_image(seed, start + i, labels[i], size) for i in range(n)])
    return images, labels.astype(np.int64)
