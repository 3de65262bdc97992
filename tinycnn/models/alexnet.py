"""AlexNet assembled from tinycnn's layers: the paper's network first, then four variants and how they differ.

The paper (Krizhevsky, Sutskever, Hinton 2012, section 3.5 and Figure 2), with input 227x227x3 (the paper
says 224, but only 227 gives its 55x55 maps):

    conv1 96@11x11/4 -> ReLU -> LRN -> max-pool 3x3/2       96x55x55 -> 96x27x27
    conv2 256@5x5 pad 2 (2 groups) -> ReLU -> LRN -> pool   256x27x27 -> 256x13x13
    conv3 384@3x3 pad 1 -> ReLU                             384x13x13   (sees both GPUs' maps)
    conv4 384@3x3 pad 1 (2 groups) -> ReLU                  384x13x13
    conv5 256@3x3 pad 1 (2 groups) -> ReLU -> pool          256x13x13 -> 256x6x6
    dropout -> fc6 4096 -> ReLU -> dropout -> fc7 4096 -> ReLU -> fc8 (classes)

    alexnet(num_classes, variant)   one of VARIANTS, as a tc.Sequential
    two_towers(model)               a groups=2 paper model drawn as the paper's two GPUs, a tc.Graph

The variants: "paper"; "caffe" (bvlc_alexnet); "torchvision" (torchvision.models.alexnet); "seed-keras" (the
Keras listing in the seed notes, with BatchNorm); "mini" (the paper's layer sequence for 32-64 px images).
INPUT_SIZE, PIXEL_SCALE and stored_size describe the images each variant expects.
"""
import copy

import numpy as np

from ..graph import Concat, Graph, Sequential
from ..layers import (AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten,
                      LocalResponseNorm, MaxPool2d, ReLU)


def _paper(net, num_classes, groups, positive_bias, lrn_alpha=1e-4, lrn_k=2.0, lrn_groups=None,
           dropout_after_relu=False, fc_std=0.01):
    """The paper's AlexNet. `net` collects the layers in order (a _Builder, at the end of this file).

    groups=2 splits conv2, conv4 and conv5 over the paper's two GPUs: each half of their kernels sees only
    the maps on its own GPU. Weights ~ N(0, 0.01^2); biases `positive_bias` (the paper's 1) in conv2, conv4,
    conv5, fc6 and fc7, 0 elsewhere (section 5). The keyword arguments are where Caffe differs (_caffe).
    """
    def lrn():                       # section 3.3: k=2, n=5, alpha=1e-4, beta=0.75, after conv1's and conv2's ReLU
        return LocalResponseNorm(5, alpha=lrn_alpha, beta=0.75, k=lrn_k,
                                 groups=groups if lrn_groups is None else lrn_groups)

    # the first layer filters the image with 96 kernels of 11x11x3, stride 4; pooling overlaps (section 3.4)
    net.conv("conv1", 96, 11, stride=4, std=0.01)
    net.add("relu1", ReLU()); net.add("norm1", lrn()); net.add("pool1", MaxPool2d(3, 2))
    # the second takes the normalised, pooled maps: 256 kernels of 5x5x48 (48: one GPU's half of the 96)
    net.conv("conv2", 256, 5, padding=2, groups=groups, std=0.01, bias=positive_bias)
    net.add("relu2", ReLU()); net.add("norm2", lrn()); net.add("pool2", MaxPool2d(3, 2))
    # the third, fourth and fifth follow one another with no pooling or normalisation between them;
    # conv3 (384 of 3x3x256) sees both GPUs' maps, conv4 (384 of 3x3x192) and conv5 (256 of 3x3x192) one GPU's
    net.conv("conv3", 384, 3, padding=1, std=0.01)
    net.add("relu3", ReLU())
    net.conv("conv4", 384, 3, padding=1, groups=groups, std=0.01, bias=positive_bias)
    net.add("relu4", ReLU())
    net.conv("conv5", 256, 3, padding=1, groups=groups, std=0.01, bias=positive_bias)
    net.add("relu5", ReLU()); net.add("pool5", MaxPool2d(3, 2))
    # two fully connected layers of 4096 neurons, dropout 0.5 on their inputs (section 4.2), then the classes
    for fc in ("fc6", "fc7"):
        if not dropout_after_relu:
            net.add("drop" + fc[2:], Dropout(0.5, rng=net.rng))
        net.dense(fc, 4096, std=fc_std, bias=positive_bias)
        net.add("relu" + fc[2:], ReLU())
        if dropout_after_relu:
            net.add("drop" + fc[2:], Dropout(0.5, rng=net.rng))
    net.dense("fc8", num_classes, std=0.01)


