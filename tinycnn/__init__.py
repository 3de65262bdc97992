"""tinycnn: a small, readable CNN framework in NumPy and numba that assembles AlexNet from hand-written layers."""
from .memory import keep_freed_memory

keep_freed_memory()             # from here on, a step's large arrays reuse the last step's pages

from .gradcheck import GradcheckError, gradcheck, gradient_errors
from .graph import Concat, Graph, Sequential
from .kernels import get_backend, set_backend
from .layers import (AdaptiveAvgPool2d, backward_after_evaluation, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dense, Dropout, Flatten, Layer,
                     LocalResponseNorm, MaxPool2d, Parameter, ReLU, Tanh)
from .losses import MSELoss, SoftmaxCrossEntropy
from .optim import SGD

__version__ = "0.1.0"

__all__ = ["Layer", "Parameter", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AdaptiveAvgPool2d", "LocalResponseNorm",
           "BatchNorm1d", "BatchNorm2d", "ReLU", "Tanh", "Dropout", "Dense", "Flatten", "Sequential", "Graph",
           "Concat", "SoftmaxCrossEntropy", "MSELoss", "SGD", "gradcheck", "gradient_errors", "GradcheckError",
           "set_backend", "get_backend", "backward_after_evaluation"]
