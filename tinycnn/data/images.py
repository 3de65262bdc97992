"""Reading image sets from disk: a folder of class folders, CIFAR-10 python batches, or an .npz file.

Every loader returns uint8 images (N, S, S, 3), each resized so its short side is S and centre-cropped to
S x S (section 2 of the paper: short side 256, centre crop 256), with integer labels and the class names.
"""
import os
import pickle
import re
import warnings

import numpy as np

from ..layers.base import check_finite

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageSet:
    """images: uint8 (N, S, S, 3); labels: int64 (N,); classes: list of N_classes names; skipped: unreadable files."""

    def __init__(self, images, labels, classes, skipped=()):
        self.images, self.labels, self.classes, self.skipped = images, labels, list(classes), list(skipped)

    def __len__(self):
        return len(self.labels)

    def subset(self, index):
        return ImageSet(self.images[index], self.labels[index], self.classes)


def natural_key(name):
    """Sort "2" before "10": digits compare as numbers, the rest case-insensitively."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def square(image, size):
    """A PIL image -> uint8 (size, size, 3): short side resized to `size`, then the centre square."""
    from PIL import Image
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def resize_array(images, size):
    """uint8 (N, H, W, 3) -> (N, size, size, 3), through `square` unless already that size."""
    if images.shape[1:3] == (size, size):
        return images
    from PIL import Image
    return np.stack([square(Image.fromarray(image), size) for image in images])


def load_folder(path, size):
    """path/<class>/<image>: one sub-folder per class, classes in natural order ("2" before "10").

    Files that Pillow cannot read are skipped and listed in ImageSet.skipped (with a warning), so one bad
    photo does not stop a run; a class left with no readable image is an error.
    """
    from PIL import Image, UnidentifiedImageError
    classes = sorted((d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))), key=natural_key)
    if not classes:
        raise ValueError(f"{path}: expected one sub-folder per class, found no sub-folders")
    images, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        folder = os.path.join(path, name)
        files = sorted((f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES)), key=natural_key)
        before = len(images)
        for file in files:
            try:
                with Image.open(os.path.join(folder, file)) as image:
                    images.append(square(image, size))
                labels.append(label)
            except (OSError, UnidentifiedImageError, ValueError) as error:
                skipped.append(os.path.join(folder, file))
                warnings.warn(f"{os.path.join(folder, file)}: skipped, not a readable image ({error})")
        if len(images) == before:
            raise ValueError(f"{folder}: class folder has no readable images (expected files ending in "
                             f"{', '.join(IMAGE_SUFFIXES)})")
    return ImageSet(np.stack(images), np.array(labels, np.int64), classes, skipped)


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR-10's python batches are pickles; allow only what they contain (dicts, lists, bytes, numpy arrays),
    so a crafted file cannot run code."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch")


def _read_cifar_batch(file):
    try:
        with open(file, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[b"labels"], np.int64)
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as error:
        raise ValueError(f"{file}: not a readable CIFAR-10 python batch ({error})") from None


def is_cifar(path):
    return os.path.isfile(os.path.join(path, "batches.meta")) or os.path.isfile(os.path.join(path, "data_batch_1"))


def load_cifar(path, size):
    """A cifar-10-batches-py folder -> (train from data_batch_*, validation from test_batch)."""
    train_files = sorted((f for f in os.listdir(path) if f.startswith("data_batch_")), key=natural_key)
    if not train_files:
        raise ValueError(f"{path}: a CIFAR-10 folder needs data_batch_1 ... data_batch_5")
    classes = [f"class {i}" for i in range(10)]
    meta = os.path.join(path, "batches.meta")
    if os.path.isfile(meta):
        with open(meta, "rb") as f:
            names = _CifarUnpickler(f, encoding="bytes").load().get(b"label_names", [])
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names] or classes
    parts = [_read_cifar_batch(os.path.join(path, f)) for f in train_files]
    train = ImageSet(resize_array(np.concatenate([p[0] for p in parts]), size),
                     np.concatenate([p[1] for p in parts]), classes)
    test_file = os.path.join(path, "test_batch")
    val = None
    if os.path.isfile(test_file):
        images, labels = _read_cifar_batch(test_file)
        val = ImageSet(resize_array(images, size), labels, classes)
    return train, val


def load_npz(path, size):
    """An .npz with x: uint8 (N, H, W, 3) and y: integer labels (N,); optional `classes`: names."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data or "y" not in data:
                raise ValueError(f"{path}: expected arrays 'x' and 'y', found {sorted(data.files)}")
            x, y = data["x"], data["y"]
            classes = [str(c) for c in data["classes"]] if "classes" in data else None
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    if x.ndim != 4 or x.shape[3] != 3 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{path}: expected x of shape (N, H, W, 3) and y of shape (N,), got {x.shape} and "
                         f"{y.shape}")
    if x.dtype != np.uint8:
        check_finite(x, f"{path}: x")
        if x.min() < 0 or x.max() > 255:
            raise ValueError(f"{path}: x must hold pixel values in 0..255 (uint8), got {x.dtype} values from "
                             f"{x.min()} to {x.max()}")
        x = np.round(x).astype(np.uint8)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"{path}: y must hold integer labels 0, 1, ..., got {y.dtype}")
    classes = classes or [str(i) for i in range(int(y.max()) + 1)]
    if y.max() >= len(classes):
        raise ValueError(f"{path}: label {y.max()} has no name in 'classes' ({len(classes)} names)")
    return ImageSet(resize_array(x, size), y.astype(np.int64), classes)
