"""Data parallelism: every rank holds the whole model and learns from its share of each batch.

One training step on N ranks, with a global batch of B images (--batch-size keeps its meaning):

    rank r takes rows [start_r, stop_r) of the batch, b_r = stop_r - start_r of them (shard)
    forward and backward on those rows, the loss gradient scaled by b_r / B
    g = sum over ranks of g_r            (Allreduce, in place on each parameter's gradient buffer)
    every rank applies the same SGD update with g, so the models stay equal

Why the scaling: the loss is the mean over the batch, L = (1/B) sum_i l_i. Rank r's loss is the mean over its
rows, L_r = (1/b_r) sum_{i in r} l_i, so L = sum_r (b_r / B) L_r, and dL/dw = sum_r (b_r / B) dL_r/dw. That
holds for uneven shares (32 images over 3 ranks: 11, 11, 10) and for an epoch's last, smaller batch.

The randomness is keyed to the image, not to the rank: each image's crop, flip, colour noise and dropout masks
come from its own stream (tinycnn/streams.py), so a rank draws for its own images only and gets what one process
holding the whole batch gets for them. So N ranks train the model one process would, up to the order in which
floating-point sums are added.

BatchNorm is per rank: each rank normalises its rows with their own mean and variance, as most frameworks do
(with a per-rank batch of 32 or more the statistics are good enough, and synchronising them costs two
more Allreduces per layer per step). The running statistics are then averaged over the ranks, weighted by
b_r / B, so every rank holds the same model and any rank's checkpoint would be the same.
"""
import time

import numpy as np


class DataParallel:
    """What a Trainer does differently on several ranks; on one rank (ranks.size == 1) every method does nothing.

    model: the whole model, the same on every rank. ranks: a Ranks (tinycnn/distributed/ranks.py).
    seconds, sent: time in the gradient Allreduce (including waiting for slower ranks) and the bytes of
    gradients and buffers each rank contributes, summed over the steps so far.
    """

    def __init__(self, model, ranks):
        self.model, self.ranks = model, ranks
        self.seconds, self.sent, self.steps = 0.0, 0, 0

    def sum_gradients(self, share):
        """After backward on this rank's rows (its loss gradient scaled by share = b_r / B): every trainable
        parameter's gradient becomes the sum over the ranks, the gradient of the whole batch's loss; BatchNorm's
        running statistics become their average weighted by share. share 0: this rank held no image of the batch
        and adds zero gradients."""
        if self.ranks.size == 1:
            return
        start = time.perf_counter()
        for p in self.model.parameters():
            if p.trainable:
                if share == 0:
                    p.grad = np.zeros_like(p.data)
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

    def report(self, record):
        """After an epoch on several ranks: adds communication_s and bytes_per_step to the epoch's record and
        returns "  N ranks, communication X% of the time (Y MB per step)" for its line; "" on one rank."""
        seconds = record.pop("train_seconds", None)
        if self.ranks.size == 1 or not self.steps:
            return ""
        record.update(communication_s=self.seconds, bytes_per_step=self.sent / self.steps)
        share = self.seconds / seconds
        self.seconds = self.sent = self.steps = 0
        return (f"  {self.ranks.size} ranks, communication {100 * share:.0f}% of the time "
                f"({record['bytes_per_step'] / 1e6:.2f} MB per step)")
