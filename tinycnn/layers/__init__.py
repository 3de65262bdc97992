"""Layers: one file per family, each a short lesson with the forward and backward math in its docstrings."""
from .activation import ReLU, Tanh
from .base import Layer, Parameter, backward_after_evaluation
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .dense import Dense, Flatten
from .dropout import Dropout
from .norm import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .pool import AdaptiveAvgPool2d, MaxPool2d

__all__ = ["Layer", "Parameter", "Conv2d", "ConvTranspose2d", "MaxPool2d", "LocalResponseNorm", "BatchNorm1d", "BatchNorm2d",
           "ReLU", "Tanh", "Dropout", "Dense", "Flatten",
           "AdaptiveAvgPool2d", "backward_after_evaluation"]
