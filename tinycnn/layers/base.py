"""The two building blocks every layer shares: `Parameter` and `Layer`.

A layer is a function y = f(x; theta) that can also run backwards:

    y  = layer.forward(x, training)   # computes y and keeps what backward needs
    dx = layer.backward(dy)           # dL/dx, and p.grad = dL/dp for every parameter p

`dy` is dL/dy for some scalar loss L, with the shape of y. Backward works from what forward saved
(self.save_for_backward(x=x) in forward, self.saved().x in backward), so forward must come first. A layer may
save less and recompute the rest from it: Conv2d keeps only x and redoes im2col in backward, so the large column
matrix is never held from one pass to the other. Each layer's docstring names what it saves.
"""
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
FORGOTTEN = SimpleNamespace()            # what a layer holds for backward after a model's evaluation pass
_evaluation_keeps_saved_values = False


@contextmanager
def backward_after_evaluation():
    """Within it, a model's forward(x, training=False) keeps what backward needs, as training does.

    Outside it an evaluation pass keeps nothing (predicting needs no backward, and what backward would need is
    most of a forward pass's memory). gradcheck uses it to check the gradients of evaluation mode.
    """
    global _evaluation_keeps_saved_values
    before, _evaluation_keeps_saved_values = _evaluation_keeps_saved_values, True
    try:
        yield
    finally:
        _evaluation_keeps_saved_values = before


def evaluation_keeps_saved_values():
    return _evaluation_keeps_saved_values


class Parameter:
    """A trainable array and its gradient, side by side.

    data: the values (any shape).  grad: dL/d(data), same shape and dtype, filled by backward (which may
    overwrite the previous grad array in place: copy it to keep it).
    lr_mult and decay_mult scale the optimizer's learning rate and weight decay for this parameter.
    trainable = False freezes it: backward skips its gradient and the optimizer leaves it alone.
    """

    def __init__(self, data, lr_mult=1.0, decay_mult=1.0):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros(self.data.shape, self.data.dtype)      # calloc: no memory until written
        self.lr_mult = lr_mult
        self.decay_mult = decay_mult
        self.trainable = True

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"

    def grad_buffer(self):
        """grad, if backward may overwrite it in place (data's shape and dtype, C-ordered, writable); else None.
        Reusing fc6's 151 MB gradient array saves the page zeroing that a fresh one costs every step."""
        g = self.grad
        ok = g.shape == self.data.shape and g.dtype == self.data.dtype and g.flags.c_contiguous and g.flags.writeable
        return g if ok else None


def make_rng(rng):
    """A numpy Generator from a Generator (used as is), an int seed, or None (fresh OS entropy)."""
    return np.random.default_rng(rng)


def normal_weight(shape, fan_in, weight_std, dtype, rng):
    """A Parameter drawn from N(0, weight_std^2); weight_std=None means He's sqrt(2 / fan_in), which keeps the
    variance of the activations about the same from one ReLU layer to the next."""
    std = np.sqrt(2.0 / fan_in) if weight_std is None else weight_std
    return Parameter(make_rng(rng).standard_normal(shape, dtype) * dtype.type(std))


def check_dtype(dtype, where):
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{where}: dtype must be float32 or float64, got {dtype}")
    return dtype


