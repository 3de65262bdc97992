"""Preprocessing and augmentation as in the paper (sections 2 and 4.1), every random draw from a Generator.

Images arrive as uint8 (N, S, S, 3), already resized so the short side is S and centre-cropped to S x S.
`Preprocess` turns them into float NCHW network input:

    x = scale * pixels - mean_image          (the paper: raw pixels minus the training set's mean image)

Training crops a random (size x size) window and flips half the images left-right; PCA colour augmentation
adds to every pixel of an image the same RGB offset

    [p1 p2 p3] [a1 s1, a2 s2, a3 s3]^T,      s_i = sqrt(l_i),  a_i ~ N(0, 0.1), drawn once per image per use,

where p_i, l_i are the eigenvectors and eigenvalues of the 3x3 covariance of the training pixels' RGB values.
The paper's sentence multiplies by the eigenvalues l_i, but l_i is a variance, in pixel units squared: at the
paper's 0-255 scale the offsets would be about 6 times the pixels' own spread, at a 0-1 scale 0.02 of it. Its
square root s_i is the spread along p_i, in pixel units, so the offset is a tenth of the spread at every scale
(as fb.resnet.torch's "Lighting" and most later implementations do it).
Evaluation takes the centre crop, or ten crops (four corners and the centre, and their mirror images) whose
softmax outputs are averaged.
"""
import numpy as np


class Preprocess:
    """What training learned about its pixels, kept with the model: scale, mean image and colour PCA.

    scale: multiplies the uint8 pixels (1.0 keeps the paper's 0-255 range; 1/255 gives 0-1).
    mean_image: (3, S, S) float32.  pca_vectors: (3, 3), columns p_i.  pca_values: (3,), eigenvalues l_i.
    """

    def __init__(self, scale, mean_image, pca_vectors, pca_values):
        self.scale = float(scale)
        self.mean_image = np.asarray(mean_image, np.float32)
        self.pca_vectors = np.asarray(pca_vectors, np.float32)
        self.pca_values = np.asarray(pca_values, np.float32)

    @classmethod
    def fit(cls, images, scale, chunk=512):
        """Learn the mean image and the RGB covariance's eigenvectors from uint8 images (N, S, S, 3)."""
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ValueError(f"Preprocess.fit: expected uint8 images of shape (N, S, S, 3), got {images.dtype} "
                             f"{images.shape}")
        total = np.zeros(images.shape[1:], np.float64)
        outer, count = np.zeros((3, 3)), 0
        for i in range(0, len(images), chunk):
            part = images[i:i + chunk].astype(np.float64) * scale
            total += part.sum(axis=0)
            pixels = part.reshape(-1, 3)
            outer += pixels.T @ pixels
            count += len(pixels)
        mean_image = total / len(images)
        mean_rgb = mean_image.reshape(-1, 3).mean(axis=0)
        covariance = outer / count - np.outer(mean_rgb, mean_rgb)
        values, vectors = np.linalg.eigh(covariance)
        return cls(scale, mean_image.transpose(2, 0, 1), vectors, np.clip(values, 0, None))

    def __call__(self, images):
        """uint8 (N, S, S, 3) -> float32 (N, 3, S, S), scaled, mean image subtracted."""
        if images.shape[1:] != self.mean_image.shape[1:] + (3,):
            raise ValueError(f"Preprocess: expected images of shape (N, {self.mean_image.shape[1]}, "
                             f"{self.mean_image.shape[2]}, 3), got {images.shape}")
        x = images.transpose(0, 3, 1, 2).astype(np.float32)
        x *= np.float32(self.scale)
        x -= self.mean_image
        return x

    def state(self):
        return dict(scale=np.float64(self.scale), mean_image=self.mean_image, pca_vectors=self.pca_vectors,
                    pca_values=self.pca_values)

    def load(self, state):
        """Take back, in place, what state() gave (a resumed run prepares its pixels as it began, bit for bit)."""
        self.__init__(**state)


def random_crop_flip(x, size, rng):
    """x: (N, C, S, S) -> (N, C, size, size): a random window per image, mirrored left-right with p = 1/2.

    rng draws the (top, left) corners (N, 2) and then the flips (N,): a Generator, or the ImageStreams of x's
    images (tinycnn/streams.py), where row i is image i's own draw.
    """
    corners = rng.integers(0, x.shape[2] - size + 1, (len(x), 2))
    flips = rng.random(len(x)) < 0.5
    out = np.empty(x.shape[:2] + (size, size), x.dtype)
    for i, ((top, left), flip) in enumerate(zip(corners, flips)):
        window = x[i, :, top:top + size, left:left + size]
        out[i] = window[:, :, ::-1] if flip else window
    return out


def pca_colour(x, preprocess, rng, sigma=0.1):
    """x: (N, 3, H, W) -> x + sum_i a_i sqrt(l_i) p_i, one RGB offset per image, a ~ N(0, sigma) drawn (N, 3)."""
    a = rng.normal(0.0, sigma, (len(x), 3)).astype(np.float32)
    spread = np.sqrt(preprocess.pca_values)       # standard deviations along p_i: the pixels' own units
    # sum over i of (a_i s_i) p_i, as products and sums of each row alone: a matrix product may round a row
    # differently with other rows beside it, and a process holding part of a batch must add the same bits
    offsets = ((a * spread)[:, None, :] * preprocess.pca_vectors[None]).sum(axis=2)
    return x + offsets[:, :, None, None]


def centre_crop(x, size):
    """x: (N, C, S, S) -> (N, C, size, size), the central window."""
    top = (x.shape[2] - size) // 2
    left = (x.shape[3] - size) // 2
    return x[:, :, top:top + size, left:left + size]


def ten_crops(x, size):
    """x: (N, C, S, S) -> (10, N, C, size, size): four corners, the centre, and the mirror images of all five."""
    S, W = x.shape[2], x.shape[3]
    corners = [(0, 0), (0, W - size), (S - size, 0), (S - size, W - size)]
    crops = [x[:, :, t:t + size, l:l + size] for t, l in corners] + [centre_crop(x, size)]
    return np.stack(crops + [c[:, :, :, ::-1] for c in crops])
