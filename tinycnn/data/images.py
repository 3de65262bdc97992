"""Reading images from disk: one image file (read_image), a folder of class folders, CIFAR-10 python batches.

Every loader (and npz.load_npz) returns uint8 images (N, S, S, 3), each resized so its short side is S and
centre-cropped to S x S (section 2 of the paper: short side 256, centre crop 256), with integer labels and the
class names.
"""
import os
import pickle
import re
import warnings

import numpy as np
from tqdm import tqdm

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageSet:
    """images: uint8 (N, S, S, 3); labels: int64 (N,); classes: list of N_classes names; skipped: unreadable files."""

    def __init__(self, images, labels, classes, skipped=()):
        self.images, self.labels, self.classes, self.skipped = images, labels, list(classes), list(skipped)

    def __len__(self):
        return len(self.labels)

    def subset(self, index):
        """The images at index, the same classes; the unreadable files stay listed (they were skipped all the
        same: --per-class must not hide them)."""
        return ImageSet(self.images[index], self.labels[index], self.classes, self.skipped)


def natural_key(name):
    """Sort "2" before "10": digits compare as numbers, the rest case-insensitively."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def eight_bit_rgb(image, source="image"):
    """A PIL image -> an 8-bit RGB PIL image that looks the same.

    16-bit images (modes I;16*) are scaled by 255/65535; 32-bit integer images (mode I) the same way when their
    values fit in 16 bits (Pillow opens some 16-bit files as I), by 255/(2^31 - 1) otherwise. Without this,
    Pillow's convert("RGB") clips every value above 255 and the picture turns white.
    """
    from PIL import Image
    if image.mode == "F":
        raise ValueError(f"{source}: holds floating-point pixels (mode F); expected 8-, 16- or 32-bit integers")
    if image.mode.startswith("I"):
        values = np.asarray(image).astype(np.float64)
        if values.size and values.min() < 0:
            raise ValueError(f"{source}: holds negative pixel values (down to {values.min():g}); expected 0 or more")
        full = 65535 if image.mode.startswith("I;16") or values.max(initial=0) <= 65535 else 2**31 - 1
        image = Image.fromarray(np.round(values * (255 / full)).astype(np.uint8))
    return image.convert("RGB")


def square(image, size):
    """An 8-bit PIL image -> uint8 (size, size, 3): short side resized to `size`, then the centre square."""
    from PIL import Image
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def read_image(path, size):
    """The one way tinycnn reads an image file (train, evaluate and predict): -> uint8 (size, size, 3).

    The picture comes upright: the EXIF orientation tag is applied (a phone stores a portrait photo sideways and
    says so in the tag). Raises ValueError naming the file when it cannot be read or made 8-bit RGB.
    """
    from PIL import Image, ImageOps
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)           # a decoded copy, turned as the tag says
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:  # Pillow's, for
        reason = getattr(error, "strerror", None) or str(error).replace(f" {str(path)!r}", "")   # a bad file
        raise ValueError(f"{path}: not a readable image ({reason})") from None
    return square(eight_bit_rgb(image, path), size)


def resize_array(images, size):
    """uint8 (N, H, W, 3) -> (N, size, size, 3), through `square` unless already that size."""
    if images.shape[1:3] == (size, size):
        return images
    from PIL import Image
    return np.stack([square(Image.fromarray(image), size) for image in images])


def visible(names):
    """Names that do not start with '.': .ipynb_checkpoints, .DS_Store and macOS's ._photo.jpg are not data."""
    return [name for name in names if not name.startswith(".")]


RUN_FILES = ("last.npz", "best.npz", "history.json", "pretrained.npz")    # what alexnet.py train and pretrain write


def run_folder(path):
    """The file that makes `path` a run folder of tinycnn (its pictures are no class's images), or None."""
    return next((name for name in RUN_FILES if os.path.isfile(os.path.join(path, name))), None)


def sub_folders(path):
    """The folders in `path` that may hold images, in natural order: hidden ones and run folders (with a warning
    each) left out."""
    found = []
    for name in sorted(visible(os.listdir(path)), key=natural_key):
        folder = os.path.join(path, name)
        if not os.path.isdir(folder):
            continue
        marker = run_folder(folder)
        if marker:
            warnings.warn(f"{folder}: is a run folder of tinycnn (it holds {marker}), not images; skipped")
        else:
            found.append(name)
    return found


def image_files(path):
    """Image files under a folder and all its sub-folders, in natural order, each folder's own files first (the
    one rule of train, evaluate and predict). Hidden files and folders, and run folders, are left out."""
    found = []
    for folder, folders, files in os.walk(path):
        folders[:] = sub_folders(folder)                                 # os.walk descends in this order
        found += [os.path.join(folder, f) for f in sorted(visible(files), key=natural_key)
                  if f.lower().endswith(IMAGE_SUFFIXES)]
    return found


def load_folder(path, size):
    """path/<class>/<image>: one sub-folder per class, classes in natural order ("2" before "10"); a class's images
    are those in its folder and in all the folders below it (image_files).

    Folders and files whose names start with '.' are left out, and so are tinycnn's run folders. Files that
    cannot be read are skipped and listed in ImageSet.skipped (with a warning each), so one bad photo does not
    stop a run; a class left with no readable image is an error.
    """
    classes = sub_folders(path)
    if not classes:
        raise ValueError(f"{path}: expected one sub-folder per class, found no sub-folders")
    files = [(label, file) for label, name in enumerate(classes) for file in image_files(os.path.join(path, name))]
    images, labels, skipped = [], [], []
    for label, file in tqdm(files, desc=f"reading {path}", unit="image", leave=False, mininterval=0.5,
                            disable=None):                  # None: a bar on a terminal only
        try:
            images.append(read_image(file, size))
            labels.append(label)
        except ValueError as error:
            skipped.append(file)
            warnings.warn(f"{error}; skipped")
    for label in sorted(set(range(len(classes))) - set(labels)):
        raise ValueError(f"{os.path.join(path, classes[label])}: class folder has no readable images (expected "
                         f"files ending in {', '.join(IMAGE_SUFFIXES)})")
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
        try:
            with open(meta, "rb") as f:
                names = _CifarUnpickler(f, encoding="bytes").load().get(b"label_names", [])
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names] or classes
        except Exception as error:               # a corrupt pickle raises almost any type
            raise ValueError(f"{meta}: not a readable CIFAR-10 batches.meta ({type(error).__name__}: {error}); "
                             f"expected a pickled dict with label_names") from None
    parts = [_read_cifar_batch(os.path.join(path, f)) for f in train_files]
    train = ImageSet(resize_array(np.concatenate([p[0] for p in parts]), size),
                     np.concatenate([p[1] for p in parts]), classes)
    test_file = os.path.join(path, "test_batch")
    val = None
    if os.path.isfile(test_file):
        images, labels = _read_cifar_batch(test_file)
        val = ImageSet(resize_array(images, size), labels, classes)
    return train, val
