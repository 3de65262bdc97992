"""Data parallelism: every rank holds the whole model and learns from its share of each batch.

One training step on N ranks, with a global batch of B images (--batch-size keeps its meaning):

    rank r takes rows [start_r, stop_r) of the batch, b_r = stop_r - start_r of them (shard)
    forward and backward on those rows, the loss gradient scaled by b_r / B
    g = sum over ranks of g_r            (Allreduce, in place on each parameter's gradient buffer)
    every rank applies the same SGD update with g, so the models stay equal

Why the scaling: the loss is the mean over the batch, L = (1/B) sum_i l_i. Rank r's loss is the mean over its
rows, L_r = (1/b_r) sum_{i in r} l_i, so L = sum_r (b_r / B) L_r, and dL/dw = sum_r (b_r / B) dL_r/dw. That
holds for uneven shares (32 images over 3 ranks: 11, 11, 10) and for an epoch's last, smaller batch.

The randomness is the single process's: every rank holds the same Generators, draws the crops, flips, colour
noise (tinycnn/data/augment.py) and dropout masks (Dropout.rows) for the whole batch, and uses its own rows.
So N ranks train the model one process would, up to the order in which floating-point sums are added.

BatchNorm is per rank: each rank normalises its rows with their own mean and variance, as most frameworks do
(with a per-rank batch of 32 or more the statistics are good enough, and synchronising them costs two
more Allreduces per layer per step). The running statistics are then averaged over the ranks, weighted by
b_r / B, so every rank holds the same model and any rank's checkpoint would be the same.
"""
import time

import numpy as np

from ..layers import Dropout


class DataParallel:
    """What a Trainer does differently on several ranks; on one rank (ranks.size == 1) every method does nothing.

    model: the whole model, the same on every rank. ranks: a Ranks (tinycnn/distributed/ranks.py).
    input_shape: (C, H, W) of an image, to know the dropout masks a rank with no rows must still draw.
    seconds, sent: time in the gradient Allreduce (including waiting for slower ranks) and the bytes of
    gradients and buffers each rank contributes, summed over the steps so far.
    """

    def __init__(self, model, ranks, input_shape):
        self.model, self.ranks = model, ranks
        self.dropouts = [layer for layer in model.layers() if isinstance(layer, Dropout)]
        self.seconds, self.sent, self.steps = 0.0, 0, 0
        self.dtype = model.parameters()[0].data.dtype          # the dtype the dropout masks are drawn in
        if ranks.size > 1:   # a Dropout's input, per image, is its output (dropout keeps the shape)
            self.dropout_shapes = [row["output_shape"] for row in model.profile(input_shape)
                                   if row["kind"] == "Dropout"]

    def shard(self, n):
        """The rows [start, stop) of a batch of n this rank learns from; the Dropout layers are told them."""
        start, stop = self.ranks.shard(n)
        if self.ranks.size > 1:
            for layer in self.dropouts:
                layer.rows = (start, stop, n)
        return start, stop

    def skip(self):
        """A rank holding no row of a batch (an epoch's last batch, with fewer images than ranks): it adds zero
        gradients, and still draws the dropout masks, so its Generators stay in step with the other ranks'."""
        for p in self.model.parameters():
            if p.trainable:
                p.grad = np.zeros_like(p.data)
        for layer, shape in zip(self.dropouts, self.dropout_shapes):
            if layer.p > 0:
                layer.draw_keep((0,) + tuple(shape), self.dtype)

    def sum_gradients(self, share):
        """After backward on this rank's rows (its loss gradient scaled by share = b_r / B): every trainable
        parameter's gradient becomes the sum over the ranks, the gradient of the whole batch's loss; BatchNorm's
        running statistics become their average weighted by share."""
        if self.ranks.size == 1:
            return
        start = time.perf_counter()
        for p in self.model.parameters():
            if p.trainable:
                if not p.grad.flags.c_contiguous:
                    p.grad = np.ascontiguousarray(p.grad)
                self.ranks.sum_in_place(p.grad)
                self.sent += p.grad.nbytes
        for _, buffer in self.model.named_buffers():
            buffer *= buffer.dtype.type(share)
            self.ranks.sum_in_place(buffer)
            self.sent += buffer.nbytes
        self.seconds += time.perf_counter() - start
        self.steps += 1
