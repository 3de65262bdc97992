"""Datasets and augmentation: the built-in shapes, the three loaders, and the paper's preprocessing."""
import os
import pickle
import warnings

import numpy as np
import pytest

from tinycnn import data
from tinycnn.data import Preprocess, centre_crop, make_shapes, pca_colour, random_crop_flip, ten_crops

Image = pytest.importorskip("PIL.Image")


# -- the built-in shapes -------------------------------------------------------------------------------------

def test_shapes_are_deterministic_per_image_and_independent_of_the_subset():
    x, y = make_shapes(12, 24, seed=3)
    x2, y2 = make_shapes(12, 24, seed=3)
    np.testing.assert_array_equal(x, x2)
    tail, tail_labels = make_shapes(4, 24, seed=3, start=8)
    np.testing.assert_array_equal(tail, x[8:])
    np.testing.assert_array_equal(tail_labels, y[8:])
    assert not np.array_equal(make_shapes(12, 24, seed=4)[0], x)


@pytest.mark.parametrize("size", [8, 17, 64])
def test_shapes_come_at_any_resolution_with_balanced_classes(size):
    x, y = make_shapes(24, size, seed=0)
    assert x.shape == (24, size, size, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [4] * 6


def test_a_linear_classifier_on_pixels_does_not_solve_the_shapes():
    """Ridge regression from raw pixels to one-hot labels: far below what the CNN reaches (over 90%)."""
    x, y = make_shapes(1800, 32, seed=0)
    features = np.hstack([x.reshape(len(x), -1) / 255.0, np.ones((len(x), 1))])
    train, test = slice(0, 1200), slice(1200, None)
    onehot = np.eye(6)[y[train]]
    a = features[train]
    w = np.linalg.solve(a.T @ a + 10.0 * np.eye(a.shape[1]), a.T @ onehot)
    accuracy = np.mean((features[test] @ w).argmax(axis=1) == y[test])
    print(f"linear classifier accuracy {accuracy:.3f}")
    assert accuracy < 0.4                                    # chance is 1/6


# -- loaders ---------------------------------------------------------------------------------------------------

def write_image(path, size, colour):
    Image.new("RGB", size, colour).save(path)


def test_folder_loader_uses_natural_class_order_resizes_and_skips_corrupt_files(tmp_path):
    for name, colour in [("10", (255, 0, 0)), ("2", (0, 255, 0)), ("1", (0, 0, 255))]:
        os.makedirs(tmp_path / name)
        write_image(tmp_path / name / "a.png", (40, 20), colour)
        write_image(tmp_path / name / "b.jpg", (15, 30), colour)
    (tmp_path / "2" / "broken.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "2" / "notes.txt").write_text("ignored: not an image suffix")
    with pytest.warns(UserWarning, match=r"broken.jpg: not a readable image \(cannot identify image file\); skipped"):
        loaded = data.load_folder(str(tmp_path), 16)
    assert loaded.classes == ["1", "2", "10"]
    assert loaded.images.shape == (6, 16, 16, 3)
    assert loaded.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert loaded.skipped == [str(tmp_path / "2" / "broken.jpg")]
    assert (loaded.images[loaded.labels == 2][..., 0] > 200).all()      # class "10" is the red one


def test_folder_loader_errors_name_the_folder(tmp_path):
    with pytest.raises(ValueError, match="found no sub-folders"):
        data.load_folder(str(tmp_path), 16)
    os.makedirs(tmp_path / "cats")
    with pytest.raises(ValueError, match="cats: class folder has no readable images"):
        data.load_folder(str(tmp_path), 16)


def test_resize_keeps_the_centre_of_the_short_side():
    image = np.zeros((10, 30, 3), np.uint8)
    image[:, 10:20] = 255                                    # a white centre third
    out = data.images.square(Image.fromarray(image), 10)
    assert out.shape == (10, 10, 3) and out.min() == 255


def write_cifar(folder, n=20, rng=np.random.default_rng(0)):
    os.makedirs(folder, exist_ok=True)
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [f"name{i}".encode() for i in range(10)]}, f, protocol=2)


