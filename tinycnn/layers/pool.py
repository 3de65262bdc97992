"""Pooling: MaxPool2d, the largest value in each window (with the paper's overlapping 3x3 stride-2 pooling), and
AdaptiveAvgPool2d, the mean over a fixed grid of windows sized to fit any input (torchvision's AlexNet)."""
import numpy as np

from ..kernels import maxpool_backward, maxpool_forward, maxpool_values
from .base import Layer, pair, window, window_output_hw


class MaxPool2d(Layer):
    """Max-pooling over (KH, KW) windows moved by (SH, SW), with implicit padding that never wins.

    Shapes
        x: (N, C, H, W) -> y: (N, C, OH, OW),  OH = floor((H + 2*PH - KH) / SH) + 1  (floor mode)

    Forward
        y[n, c, oh, ow] = max over the window of x[n, c, oh*SH - PH + i, ow*SW - PW + j]
        and argmax remembers which pixel won.

    Backward
        Only the winner receives the gradient: dx[n, c, argmax] += dy[n, c, oh, ow].
        When the stride is smaller than the window (section 3.4 of the paper: 3x3 windows, stride 2) the
        windows overlap and one pixel can win several of them, so its gradients add up.

    Ties: the first maximum in row-major order within the window wins (as in PyTorch and Caffe).
    Padding must be at most half the window, so every window holds at least one real pixel.

    Saved for backward: x_shape, dtype, and argmax (N, C, OH, OW): each window's winner as the flat index
    h*W + w in its input plane. Evaluation (training=False) finds the values alone (paper pool1 at batch 32,
    float32: 16 against 51 ms on the project's 2-core AVX-512 machine, 2026-12-01) and keeps x instead (not
    copied: change it in place before backward and the winners change): a backward after it finds the winners
    then.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = window("MaxPool2d", kernel_size,
                                                             kernel_size if stride is None else stride, padding)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half of kernel_size "
                             f"{self.kernel_size}")

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        return s + (f", padding={self.padding}" if any(self.padding) else "")

    def output_shape(self, input_shape):
        return (input_shape[0],) + window_output_hw(self, input_shape[1:], self.kernel_size, self.stride,
                                                    self.padding)

    def macs(self, input_shape):
        return 0

    def forward(self, x, training=False):
        """x: (N, C, H, W) -> y: (N, C, OH, OW)."""
        self.check_input(x, 4)
        if 0 in x.shape[2:]:                            # a padded window would hold no pixel
            raise ValueError(f"{self.label()}: expected images of at least 1x1 pixels, got input of shape {x.shape}")
        x = np.ascontiguousarray(x)
        out_shape = (x.shape[0],) + self.output_shape(x.shape[1:])
        y = np.empty(out_shape, x.dtype)
        if training:                                    # backward will need each window's winner
            self.save_for_backward(x_shape=x.shape, dtype=x.dtype, argmax=self._winners(x, y))
        else:                                           # the values alone; a backward after it finds the winners
            maxpool_values(x, *self.kernel_size, *self.stride, *self.padding, y)
            self.save_for_backward(x_shape=x.shape, dtype=x.dtype, x=x, argmax=None)
        return y

    def _winners(self, x, y):
        """Fills y and returns argmax: (N, C, OH, OW), each window's winner."""
        argmax = np.empty(y.shape, np.int32)
        maxpool_forward(x, *self.kernel_size, *self.stride, *self.padding, y, argmax)
        return argmax

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dx: (N, C, H, W)."""
        saved = self.saved()
        out_shape = (saved.x_shape[0],) + self.output_shape(saved.x_shape[1:])
        self.check_dy(dy, out_shape, saved.dtype)
        argmax = saved.argmax if saved.argmax is not None else self._winners(saved.x, np.empty(out_shape, saved.dtype))
        dx = np.zeros(saved.x_shape, saved.dtype)
        maxpool_backward(np.ascontiguousarray(dy), argmax, dx)
        return dx


def adaptive_bins(n, out):
    """The windows of adaptive pooling along one axis: bin i covers [floor(i*n/out), ceil((i+1)*n/out))."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


class AdaptiveAvgPool2d(Layer):
    """Average over an (OH, OW) grid of windows sized to fit any input (torchvision's AlexNet, 6x6).

    Shapes: x: (N, C, H, W) -> y: (N, C, OH, OW)
        window (i, j) covers rows [floor(i*H/OH), ceil((i+1)*H/OH)) and the same for columns;
        y[n, c, i, j] = mean of x over the window
    Backward: each pixel of a window receives dy / (window area); overlapping windows add.
    When H = OH and W = OW every window is one pixel and the layer is the identity.
    Saved for backward: x_shape and dtype.
    """

    def __init__(self, output_size):
        self.output_size = pair(output_size, "AdaptiveAvgPool2d output_size")
        if min(self.output_size) < 1:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be positive, got {self.output_size}")

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def output_shape(self, input_shape):
        return (input_shape[0],) + self.output_size

    def _windows(self, H, W):
        for i, (h0, h1) in enumerate(adaptive_bins(H, self.output_size[0])):
            for j, (w0, w1) in enumerate(adaptive_bins(W, self.output_size[1])):
                yield i, j, slice(h0, h1), slice(w0, w1), (h1 - h0) * (w1 - w0)

    def forward(self, x, training=False):
        self.check_input(x, 4)
        y = np.empty(x.shape[:2] + self.output_size, x.dtype)
        for i, j, rows, cols, _ in self._windows(*x.shape[2:]):
            y[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
        self.save_for_backward(x_shape=x.shape, dtype=x.dtype)
        return y

    def backward(self, dy):
        saved = self.saved()
        x_shape, dtype = saved.x_shape, saved.dtype
        self.check_dy(dy, x_shape[:2] + self.output_size, dtype)
        dx = np.zeros(x_shape, dtype)
        for i, j, rows, cols, area in self._windows(*x_shape[2:]):
            dx[:, :, rows, cols] += (dy[:, :, i, j] / dtype.type(area))[:, :, None, None]
        return dx