def _caffe(net, num_classes, groups, positive_bias):
    """Caffe's bvlc_alexnet: the paper's network, except that
    - LRN is k=1 with alpha/n, i.e. alpha = 1e-4 / 5 in the paper's formula, over all channels;
    - biases are 0.1 (Caffe found the paper's 1 kept the loss flat), fc6 and fc7 weights ~ N(0, 0.005^2);
    - dropout comes after relu6 and relu7 rather than before fc6 and fc7 (the same thing in a different place).
    """
    _paper(net, num_classes, groups, positive_bias=0.1, lrn_alpha=1e-4 / 5, lrn_k=1.0, lrn_groups=1,
           dropout_after_relu=True, fc_std=0.005)


def _torchvision(net, num_classes, groups, positive_bias):
    """torchvision.models.alexnet ("one weird trick"): 64-192-384-256-256 kernels, conv1 padded by 2 for a 224
    input, no LRN, no groups, an adaptive 6x6 average pool before fc6, dropout before fc6 and fc7. He-normal
    initialisation."""
    for name, cout, k, stride, padding in [("conv1", 64, 11, 4, 2), ("conv2", 192, 5, 1, 2), ("conv3", 384, 3, 1, 1),
                                           ("conv4", 256, 3, 1, 1), ("conv5", 256, 3, 1, 1)]:
        net.conv(name, cout, k, stride, padding, groups=1 if name in ("conv1", "conv3") else groups)
        net.add("relu" + name[4:], ReLU())
        if name in ("conv1", "conv2", "conv5"):
            net.add("pool" + name[4:], MaxPool2d(3, 2))
    net.add("avgpool", AdaptiveAvgPool2d(6))
    for fc in ("fc6", "fc7"):
        net.add("drop" + fc[2:], Dropout(0.5, rng=net.rng))
        net.dense(fc, 4096)
        net.add("relu" + fc[2:], ReLU())
    net.dense("fc8", num_classes)


def _seed_keras(net, num_classes, groups, positive_bias):
    """The Keras listing in the seed notes: valid convolutions (conv2 11x11), 2x2 pooling, BatchNorm after every
    block and after fc6/fc7 (Keras' eps=1e-3 and momentum 0.99, which is 0.01 in the PyTorch convention used
    here) instead of LRN, dropout 0.4 after the ReLU. He-normal initialisation."""
    def bn():
        return (BatchNorm2d if len(net.shape) == 3 else BatchNorm1d)(net.shape[0], eps=1e-3, momentum=0.01,
                                                                      dtype=net.dtype)

    for i, (cout, k, pool) in enumerate([(96, 11, True), (256, 11, True), (384, 3, False), (384, 3, False),
                                         (256, 3, True)], start=1):
        net.conv(f"conv{i}", cout, k, stride=4 if i == 1 else 1, groups=1 if i in (1, 3) else groups)
        net.add(f"relu{i}", ReLU())
        if pool:
            net.add(f"pool{i}", MaxPool2d(2, 2))
        net.add(f"bn{i}", bn())
    for fc in ("fc6", "fc7"):
        net.dense(fc, 4096)
        net.add("relu" + fc[2:], ReLU())
        net.add("drop" + fc[2:], Dropout(0.4, rng=net.rng))
        net.add("bn" + fc[2:], bn())
    net.dense("fc8", num_classes)


def _mini(net, num_classes, groups, positive_bias):
    """The paper's layer sequence (LRN, overlapping 3x3/2 pooling, dropout) for 32-64 px images: 32-64-96-96-64
    kernels and 256-unit dense layers. Pooling pads by 1 so a 32 px input still leaves 2x2 maps for fc6
    (without it, 64 features would reach fc6 and dropout would halve them). He-normal initialisation."""
    net.conv("conv1", 32, 5, stride=2, padding=2)
    net.add("relu1", ReLU()); net.add("norm1", LocalResponseNorm(groups=groups))
    net.add("pool1", MaxPool2d(3, 2, padding=1))
    net.conv("conv2", 64, 5, padding=2, groups=groups)
    net.add("relu2", ReLU()); net.add("norm2", LocalResponseNorm(groups=groups))
    net.add("pool2", MaxPool2d(3, 2, padding=1))
    net.conv("conv3", 96, 3, padding=1); net.add("relu3", ReLU())
    net.conv("conv4", 96, 3, padding=1, groups=groups); net.add("relu4", ReLU())
    net.conv("conv5", 64, 3, padding=1, groups=groups); net.add("relu5", ReLU())
    net.add("pool5", MaxPool2d(3, 2, padding=1))
    for fc in ("fc6", "fc7"):
        net.add("drop" + fc[2:], Dropout(0.5, rng=net.rng))
        net.dense(fc, 256)
        net.add("relu" + fc[2:], ReLU())
    net.dense("fc8", num_classes)


