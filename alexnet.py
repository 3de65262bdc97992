"""AlexNet built from tinycnn layers, and the command line.

    python alexnet.py summary [--variant V] [--groups 1|2] [--classes K] [--input-size S]

Variants: "paper", "caffe" (bvlc_alexnet), "torchvision", "seed-keras" (the seed notes' Keras listing) and
"mini" (the paper's layer sequence for 32-64 px images). two_towers() turns a groups=2 paper model into the
paper's two-GPU graph.

The paper's network (Krizhevsky, Sutskever, Hinton 2012, section 3.5), with input 227x227x3:

    conv1 96@11x11/4 -> ReLU -> LRN -> max-pool 3x3/2       96x55x55 -> 96x27x27
    conv2 256@5x5 pad 2 (2 groups) -> ReLU -> LRN -> pool   256x27x27 -> 256x13x13
    conv3 384@3x3 pad 1 -> ReLU                             384x13x13   (sees both GPUs' maps)
    conv4 384@3x3 pad 1 (2 groups) -> ReLU                  384x13x13
    conv5 256@3x3 pad 1 (2 groups) -> ReLU -> pool          256x13x13 -> 256x6x6
    dropout -> fc6 4096 -> ReLU -> dropout -> fc7 4096 -> ReLU -> fc8 (classes)
"""
import argparse
import copy
import sys

import numpy as np

import tinycnn as tc

VARIANTS = ("paper", "caffe", "torchvision", "seed-keras", "mini")
INPUT_SIZE = {"paper": 227, "caffe": 227, "torchvision": 224, "seed-keras": 224, "mini": 64}
DEFAULT_GROUPS = {"paper": 1, "caffe": 2, "torchvision": 1, "seed-keras": 1, "mini": 1}


class _Builder:
    """Collects named layers, tracking the output shape so the first dense layer knows its input size."""

    def __init__(self, input_size, rng, dtype):
        self.layers, self.shape, self.rng, self.dtype = {}, (3, input_size, input_size), rng, dtype

    def add(self, name, layer):
        self.shape = layer.output_shape(self.shape)
        self.layers[name] = layer

    def conv(self, name, cout, k, stride=1, padding=0, groups=1, std=None, bias=0.0):
        layer = tc.Conv2d(self.shape[0], cout, k, stride, padding, groups, dtype=self.dtype, rng=self.rng,
                          weight_std=std)
        layer.bias.data[:] = bias
        self.add(name, layer)

    def dense(self, name, k, std=None, bias=0.0):
        if len(self.shape) > 1:
            self.add("flatten", tc.Flatten())
        layer = tc.Dense(self.shape[0], k, dtype=self.dtype, rng=self.rng, weight_std=std)
        layer.bias.data[:] = bias
        self.add(name, layer)

    def model(self):
        return tc.Sequential(self.layers)


def _paper(net, num_classes, groups, positive_bias, lrn_alpha=1e-4, lrn_k=2.0, lrn_groups=None,
           dropout_after_relu=False, fc_std=0.01):
    """The paper's AlexNet (also Caffe's bvlc_alexnet, which changes the LRN constants, the biases, and puts
    dropout after relu6/relu7 rather than before fc6/fc7 -- the same thing in a different place).
    Weights ~ N(0, 0.01^2); biases `positive_bias` in conv2, conv4, conv5, fc6 and fc7, 0 elsewhere."""
    def lrn():
        return tc.LocalResponseNorm(5, alpha=lrn_alpha, beta=0.75, k=lrn_k,
                                    groups=groups if lrn_groups is None else lrn_groups)

    net.conv("conv1", 96, 11, stride=4, std=0.01)
    net.add("relu1", tc.ReLU()); net.add("norm1", lrn()); net.add("pool1", tc.MaxPool2d(3, 2))
    net.conv("conv2", 256, 5, padding=2, groups=groups, std=0.01, bias=positive_bias)
    net.add("relu2", tc.ReLU()); net.add("norm2", lrn()); net.add("pool2", tc.MaxPool2d(3, 2))
    net.conv("conv3", 384, 3, padding=1, std=0.01)
    net.add("relu3", tc.ReLU())
    net.conv("conv4", 384, 3, padding=1, groups=groups, std=0.01, bias=positive_bias)
    net.add("relu4", tc.ReLU())
    net.conv("conv5", 256, 3, padding=1, groups=groups, std=0.01, bias=positive_bias)
    net.add("relu5", tc.ReLU()); net.add("pool5", tc.MaxPool2d(3, 2))
    for fc in ("fc6", "fc7"):
        if not dropout_after_relu:
            net.add("drop" + fc[2:], tc.Dropout(0.5, rng=net.rng))
        net.dense(fc, 4096, std=fc_std, bias=positive_bias)
        net.add("relu" + fc[2:], tc.ReLU())
        if dropout_after_relu:
            net.add("drop" + fc[2:], tc.Dropout(0.5, rng=net.rng))
    net.dense("fc8", num_classes, std=0.01)


