"""The paper's augmentation measured against what it should be, on pixels chosen so that a wrong axis, unit or
corner shows: a strongly anisotropic colour cloud, and windows of odd and even sizes."""
import numpy as np
import pytest

from tinycnn.data import Preprocess, centre_crop, pca_colour, ten_crops


def anisotropic_images(n=200, side=4, seed=0):
    """uint8 (n, side, side, 3) whose RGB values spread 40 along (2, 1, -1)/sqrt(6) and 4 across it."""
    rng = np.random.default_rng(seed)
    direction = np.array([2.0, 1.0, -1.0]) / np.sqrt(6)
    along = rng.normal(0, 40, (n, side, side, 1)) * direction
    across = rng.normal(0, 4, (n, side, side, 3))
    return np.clip(128 + along + across, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("scale", [1.0, 1 / 255])
def test_colour_noise_covariance_is_sigma_squared_times_the_pixels_covariance(scale):
    """sum_i a_i sqrt(l_i) p_i with a_i ~ N(0, sigma) has covariance sigma^2 P diag(l) P^T = sigma^2 C: the colour
    noise spreads like the pixels themselves, a tenth as far, in the pixels' units at any scale."""
    images = anisotropic_images()
    pre = Preprocess.fit(images, scale)
    x = np.zeros((20000, 3, 1, 1), np.float32)
    offsets = pca_colour(x, pre, np.random.default_rng(0), sigma=0.1)[:, :, 0, 0].astype(np.float64)
    pixels = images.reshape(-1, 3) * scale
    pixels_cov = np.cov(pixels.T, bias=True)
    np.testing.assert_allclose(np.cov(offsets.T), 0.01 * pixels_cov, atol=0.03 * 0.01 * np.abs(pixels_cov).max())
    assert offsets.std() / pixels.std() == pytest.approx(0.1, rel=0.05)


def test_colour_noise_is_the_same_offset_at_every_pixel_of_an_image():
    pre = Preprocess.fit(anisotropic_images(), 1 / 255)
    x = np.random.default_rng(1).random((5, 3, 6, 7)).astype(np.float32)
    offsets = pca_colour(x, pre, np.random.default_rng(0)) - x
    np.testing.assert_allclose(offsets, np.broadcast_to(offsets[:, :, :1, :1], offsets.shape), atol=1e-6)


@pytest.mark.parametrize("side, width, size, top, left", [(7, 6, 3, 2, 1), (8, 8, 5, 1, 1), (6, 9, 4, 1, 2)])
def test_centre_crop_is_the_middle_window(side, width, size, top, left):
    x = np.arange(2 * 3 * side * width, dtype=np.float32).reshape(2, 3, side, width)
    np.testing.assert_array_equal(centre_crop(x, size), x[:, :, top:top + size, left:left + size])
    np.testing.assert_array_equal(ten_crops(x, size)[4], x[:, :, top:top + size, left:left + size])
