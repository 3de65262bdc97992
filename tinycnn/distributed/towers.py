"""Model parallelism as in the paper: its two GPUs as two ranks, each holding one tower of AlexNet.

Section 3.2: "we spread the net across two GPUs ... the GPUs communicate only in certain layers. This means
that, for example, the kernels of layer 3 take input from all kernel maps in layer 2. However, kernels in
layer 4 take input only from those kernel maps in layer 3 which reside on the same GPU." Each GPU holds half of
every layer's kernels (48 of conv1's 96, 128 of conv2's 256, ...) and half of the neurons of fc6, fc7 and fc8.

    towers = tower(model, ranks)     this rank's half of a groups=2 model, as a tc.Sequential with Allgather
                                     layers where the towers exchange activations
    full = whole_parameters(towers, ranks)   the halves put back together: {name: array} (on every rank)

Where the towers talk (Allgather layers), and only there:
    before conv3   conv3 reads all 256 maps of layer 2 (groups=1), conv4 and conv5 only their own tower's
    before fc6, fc7 and fc8   a dense layer reads every feature of the layer before it
    after fc8      the logits, so that every rank computes the same loss
Everything else (conv1, conv2, conv4, conv5, LRN within a tower's maps, pooling, ReLU) runs on each rank's own
half, and dropout on the gathered features draws the same mask on both ranks (they hold the same Generator).
A rank's parameters are slices of the groups=2 model's along their first axis (the kernels, or the neurons):
tower a (rank 0) the first half, tower b (rank 1) the second.
"""
import copy

import numpy as np

from ..graph import Sequential
from ..layers import Conv2d, Dense, Dropout, Flatten, Layer, LocalResponseNorm, MaxPool2d, ReLU


class Allgather(Layer):
    """Where the towers exchange activations: every rank sends its part, all receive every part (MPI Allgather).

    Shapes, on R ranks:  x: (N, C/R, ...) on each rank  ->  y: (N, C, ...), the parts in rank order on axis 1.
    Backward: dy: (N, C, ...) on each rank is the gradient of what *this rank's* next layer computed from y. Every
    rank's next layer read all of y, so the gradient of rank r's part is the sum of every rank's dy over it:
        dx_r = sum_s dy_s[:, part r]           (MPI Reduce_scatter: sum, and each rank keeps its own part)
    For the logits (whole=True), every rank feeds y to the same loss: dy is then already the whole gradient, the
    same on every rank, and dx_r = dy[:, part r] with no communication.
    sent: the bytes this rank has sent so far (its part to each other rank forward, the others' parts of dy back).
    Saved for backward: the part's shape.
    """

    def __init__(self, ranks, whole=False):
        self.ranks, self.whole, self.sent = ranks, whole, 0

    def extra_repr(self):
        return f"{self.ranks.size} ranks" + (", whole gradient" if self.whole else "")

    def output_shape(self, input_shape):
        return (input_shape[0] * self.ranks.size,) + tuple(input_shape[1:])

    def forward(self, x, training=False):
        """x: (N, c, ...) -> y: (N, R*c, ...)."""
        self.check_input(x)
        x = np.ascontiguousarray(x)
        parts = np.empty((self.ranks.size,) + x.shape, x.dtype)              # (R, N, c, ...)
        self.ranks.comm.Allgather(x, parts)
        self.sent += x.nbytes * (self.ranks.size - 1)
        self.save_for_backward(part_shape=x.shape)
        return np.concatenate(list(parts), axis=1)

    def backward(self, dy):
        """dy: (N, R*c, ...) -> dx: (N, c, ...)."""
        part_shape = self.saved().part_shape
        c, r = part_shape[1], self.ranks.rank
        if self.whole:
            return np.ascontiguousarray(dy[:, r * c:(r + 1) * c])
        from mpi4py import MPI
        parts = np.ascontiguousarray(np.stack(np.split(dy, self.ranks.size, axis=1)))   # (R, N, c, ...)
        dx = np.empty(part_shape, dy.dtype)
        self.ranks.comm.Reduce_scatter_block(parts, dx, op=MPI.SUM)
        self.sent += dx.nbytes * (self.ranks.size - 1)
        return dx


def _half(array, rank, ranks):
    """Rank r's slice of an array along its first axis (its kernels or neurons)."""
    n = len(array) // ranks
    return np.array(array[rank * n:(rank + 1) * n])


