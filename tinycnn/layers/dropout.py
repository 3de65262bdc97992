"""Dropout (Hinton et al. 2012; section 4.2 of the paper), in its "inverted" form."""

from .base import Layer, make_rng


class Dropout(Layer):
    """Zero each activation with probability p while training; scale the survivors by 1/(1-p).

    Shapes: x, y: any shape.
        training:  mask[i] = 1/(1-p) with probability 1-p, else 0;   y = x * mask;   dx = dy * mask
        otherwise: y = x;  dx = dy

    The paper instead multiplies by 0.5 at test time; scaling while training gives the same expected
    activation, and the evaluation network needs no change. The mask comes from `rng` (a numpy Generator,
    an int seed, or None for fresh entropy), so a seed reproduces it.

    rows = (start, stop, total) says that x holds rows [start, stop) of a batch of `total` images, the rest being
    on other processes (data-parallel training, tinycnn/distributed). The mask is then drawn for the whole
    (total, ...) batch and rows [start, stop) of it are used, so every process draws what one process training on
    the whole batch would, and the masks are the same. None (the default): x is the whole batch.

    Saved for backward: x_shape, dtype, and mask (x's shape), which is None when forward was the identity.
    """

    rows = None

    def __init__(self, p=0.5, rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = make_rng(rng)

    def extra_repr(self):
        return f"p={self.p}"

    def output_shape(self, input_shape):
        return tuple(input_shape)                      # y has x's shape

    def forward(self, x, training=False):
        self.check_input(x)
        mask = None                                    # evaluation: the identity
        if training and self.p > 0:
            keep = self.draw_keep(x.shape, x.dtype)
            mask = keep * x.dtype.type(1 / (1 - self.p))
        self.save_for_backward(x_shape=x.shape, dtype=x.dtype, mask=mask)
        return x if mask is None else x * mask

    def draw_keep(self, shape, dtype):
        """Which entries survive, a bool array of `shape` (x's); with self.rows set, the rows of a whole batch's."""
        if self.rows is None:
            return self.rng.random(shape, dtype=dtype) >= self.p
        start, stop, total = self.rows
        if stop - start != shape[0]:
            raise ValueError(f"{self.label()}: rows {start}..{stop} of the batch are {stop - start} rows, got input "
                             f"of shape {tuple(shape)}")
        return self.rng.random((total,) + tuple(shape[1:]), dtype=dtype)[start:stop] >= self.p

    def backward(self, dy):
        saved = self.saved()
        self.check_dy(dy, saved.x_shape, saved.dtype)
        return dy if saved.mask is None else dy * saved.mask
