"""Normalisation layers: the paper's local response normalisation, and batch normalisation (seed's Keras net)."""
import numpy as np

from ..kernels import lrn_backward, lrn_forward
from .base import Layer, Parameter, check_dtype
from .scratch import scratch


class LocalResponseNorm(Layer):
    """Local response normalisation across channels, exactly as in section 3.3 of the paper.

    Shapes: x = a: (N, C, H, W) -> y = b: (N, C, H, W). At each pixel, with n = size and half = n // 2:

        s_i = k + alpha * sum_{j = max(0, i - half)}^{min(C-1, i + half)} a_j^2
        b_i = a_i * s_i^(-beta)

    The paper uses k=2, n=5, alpha=1e-4, beta=0.75. alpha is NOT divided by n: Caffe and PyTorch use
    alpha/n (and default k=1), so PyTorch's LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2) equals this layer.

    groups=G normalises each block of C/G channels on its own, windows cut at the block edges: on the paper's
    two GPUs each GPU normalised only its own maps, so the paper's two-tower network uses groups=2.

    Backward. b_i depends on a_j through a_i (j = i) and through s_i (j in the window of i), and the window
    is symmetric, so
        da_j = db_j * s_j^(-beta) - 2 * alpha * beta * a_j * sum_{i in window(j)} db_i * b_i / s_i
    Forward keeps s for this. Windows near the first and last channels are simply cut short.

    Precision: y and dx are within about 1e-6 relative of an exact computation in float32 too (kernels/lrn.py
    says why the window sums are not slid). An input whose squares overflow float32 (|a| above 1.8e19) is
    normalised in float64, and the result cast back.

    Saved for backward: x_shape and dtype; a, y and s as the kernel sees them, (N*G, C/G, H*W), each group a
    separate "image" (in float64 when the float32 squares overflowed). s lives in an array the layer keeps
    from step to step (only backward reads it; a fresh one took the paper's norm1 from 34 to 73-78 ms a pass at
    batch 32 on the project's 2-core AVX-512 machine, 2026-12-01); a model's evaluation pass lets it go
    (forget_saved). Evaluation (training=False) writes s to scratch memory and keeps none, and a backward after
    it normalises a again.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, groups=1):
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LocalResponseNorm: size must be a positive odd number (a window centred on "
                             f"each channel), got {size}")
        if k <= 0 or alpha < 0:
            raise ValueError(f"LocalResponseNorm: expected k > 0 and alpha >= 0, got k={k}, alpha={alpha}")
        if groups < 1:
            raise ValueError(f"LocalResponseNorm: groups must be >= 1, got {groups}")
        self.size, self.alpha, self.beta, self.k, self.groups = size, alpha, beta, k, groups

    def extra_repr(self):
        s = f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
        return s + (f", groups={self.groups}" if self.groups > 1 else "")

    def output_shape(self, input_shape):
        return tuple(input_shape)                      # y has x's shape

    def forward(self, x, training=False):
        """x: (N, C, H, W) -> y: (N, C, H, W)."""
        self.check_input(x, 4)
        N, C, H, W = x.shape
        if C % self.groups:
            raise ValueError(f"{self.label()}: expected a channel count divisible by groups={self.groups}, got "
                             f"input of shape {x.shape}")
        G = self.groups
        a = np.ascontiguousarray(x).reshape(N * G, C // G, H * W)    # each group is a separate "image"
        y, s, overflowed = self._normalise(a, keep_s=training)
        if overflowed and a.dtype == np.float32:       # squares beyond float32's range: redo it in float64
            a = a.astype(np.float64)
            y, s, _ = self._normalise(a, keep_s=training)
        self.save_for_backward(x_shape=x.shape, dtype=x.dtype, a=a, y=y, s=s if training else None)
        return y.reshape(x.shape).astype(x.dtype, copy=False)

    def _normalise(self, a, keep_s=True):
        """-> (y, s, whether a square overflowed), each window's s = k + alpha * sum a_j^2; s in the layer's
        own array if keep_s, else in scratch memory that the next layer's call overwrites."""
        y = np.empty_like(a)
        s = self._kept_s(a) if keep_s else scratch("lrn scale", a.size, a.dtype).reshape(a.shape)
        like_a = a.dtype.type                 # like_a(0.75): the constant as a's float type, so float32 stays float32
        overflowed = lrn_forward(a, self.size, like_a(self.alpha), like_a(self.beta), like_a(self.k), y, s)
        return y, s, overflowed

    def forget_saved(self):
        """As every layer's, and the array kept for s goes too: an evaluation pass keeps nothing."""
        super().forget_saved()
        self._s = None

    def _kept_s(self, a):
        """The layer's array for s, a's shape and dtype: the same one pass after pass (each forward pass
        overwrites what the last saved, which only its backward reads)."""
        s = getattr(self, "_s", None)
        if s is None or s.shape != a.shape or s.dtype != a.dtype:
            self._s = s = None                          # let the old one go before the new one is made
            self._s = s = np.empty_like(a)
        return s

    def backward(self, dy):
        """dy: (N, C, H, W) -> dx: (N, C, H, W)."""
        saved = self.saved()
        self.check_dy(dy, saved.x_shape, saved.dtype)
        a, y, s = saved.a, saved.y, saved.s
        if s is None:                                  # after evaluation: s again, from a
            y, s, _ = self._normalise(a)
        dx = np.empty_like(a)
        like_a = a.dtype.type
        lrn_backward(a, y, s, np.ascontiguousarray(dy, a.dtype).reshape(a.shape), self.size,
                     like_a(2 * self.alpha * self.beta), like_a(self.beta), dx)
        return dx.reshape(saved.x_shape).astype(saved.dtype, copy=False)