def test_cifar_batches_load_as_train_and_test(tmp_path):
    write_cifar(tmp_path)
    train, val = data.load(str(tmp_path), 36)
    assert train.images.shape == (40, 36, 36, 3) and val.images.shape == (20, 36, 36, 3)
    assert train.classes == [f"name{i}" for i in range(10)]
    raw = data.load_cifar(str(tmp_path), 32)[0]
    with open(tmp_path / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    np.testing.assert_array_equal(raw.images[0], first[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0))


def test_a_cifar_file_that_would_run_code_is_refused(tmp_path):
    write_cifar(tmp_path)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Exploit(), b"labels": []}, f)
    with pytest.raises(ValueError, match="data_batch_2: not a readable CIFAR-10 python batch.*refusing to load"):
        data.load(str(tmp_path), 32)


def test_npz_loader_reads_x_y_and_class_names(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 20, 24, 3)).astype(np.uint8)
    np.savez(tmp_path / "set.npz", x=x, y=np.arange(10) % 2, classes=np.array(["cat", "dog"]))
    loaded = data.load_npz(str(tmp_path / "set.npz"), 16)
    assert loaded.images.shape == (10, 16, 16, 3) and loaded.classes == ["cat", "dog"]
    np.savez(tmp_path / "bad.npz", x=x[..., 0], y=np.arange(10))
    with pytest.raises(ValueError, match=r"bad.npz: expected x of shape \(N, H, W, 3\) with N >= 1, got "
                                         r"\(10, 20, 24\)"):
        data.load_npz(str(tmp_path / "bad.npz"), 16)
    np.savez(tmp_path / "nolabels.npz", x=x)
    with pytest.raises(ValueError, match="expected arrays 'x' and 'y'"):
        data.load_npz(str(tmp_path / "nolabels.npz"), 16)


def test_split_holds_out_part_of_every_class_and_per_class_caps_it():
    images, labels = make_shapes(60, 8, seed=0)
    train, val = data.split(data.ImageSet(images, labels, data.SHAPE_CLASSES), 0.2, np.random.default_rng(0))
    assert np.bincount(val.labels).tolist() == [2] * 6 and len(train) == 48
    assert np.bincount(data.per_class(train, 3, np.random.default_rng(0)).labels).tolist() == [3] * 6


# -- preprocessing and augmentation ---------------------------------------------------------------------------

def test_preprocess_subtracts_the_mean_image_and_finds_the_rgb_principal_components():
    images, _ = make_shapes(50, 12, seed=0)
    pre = Preprocess.fit(images, 1 / 255)
    np.testing.assert_allclose(pre(images).mean(axis=0), 0, atol=1e-5)
    pixels = images.reshape(-1, 3) / 255.0
    values, vectors = np.linalg.eigh(np.cov(pixels.T, bias=True))
    np.testing.assert_allclose(pre.pca_values, values, rtol=1e-4)
    np.testing.assert_allclose(np.abs(pre.pca_vectors.T @ vectors), np.eye(3), atol=1e-4)


def test_pca_colour_noise_adds_one_rgb_offset_per_image_with_zero_mean():
    images, _ = make_shapes(50, 12, seed=0)
    pre = Preprocess.fit(images, 1 / 255)
    x = np.repeat(pre(images[:1]), 4000, axis=0)
    offsets = pca_colour(x, pre, np.random.default_rng(0)) - x                # (N, 3, H, W)
    np.testing.assert_allclose(offsets, offsets[:, :, :1, :1] * np.ones_like(offsets), atol=1e-6)
    per_image = offsets[:, :, 0, 0].astype(np.float64)
    assert np.abs(per_image.mean(axis=0)).max() < 0.1 * per_image.std(axis=0).max()  # the mean is kept
    coefficients = per_image @ pre.pca_vectors                  # a_i * sqrt(l_i) along each eigenvector p_i
    np.testing.assert_allclose(coefficients.std(axis=0), 0.1 * np.sqrt(pre.pca_values), rtol=0.1)