BUILDERS = {"paper": _paper, "caffe": _caffe, "torchvision": _torchvision, "seed-keras": _seed_keras, "mini": _mini}
VARIANTS = tuple(BUILDERS)

# -- the images each variant expects ---------------------------------------------------------------------------

INPUT_SIZE = {"paper": 227, "caffe": 227, "torchvision": 224, "seed-keras": 224, "mini": 32}
DEFAULT_GROUPS = {"paper": 1, "caffe": 2, "torchvision": 1, "seed-keras": 1, "mini": 1}

# Pixel scale: the paper and Caffe feed raw 0-255 values minus the mean (their N(0, 0.01^2) weights expect it);
# the He-initialised variants train best on 0-1 values.
PIXEL_SCALE = {"paper": 1.0, "caffe": 1.0, "torchvision": 1 / 255, "seed-keras": 1 / 255, "mini": 1 / 255}


def stored_size(input_size):
    """Images are kept about 1/8 larger than the crops taken from them, as 256 is to the paper's 227."""
    return round(input_size * 1.125)


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
        layer = Conv2d(cin, out, conv.kernel_size, conv.stride, conv.padding, dtype=conv.weight.data.dtype)
        part = slice(0, out) if tower == "a" else slice(out, 2 * out)
        layer.weight.data[:] = conv.weight.data[part]
        layer.bias.data[:] = conv.bias.data[part]
        return layer

    def lrn(name):
        norm = model[name]
        return LocalResponseNorm(norm.size, norm.alpha, norm.beta, norm.k)

    nodes = []
    for t in ("a", "b"):
        nodes += [(f"conv1_{t}", half("conv1", t, False), "input"), (f"relu1_{t}", ReLU(), f"conv1_{t}"),
                  (f"norm1_{t}", lrn("norm1"), f"relu1_{t}"), (f"pool1_{t}", MaxPool2d(3, 2), f"norm1_{t}"),
                  (f"conv2_{t}", half("conv2", t, True), f"pool1_{t}"), (f"relu2_{t}", ReLU(), f"conv2_{t}"),
                  (f"norm2_{t}", lrn("norm2"), f"relu2_{t}"), (f"pool2_{t}", MaxPool2d(3, 2), f"norm2_{t}")]
    nodes.append(("concat2", Concat(), ["pool2_a", "pool2_b"]))
    for t in ("a", "b"):
        nodes += [(f"conv3_{t}", half("conv3", t, False), "concat2"), (f"relu3_{t}", ReLU(), f"conv3_{t}"),
                  (f"conv4_{t}", half("conv4", t, True), f"relu3_{t}"), (f"relu4_{t}", ReLU(), f"conv4_{t}"),
                  (f"conv5_{t}", half("conv5", t, True), f"relu4_{t}"), (f"relu5_{t}", ReLU(), f"conv5_{t}"),
                  (f"pool5_{t}", MaxPool2d(3, 2), f"relu5_{t}")]
    nodes.append(("concat5", Concat(), ["pool5_a", "pool5_b"]))
    names = ("flatten", "drop6", "fc6", "relu6", "drop7", "fc7", "relu7", "fc8")
    tail = copy.deepcopy([model[name] for name in names])      # one copy: the dropouts keep sharing a Generator
    for previous, name, layer in zip(("concat5",) + names, names, tail):
        nodes.append((name, layer, previous))
    return Graph(nodes)


class _Builder:
    """Collects named layers, tracking the output shape so each layer knows its input size (fc6's in particular).

    net.conv(name, out_channels, kernel, stride, padding, groups, std, bias) adds a Conv2d on the current maps,
    its weights ~ N(0, std^2) (He when std is None) and its biases set to `bias`; net.dense(name, units, std,
    bias) the same for a Dense, with a Flatten first when the input is still maps; net.add(name, layer) any
    other layer.
    """

    def __init__(self, input_size, rng, dtype):
        self.layers, self.shape, self.rng, self.dtype = {}, (3, input_size, input_size), rng, dtype

    def add(self, name, layer):
        self.shape = layer.output_shape(self.shape)
        self.layers[name] = layer

    def conv(self, name, cout, k, stride=1, padding=0, groups=1, std=None, bias=0.0):
        layer = Conv2d(self.shape[0], cout, k, stride, padding, groups, dtype=self.dtype, rng=self.rng,
                       weight_std=std)
        layer.bias.data[:] = bias
        self.add(name, layer)

    def dense(self, name, k, std=None, bias=0.0):
        if len(self.shape) > 1:
            self.add("flatten", Flatten())
        layer = Dense(self.shape[0], k, dtype=self.dtype, rng=self.rng, weight_std=std)
        layer.bias.data[:] = bias
        self.add(name, layer)

    def model(self):
        return Sequential(self.layers)
