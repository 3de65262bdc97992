"""Run by tests/test_mpi.py under mpiexec -n 2: the paper's groups=2 AlexNet (float64, 99x99 input, 10 classes) as
two towers, one per rank; one forward and backward pass (dropout on) on a fixed batch; rank 0 saves the logits,
the loss, the gradients of every parameter (the halves put together) and the bytes each Allgather sent.

    mpiexec -n 2 python tests/mpi_towers.py OUT.npz
"""
import sys

import numpy as np

import tinycnn as tc
from tinycnn.distributed import world
from tinycnn.distributed.towers import Allgather, tower, whole_gradients
from tinycnn.models import alexnet


def paper_model():
    return alexnet(10, "paper", groups=2, rng=0, dtype=np.float64, input_size=99, positive_bias=0.1)


def batch():
    rng = np.random.default_rng(1)
    return rng.standard_normal((3, 3, 99, 99)) * 50, np.array([1, 7, 4])


def main():
    ranks = world()
    towers = tower(paper_model(), ranks)
    towers.skip_input_gradient()
    x, labels = batch()
    loss = tc.SoftmaxCrossEntropy()
    logits = towers.forward(x, training=True)
    value = loss.forward(logits, labels)
    towers.backward(loss.backward())
    grads = whole_gradients(towers, ranks)
    if ranks.rank == 0:
        sent = {name: layer.sent for name, layer, _ in towers.nodes if isinstance(layer, Allgather)}
        np.savez(sys.argv[1], logits=logits, loss=value, **{f"grad/{k}": v for k, v in grads.items()},
                 **{f"sent/{k}": v for k, v in sent.items()})


if __name__ == "__main__":
    main()