def test_flips_are_exact_mirrors_and_crops_come_from_the_image():
    x = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6)
    rng = np.random.default_rng(0)
    for _ in range(10):
        out = random_crop_flip(x, 6, rng)                                  # crop = whole image: flip only
        for i in range(2):
            assert np.array_equal(out[i], x[i]) or np.array_equal(out[i], x[i, :, :, ::-1])
    crops = random_crop_flip(x, 4, np.random.default_rng(1))
    assert crops.shape == (2, 3, 4, 4)


def test_ten_crops_are_four_corners_the_centre_and_their_mirrors():
    x = np.arange(1 * 1 * 5 * 5, dtype=np.float32).reshape(1, 1, 5, 5)
    crops = ten_crops(x, 3)
    assert crops.shape == (10, 1, 1, 3, 3)
    np.testing.assert_array_equal(crops[0], x[:, :, :3, :3])
    np.testing.assert_array_equal(crops[3], x[:, :, 2:, 2:])
    np.testing.assert_array_equal(crops[4], centre_crop(x, 3))
    np.testing.assert_array_equal(crops[5:], crops[:5, ..., ::-1])


def test_split_with_no_validation_fraction_keeps_everything_for_training():
    images, labels = make_shapes(12, 8, seed=0)
    train, val = data.split(data.ImageSet(images, labels, data.SHAPE_CLASSES), 0.0, np.random.default_rng(0))
    assert len(train) == 12 and len(val) == 0


# -- every picture read as the user sees it (issue 13) ---------------------------------------------------------

def upright_picture():
    """A 48 x 32 (height x width) RGB picture whose every turn and mirror looks different: flat 8 x 8 blocks,
    so JPEG (quality 100, no chroma subsampling) keeps it almost exactly."""
    blocks = np.random.default_rng(0).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)


def test_an_exif_rotated_jpeg_is_read_upright_everywhere(tmp_path):
    """A phone stores a portrait photo sideways with orientation tag 6 ("turn 90 degrees clockwise to view")."""
    upright = upright_picture()
    sideways = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)      # what the camera stores
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "photos" / "phone").mkdir(parents=True)
    sideways.save(tmp_path / "photos" / "phone" / "portrait.jpg", exif=exif, quality=100, subsampling=0)
    (tmp_path / "photos" / "other").mkdir()
    Image.fromarray(upright).save(tmp_path / "photos" / "other" / "upright.png")
    expected = data.images.square(Image.fromarray(upright), 32)
    got = data.read_image(str(tmp_path / "photos" / "phone" / "portrait.jpg"), 32)
    assert np.abs(got.astype(int) - expected).max() <= 3
    as_stored = data.images.square(sideways, 32)                 # what ignoring the tag gives: far from it
    assert np.abs(as_stored.astype(int) - expected).mean() > 30
    loaded = data.load_folder(str(tmp_path / "photos"), 32)      # train and evaluate read folders this way
    assert np.abs(loaded.images[loaded.classes.index("phone")].astype(int) - expected).max() <= 3


@pytest.mark.parametrize("mode, values, suffix", [
    ("I;16", np.linspace(0, 65535, 48 * 32), ".png"),             # a 16-bit PNG
    ("I", np.linspace(0, 2**31 - 1, 48 * 32), ".tif"),            # a 32-bit TIFF using its whole range
    ("I", np.linspace(0, 65535, 48 * 32), ".tif"),                # 16-bit values in a 32-bit container
])
def test_16_and_32_bit_images_are_scaled_to_8_bits_and_keep_the_picture(tmp_path, mode, values, suffix):
    full = 65535 if values.max() <= 65535 else 2**31 - 1
    values = values.reshape(48, 32)[:, ::-1].copy()              # a ramp from dark to light
    dtype = np.uint16 if mode == "I;16" else np.int32
    image = Image.fromarray(values.astype(dtype))
    assert image.mode == mode
    image.save(tmp_path / f"deep{suffix}")
    got = data.read_image(str(tmp_path / f"deep{suffix}"), 32)
    expected = np.round(values.astype(dtype) * 255.0 / full)[8:40]        # the centre 32 x 32
    np.testing.assert_allclose(got[..., 0], expected, atol=1)
    assert (got[..., 0] == got[..., 2]).all() and 120 < got.mean() < 135   # grey, and mid-grey on average


