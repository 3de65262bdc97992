"""Element-wise non-linearities: ReLU (the paper's choice, section 3.1) and Tanh (what it replaced)."""
import numpy as np

from ..kernels import relu_backward, relu_forward
from .base import Layer


class ReLU(Layer):
    """y = max(0, x);  dx = dy where x > 0, else 0.   x, y: any shape.

    At x = 0 the derivative is taken as 0. y and dx are always C-ordered, whatever the memory layout of x
    (a transposed view, say): the kernel walks them as flat arrays.
    Saved for backward: y (where y > 0 is where x > 0).
    """

    def output_shape(self, input_shape):
        return tuple(input_shape)                      # element-wise: y has x's shape

    def forward(self, x, training=False):
        self.check_input(x)
        y = np.empty(x.shape, x.dtype)
        relu_forward(np.ascontiguousarray(x).reshape(-1), y.reshape(-1))   # np.maximum(x, 0), on every core
        self.save_for_backward(y=y)
        return y

    def backward(self, dy):
        y = self.saved().y
        self.check_dy(dy, y.shape, y.dtype)
        # exercise: relu_backward
        dx = np.empty(y.shape, y.dtype)
        relu_backward(y.reshape(-1), np.ascontiguousarray(dy).reshape(-1), dx.reshape(-1))
        return dx                                          # np.where(y > 0, dy, 0), in one parallel pass
        # end exercise


class Tanh(Layer):
    """y = tanh(x);  dx = dy * (1 - y^2).   x, y: any shape.   Saved for backward: y."""

    def output_shape(self, input_shape):
        return tuple(input_shape)                      # element-wise: y has x's shape

    def forward(self, x, training=False):
        self.check_input(x)
        y = np.tanh(x)
        self.save_for_backward(y=y)
        return y

    def backward(self, dy):
        y = self.saved().y
        self.check_dy(dy, y.shape, y.dtype)
        return dy * (1 - y * y)
