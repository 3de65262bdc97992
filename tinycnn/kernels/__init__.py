"""numba kernels: the loops that make the layers fast. No layer logic lives here."""
from .gemm import gemm, get_backend, set_backend
from .im2col import col2im, im2col
from .lrn import lrn_backward, lrn_forward
from .pool import maxpool_backward, maxpool_forward
from .relu import relu_backward
from .sgd import sgd_update
from .winograd import winograd_conv

__all__ = ["gemm", "set_backend", "get_backend", "im2col", "col2im", "maxpool_forward", "maxpool_backward",
           "lrn_forward", "lrn_backward", "relu_backward", "sgd_update", "winograd_conv"]
