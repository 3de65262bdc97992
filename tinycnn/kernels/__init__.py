"""numba kernels: the loops that make the layers fast. No layer logic lives here."""
from .gemm import gemm, get_backend, set_backend
from .im2col import col2im, im2col
from .lrn import lrn_backward, lrn_forward
from .pool import maxpool_backward, maxpool_forward, maxpool_values
from .relu import relu_backward, relu_forward
from .sgd import sgd_update
from .winograd_3x3 import AT_3x3, G_3x3, filters_3x3, inputs_3x3, outputs_3x3
from .winograd_5x5 import AT_5x5, G_5x5, filters_5x5, inputs_5x5, outputs_5x5
from .winograd_backward import gradient_tiles, turned_filters

__all__ = ["gemm", "set_backend", "get_backend", "im2col", "col2im", "maxpool_forward", "maxpool_values",
           "maxpool_backward", "lrn_forward", "lrn_backward", "relu_forward", "relu_backward", "sgd_update",
           "filters_3x3", "inputs_3x3", "outputs_3x3", "filters_5x5", "inputs_5x5", "outputs_5x5", "gradient_tiles",
           "turned_filters", "AT_3x3", "G_3x3", "AT_5x5", "G_5x5"]