class Layer:
    """Base class. Subclasses implement forward, backward and output_shape (and macs if they compute)."""

    name = None                # set by the container that holds the layer ("conv1"), used in messages
    needs_input_grad = True    # False: nothing upstream learns, so backward may skip dL/dx and return None

    # -- the computation ------------------------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, training=False):
        return self.forward(x, training)

    # -- shape arithmetic, without running anything (shapes exclude the batch axis) -------------------
    def output_shape(self, input_shape):
        """The shape of y for an x of input_shape, both without the batch axis. No default: a guess (x's shape)
        would let summary() blame the next layer for this one's mistake."""
        raise NotImplementedError(f"{self.label()}: output_shape is not implemented; a layer must say what shape "
                                  f"it returns (here for input shape {tuple(input_shape)}): summary() and "
                                  f"profile() ask every layer")

    def macs(self, input_shape):
        """Multiply-accumulates per example for one forward pass (bias additions not counted)."""
        return 0

    # -- parameters and state ---------------------------------------------------------------------
    def children(self):
        """Named sub-layers: a list of (name, layer). Leaf layers have none."""
        return []

    def named_parameters(self):
        """A list of (name, Parameter): the layer's own attributes in definition order, then children's."""
        own = [(k, v) for k, v in vars(self).items() if isinstance(v, Parameter)]
        for child_name, child in self.children():
            own += [(f"{child_name}.{k}", p) for k, p in child.named_parameters()]
        return own

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        """Non-trainable state that must be saved with the weights (BatchNorm's running statistics)."""
        own = [(k, getattr(self, k)) for k in getattr(self, "buffer_names", ())]
        for child_name, child in self.children():
            own += [(f"{child_name}.{k}", b) for k, b in child.named_buffers()]
        return own

    def freeze(self, frozen=True):
        """Keep every parameter of this layer (and the layers below it) fixed; freeze(False) undoes it."""
        for p in self.parameters():
            p.trainable = not frozen
        return self

    def layers(self):
        """This layer and every layer below it, depth first."""
        out = [self]
        for _, child in self.children():
            out += child.layers()
        return out

    # -- messages ---------------------------------------------------------------------------------
    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self):
        return ""

    def label(self):
        """How error messages name this layer: "Conv2d 'conv1' (3, 96, kernel_size=11, ...)"."""
        named = f" '{self.name}' " if self.name else ""
        return f"{type(self).__name__}{named}({self.extra_repr()})"

    def check_input(self, x, ndim=None, channels=None, dtype=None, like="its parameters"):
        """Raise ValueError naming this layer unless x is a float array of the expected rank and size.

        ndim: required number of axes (None: any); channels: required size of axis 1; dtype: required dtype,
        and `like` says where that requirement comes from.
        """
        if not isinstance(x, np.ndarray):
            raise ValueError(f"{self.label()}: expected a numpy array, got {type(x).__name__}")
        wrong_rank = ndim is not None and x.ndim != ndim
        if wrong_rank or (channels is not None and x.shape[1] != channels):
            raise ValueError(f"{self.label()}: expected input of shape {expected_shape(ndim, channels)}, "
                             f"got {x.shape}")
        if x.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{self.label()}: expected float32 or float64 input, got {x.dtype}")
        if dtype is not None and x.dtype != dtype:
            raise ValueError(f"{self.label()}: expected {np.dtype(dtype)} input like {like}, got {x.dtype}")

    def save_for_backward(self, **values):
        """Keep, by name, what backward needs: save_for_backward(x=x) here makes self.saved().x there."""
        self._saved = SimpleNamespace(**values)

    def forget_saved(self):
        """Drop what forward saved: a model's evaluation pass does it once a layer's output is computed."""
        self._saved = FORGOTTEN

    def saved(self):
        """What forward saved for backward, as attributes; an error if forward has not run."""
        saved = getattr(self, "_saved", None)
        if saved is None:
            raise RuntimeError(f"{self.label()}: backward called before forward")
        if saved is FORGOTTEN:
            raise RuntimeError(f"{self.label()}: backward after the model's evaluation pass (training=False), "
                               f"which keeps nothing for backward; run forward with training=True, or inside "
                               f"tc.backward_after_evaluation()")
        return saved

    def check_dy(self, dy, shape, dtype):
        """Raise ValueError naming this layer unless dy has the shape and dtype of the output forward made."""
        if not isinstance(dy, np.ndarray):
            raise ValueError(f"{self.label()}: backward expected dy as a numpy array, got {type(dy).__name__}")
        if dy.shape != tuple(shape):
            raise ValueError(f"{self.label()}: backward expected dy of shape {tuple(shape)}, got {dy.shape}")
        if dy.dtype != dtype:
            raise ValueError(f"{self.label()}: backward expected dy of dtype {np.dtype(dtype)} like its output, "
                             f"got {dy.dtype}")


def expected_shape(ndim, channels=None):
    """How a message writes the input shape a layer expects: (N, 96, H, W) or (N, C, H, W); (N, 4096) or (N, D)."""
    axis1 = channels if channels is not None else ("C" if ndim == 4 else "D")
    if ndim == 4:
        return f"(N, {axis1}, H, W)"
    if ndim == 2:
        return f"(N, {axis1})"
    return f"{ndim} axes"


def check_finite(x, where):
    """Raise ValueError unless every entry of x is a finite number (no NaN, no inf)."""
    finite = np.isfinite(x)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{where}: expected finite numbers, got {int(np.isnan(x).sum())} NaN and "
                         f"{int(np.isinf(x).sum())} inf values (the first at index {first})")


def pair(value, what):
    """An int or a pair of ints -> a pair: kernel_size=3 means (3, 3)."""
    pair_ = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair_) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair_):
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    return int(pair_[0]), int(pair_[1])


def window(kind, kernel_size, stride, padding):
    """A sliding window's kernel_size, stride and padding as pairs of ints, checked: each kernel side and stride
    at least 1, padding at least 0. kind names the layer in messages ("Conv2d")."""
    kernel_size = pair(kernel_size, f"{kind} kernel_size")
    stride = pair(stride, f"{kind} stride")
    padding = pair(padding, f"{kind} padding")
    if min(kernel_size) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{kind}: expected kernel_size >= 1, stride >= 1, padding >= 0, got "
                         f"{kernel_size}, {stride}, {padding}")
    return kernel_size, stride, padding


def window_output_hw(layer, in_hw, kernel, stride, padding):
    """Output (OH, OW) of a sliding window: floor((n + 2p - k) / s) + 1 per axis, or a ValueError naming layer."""
    out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(in_hw, kernel, stride, padding))
    if min(out) < 1:
        raise ValueError(f"{layer.label()}: input of {in_hw[0]}x{in_hw[1]} pixels is too small for a "
                         f"{kernel[0]}x{kernel[1]} window with padding {padding}; expected at least "
                         f"{kernel[0] - 2 * padding[0]}x{kernel[1] - 2 * padding[1]}")
    return out
