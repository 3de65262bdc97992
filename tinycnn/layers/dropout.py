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

    While training, the Trainer hands the model the ImageStreams of the batch's images (tinycnn/streams.py) as
    `rng`, so row i of the mask comes from image i's own stream, whichever process holds the image.

    Saved for backward: x_shape, dtype, and mask (x's shape), which is None when forward was the identity.
    """

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
        # exercise: dropout_forward
        mask = None                                    # evaluation: the identity
        if training and self.p > 0:
            keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
            mask = keep * x.dtype.type(1 / (1 - self.p))
        self.save_for_backward(x_shape=x.shape, dtype=x.dtype, mask=mask)
        return x if mask is None else x * mask
        # end exercise

    def backward(self, dy):
        saved = self.saved()
        self.check_dy(dy, saved.x_shape, saved.dtype)
        return dy if saved.mask is None else dy * saved.mask
