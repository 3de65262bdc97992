"""Run by tests/test_mpi.py under mpiexec: one data-parallel step of a small float64 network with BatchNorm, each
rank on its rows of a fixed batch of 8 images; rank 0 saves the summed gradients and the running statistics.

    mpiexec -n 2 python tests/mpi_batchnorm.py OUT.npz
"""
import sys

import numpy as np

import tinycnn as tc
from tinycnn.distributed import DataParallel, world


def network():
    """conv -> BatchNorm2d -> ReLU -> flatten -> dense -> BatchNorm1d -> dense, float64, fixed weights."""
    rng = np.random.default_rng(5)
    return tc.Sequential({"conv": tc.Conv2d(3, 4, 3, dtype=np.float64, rng=rng), "bn1": tc.BatchNorm2d(4, dtype=np.float64),
                          "relu": tc.ReLU(), "flatten": tc.Flatten(), "fc1": tc.Dense(4 * 4 * 4, 6, dtype=np.float64, rng=rng),
                          "bn2": tc.BatchNorm1d(6, dtype=np.float64), "fc2": tc.Dense(6, 3, dtype=np.float64, rng=rng)})


def batch():
    rng = np.random.default_rng(6)
    return rng.standard_normal((8, 3, 6, 6)), rng.integers(0, 3, 8)


def step(model, x, labels, share, parallel=None):
    """Forward and backward on (x, labels) with the loss gradient scaled by share; gradients summed over the ranks."""
    loss = tc.SoftmaxCrossEntropy()
    loss.forward(model.forward(x, training=True), labels)
    model.backward(loss.backward() * share)
    if parallel is not None:
        parallel.sum_gradients(share)


def main():
    ranks = world()
    model = network()
    parallel = DataParallel(model, ranks)
    x, labels = batch()
    start, stop = ranks.shard(len(x))
    step(model, x[start:stop], labels[start:stop], (stop - start) / len(x), parallel)
    if ranks.rank == 0:
        arrays = {f"grad/{name}": p.grad for name, p in model.named_parameters()}
        arrays.update({f"buffer/{name}": b for name, b in model.named_buffers()})
        np.savez(sys.argv[1], **arrays)


if __name__ == "__main__":
    main()
