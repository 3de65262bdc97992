"""Run by tests/test_mpi.py, under mpiexec or alone: train a float64 mini AlexNet on the built-in shapes with the
library's Trainer, on however many ranks started this process, and save each rank's weights.

    python tests/mpi_train.py OUT [--epochs E] [--train-images N] [--batch-size B] [--batchnorm] [--resume]

22 images in batches of 10 give an epoch of 10, 10 and 2 images: over 3 ranks, 4-3-3 rows, then 1-1-0 (the
third rank holds nothing of the last batch). Writes OUT/rank<r>.npz (each rank's parameters, buffers and
momentum) and, from rank 0, the run's checkpoints and history.json.
"""
import argparse
import os

import numpy as np

import tinycnn as tc
from tinycnn import data
from tinycnn.distributed import world
from tinycnn.models import alexnet
from tinycnn.train import Trainer


class ToFloat64(tc.Layer):
    """The images arrive as float32 (data.Preprocess); the model computes in float64, where sums are exact enough
    to compare N ranks with one process to 1e-10."""

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        return x.astype(np.float64)

    def backward(self, dy):
        return None


def float64_model(rng, batchnorm):
    """The mini AlexNet in float64 (dropout 0.5 before fc6 and fc7), with a BatchNorm after fc6 if asked."""
    mini = alexnet(6, "mini", rng=rng, dtype=np.float64)
    layers = {"float64": ToFloat64()}
    for name, layer, _ in mini.nodes:
        layers[name] = layer
        if batchnorm and name == "fc6":
            layers["bn6"] = tc.BatchNorm1d(256, dtype=np.float64)
    return tc.Sequential(layers)


def main():
    options = argparse.ArgumentParser()
    options.add_argument("out")
    options.add_argument("--epochs", type=int, default=2)
    options.add_argument("--train-images", type=int, default=22)
    options.add_argument("--batch-size", type=int, default=10)
    options.add_argument("--batchnorm", action="store_true")
    options.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    args = options.parse_args()
    ranks = world()
    train, val = data.builtin(args.train_images, 9, 36, seed=0)
    model_rng = np.random.default_rng([0, 1])
    model = float64_model(model_rng, args.batchnorm)
    trainer = Trainer(model, {"variant": "mini"}, train, val, data.Preprocess.fit(train.images, 1 / 255), 32, args.out,
                      0, lr=0.02, batch_size=args.batch_size, progress=False, ranks=ranks)
    if args.resume:
        trainer.resume(os.path.join(args.out, "last.npz"))
    trainer.fit(args.epochs, log=lambda line: None)
    arrays = {f"param/{name}": p.data for name, p in model.named_parameters()}
    arrays.update({f"buffer/{name}": b for name, b in model.named_buffers()})
    arrays.update({f"velocity/{i}": v for i, v in enumerate(trainer.optimizer.velocity)})
    arrays["val_top1"] = np.array([h["val_top1"] for h in trainer.history])
    np.savez(os.path.join(args.out, f"rank{ranks.rank}.npz"), **arrays)


if __name__ == "__main__":
    main()