def _caffe(net, num_classes, groups, positive_bias):
    """bvlc_alexnet: Caffe's LRN is k=1 with alpha/n, i.e. alpha = 1e-4 / 5 in the paper's formula, over all
    channels; biases 0.1; fc6 and fc7 weights ~ N(0, 0.005^2); dropout after relu6 and relu7."""
    _paper(net, num_classes, groups, positive_bias=0.1, lrn_alpha=1e-4 / 5, lrn_k=1.0, lrn_groups=1,
           dropout_after_relu=True, fc_std=0.005)


def _torchvision(net, num_classes, groups, positive_bias):
    """torchvision.models.alexnet ("one weird trick"): 64-192-384-256-256 kernels, no LRN, no groups, an
    adaptive 6x6 average pool, dropout before fc6 and fc7. He-normal initialisation."""
    for name, cout, k, stride, padding in [("conv1", 64, 11, 4, 2), ("conv2", 192, 5, 1, 2), ("conv3", 384, 3, 1, 1),
                                           ("conv4", 256, 3, 1, 1), ("conv5", 256, 3, 1, 1)]:
        net.conv(name, cout, k, stride, padding, groups=1 if name in ("conv1", "conv3") else groups)
        net.add("relu" + name[4:], tc.ReLU())
        if name in ("conv1", "conv2", "conv5"):
            net.add("pool" + name[4:], tc.MaxPool2d(3, 2))
    net.add("avgpool", tc.AdaptiveAvgPool2d(6))
    for fc in ("fc6", "fc7"):
        net.add("drop" + fc[2:], tc.Dropout(0.5, rng=net.rng))
        net.dense(fc, 4096)
        net.add("relu" + fc[2:], tc.ReLU())
    net.dense("fc8", num_classes)


def _seed_keras(net, num_classes, groups, positive_bias):
    """The Keras listing in the seed notes: valid convolutions, 2x2 pooling, BatchNorm after every block and
    after fc6/fc7 (Keras' eps=1e-3 and momentum 0.99, which is 0.01 in the PyTorch convention used here),
    dropout 0.4. He-normal initialisation."""
    def bn():
        return (tc.BatchNorm2d if len(net.shape) == 3 else tc.BatchNorm1d)(net.shape[0], eps=1e-3, momentum=0.01,
                                                                            dtype=net.dtype)

    for i, (cout, k, pool) in enumerate([(96, 11, True), (256, 11, True), (384, 3, False), (384, 3, False),
                                         (256, 3, True)], start=1):
        net.conv(f"conv{i}", cout, k, stride=4 if i == 1 else 1, groups=1 if i in (1, 3) else groups)
        net.add(f"relu{i}", tc.ReLU())
        if pool:
            net.add(f"pool{i}", tc.MaxPool2d(2, 2))
        net.add(f"bn{i}", bn())
    for fc in ("fc6", "fc7"):
        net.dense(fc, 4096)
        net.add("relu" + fc[2:], tc.ReLU())
        net.add("drop" + fc[2:], tc.Dropout(0.4, rng=net.rng))
        net.add("bn" + fc[2:], bn())
    net.dense("fc8", num_classes)


def _mini(net, num_classes, groups, positive_bias):
    """The paper's layer sequence (LRN, overlapping pooling, dropout) at widths for 32-64 px images:
    32-64-96-96-64 kernels, 256-unit dense layers. He-normal initialisation, which trains well at this depth."""
    net.conv("conv1", 32, 5, stride=2, padding=2)
    net.add("relu1", tc.ReLU()); net.add("norm1", tc.LocalResponseNorm(groups=groups))
    net.add("pool1", tc.MaxPool2d(3, 2))
    net.conv("conv2", 64, 5, padding=2, groups=groups)
    net.add("relu2", tc.ReLU()); net.add("norm2", tc.LocalResponseNorm(groups=groups))
    net.add("pool2", tc.MaxPool2d(3, 2))
    net.conv("conv3", 96, 3, padding=1); net.add("relu3", tc.ReLU())
    net.conv("conv4", 96, 3, padding=1, groups=groups); net.add("relu4", tc.ReLU())
    net.conv("conv5", 64, 3, padding=1, groups=groups); net.add("relu5", tc.ReLU())
    net.add("pool5", tc.MaxPool2d(3, 2))
    for fc in ("fc6", "fc7"):
        net.add("drop" + fc[2:], tc.Dropout(0.5, rng=net.rng))
        net.dense(fc, 256)
        net.add("relu" + fc[2:], tc.ReLU())
    net.dense("fc8", num_classes)


BUILDERS = {"paper": _paper, "caffe": _caffe, "torchvision": _torchvision, "seed-keras": _seed_keras, "mini": _mini}


