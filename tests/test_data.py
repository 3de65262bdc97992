"""Datasets and augmentation: the built-in shapes, the three loaders, and the paper's preprocessing."""
import os
import pickle

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
    with pytest.warns(UserWarning, match="broken.jpg: skipped"):
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
    with pytest.raises(ValueError, match=r"bad.npz: expected x of shape \(N, H, W, 3\)"):
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
    coefficients = per_image @ pre.pca_vectors                  # a_i * l_i along each eigenvector p_i
    np.testing.assert_allclose(coefficients.std(axis=0), 0.1 * pre.pca_values, rtol=0.1)


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
