"""ConvTranspose2d: convolution run backwards, the decoder half of a convolutional auto-encoder."""
import numpy as np

from ..kernels import col2im, gemm, im2col
from .base import Layer, Parameter, check_dtype, normal_weight, pair, window
from .conv import convolution_repr, image_chunks
from .scratch import scratch


class ConvTranspose2d(Layer):
    """Transposed convolution: the forward pass of Conv2d's input gradient (GEMM, then col2im).

    Shapes
        x: (N, C, H, W),  weight: (C, F, KH, KW),  bias: (F,)  ->  y: (N, F, OH, OW)
        OH = (H - 1)*SH - 2*PH + KH + OPH, and the same for OW (OPH = output_padding, less than SH).

    Forward: every input pixel stamps its kernel, scaled by its value, onto the output,
        y[n, f, h*SH - PH + i, w*SW - PW + j] += sum_c x[n, c, h, w] * weight[c, f, i, j]   (+ bias[f])
    so a Conv2d(F, C, K, S, P) applied to y gives back an (N, C, H, W) map: the decoder undoes the encoder's
    shape. output_padding picks among the sizes that a strided convolution maps to the same H.

    As matrices, with X: (C, N*H*W) the input and W: (C, F*KH*KW) the weight,
        cols = W^T @ X      (F*KH*KW, N*H*W)        y = col2im(cols)
    which is exactly how Conv2d.backward computes dx. Backward, from dy: (N, F, OH, OW),
        dcols = im2col(dy)  dx = W @ dcols          dW = X @ dcols^T        dbias = sum of dy over n, oh, ow
    i.e. dx is a plain convolution of dy with the same weight.

    Images go through in chunks so the column matrix stays under `memory_budget` bytes (conv.py's image_chunks).
    Saved for backward: x, the input.
    Initialisation: weight ~ N(0, weight_std^2), by default sqrt(2 / (C*KH*KW / (SH*SW))) (He, counting the
    inputs that reach one output pixel), bias 0.
    """

    memory_budget = 32 * 2**20          # bytes a chunk of images may take for its column matrix, as in Conv2d

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, bias=True,
                 dtype=np.float32, rng=None, weight_std=None):
        self.kernel_size, self.stride, self.padding = window("ConvTranspose2d", kernel_size, stride, padding)
        self.output_padding = pair(output_padding, "ConvTranspose2d output_padding")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"ConvTranspose2d: expected positive channel counts, got {in_channels} and "
                             f"{out_channels}")
        if not all(0 <= op < s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding must be >= 0 and less than the stride "
                             f"{self.stride}, got {self.output_padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        dtype = check_dtype(dtype, "ConvTranspose2d")
        KH, KW = self.kernel_size
        fan_in = max(1.0, in_channels * KH * KW / (self.stride[0] * self.stride[1]))
        self.weight = normal_weight((in_channels, out_channels, KH, KW), fan_in, weight_std, dtype, rng)
        self.bias = Parameter(np.zeros(out_channels, dtype)) if bias else None

    def extra_repr(self):
        return convolution_repr(self, f", output_padding={self.output_padding}" if any(self.output_padding) else "")

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self.label()}: expected input of shape (N, {self.in_channels}, H, W), got "
                             f"(N, {', '.join(map(str, input_shape))})")
        out = [(n - 1) * s - 2 * p + k + op for n, s, p, k, op in
               zip(input_shape[1:], self.stride, self.padding, self.kernel_size, self.output_padding)]
        if min(out) < 1:
            raise ValueError(f"{self.label()}: input of {input_shape[1]}x{input_shape[2]} pixels gives an "
                             f"empty {out[0]}x{out[1]} output; expected padding below half the kernel")
        return (self.out_channels, out[0], out[1])

    def macs(self, input_shape):
        return self.weight.size * input_shape[1] * input_shape[2]

    def _column_rows(self):
        return self.out_channels * self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x, training=False):
        """x: (N, C, H, W) -> y: (N, F, OH, OW)."""
        self.check_input(x, 4, self.in_channels, self.weight.data.dtype)
        N, C, H, W = x.shape
        F, OH, OW = self.output_shape(x.shape[1:])
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        w = self.weight.data.reshape(C, -1)                               # (C, F*KH*KW)
        y = np.zeros((N, F, OH, OW), x.dtype)
        _, runs = image_chunks(N, self._column_rows() * H * W * x.itemsize, self.memory_budget)
        for n0, n1 in runs:
            x_cols = x[n0:n1].transpose(1, 0, 2, 3).reshape(C, -1)        # (C, n*H*W)
            cols = gemm(w.T, x_cols)                                      # (F*KH*KW, n*H*W)
            col2im(cols, KH, KW, SH, SW, PH, PW, y[n0:n1])
        if self.bias is not None:
            y += self.bias.data[:, None, None]
        self.save_for_backward(x=x)
        return y

    def backward(self, dy):
        """dy: (N, F, OH, OW) -> dx: (N, C, H, W); sets weight.grad (C, F, KH, KW) and bias.grad (F,)."""
        x = self.saved().x
        N, C, H, W = x.shape
        self.check_dy(dy, (N,) + self.output_shape(x.shape[1:]), x.dtype)
        dy = np.ascontiguousarray(dy)
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        w = self.weight.data.reshape(C, -1)                               # (C, F*KH*KW)
        dw = np.empty(w.shape, w.dtype) if self.weight.trainable else None     # C-ordered, as gemm's out
        dx = np.empty_like(x) if self.needs_input_grad else None
        rows = self._column_rows()
        chunk, runs = image_chunks(N, rows * H * W * x.itemsize, self.memory_budget)
        buffer = scratch("columns", rows * H * W * chunk, x.dtype)
        for n0, n1 in runs:
            dcols = buffer[:rows * H * W * (n1 - n0)].reshape(rows, -1)   # (F*KH*KW, n*H*W)
            im2col(dy[n0:n1], KH, KW, SH, SW, PH, PW, dcols)
            x_cols = x[n0:n1].transpose(1, 0, 2, 3).reshape(C, -1)        # (C, n*H*W)
            if self.weight.trainable:
                gemm(x_cols, dcols.T, out=dw, accumulate=n0 > 0)          # the first chunk writes, the rest add
            if dx is not None:
                dx[n0:n1] = gemm(w, dcols).reshape(C, n1 - n0, H, W).transpose(1, 0, 2, 3)
        if self.weight.trainable:
            self.weight.grad = dw.reshape(self.weight.shape)
        if self.bias is not None and self.bias.trainable:
            self.bias.grad = np.einsum("nfhw->f", dy)
        return dx