def alexnet(num_classes=1000, variant="paper", groups=None, rng=None, dtype=np.float32, positive_bias=1.0,
            input_size=None):
    """Build an AlexNet variant as a tc.Sequential.

    variant: "paper", "caffe", "torchvision", "seed-keras" or "mini" (see each builder's docstring).
    groups: 1, or 2 for the paper's two GPUs (conv2, conv4, conv5 see only their own half); None means the
        variant's usual choice (2 for caffe, 1 otherwise).
    rng: a numpy Generator or an int seed (None: fresh entropy).  positive_bias: the paper's 1, or Caffe's 0.1.
    input_size: the image side the network is sized for (the fc6 input depends on it); default per variant.
    """
    if variant not in VARIANTS:
        raise ValueError(f"alexnet: unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"alexnet: num_classes must be a positive integer, got {num_classes!r}")
    groups = DEFAULT_GROUPS[variant] if groups is None else groups
    if groups not in (1, 2):
        raise ValueError(f"alexnet: groups must be 1 or 2 (the paper's two GPUs), got {groups!r}")
    net = _Builder(input_size or INPUT_SIZE[variant], np.random.default_rng(rng), np.dtype(dtype))
    BUILDERS[variant](net, num_classes, groups, positive_bias)
    return net.model()


def two_towers(model):
    """The paper's two-GPU network as a tc.Graph of two towers, with the weights of a groups=2 paper model.

    Tower a holds the first half of every layer's kernels (48/128/192/192/128), tower b the second half.
    conv2, conv4 and conv5 see only their own tower's maps; conv3 and the dense layers see both (Concat).
    It computes exactly what `model` computes.
    """
    if model["conv2"].groups != 2:
        raise ValueError("two_towers: expected a paper model built with groups=2")

    def half(name, tower, in_half):
        conv = model[name]
        out = conv.out_channels // 2
        cin = conv.in_channels // 2 if in_half else conv.in_channels
        layer = tc.Conv2d(cin, out, conv.kernel_size, conv.stride, conv.padding, dtype=conv.weight.data.dtype)
        part = slice(0, out) if tower == "a" else slice(out, 2 * out)
        layer.weight.data[:] = conv.weight.data[part]
        layer.bias.data[:] = conv.bias.data[part]
        return layer

    def lrn(name):
        norm = model[name]
        return tc.LocalResponseNorm(norm.size, norm.alpha, norm.beta, norm.k)

    nodes = []
    for t in ("a", "b"):
        nodes += [(f"conv1_{t}", half("conv1", t, False), "input"), (f"relu1_{t}", tc.ReLU(), f"conv1_{t}"),
                  (f"norm1_{t}", lrn("norm1"), f"relu1_{t}"), (f"pool1_{t}", tc.MaxPool2d(3, 2), f"norm1_{t}"),
                  (f"conv2_{t}", half("conv2", t, True), f"pool1_{t}"), (f"relu2_{t}", tc.ReLU(), f"conv2_{t}"),
                  (f"norm2_{t}", lrn("norm2"), f"relu2_{t}"), (f"pool2_{t}", tc.MaxPool2d(3, 2), f"norm2_{t}")]
    nodes.append(("concat2", tc.Concat(), ["pool2_a", "pool2_b"]))
    for t in ("a", "b"):
        nodes += [(f"conv3_{t}", half("conv3", t, False), "concat2"), (f"relu3_{t}", tc.ReLU(), f"conv3_{t}"),
                  (f"conv4_{t}", half("conv4", t, True), f"relu3_{t}"), (f"relu4_{t}", tc.ReLU(), f"conv4_{t}"),
                  (f"conv5_{t}", half("conv5", t, True), f"relu4_{t}"), (f"relu5_{t}", tc.ReLU(), f"conv5_{t}"),
                  (f"pool5_{t}", tc.MaxPool2d(3, 2), f"relu5_{t}")]
    nodes.append(("concat5", tc.Concat(), ["pool5_a", "pool5_b"]))
    names = ("flatten", "drop6", "fc6", "relu6", "drop7", "fc7", "relu7", "fc8")
    tail = copy.deepcopy([model[name] for name in names])      # one copy: the dropouts keep sharing a Generator
    for previous, name, layer in zip(("concat5",) + names, names, tail):
        nodes.append((name, layer, previous))
    return tc.Graph(nodes)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="alexnet.py", description="AlexNet with tinycnn")
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="print the layer table: output shapes, parameters, MACs")
    summary.add_argument("--variant", default="paper", choices=VARIANTS)
    summary.add_argument("--groups", type=int, default=None, choices=(1, 2))
    summary.add_argument("--classes", type=int, default=1000)
    summary.add_argument("--input-size", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "summary":
            size = args.input_size or INPUT_SIZE[args.variant]
            model = alexnet(args.classes, args.variant, args.groups, rng=0, input_size=size)
            model.summary((3, size, size))
    except ValueError as error:
        print(f"alexnet.py {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
