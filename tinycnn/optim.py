"""Stochastic gradient descent with momentum and weight decay, and the learning rate's schedule, as in section 5 of
the paper."""
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


class Plateau:
    """lr /= 10 when validation top-1 error has not improved for `patience` epochs, at most `max_drops` times."""

    def __init__(self, patience=2, max_drops=3):
        self.patience, self.max_drops = patience, max_drops
        self.best, self.bad_epochs, self.drops = float("inf"), 0, 0

    def step(self, val_error):
        """Record one epoch's validation error; return True if the learning rate should drop now."""
        if val_error < self.best:
            self.best, self.bad_epochs = val_error, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.drops < self.max_drops:
            self.bad_epochs, self.drops = 0, self.drops + 1
            return True
        return False

    def state(self):
        return dict(best=self.best, bad_epochs=self.bad_epochs, drops=self.drops, patience=self.patience,
                    max_drops=self.max_drops)

    def load(self, state):
        self.__dict__.update(state)