def tower(model, ranks):
    """This rank's tower of a groups=2 AlexNet (paper or mini), on exactly 2 ranks: a tc.Sequential with the
    model's layer names, each layer holding this rank's half of the kernels or neurons, and Allgather layers
    ("to_conv3", "to_fc6", ...) where the towers talk. It computes this rank's half of what `model` computes;
    the last layer gathers the logits, so every rank ends with all of them."""
    if ranks.size != 2:
        raise ValueError(f"tower: the paper's network splits over 2 GPUs, so 2 ranks; got {ranks.size}")
    r, layers = ranks.rank, {}
    exchanges = dict(exchange_points(model))
    dropouts = copy.deepcopy([layer for _, layer, _ in model.nodes if isinstance(layer, Dropout)])
    for i, (name, layer, _) in enumerate(model.nodes):
        if i in exchanges:
            layers[f"to_{exchanges[i]}"] = Allgather(ranks)
        if isinstance(layer, Conv2d):
            if layer.groups not in (1, 2) or layer.out_channels % 2:
                raise ValueError(f"tower: {name} has groups={layer.groups} and {layer.out_channels} kernels; "
                                 f"expected groups 1 or 2 and an even number")
            cin = layer.in_channels // layer.groups
            half = Conv2d(cin, layer.out_channels // 2, layer.kernel_size, layer.stride, layer.padding,
                          dtype=layer.weight.data.dtype)
            half.weight.data[:] = _half(layer.weight.data, r, 2)
            half.bias.data[:] = _half(layer.bias.data, r, 2)
            layers[name] = half
        elif isinstance(layer, Dense):
            if layer.out_features % 2:
                raise ValueError(f"tower: {name} has {layer.out_features} neurons; expected an even number")
            half = Dense(layer.in_features, layer.out_features // 2, dtype=layer.weight.data.dtype)
            half.weight.data[:] = _half(layer.weight.data, r, 2)
            half.bias.data[:] = _half(layer.bias.data, r, 2)
            layers[name] = half
        elif isinstance(layer, LocalResponseNorm):
            if layer.groups != 2:
                raise ValueError(f"tower: {name} normalises across both towers' maps (groups={layer.groups}); the "
                                 f"paper's LRN stays within a GPU (groups=2)")
            layers[name] = LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
        elif isinstance(layer, Dropout):
            layers[name] = dropouts.pop(0)          # the model's Generator, copied: both ranks draw the same masks
        elif isinstance(layer, (ReLU, MaxPool2d, Flatten)):
            layers[name] = copy.deepcopy(layer)     # one map or one feature at a time: each rank on its own half
        else:
            raise ValueError(f"tower: cannot split {name} ({type(layer).__name__}) between the towers")
    layers["logits"] = Allgather(ranks, whole=True)
    return Sequential(layers)


def exchange_points(model):
    """Where the towers of a groups=2 model must exchange activations: -> [(i, reader)], before node i, for the
    layer `reader` that needs every map or feature (conv3, fc6, fc7, fc8 in the paper's network).

    After a split layer (a conv or dense layer cut in halves) each rank holds half of the activations; a conv
    with groups=1, a dense layer, or a dropout before one (whose mask covers every feature) needs them all.
    """
    points, split = [], False
    for i, (name, layer, _) in enumerate(model.nodes):
        whole_input = isinstance(layer, (Dense, Dropout)) or (isinstance(layer, Conv2d) and layer.groups == 1)
        if split and whole_input:
            points.append((i, next(n for n, later, _ in model.nodes[i:] if isinstance(later, (Conv2d, Dense)))))
            split = False
        split = split or isinstance(layer, (Conv2d, Dense))
    return points


def whole_parameters(towers, ranks):
    """{name: array}: every parameter of the groups=2 model, the two towers' halves put together (Allgather)."""
    return {name: np.concatenate(ranks.comm.allgather(p.data)) for name, p in towers.named_parameters()}


def whole_gradients(towers, ranks):
    """{name: array}: the groups=2 model's gradients, the two towers' halves put together (Allgather)."""
    return {name: np.concatenate(ranks.comm.allgather(p.grad)) for name, p in towers.named_parameters()}


def timed_step(towers, x, labels):
    """One forward and backward pass of this rank's tower on (x, labels), layer by layer, with the time each
    layer took and the bytes it sent. -> (logits, loss, rows): one dict per layer, in order: name, kind,
    output_shape (this rank's, per image), params (this rank's), ms (forward + backward), sent (bytes)."""
    from time import perf_counter

    from ..losses import SoftmaxCrossEntropy
    rows, loss_fn = [], SoftmaxCrossEntropy()
    towers.skip_input_gradient()
    for name, layer, _ in towers.nodes:
        start = perf_counter()
        x = layer.forward(x, training=True)
        rows.append(dict(name=name, kind=type(layer).__name__, output_shape=x.shape[1:], ms=1e3 * (perf_counter() - start),
                         params=sum(p.size for p in layer.parameters())))
    logits, loss = x, loss_fn.forward(x, labels)
    dy = loss_fn.backward()
    for row, (_, layer, _) in zip(reversed(rows), reversed(towers.nodes)):
        start = perf_counter()
        dy = layer.backward(dy) if dy is not None else None
        row["ms"] += 1e3 * (perf_counter() - start)
    for row, (_, layer, _) in zip(rows, towers.nodes):
        row["sent"] = getattr(layer, "sent", 0)
    return logits, loss, rows