class _BatchNorm(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015) over every axis except the channel axis 1.

    Shapes: x: (N, C) or (N, C, H, W) -> y: same;  weight gamma, bias beta: (C,).
    With m = the number of values per channel (N, or N*H*W):

    Training:
        mu = mean(x),  var = mean((x - mu)^2)           per channel, the biased variance
        xhat = (x - mu) / sqrt(var + eps),   y = gamma * xhat + beta
        running_mean <- (1 - momentum) * running_mean + momentum * mu
        running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)
    Evaluation: the same with running_mean and running_var in place of mu and var.

    Backward (training), sums over the m values of a channel:
        dgamma = sum(dy * xhat),  dbeta = sum(dy)
        dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))
    In evaluation mu and var are constants, so dx = gamma / sqrt(running_var + eps) * dy.
    Running statistics are buffers: saved with the model, never trained (Keras counts them as non-trainable).

    Saved for backward: xhat (x's shape), inv_std = 1 / sqrt(var + eps) (C,), and training: whether mu and var
    were the batch's (then they depend on x) or the running ones.
    """

    ndim = None
    buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        if num_features < 1 or eps <= 0 or not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: expected num_features >= 1, eps > 0, 0 <= momentum <= 1, "
                             f"got {num_features}, {eps}, {momentum}")
        dtype = check_dtype(dtype, type(self).__name__)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype))
        self.bias = Parameter(np.zeros(num_features, dtype))
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def output_shape(self, input_shape):
        return tuple(input_shape)                      # y has x's shape

    def _per_channel(self, v):
        """(C,) -> broadcastable against x: (1, C) or (1, C, 1, 1)."""
        return v.reshape((1, -1) + (1,) * (self.ndim - 2))

    def forward(self, x, training=False):
        self.check_input(x, self.ndim, self.num_features, self.weight.data.dtype)
        axes = (0,) + tuple(range(2, x.ndim))
        if training:
            m = x.size // self.num_features
            if m < 2:
                raise ValueError(f"{self.label()}: training needs more than one value per channel, got input "
                                 f"of shape {x.shape}")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            self.running_mean[:] = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var[:] = (1 - self.momentum) * self.running_var + self.momentum * var * m / (m - 1)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))
        xhat = (x - self._per_channel(mean)) * self._per_channel(inv_std)
        self.save_for_backward(xhat=xhat, inv_std=inv_std, training=training)
        return self._per_channel(self.weight.data) * xhat + self._per_channel(self.bias.data)

    def backward(self, dy):
        saved = self.saved()
        xhat, inv_std, training = saved.xhat, saved.inv_std, saved.training
        self.check_dy(dy, xhat.shape, xhat.dtype)
        axes = (0,) + tuple(range(2, dy.ndim))
        needs_sums = training or self.weight.trainable or self.bias.trainable
        sum_dy = dy.sum(axis=axes) if needs_sums else None
        sum_dy_xhat = (dy * xhat).sum(axis=axes) if needs_sums else None
        if self.weight.trainable:                       # frozen: its gradient is never written
            self.weight.grad = sum_dy_xhat
        if self.bias.trainable:
            self.bias.grad = sum_dy
        if not self.needs_input_grad:
            return None
        scale = self._per_channel(self.weight.data * inv_std)
        if not training:
            return scale * dy
        m = dy.size // self.num_features
        return scale * (dy - self._per_channel(sum_dy / m) - xhat * self._per_channel(sum_dy_xhat / m))


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of convolution maps: x: (N, C, H, W), statistics over N, H and W."""
    ndim = 4


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features: x: (N, C), statistics over N (the seed's Keras net after FC6, FC7)."""
    ndim = 2