def test_float_npz_pixels_in_0_1_are_scaled_with_one_line_saying_so(tmp_path):
    x = np.random.default_rng(0).random((4, 8, 8, 3))
    np.savez(tmp_path / "unit.npz", x=x, y=np.array([0, 1, 0, 1]))
    with pytest.warns(UserWarning, match=r"unit.npz: x holds float pixels in \[0, 1\]; scaled by 255") as caught:
        loaded = data.load_npz(str(tmp_path / "unit.npz"), 8)
    assert len(caught) == 1
    np.testing.assert_array_equal(loaded.images, np.round(x * 255).astype(np.uint8))
    np.savez(tmp_path / "bytes.npz", x=x * 200 + 2, y=np.array([0, 1, 0, 1]))      # 2..202: taken as it is
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = data.load_npz(str(tmp_path / "bytes.npz"), 8)
    np.testing.assert_array_equal(loaded.images, np.round(x * 200 + 2).astype(np.uint8))


@pytest.mark.parametrize("x, message", [
    (np.full((2, 4, 4, 3), 256.0), r"x holds float64 pixels from 256 to 256; expected 0..255, or floats in \[0, 1\]"),
    (np.full((2, 4, 4, 3), -0.5), r"x holds float64 pixels from -0.5 to -0.5; expected 0..255"),
    (np.full((2, 4, 4, 3), 1000, np.int64), r"x holds int64 pixels from 1000 to 1000; expected 0..255"),
    (np.full((2, 4, 4, 3), True), r"x holds bool values; expected uint8 pixels 0..255"),
])
def test_npz_pixels_outside_the_accepted_ranges_are_refused(tmp_path, x, message):
    np.savez(tmp_path / "bad.npz", x=x, y=np.array([0, 1]))
    with pytest.raises(ValueError, match="bad.npz: " + message):
        data.load_npz(str(tmp_path / "bad.npz"), 4)


@pytest.mark.parametrize("y, extra, message", [
    ([0, 1, 50, 1], {}, r"y has no images of labels 2\.\.49 \(it holds labels 0 to 50\); expected labels 0\.\.K-1 "
                        r"with no gaps, or an array 'classes'"),
    ([0, 2, 4, 0], {}, r"y has no images of labels 1, 3 "),
    ([0, -1, 1, -3], {}, r"y holds negative labels \(-3, -1\); expected labels 0, 1, \.\.\., K-1"),
    ([[0], [1], [0], [1]], {}, r"expected y of shape \(4,\), one label per image of x, got \(4, 1\)"),
    ([0.0, 1.0, 0.0, 1.0], {}, r"y must hold integer labels 0, 1, \.\.\., got float64"),
    ([0, 1, 2, 1], {"classes": np.array(["a", "b"])}, r"label 2 has no name in 'classes' \(2 names\)"),
])
def test_npz_labels_with_gaps_negative_or_the_wrong_shape_are_refused_when_loaded(tmp_path, y, extra, message):
    np.savez(tmp_path / "labels.npz", x=np.zeros((4, 4, 4, 3), np.uint8), y=np.array(y), **extra)
    with pytest.raises(ValueError, match=r"labels.npz: " + message):
        data.load_npz(str(tmp_path / "labels.npz"), 4)


def test_npz_labels_with_gaps_are_kept_when_classes_name_them(tmp_path):
    np.savez(tmp_path / "named.npz", x=np.zeros((3, 4, 4, 3), np.uint8), y=np.array([0, 2, 2]),
             classes=np.array(["cat", "dog", "fox"]))
    loaded = data.load_npz(str(tmp_path / "named.npz"), 4)
    assert loaded.classes == ["cat", "dog", "fox"] and loaded.labels.tolist() == [0, 2, 2]


