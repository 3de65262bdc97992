"""Networks of layers: Sequential (a chain), Graph (a named DAG with branches) and Concat to join branches.

Both containers describe themselves without running: summary() prints a Keras-style table, profile() returns it.
"""
import contextlib
import re

import numpy as np

from .layers.base import Layer, Parameter, check_finite, evaluation_keeps_saved_values


def _keras_style_name(layer, taken):
    """conv2d, conv2d_1, conv2d_2, ...: the names Keras gives, so a summary reads like Keras'."""
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(layer).__name__).lower()
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def _named_layers(path, layer):
    """Yield (path, layer) for a layer and every layer below it: ("towers", ...), ("towers.conv1", ...), ..."""
    yield path, layer
    for name, child in layer.children():
        yield from _named_layers(f"{path}.{name}", child)


class Concat(Layer):
    """Join several inputs along axis 1 (channels of (N, C, H, W) maps, or features of (N, D) vectors).

    Shapes: xs = [x_1: (N, C_1, ...), ..., x_k: (N, C_k, ...)] -> y: (N, C_1 + ... + C_k, ...)
    Backward splits dy at the same places: dx_i = dy[:, C_1 + ... + C_{i-1} : C_1 + ... + C_i].
    Saved for backward: splits (C_1, C_1 + C_2, ...: where dy is cut), y_shape and dtype.
    """

    def output_shape(self, input_shapes):
        first = tuple(input_shapes[0])
        if any(tuple(s[1:]) != first[1:] or len(s) != len(first) for s in input_shapes):
            raise ValueError(f"{self.label()}: inputs must agree on every axis but the channels, got "
                             f"{[tuple(s) for s in input_shapes]}")
        return (sum(s[0] for s in input_shapes),) + first[1:]

    def forward(self, xs, training=False):
        for x in xs:
            self.check_input(x, dtype=xs[0].dtype, like="its first input")
        self.output_shape([x.shape[1:] for x in xs])
        y = np.concatenate(xs, axis=1)
        self.save_for_backward(splits=np.cumsum([x.shape[1] for x in xs])[:-1], y_shape=y.shape, dtype=y.dtype)
        return y

    def backward(self, dy):
        saved = self.saved()
        self.check_dy(dy, saved.y_shape, saved.dtype)
        return np.split(dy, saved.splits, axis=1)


# The window of a layer as summary() shows it: profile key -> the layer's attribute (Conv2d, ConvTranspose2d and
# MaxPool2d have all but groups; LocalResponseNorm has groups, its per-GPU split, and no spatial window).
WINDOW = {"kernel": "kernel_size", "stride": "stride", "padding": "padding", "groups": "groups"}


def _size(value, kernel=False):
    """(11, 11) -> "11x11" for a kernel, "11" for a stride or padding; (2, 1) -> "2x1"; None -> ""."""
    if value is None:
        return ""
    a, b = (value, value) if np.isscalar(value) else value
    return f"{a}x{b}" if kernel or a != b else str(a)


@contextlib.contextmanager
def drawing_from(network, rng):
    """Within the block, every layer of network that holds a Generator (`layer.rng`: Dropout) draws from rng
    instead; rng None leaves them alone."""
    drawing = [layer for layer in network.layers() if hasattr(layer, "rng")] if rng is not None else []
    own = [layer.rng for layer in drawing]
    for layer in drawing:
        layer.rng = rng
    try:
        yield
    finally:
        for layer, generator in zip(drawing, own):
            layer.rng = generator


