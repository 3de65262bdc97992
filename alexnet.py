"""AlexNet built from tinycnn layers, and the command line.

    python alexnet.py summary [--variant paper] [--groups 1|2] [--classes K] [--input-size S]

The paper's network (Krizhevsky, Sutskever, Hinton 2012, section 3.5), with input 227x227x3:

    conv1 96@11x11/4 -> ReLU -> LRN -> max-pool 3x3/2       96x55x55 -> 96x27x27
    conv2 256@5x5 pad 2 (2 groups) -> ReLU -> LRN -> pool   256x27x27 -> 256x13x13
    conv3 384@3x3 pad 1 -> ReLU                             384x13x13   (sees both GPUs' maps)
    conv4 384@3x3 pad 1 (2 groups) -> ReLU                  384x13x13
    conv5 256@3x3 pad 1 (2 groups) -> ReLU -> pool          256x13x13 -> 256x6x6
    dropout -> fc6 4096 -> ReLU -> dropout -> fc7 4096 -> ReLU -> fc8 (classes)
"""
import argparse
import sys

import numpy as np

import tinycnn as tc

VARIANTS = ("paper",)


def _paper(num_classes, groups, rng, dtype, positive_bias):
    """The paper's AlexNet. Weights ~ N(0, 0.01^2); biases `positive_bias` (the paper: 1; Caffe: 0.1) in conv2,
    conv4, conv5, fc6 and fc7, 0 elsewhere (section 5)."""
    def conv(cin, cout, k, stride=1, padding=0, groups=1, bias=0.0):
        layer = tc.Conv2d(cin, cout, k, stride, padding, groups, dtype=dtype, rng=rng, weight_std=0.01)
        layer.bias.data[:] = bias
        return layer

    def dense(d, k, bias=0.0):
        layer = tc.Dense(d, k, dtype=dtype, rng=rng, weight_std=0.01)
        layer.bias.data[:] = bias
        return layer

    def lrn():
        return tc.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)

    return tc.Sequential({
        "conv1": conv(3, 96, 11, stride=4), "relu1": tc.ReLU(), "norm1": lrn(), "pool1": tc.MaxPool2d(3, 2),
        "conv2": conv(96, 256, 5, padding=2, groups=groups, bias=positive_bias), "relu2": tc.ReLU(),
        "norm2": lrn(), "pool2": tc.MaxPool2d(3, 2),
        "conv3": conv(256, 384, 3, padding=1), "relu3": tc.ReLU(),
        "conv4": conv(384, 384, 3, padding=1, groups=groups, bias=positive_bias), "relu4": tc.ReLU(),
        "conv5": conv(384, 256, 3, padding=1, groups=groups, bias=positive_bias), "relu5": tc.ReLU(),
        "pool5": tc.MaxPool2d(3, 2), "flatten": tc.Flatten(),
        "drop6": tc.Dropout(0.5, rng=rng), "fc6": dense(256 * 6 * 6, 4096, bias=positive_bias),
        "relu6": tc.ReLU(),
        "drop7": tc.Dropout(0.5, rng=rng), "fc7": dense(4096, 4096, bias=positive_bias), "relu7": tc.ReLU(),
        "fc8": dense(4096, num_classes),
    })


INPUT_SIZE = {"paper": 227}


def alexnet(num_classes=1000, variant="paper", groups=1, rng=None, dtype=np.float32, positive_bias=1.0):
    """Build an AlexNet variant as a tc.Sequential. rng: a numpy Generator or int seed (None: fresh entropy)."""
    if variant not in VARIANTS:
        raise ValueError(f"alexnet: unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"alexnet: num_classes must be a positive integer, got {num_classes!r}")
    if groups not in (1, 2):
        raise ValueError(f"alexnet: groups must be 1 or 2 (the paper's two GPUs), got {groups!r}")
    return _paper(num_classes, groups, np.random.default_rng(rng), dtype, positive_bias)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="alexnet.py", description="AlexNet with tinycnn")
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="print the layer table: output shapes, parameters, MACs")
    summary.add_argument("--variant", default="paper", choices=VARIANTS)
    summary.add_argument("--groups", type=int, default=1, choices=(1, 2))
    summary.add_argument("--classes", type=int, default=1000)
    summary.add_argument("--input-size", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "summary":
            model = alexnet(args.classes, args.variant, args.groups, rng=0)
            size = args.input_size or INPUT_SIZE[args.variant]
            model.summary((3, size, size))
    except ValueError as error:
        print(f"alexnet.py {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
