"""Containers: Sequential runs layers one after another; summary() and profile() describe a network."""
import re

import numpy as np

from .layers.base import Layer


def _keras_style_name(layer, taken):
    """conv2d, conv2d_1, conv2d_2, ...: the names Keras gives, so a summary reads like Keras'."""
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(layer).__name__).lower()
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


class Sequential(Layer):
    """y = f_L(... f_2(f_1(x))); backward runs the layers in reverse, passing each dx on as the next dy.

    layers: a list of layers (named conv2d, conv2d_1, ... like Keras) or a dict {name: layer}.
    model["conv1"] or model[0] returns a layer.
    """

    def __init__(self, layers):
        items = list(layers.items()) if isinstance(layers, dict) else None
        if items is None:
            items, taken = [], set()
            for layer in layers:
                name = _keras_style_name(layer, taken)
                taken.add(name)
                items.append((name, layer))
        for name, layer in items:
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential: '{name}' is a {type(layer).__name__}, expected a tinycnn Layer")
            layer.name = name
        if len({name for name, _ in items}) != len(items):
            raise ValueError("Sequential: layer names must be unique")
        self._layers = items

    def children(self):
        return list(self._layers)

    def extra_repr(self):
        return ", ".join(name for name, _ in self._layers)

    def __getitem__(self, key):
        if isinstance(key, str):
            for name, layer in self._layers:
                if name == key:
                    return layer
            raise KeyError(f"Sequential has no layer named {key!r}; it has {[n for n, _ in self._layers]}")
        return self._layers[key][1]

    def __len__(self):
        return len(self._layers)

    def forward(self, x, training=False):
        for _, layer in self._layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dy):
        for _, layer in reversed(self._layers):
            dy = layer.backward(dy)
        return dy

    def output_shape(self, input_shape):
        for _, layer in self._layers:
            input_shape = layer.output_shape(input_shape)
        return tuple(input_shape)

    def macs(self, input_shape):
        return sum(row["macs"] for row in self.profile(input_shape))

    def profile(self, input_shape):
        """One dict per leaf layer: name, kind, output_shape, params, trainable_params, macs (per example).

        input_shape excludes the batch axis, e.g. (3, 227, 227). params counts trainable parameters and
        buffers (BatchNorm's running statistics), as Keras' "Param #" does.
        """
        rows = []
        shape = tuple(input_shape)
        for name, layer in self._layers:
            if isinstance(layer, Sequential):
                for row in layer.profile(shape):
                    rows.append(dict(row, name=f"{name}.{row['name']}"))
            else:
                trainable = sum(p.size for p in layer.parameters())
                buffers = sum(b.size for _, b in layer.named_buffers())
                rows.append(dict(name=name, kind=type(layer).__name__, output_shape=layer.output_shape(shape),
                                 params=trainable + buffers, trainable_params=trainable,
                                 macs=layer.macs(shape)))
            shape = layer.output_shape(shape)
        return rows

    def summary(self, input_shape, print_fn=print):
        """Print (and return) a Keras-style table: Layer (type) | Output Shape | Param # | MACs, with totals."""
        rows = self.profile(input_shape)
        params = self.parameters()
        itemsize = params[0].data.itemsize if params else np.dtype(np.float32).itemsize
        table = [(f"{r['name']} ({r['kind']})", str((None,) + tuple(r["output_shape"])),
                  f"{r['params']:,}", f"{r['macs']:,}") for r in rows]
        head = ("Layer (type)", "Output Shape", "Param #", "MACs")
        widths = [max(len(line[i]) for line in table + [head]) + 2 for i in range(4)]

        def fmt(line):
            return (line[0].ljust(widths[0]) + line[1].ljust(widths[1]) + line[2].rjust(widths[2])
                    + line[3].rjust(widths[3]))

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
