"""Dense (fully connected) and Flatten: the classifier half of AlexNet (FC6, FC7, FC8)."""
import numpy as np

from ..kernels import gemm
from .base import Layer, Parameter, check_dtype, normal_weight


class Dense(Layer):
    """y = x W^T + b.

    Shapes:  x: (N, D),  weight W: (K, D),  bias b: (K,)  ->  y: (N, K)
    Backward, from dy: (N, K):
        dx = dy W      (N, D)
        dW = dy^T x    (K, D)
        db = sum_n dy  (K,)
    Saved for backward: x.
    Initialisation: W ~ N(0, weight_std^2), by default weight_std = sqrt(2/D) (He), b = 0.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None, weight_std=None):
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Dense: expected positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}")
        dtype = check_dtype(dtype, "Dense")
        self.in_features, self.out_features = in_features, out_features
        self.weight = normal_weight((out_features, in_features), in_features, weight_std, dtype, rng)
        self.bias = Parameter(np.zeros(out_features, dtype)) if bias else None

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + ("" if self.bias else ", bias=False")

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{self.label()}: expected input of shape (N, {self.in_features}), "
                             f"got (N, {', '.join(map(str, input_shape))})")
        return (self.out_features,)

    def macs(self, input_shape):
        return self.weight.size

    def forward(self, x, training=False):
        """x: (N, D) -> y: (N, K)."""
        self.check_input(x, 2, self.in_features, self.weight.data.dtype)
        y = gemm(x, self.weight.data.T)
        if self.bias is not None:
            y += self.bias.data
        self.save_for_backward(x=x)
        return y

    def backward(self, dy):
        """dy: (N, K) -> dx: (N, D); sets weight.grad and bias.grad (each unless frozen)."""
        x = self.saved().x
        self.check_dy(dy, (x.shape[0], self.out_features), x.dtype)
        # exercise: dense_backward
        if self.weight.trainable:
            self.weight.grad = gemm(dy.T, x, out=self.weight.grad_buffer())
        if self.bias is not None and self.bias.trainable:
            self.bias.grad = dy.sum(axis=0)
        return gemm(dy, self.weight.data) if self.needs_input_grad else None
        # end exercise


class Flatten(Layer):
    """x: (N, d1, d2, ...) -> y: (N, d1*d2*...), in C order; backward reshapes dy back.

    Saved for backward: x_shape and dtype (dy must be (N, d1*d2*...) of x's dtype).
    """

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ValueError(f"{self.label()}: expected input of shape (N, ...) with at least 2 axes, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        self.save_for_backward(x_shape=x.shape, dtype=x.dtype)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        saved = self.saved()
        self.check_dy(dy, (saved.x_shape[0], int(np.prod(saved.x_shape[1:]))), saved.dtype)
        return dy.reshape(saved.x_shape)
