"""Datasets for training: the built-in shapes, your own image folders, CIFAR-10 batches and .npz files."""
import os

import numpy as np

from .augment import Preprocess, centre_crop, pca_colour, random_crop_flip, ten_crops
from .images import ImageSet, image_files, is_cifar, load_cifar, load_folder, natural_key, read_image
from .npz import load_npz
from .synthetic import CLASSES as SHAPE_CLASSES, make_shapes

__all__ = ["ImageSet", "Preprocess", "builtin", "load", "split", "per_class", "make_shapes", "SHAPE_CLASSES",
           "random_crop_flip", "pca_colour", "centre_crop", "ten_crops", "natural_key", "read_image", "image_files"]


def builtin(n_train, n_val, size, seed=0):
    """The generated shapes: train images 0 .. n_train-1 and validation images after them, (size, size)."""
    train = ImageSet(*make_shapes(n_train, size, seed), SHAPE_CLASSES)
    val = ImageSet(*make_shapes(n_val, size, seed, start=n_train), SHAPE_CLASSES)
    return train, val


def split(data, val_fraction, rng):
    """Hold out about `val_fraction` of each class (at least one image of each class with two or more, and
    never all of them); val_fraction=0 keeps everything for training."""
    train_index, val_index = [], []
    for label in range(len(data.classes)):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        n_val = int(round(len(members) * val_fraction))
        if val_fraction > 0 and len(members) > 1:
            n_val = min(max(n_val, 1), len(members) - 1)          # keep at least one image on each side
        val_index += list(members[:n_val])
        train_index += list(members[n_val:])
    train_index, val_index = (np.sort(np.array(index, np.int64)) for index in (train_index, val_index))
    return data.subset(train_index), data.subset(val_index)


def per_class(data, n, rng):
    """At most n images of each class, drawn at random (for training on a small subset)."""
    keep = [rng.permutation(np.flatnonzero(data.labels == label))[:n] for label in range(len(data.classes))]
    return data.subset(np.sort(np.concatenate(keep)))


def load(path, size, val_fraction=0.2, rng=None, min_classes=2):
    """Read `path` (a class-folder tree, a CIFAR-10 python-batches folder, or an .npz) -> (train, val).

    CIFAR-10's test_batch is its validation set; otherwise `val_fraction` of each class is held out.
    A set with images of fewer than `min_classes` classes is refused: to train, it takes two (a classifier of
    one class is always right); to evaluate, one will do.
    """
    rng = np.random.default_rng(rng)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file or folder")
    if os.path.isfile(path):
        if not path.endswith(".npz"):
            raise ValueError(f"{path}: expected a folder of class folders, a CIFAR-10 folder, or an .npz file")
        data = load_npz(path, size)
    elif is_cifar(path):
        train, val = load_cifar(path, size)
        return (train, val) if val is not None else split(train, val_fraction, rng)
    else:
        data = load_folder(path, size)
    present = np.unique(data.labels)
    if len(present) < min_classes:
        raise ValueError(f"{path}: holds images of one class only ({data.classes[present[0]]!r}); expected at "
                         f"least two classes")
    train, val = split(data, val_fraction, rng)
    train.skipped = data.skipped
    return train, val
