"""Stochastic gradient descent with momentum and weight decay, as in section 5 of the paper."""
import numpy as np

from .kernels import sgd_update


class SGD:
    """The paper's update, for every parameter w with gradient g = dL/dw:

        v <- momentum * v - weight_decay * lr * w - lr * g
        w <- w + v

    (paper: momentum 0.9, weight decay 5e-4, lr 0.01.) Each parameter may scale its learning rate and its
    weight decay by p.lr_mult and p.decay_mult (Caffe's lr_mult / decay_mult); frozen ones (p.trainable False)
    are skipped.
    """

    def __init__(self, parameters, lr=0.01, momentum=0.9, weight_decay=5e-4):
        self.parameters = list(parameters)
        if lr <= 0:
            raise ValueError(f"SGD: learning rate must be > 0, got {lr}")
        if not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"SGD: expected 0 <= momentum < 1 and weight_decay >= 0, got {momentum}, "
                             f"{weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [np.zeros_like(p.data) for p in self.parameters]

    def step(self):
        for p, v in zip(self.parameters, self.velocity):
            if not p.trainable:                            # frozen: not even weight decay touches it
                continue
            if not p.data.flags.c_contiguous:              # the kernel updates a flat view in place
                p.data = np.ascontiguousarray(p.data)
            t = p.data.dtype.type                          # keep float32 updates in float32
            lr = t(self.lr * p.lr_mult)
            sgd_update(p.data.reshape(-1), p.grad.reshape(-1), v.reshape(-1), lr, t(self.momentum),
                       t(self.weight_decay * p.decay_mult) * lr)