class Graph(Layer):
    """A named DAG of layers: each node is (name, layer, inputs), listed so that inputs come first.

        tc.Graph([("conv_a", tc.Conv2d(3, 4, 3), "input"), ("conv_b", tc.Conv2d(3, 4, 3), "input"),
                  ("both", tc.Concat(), ["conv_a", "conv_b"])])

    inputs is the name of one earlier node (or "input", the network's input) or a list of names for a layer
    that takes several arrays (Concat). Forward evaluates the nodes in order and returns the last one's value.
    Backward visits them in reverse; where one activation feeds several nodes, the gradients flowing back
    into it are summed (the multivariate chain rule). A layer object sits at one node only: it keeps what its
    forward saved on itself, so two nodes would mix up their saved values (a second place needs a copy).
    """

    def __init__(self, nodes):
        seen = {"input"}
        for name, layer, inputs in nodes:
            if not isinstance(layer, Layer):
                raise ValueError(f"{type(self).__name__}: '{name}' is a {type(layer).__name__}, expected a "
                                 f"tinycnn Layer")
            if name in seen:
                raise ValueError(f"{type(self).__name__}: the node name {name!r} is used twice")
            missing = [i for i in ([inputs] if isinstance(inputs, str) else inputs) if i not in seen]
            if missing:
                raise ValueError(f"{type(self).__name__}: node {name!r} reads {missing}, which no earlier node "
                                 f"produces")
            seen.add(name)
        self._refuse_shared_layers(nodes)
        for name, layer, _ in nodes:
            layer.name = name
        self.nodes = list(nodes)
        last_reader = {}                                # value name -> index of the last node that reads it
        for step, (_, _, inputs) in enumerate(self.nodes):
            for source in ([inputs] if isinstance(inputs, str) else inputs):
                last_reader[source] = step
        self._done_after = [[] for _ in self.nodes]     # step -> the values no later node reads
        for source, step in last_reader.items():
            self._done_after[step].append(source)

    def _refuse_shared_layers(self, nodes):
        """One layer object (or Parameter) at two places of the network: raise ValueError naming both.

        A layer keeps what forward saved on itself, so the second place's forward would overwrite what the first
        place's backward needs; and each backward sets p.grad, so the second would overwrite the first's
        gradient. Either way the gradients are wrong, silently.
        """
        def place(path, node):
            return f"node {node!r}" if path == node else f"{path!r} in node {node!r}"

        first = {}                                      # id of a layer or Parameter -> (path, node) where first seen
        for node, layer, _ in nodes:
            for path, part in _named_layers(node, layer):
                things = [(path, type(part).__name__, part)]
                things += [(f"{path}.{k}", "Parameter", p) for k, p in vars(part).items() if isinstance(p, Parameter)]
                for where, kind, thing in things:
                    if id(thing) in first:
                        raise ValueError(
                            f"{type(self).__name__}: {place(*first[id(thing)])} and {place(where, node)} are the same "
                            f"{kind} object; a layer keeps what forward saved on itself and backward sets p.grad, "
                            f"so one object at two places gives wrong gradients. Give each place its own layer "
                            f"(copy.deepcopy(layer) makes one with the same weights)")
                    first[id(thing)] = (where, node)

    def children(self):
        return [(name, layer) for name, layer, _ in self.nodes]

    def extra_repr(self):
        return ", ".join(name for name, _, _ in self.nodes)

    def __getitem__(self, key):
        if isinstance(key, str):
            for name, layer, _ in self.nodes:
                if name == key:
                    return layer
            raise KeyError(f"{type(self).__name__} has no layer named {key!r}; it has "
                           f"{[name for name, _, _ in self.nodes]}")
        return self.nodes[key][1]

    def __len__(self):
        return len(self.nodes)

    @staticmethod
    def _gather(values, inputs):
        return values[inputs] if isinstance(inputs, str) else [values[i] for i in inputs]

    def check_model_input(self, x):
        """The arrays a network is given must be finite; NaN born inside it is divergence, not bad input."""
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            check_finite(x, f"{type(self).__name__} '{self.name or 'model'}' input")

    def forward(self, x, training=False, rng=None):
        """Evaluate every node in order. In evaluation (training=False) nothing is kept for backward: each layer
        forgets what it saved once its output exists, and each value is dropped after its last reader.

        rng: where the layers that draw while training (Dropout) take this call's random numbers, in place of
        their own Generator: the Trainer passes the ImageStreams of the batch's images (tinycnn/streams.py)."""
        self.check_model_input(x)
        with drawing_from(self, rng):
            lean = not training and not evaluation_keeps_saved_values()
            values = {"input": x}
            for step, (name, layer, inputs) in enumerate(self.nodes):
                values[name] = layer.forward(self._gather(values, inputs), training)
                if lean:
                    layer.forget_saved()
                    for source in self._done_after[step]:
                        del values[source]
        return values[self.nodes[-1][0]]

    def backward(self, dy):
        wants_grad = self.plan_backward()
        grads = {self.nodes[-1][0]: dy}
        for name, layer, inputs in reversed(self.nodes):
            if name not in grads or not wants_grad[name]:
                continue                                # no path to the output, or nothing to learn from here on
            dx = layer.backward(grads.pop(name))
            if dx is None:                              # the layer skipped its input gradient
                continue
            for source, d in ([(inputs, dx)] if isinstance(inputs, str) else zip(inputs, dx)):
                grads[source] = grads[source] + d if source in grads else d
        return grads.get("input")

    def node_inputs(self, x, training=False):
        """Run forward and return [(name, layer, the input it got), ...]: gradcheck checks each layer alone on it."""
        values, steps = {"input": x}, []
        for name, layer, inputs in self.nodes:
            steps.append((name, layer, self._gather(values, inputs)))
            values[name] = layer.forward(steps[-1][2], training)
        return steps

    def skip_input_gradient(self):
        """Training needs no dL/d(images): let the layers that read the input skip computing it."""
        self.needs_input_grad = False
        self.plan_backward()

    def plan_backward(self):
        """Tell each node whether backward must compute its input gradient: only if something upstream learns.

        Upstream of a node are the nodes that feed it and, if this network's own input gradient is wanted, the
        input. With conv1 and conv2 frozen, backward stops at conv3, which computes only its weight gradient.
        -> {node name: whether backward has any work there (a gradient to pass on, or parameters to learn)}.
        """
        wants_grad = {"input": self.needs_input_grad}
        for name, layer, inputs in self.nodes:
            layer.needs_input_grad = any(wants_grad[i] for i in ([inputs] if isinstance(inputs, str) else inputs))
            wants_grad[name] = layer.needs_input_grad or any(p.trainable for p in layer.parameters())
        return wants_grad

    def _shapes(self, input_shape):
        """Yield (name, layer, its input shape(s), its output shape) for every node, without running it."""
        shapes = {"input": tuple(input_shape)}
        for name, layer, inputs in self.nodes:
            in_shape = self._gather(shapes, inputs)
            shapes[name] = tuple(layer.output_shape(in_shape))
            yield name, layer, in_shape, shapes[name]

    def output_shape(self, input_shape):
        return list(self._shapes(input_shape))[-1][3]

    def macs(self, input_shape):
        return sum(row["macs"] for row in self.profile(input_shape))

    def profile(self, input_shape):
        """One dict per leaf layer: name, kind, output_shape, params, trainable_params, macs (per example), and
        the layer's window: kernel, stride, padding (pairs) and groups, each None where the layer has none.

        input_shape excludes the batch axis, e.g. (3, 227, 227). params counts trainable parameters and
        buffers (BatchNorm's running statistics), as Keras' "Param #" does.
        """
        rows = []
        for name, layer, in_shape, out_shape in self._shapes(input_shape):
            if isinstance(layer, Graph):
                rows += [dict(row, name=f"{name}.{row['name']}") for row in layer.profile(in_shape)]
                continue
            trainable = sum(p.size for p in layer.parameters())
            buffers = sum(b.size for _, b in layer.named_buffers())
            window = {key: getattr(layer, attribute, None) for key, attribute in WINDOW.items()}
            rows.append(dict(name=name, kind=type(layer).__name__, output_shape=out_shape,
                             params=trainable + buffers, trainable_params=trainable, macs=layer.macs(in_shape),
                             **window))
        return rows

    def summary(self, input_shape, print_fn=print):
        """Print (and return) a Keras-style table: Layer (type) | Output Shape | Param # | MACs, with totals."""
        rows = self.profile(input_shape)
        params = self.parameters()
        itemsize = params[0].data.itemsize if params else np.dtype(np.float32).itemsize
        table = [(f"{r['name']} ({r['kind']})", _size(r["kernel"], kernel=True), _size(r["stride"]),
                  _size(r["padding"]), "" if r["groups"] is None else str(r["groups"]),
                  str((None,) + tuple(r["output_shape"])), f"{r['params']:,}", f"{r['macs']:,}") for r in rows]
        head = ("Layer (type)", "Kernel", "Stride", "Pad", "Groups", "Output Shape", "Param #", "MACs")
        widths = [max(len(line[i]) for line in table + [head]) + 2 for i in range(len(head))]

        def fmt(line):           # text columns to the left, numbers to the right
            return "".join(cell.rjust(width) if i >= 6 else cell.ljust(width)
                           for i, (cell, width) in enumerate(zip(line, widths)))

        rule = "=" * sum(widths)
        total = sum(r["params"] for r in rows)
        trainable = sum(r["trainable_params"] for r in rows)
        activations = sum(int(np.prod(r["output_shape"])) for r in rows) * itemsize
        lines = [f"Model: {type(self).__name__}, input {(None,) + tuple(input_shape)}", fmt(head), rule]
        lines += [fmt(line) for line in table]
        lines += [rule,
                  f"Total params: {total:,}",
                  f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}",
                  f"Total MACs per image: {sum(r['macs'] for r in rows):,}",
                  f"Activation memory per image (forward outputs): {activations / 2**20:.2f} MiB"]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


class Sequential(Graph):
    """y = f_L(... f_2(f_1(x))): a Graph whose every node reads the one before it. Forward and backward are the
    Graph's: backward runs the layers in reverse, passing each dx on as the next dy.

    layers: a list of layers (named conv2d, conv2d_1, ... like Keras) or a dict {name: layer}.
    model["conv1"] or model[0] returns a layer.
    """

    def __init__(self, layers):
        if isinstance(layers, dict):
            items = list(layers.items())
        else:
            items, taken = [], set()
            for layer in layers:
                name = _keras_style_name(layer, taken)
                taken.add(name)
                items.append((name, layer))
        previous = ["input"] + [name for name, _ in items]
        super().__init__([(name, layer, source) for (name, layer), source in zip(items, previous)])
