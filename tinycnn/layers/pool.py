"""MaxPool2d: the largest value in each window, including the paper's overlapping 3x3 stride-2 pooling."""
import numpy as np

from ..kernels import maxpool_backward, maxpool_forward
from .base import Layer, pair, window_output_hw


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
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = pair(kernel_size, "MaxPool2d kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "MaxPool2d stride")
        self.padding = pair(padding, "MaxPool2d padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"MaxPool2d: expected kernel_size >= 1, stride >= 1, padding >= 0, got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half of kernel_size "
                             f"{self.kernel_size}")
        self._cache = None

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
        x = np.ascontiguousarray(x)
        out_shape = (x.shape[0],) + self.output_shape(x.shape[1:])
        y = np.empty(out_shape, x.dtype)
        argmax = np.empty(out_shape, np.int32)
        maxpool_forward(x, *self.kernel_size, *self.stride, *self.padding, y, argmax)
        self._cache = (x.shape, x.dtype, argmax)
        return y

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dx: (N, C, H, W)."""
        x_shape, dtype, argmax = self.saved()
        self.check_grad(dy, argmax.shape)
        dx = np.zeros(x_shape, dtype)
        maxpool_backward(np.ascontiguousarray(dy, dtype), argmax, dx)
        return dx
