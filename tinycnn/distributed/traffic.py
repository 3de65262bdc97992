"""What each way of spreading AlexNet over machines sends, counted from the model's shapes (nothing is run).

Three schemes, for a global batch of B images on K machines (itemsize: 4 bytes in float32):

    data parallel     every machine the whole model, B/K images. Per step each machine adds up every gradient:
                      a ring Allreduce sends 2 (K-1)/K of the gradients' bytes from each machine.
    the paper's towers   K = 2, each machine half of every layer's kernels and neurons, all B images. Per image
                      each sends its half of the activations where the towers talk (conv3's input, the dense
                      layers' inputs, the logits), and as much of their gradients back (towers.py).
    one weird trick   Krizhevsky 2014: the convolutions data parallel (their gradients Allreduced, 2 (K-1)/K of
                      the conv parameters, 6% of the groups=1 paper AlexNet's), the dense layers model parallel
                      (each machine 1/K of their neurons, all B images): each receives the other machines' conv
                      features ((K-1) B/K images) and, at fc7's and fc8's inputs, the other machines' (K-1)/K of
                      the features of all B images, and as much back in backward.

    tower_exchanges(model, input_shape)        per exchange point: its shape and the bytes one rank sends per image
    step_bytes(model, input_shape, scheme, machines, batch)   bytes one machine sends in a training step
    step_seconds(...)                          compute + communication time of a step on a network (the projection)
"""
import numpy as np

from ..layers import Conv2d, Dense
from .towers import exchange_points

SCHEMES = ("data parallel", "towers", "one weird trick")


def _input_shapes(model, input_shape):
    """The per-image input shape of every node of a Sequential, in order."""
    rows = model.profile(input_shape)
    return [tuple(input_shape)] + [tuple(row["output_shape"]) for row in rows[:-1]], rows


def tower_exchanges(model, input_shape):
    """Where the two towers of a groups=2 model talk, per image. -> list of dict(layer, shape, sent):
    layer is the layer that needs every map (conv3, fc6, fc7, fc8, or "logits"), shape the whole activation there,
    sent the bytes one rank sends to the other per image in forward (its half); backward sends as many back,
    except for the logits (every rank computes the same loss from them)."""
    shapes, rows = _input_shapes(model, input_shape)
    itemsize = model.parameters()[0].data.itemsize
    out = [dict(layer=reader, shape=shapes[i], sent=int(np.prod(shapes[i])) // 2 * itemsize)
           for i, reader in exchange_points(model)]
    logits = tuple(rows[-1]["output_shape"])
    return out + [dict(layer="logits", shape=logits, sent=int(np.prod(logits)) // 2 * itemsize)]


def parameter_bytes(model, kinds=(Conv2d, Dense)):
    """Bytes of the trainable parameters of the layers of the given kinds."""
    return sum(p.data.nbytes for layer in model.layers() if isinstance(layer, kinds) for p in layer.parameters()
               if p.trainable)


def step_bytes(model, input_shape, scheme, machines, batch):
    """Bytes one machine sends in one training step with a global batch of `batch` images."""
    K, itemsize = machines, model.parameters()[0].data.itemsize
    if scheme == "data parallel":
        return 2 * (K - 1) / K * parameter_bytes(model)
    if scheme == "towers":
        if K != 2:
            raise ValueError("step_bytes: the paper's towers are 2 machines")
        return batch * sum(e["sent"] * (1 if e["layer"] == "logits" else 2)
                           for e in tower_exchanges(model, input_shape))
    if scheme == "one weird trick":
        shapes, _ = _input_shapes(model, input_shape)
        dense = [i for i, (_, layer, _) in enumerate(model.nodes) if isinstance(layer, Dense)]
        features = [int(np.prod(shapes[i])) for i in dense]          # fc6's, fc7's and fc8's inputs
        conv_gradients = 2 * (K - 1) / K * parameter_bytes(model, (Conv2d,))
        conv_features = (K - 1) * batch / K * features[0]             # the others' images, this one's conv output
        dense_features = sum((K - 1) / K * batch * f for f in features[1:])
        return conv_gradients + 2 * (conv_features + dense_features) * itemsize   # forward, and back
    raise ValueError(f"step_bytes: unknown scheme {scheme!r}; expected one of {SCHEMES}")


def step_seconds(images_per_s, batch, machines, sent_bytes, gbit_per_s, latency_s=50e-6, messages=16):
    """A projected step: each machine computes batch/machines images at images_per_s, then sends sent_bytes at
    gbit_per_s (a ring Allreduce takes 2 (K-1) message rounds of `messages` arrays, each paying the latency).
    Computation and communication are not overlapped (tinycnn sums the gradients after backward). -> seconds."""
    compute = batch / machines / images_per_s
    rounds = 2 * (machines - 1) * messages if machines > 1 else 0
    return compute + sent_bytes * 8 / (gbit_per_s * 1e9) + rounds * latency_s