def test_hidden_folders_and_files_are_not_data(tmp_path):
    for name in ("cats/a.png", "dogs/b.png", ".ipynb_checkpoints/a-checkpoint.png", "dogs/.thumbnails/b.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / name, (8, 8), (255, 0, 0))
    (tmp_path / "cats" / "._a.png").write_bytes(b"macOS resource fork, not an image")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # ._a.png is not even tried
        loaded = data.load_folder(str(tmp_path), 8)
    assert loaded.classes == ["cats", "dogs"] and len(loaded) == 2 and loaded.skipped == []
    (tmp_path / "dogs" / "b.png").unlink()               # what is left of dogs is hidden
    with pytest.raises(ValueError, match=r"dogs: class folder has no readable images"):
        data.load_folder(str(tmp_path), 8)


def test_one_class_is_refused(tmp_path):
    for i in range(3):
        (tmp_path / "pets" / "cats").mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / "pets" / "cats" / f"{i}.png", (8, 8), (255, 0, 0))
    with pytest.raises(ValueError, match=r"pets: holds images of one class only \('cats'\); expected at least two"):
        data.load(str(tmp_path / "pets"), 8)
    np.savez(tmp_path / "one.npz", x=np.zeros((3, 4, 4, 3), np.uint8), y=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"one.npz: holds images of one class only \('0'\)"):
        data.load(str(tmp_path / "one.npz"), 4)
    np.savez(tmp_path / "named.npz", x=np.zeros((3, 4, 4, 3), np.uint8), y=np.ones(3, np.int64),
             classes=np.array(["cat", "dog"]))                 # two names, but images of one
    with pytest.raises(ValueError, match=r"named.npz: holds images of one class only \('dog'\)"):
        data.load(str(tmp_path / "named.npz"), 4)


def test_a_file_named_npz_that_is_not_an_npz_archive_says_so(tmp_path):
    (tmp_path / "notes.npz").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match=r"notes.npz: not an .npz archive \(it is not a zip file\)"):
        data.load(str(tmp_path / "notes.npz"), 8)
    np.save(tmp_path / "array.npy", np.zeros(3))
    os.rename(tmp_path / "array.npy", tmp_path / "array.npz")
    with pytest.raises(ValueError, match=r"array.npz: is a single .npy array, not an .npz archive"):
        data.load(str(tmp_path / "array.npz"), 8)


def test_image_files_searches_folders_in_natural_order_without_hidden_ones(tmp_path):
    for name in ("b/10.png", "b/2.jpg", "a.PNG", "c/d/e.webp", "notes.txt", ".hidden/x.png", "b/.y.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [os.path.relpath(f, tmp_path) for f in data.image_files(str(tmp_path))]
    assert found == ["a.PNG", "b/2.jpg", "b/10.png", "c/d/e.webp"]


def test_a_class_folder_takes_the_images_of_its_sub_folders_and_run_folders_are_skipped(tmp_path):
    """train ignored banana/more/deeper/nested.jpg while predict found it; a run folder inside --data (its
    pictures) became a class."""
    for name in ("apple/a.png", "banana/b.png", "banana/more/deeper/nested.jpg", "run/curves.png",
                 "apple/run/conv1_filters.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / name, (8, 8), (255, 0, 0))
    for run in ("run", "apple/run"):
        (tmp_path / run / "history.json").write_text("[]")
    with pytest.warns(UserWarning) as said:
        loaded = data.load_folder(str(tmp_path), 8)
    assert loaded.classes == ["apple", "banana"] and loaded.labels.tolist() == [0, 1, 1]
    assert sorted(str(w.message) for w in said) == [
        f"{tmp_path}/apple/run: is a run folder of tinycnn (it holds history.json), not images; skipped",
        f"{tmp_path}/run: is a run folder of tinycnn (it holds history.json), not images; skipped"]
    with pytest.warns(UserWarning):
        found = data.image_files(str(tmp_path))
    assert [os.path.relpath(f, tmp_path) for f in found] == ["apple/a.png", "banana/b.png",
                                                             "banana/more/deeper/nested.jpg"]
