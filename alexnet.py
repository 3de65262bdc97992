"""AlexNet built from tinycnn layers, and the command line.

    python alexnet.py summary  [--variant V] [--groups 1|2] [--classes K] [--input-size S]
    python alexnet.py train    [--data PATH] [--variant V] [--epochs E] [--batch-size B] [--lr LR] [--seed S]
                               [--out DIR] [--resume | --overwrite] ...
    python alexnet.py evaluate --checkpoint FILE [--data PATH] [--ten-crop]
    python alexnet.py predict  --checkpoint FILE PATH [PATH ...] [--top K] [--csv FILE] [--ten-crop]
    python alexnet.py train    --init CHECKPOINT [--freeze conv1,conv2] [--lr-mult 'fc8=10'] --data PATH ...
    python alexnet.py pretrain [--data PATH] [--layers conv1,conv2] [--epochs E] [--out DIR]
    python alexnet.py import-weights FILE [--variant torchvision] [--classes NAMES] --out CHECKPOINT
    python alexnet.py bench    [--quick]

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
import csv
import math
import os
import sys
import warnings

try:                                             # Ctrl-C while numpy and numba load: one line, no traceback
    import numpy as np

    import tinycnn as tc
    from tinycnn import checkpoint, data, finetune
    from tinycnn.data import Preprocess
    from tinycnn.pretrain import pretrain_layerwise
    from tinycnn.plots import save_confusion, save_run_pictures
    from tinycnn.train import (Interrupted, Trainer, TrainingDiverged, check_resumable, confusion_matrix, evaluate,
                               predict_probs, scores)
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    print("alexnet.py: interrupted (Ctrl-C)", file=sys.stderr)
    sys.exit(130)

VARIANTS = ("paper", "caffe", "torchvision", "seed-keras", "mini")
INPUT_SIZE = {"paper": 227, "caffe": 227, "torchvision": 224, "seed-keras": 224, "mini": 32}
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
    """The paper's layer sequence (LRN, overlapping 3x3/2 pooling, dropout) for 32-64 px images: 32-64-96-96-64
    kernels and 256-unit dense layers. Pooling pads by 1 so a 32 px input still leaves 2x2 maps for fc6
    (without it, 64 features would reach fc6 and dropout would halve them). He-normal initialisation."""
    net.conv("conv1", 32, 5, stride=2, padding=2)
    net.add("relu1", tc.ReLU()); net.add("norm1", tc.LocalResponseNorm(groups=groups))
    net.add("pool1", tc.MaxPool2d(3, 2, padding=1))
    net.conv("conv2", 64, 5, padding=2, groups=groups)
    net.add("relu2", tc.ReLU()); net.add("norm2", tc.LocalResponseNorm(groups=groups))
    net.add("pool2", tc.MaxPool2d(3, 2, padding=1))
    net.conv("conv3", 96, 3, padding=1); net.add("relu3", tc.ReLU())
    net.conv("conv4", 96, 3, padding=1, groups=groups); net.add("relu4", tc.ReLU())
    net.conv("conv5", 64, 3, padding=1, groups=groups); net.add("relu5", tc.ReLU())
    net.add("pool5", tc.MaxPool2d(3, 2, padding=1))
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


# -- checkpoints and data for the command line ---------------------------------------------------------------

# Pixel scale: the paper and Caffe feed raw 0-255 values minus the mean (their N(0, 0.01^2) weights expect it);
# the He-initialised variants train best on 0-1 values.
PIXEL_SCALE = {"paper": 1.0, "caffe": 1.0, "torchvision": 1 / 255, "seed-keras": 1 / 255, "mini": 1 / 255}


def stored_size(input_size):
    """Images are kept about 1/8 larger than the crops taken from them, as 256 is to the paper's 227."""
    return round(input_size * 1.125)


def build(config, rng=None):
    """The model a checkpoint's config describes."""
    return alexnet(config["num_classes"], config["variant"], config["groups"], rng=rng,
                   positive_bias=config["positive_bias"], input_size=config["input_size"])


def load_checkpoint(path):
    """-> (model, meta): a ready model, and meta with classes, config, epoch, history, preprocess, ..."""
    entries, meta = checkpoint.read(path)
    try:
        model = build(meta["config"])
        preprocess = Preprocess(*(entries[f"array/{k}"] for k in ("scale", "mean_image", "pca_vectors",
                                                                  "pca_values")))
    except (KeyError, TypeError, ValueError) as error:
        raise checkpoint.CheckpointError(f"{path}: does not describe a tinycnn AlexNet ({error})") from None
    checkpoint.restore(path, model, entries)
    meta["preprocess"] = preprocess
    return model, meta


def load_run_data(info, size):
    """(train, val) ImageSets a run describes (its meta["data"]): --data PATH, or the built-in shapes."""
    if info["path"] is None:
        return data.builtin(info["train_images"], info["val_images"], size, seed=info["seed"])
    train, val = data.load(info["path"], size, rng=info["seed"])
    if info["per_class"]:
        train = data.per_class(train, info["per_class"], np.random.default_rng(info["seed"]))
    return train, val


# -- weights trained elsewhere --------------------------------------------------------------------------------

# torchvision.models.alexnet's state_dict names: features.N is the N-th module of its nn.Sequential.
TORCHVISION_NAMES = {"features.0": "conv1", "features.3": "conv2", "features.6": "conv3", "features.8": "conv4",
                     "features.10": "conv5", "classifier.1": "fc6", "classifier.4": "fc7", "classifier.6": "fc8"}
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def import_weights(path, variant="torchvision", class_names=None, input_size=None):
    """-> (model, meta, preprocess) from a state dict: torchvision's AlexNet (.pth, or an .npz with its key
    names), or any variant's weights under tinycnn's own names ("conv1.weight", ...).

    torchvision expects x = (pixels/255 - mean) / std per RGB channel. tinycnn's Preprocess subtracts a mean
    image from scale * pixels, so the mean goes there and 1/std is folded into conv1's weights: conv1 is
    linear in each input channel, and the zero padding stays zero, so the network computes the same thing.
    Weights under tinycnn's names get the variant's pixel scale and a zero mean image.
    """
    state = finetune.read_state_dict(path)
    torchvision_names = any(key.startswith("features.") for key in state)
    if torchvision_names and variant != "torchvision":
        raise ValueError(f"{path}: holds torchvision's key names (features.0.weight, ...); expected --variant "
                         f"torchvision, got {variant!r}")
    head = state.get("classifier.6.weight" if torchvision_names else "fc8.weight")
    if head is None or np.ndim(head) != 2:
        raise ValueError(f"{path}: has no classifier weight ({'classifier.6' if torchvision_names else 'fc8'}"
                         f".weight); expected an AlexNet state_dict")
    num_classes = len(head)
    class_names = class_names or [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"--classes: gives {len(class_names)} names, the weights have {num_classes} classes")
    size = input_size or INPUT_SIZE[variant]
    config = dict(variant=variant, groups=DEFAULT_GROUPS[variant], input_size=size, positive_bias=1.0,
                  num_classes=num_classes)
    model = build(config, rng=0)
    finetune.load_state_dict(model, state, path, TORCHVISION_NAMES if torchvision_names else None)
    stored = stored_size(size)
    if torchvision_names:
        conv1 = model["conv1"].weight.data
        conv1 /= IMAGENET_STD.astype(conv1.dtype)[None, :, None, None]
        mean_image = np.broadcast_to(IMAGENET_MEAN[:, None, None], (3, stored, stored))
    else:
        mean_image = np.zeros((3, stored, stored))
    # no colour statistics come with the weights; fine-tuning fits them on its own images
    preprocess = Preprocess(PIXEL_SCALE[variant], mean_image, np.eye(3), np.zeros(3))
    meta = dict(config=config, classes=list(class_names), data=None, epoch=0, history=[], imported_from=path)
    return model, meta, preprocess


def start_from(args):
    """--init: the checkpoint's architecture, checked against the flags given. -> (entries, meta)."""
    entries, meta = checkpoint.read(args.init)
    if "config" not in meta or "array/scale" not in entries or "array/mean_image" not in entries:
        raise checkpoint.CheckpointError(f"{args.init}: not a checkpoint of alexnet.py train, pretrain or "
                                         f"import-weights (no model configuration or pixel preparation)")
    given = dict(variant=args.variant, groups=args.groups, input_size=args.input_size)
    for key, value in given.items():
        if value is not None and value != meta["config"][key]:
            raise ValueError(f"--{key.replace('_', '-')} {value} does not match the --init checkpoint's "
                             f"{meta['config'][key]}; leave it out to use the checkpoint's")
    return entries, meta


def architecture(args, variant):
    """The model-shaping flags of train and pretrain, with the variant's defaults filled in."""
    return dict(variant=variant, groups=args.groups or DEFAULT_GROUPS[variant],
                input_size=args.input_size or INPUT_SIZE[variant], positive_bias=args.positive_bias)


def number(kind, minimum=None):
    """An argparse type: a finite int or float, > minimum when given (nan and inf are refused)."""
    what = "a whole number" if kind is int else "a finite number"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or (minimum is not None and value <= minimum):
            raise argparse.ArgumentTypeError(f"expected {what}{'' if minimum is None else f' > {minimum}'}, "
                                             f"got {text}")
        return value
    return parse


# -- commands -----------------------------------------------------------------------------------------------

def command_summary(args):
    size = args.input_size or INPUT_SIZE[args.variant]
    classes = args.classes or (len(data.SHAPE_CLASSES) if args.variant == "mini" else 1000)   # as train's default
    alexnet(classes, args.variant, args.groups, rng=0, input_size=size).summary((3, size, size))


RUN_FILES = ("last.npz", "best.npz", "history.json")       # a folder holding any of these holds a run
PICTURES = ("curves.png", "conv1_filters.png", "last_confusion.png", "best_confusion.png")


def check_out(args):
    """train --out, before anything is loaded: a folder we can write in, holding no run unless told what to do."""
    checkpoint.check_writable_folder(args.out, "--out")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite: expected one of them (continue the run in --out, or replace it)")
    held = [name for name in RUN_FILES if os.path.exists(os.path.join(args.out, name))]
    if held and not (args.resume or args.overwrite):
        raise ValueError(f"--out {args.out}: already holds a run ({', '.join(held)}); continue it with --resume, or "
                         f"start again with another --out (or --overwrite to replace it)")


def command_train(args):
    check_out(args)
    init = start_from(args) if args.init else None
    if init:
        config = {k: init[1]["config"][k] for k in ("variant", "groups", "input_size", "positive_bias")}
    else:
        config = architecture(args, args.variant or "mini")
    config.update(freeze=args.freeze, lr_mult=args.lr_mult, decay_mult=args.decay_mult)
    size = config["input_size"]
    mini = config["variant"] == "mini"           # the main job: small images, small batches, a higher rate
    args.batch_size = args.batch_size or (32 if mini else 128)
    args.lr = args.lr or (0.02 if mini else 0.01)
    data_info = dict(path=args.data and os.path.abspath(args.data), seed=args.seed, train_images=args.train_images,
                     val_images=args.val_images, per_class=args.per_class)
    last = os.path.join(args.out, "last.npz")
    if args.resume:                              # another model or other data fails before any data is loaded
        check_resumable(last, config, data_info)
    train, val = load_run_data(data_info, stored_size(size))
    if train.skipped:
        warnings.warn(f"{len(train.skipped)} unreadable image file(s) skipped (named above)")
    config = dict(config, num_classes=len(train.classes))
    model_rng = np.random.default_rng([args.seed, 1])
    model = build(config, rng=model_rng)
    preprocess = Preprocess.fit(train.images, PIXEL_SCALE[config["variant"]])
    if init:
        fresh = finetune.transfer_weights(model, init[0], args.init, new_head=args.new_head)
        print(f"fine-tuning from {args.init}: " + (f"new head {', '.join(fresh)} for {len(train.classes)} classes"
                                                   if fresh else "all weights kept"))
        # the pixels must be prepared as the weights learned them; colour PCA is fitted on the new images
        preprocess.scale, preprocess.mean_image = float(init[0]["array/scale"]), init[0]["array/mean_image"]
    finetune.freeze(model, [name for name in args.freeze.split(",") if name])
    finetune.set_multipliers(model, args.lr_mult, "lr_mult", "--lr-mult")
    finetune.set_multipliers(model, args.decay_mult, "decay_mult", "--decay-mult")
    if not any(p.trainable for p in model.parameters()):
        raise ValueError(f"--freeze {args.freeze}: leaves nothing to train")
    trainer = Trainer(model, config, train, val, preprocess, size, args.out, np.random.default_rng([args.seed, 2]),
                      lr=args.lr, batch_size=args.batch_size, pca=not args.no_pca, patience=args.patience,
                      dropout_rngs=[model_rng], data_info=data_info)
    if args.resume:                              # other classes in the same folder fail here, before training
        trainer.resume(last)
        steps = -(-len(train) // args.batch_size)
        print(f"resumed {last} " + (f"at epoch {trainer.epoch + 1}, step {trainer.partial[1]} of {steps}"
                                    if trainer.partial else f"after epoch {trainer.epoch}"))
    if args.overwrite:                           # the old run's files go only now that the new run can start
        for name in RUN_FILES + PICTURES:
            if os.path.exists(os.path.join(args.out, name)):
                os.remove(os.path.join(args.out, name))
    print(f"training {config['variant']} AlexNet ({sum(p.size for p in model.parameters() if p.trainable):,} "
          f"trainable parameters) on "
          f"{len(train)} images of {len(train.classes)} classes at {size}x{size}, validating on {len(val)}")
    pictures = []

    def draw(trainer):                           # after every epoch, so a stopped run has its pictures too
        pictures[:] = save_run_pictures(trainer.history, model["conv1"].weight.data, args.out)

    trainer.fit(args.epochs, after_epoch=draw)
    best, _ = load_checkpoint(os.path.join(args.out, "best.npz"))
    final = evaluate(best, val, preprocess, size, ten_crop=args.ten_crop)
    crops = "10-crop" if args.ten_crop else "centre-crop"
    top5 = f", top-5 {final['top5']:.3f}" if len(train.classes) > 5 else ""
    print(f"best checkpoint: val top-1 {final['top1']:.3f}{top5} ({crops}), saved in {args.out}/best.npz")
    for picture in pictures:
        print(f"wrote {picture}")


def command_pretrain(args):
    checkpoint.check_writable_folder(args.out, "--out")
    unknown = [name for name in args.layers if name not in ("conv1", "conv2", "conv3", "conv4", "conv5")]
    if unknown or not args.layers:                # before any data is loaded
        raise ValueError(f"--layers: expected conv layers among conv1..conv5, got {','.join(args.layers) or 'none'}")
    data_info = dict(path=args.data and os.path.abspath(args.data), seed=args.seed, train_images=args.train_images,
                     val_images=args.val_images, per_class=None)
    config = architecture(args, args.variant)
    variant, size = config["variant"], config["input_size"]
    train, _ = load_run_data(data_info, stored_size(size))   # the labels are not used
    config["num_classes"] = len(train.classes)
    rng = np.random.default_rng([args.seed, 3])
    model = build(config, rng=rng)
    preprocess = Preprocess.fit(train.images, PIXEL_SCALE[variant])
    print(f"pre-training {', '.join(args.layers)} of {variant} AlexNet as auto-encoders on {len(train)} unlabeled "
          f"images at {size}x{size}")
    history = pretrain_layerwise(model, args.layers, train.images, preprocess, size, rng, epochs=args.epochs,
                                 lr=args.lr, batch_size=args.batch_size)
    path = os.path.join(args.out, "pretrained.npz")
    meta = dict(config=config, classes=train.classes, data=data_info, epoch=0, history=[], pretrain=history)
    checkpoint.save(path, model, meta, arrays=preprocess.state())
    print(f"saved {path}; fine-tune it with: python alexnet.py train --init {path} --data ...")


def command_import_weights(args):
    checkpoint.check_writable_file(args.out, "--out")
    class_names = None
    if args.classes:
        with open(args.classes, encoding="utf-8") as f:
            class_names = [line.strip() for line in f if line.strip()]
    model, meta, preprocess = import_weights(args.file, args.variant, class_names, args.input_size)
    checkpoint.save(args.out, model, meta, arrays=preprocess.state())
    print(f"wrote {args.out}: {meta['config']['variant']} AlexNet, {meta['config']['num_classes']} classes, "
          f"{sum(p.size for p in model.parameters()):,} parameters")


def by_name(images, classes, path):
    """An ImageSet relabelled to a checkpoint's class indices, matching class names; refuses unknown names."""
    unknown = [name for name in images.classes if name not in classes]
    if unknown:
        raise ValueError(f"{path}: classes {unknown[:6]} are not among the checkpoint's {len(classes)} classes "
                         f"{classes[:6]}{' ...' if len(classes) > 6 else ''}")
    index = np.array([classes.index(name) for name in images.classes], np.int64)
    return data.ImageSet(images.images, index[images.labels], classes)


def trained_on(meta, path):
    """Whether `path` is the --data this checkpoint was trained on."""
    own = (meta.get("data") or {}).get("path")
    return own is not None and os.path.realpath(own) == os.path.realpath(path)


def confusion_by_class(probs, labels, classes):
    """Where the images of each class present went: -> (counts (present, columns), row names, column names).

    Columns are the classes present in the data, in the same order as the rows (so the diagonal is right), then
    "(other)" for predictions of the checkpoint's other classes, if any were made.
    """
    present = np.unique(labels)
    matrix = confusion_matrix(probs.argmax(axis=1), labels, len(classes))[present]
    other = np.delete(matrix, present, axis=1).sum(axis=1)
    counts = np.column_stack([matrix[:, present]] + ([other] if other.any() else []))
    rows = [classes[i] for i in present]
    return counts, rows, rows + (["(other)"] if other.any() else [])


def per_class_lines(counts, rows, columns, most_columns=20):
    """A text table: each true class, its images, its top-1 accuracy and (for up to most_columns) its row of the
    confusion matrix."""
    width, cells = max(map(len, rows + ["class"])), [max(len(c), 4) for c in columns]
    show, lead = len(columns) <= most_columns, "   predicted as: "
    lines = [f"{'class':<{width}}  images  top-1" + (lead + " ".join(f"{c:>{w}}" for c, w in zip(columns, cells))
                                                     if show else "")]
    for r, name in enumerate(rows):
        line = f"{name:<{width}}  {counts[r].sum():>6}  {counts[r, r] / counts[r].sum():.3f}"
        lines.append(line + (" " * len(lead) + " ".join(f"{n:>{w}}" for n, w in zip(counts[r], cells)) if show
                             else ""))
    if not show:
        lines.append(f"(the confusion matrix has {len(columns)} columns, too many to print)")
    return lines


def command_evaluate(args):
    model, meta = load_checkpoint(args.checkpoint)
    size, classes = meta["config"]["input_size"], meta["classes"]
    if args.data is None and meta.get("data") is None:
        raise ValueError(f"{args.checkpoint}: was not trained here, so it has no validation set; pass --data")
    if args.data is None:                        # the run's own validation set
        _, images = load_run_data(meta["data"], stored_size(size))
    else:
        train, val = data.load(args.data, stored_size(size), val_fraction=0.0)
        images = by_name(train if len(val) == 0 else val, classes, args.data)   # a CIFAR folder: its test batch
        if len(val) == 0 and trained_on(meta, args.data):
            warnings.warn(f"{args.data}: is the data {args.checkpoint} was trained on, so these images include the "
                          f"ones it learned from and the accuracy is optimistic (without --data, evaluate uses the "
                          f"images the run held out)")
    probs = predict_probs(model, images.images, meta["preprocess"], size, ten_crop=args.ten_crop)
    result = scores(probs, images.labels)
    top5 = f", top-5 {result['top5']:.3f}" if len(classes) > 5 else ""    # with 5 classes or fewer it is always 1
    print(f"{len(images)} images: loss {result['loss']:.4f}, top-1 {result['top1']:.3f}{top5}"
          f" ({'10-crop' if args.ten_crop else 'centre crop'})")
    counts, rows, columns = confusion_by_class(probs, images.labels, classes)
    if len(rows) < len(classes):
        print(f"evaluated on {len(rows)} of the checkpoint's {len(classes)} classes")
    print("\n".join(per_class_lines(counts, rows, columns)))
    picture = os.path.splitext(args.checkpoint)[0] + "_confusion.png"
    try:
        checkpoint.check_writable_file(picture, "confusion matrix")
    except ValueError as error:
        warnings.warn(f"{error}; no picture written")
        return
    title = f"{os.path.basename(args.checkpoint)} on {args.data or 'its validation set'}"
    if save_confusion(counts, rows, columns, picture, title):
        print(f"wrote {picture}")


def command_predict(args):
    if args.csv:
        checkpoint.check_writable_file(args.csv, "--csv")
    model, meta = load_checkpoint(args.checkpoint)
    size, classes = meta["config"]["input_size"], meta["classes"]
    files, failed = [], []
    for path in args.images:                     # folders are searched for image files, recursively
        found = data.image_files(path) if os.path.isdir(path) else [path]
        if not found:
            warnings.warn(f"{path}: holds no image files (expected names ending in "
                          f"{', '.join(data.images.IMAGE_SUFFIXES)})")
            failed.append(path)
        files += found
    top, rows = min(args.top, len(classes)), []
    for start in range(0, len(files), 64):       # a few images at a time: memory stays small for any count
        names, pixels = [], []
        for path in files[start:start + 64]:
            try:
                pixels.append(data.read_image(path, stored_size(size)))
                names.append(path)
            except ValueError as error:
                warnings.warn(f"{error}; skipped")
                failed.append(path)
        if not names:
            continue
        for path, probs in zip(names, predict_probs(model, np.stack(pixels), meta["preprocess"], size,
                                                    ten_crop=args.ten_crop)):
            best = np.argsort(-probs, kind="stable")[:top]
            print(f"{path}: " + ", ".join(f"{classes[i]} {probs[i]:.3f}" for i in best))
            rows.append([path] + [value for i in best for value in (classes[i], f"{probs[i]:.6f}")])
    if args.csv:
        with checkpoint.atomic_open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path"] + [f"{key}_{k}" for k in range(1, top + 1) for key in ("class", "probability")])
            writer.writerows(rows)
        print(f"wrote {args.csv}")
    if failed:
        raise ValueError(f"{len(failed)} of {len(rows) + len(failed)} paths could not be read (named above)"
                         + ("; the others were predicted" if rows else ""))


class OneLineParser(argparse.ArgumentParser):
    """Bad flags print one line naming the flag, what was wrong and what was expected (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parser():
    positive_int, positive_float = number(int, minimum=0), number(float, minimum=0)
    main_parser = OneLineParser(prog="alexnet.py", description="AlexNet with tinycnn")
    commands = main_parser.add_subparsers(dest="command", required=True)

    summary = commands.add_parser("summary", help="print the layer table: windows, output shapes, parameters, MACs")
    summary.add_argument("--variant", default="paper", choices=VARIANTS)
    summary.add_argument("--groups", type=int, default=None, choices=(1, 2))
    summary.add_argument("--classes", type=positive_int, default=None,
                         help="default: 6 for mini (the built-in shapes, as train), 1000 otherwise")
    summary.add_argument("--input-size", type=positive_int, default=None)

    train = commands.add_parser("train", help="train on the built-in shapes or --data (the paper's recipe)")
    train.add_argument("--data", help="a folder of class folders, a CIFAR-10 batches folder, or an .npz "
                                      "(default: the built-in shapes)")
    train.add_argument("--variant", default=None, choices=VARIANTS, help="default: mini, or --init's")
    train.add_argument("--groups", type=int, default=None, choices=(1, 2))
    train.add_argument("--input-size", type=positive_int, default=None,
                       help="crop size (default: the variant's own: 227, 224, or 32 for mini)")
    train.add_argument("--epochs", type=positive_int, default=7)
    train.add_argument("--batch-size", type=positive_int, default=None,
                       help="default: 32 for mini, the paper's 128 otherwise")
    train.add_argument("--lr", type=positive_float, default=None,
                       help="initial learning rate; default: 0.02 for mini, the paper's 0.01 otherwise")
    train.add_argument("--positive-bias", type=number(float), default=1.0,
                       help="bias of conv2/4/5 and fc6/7 in the paper variant (Caffe: 0.1)")
    train.add_argument("--patience", type=positive_int, default=2,
                       help="epochs without a better validation error before the learning rate drops 10x")
    train.add_argument("--seed", type=number(int), default=0)
    train.add_argument("--out", default="runs/alexnet", help="folder for checkpoints, history and pictures")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last.npz")
    train.add_argument("--overwrite", action="store_true", help="replace the run in --out with a new one")
    train.add_argument("--ten-crop", action="store_true", help="evaluate the best model with 10 crops at the end")
    train.add_argument("--no-pca", action="store_true", help="turn PCA colour augmentation off")
    train.add_argument("--train-images", type=positive_int, default=7000,
                       help="built-in data: training images")
    train.add_argument("--val-images", type=positive_int, default=1000,
                       help="built-in data: validation images")
    train.add_argument("--per-class", type=positive_int, default=None,
                       help="--data: train on at most this many images per class")
    train.add_argument("--init", metavar="CHECKPOINT", help="start from these weights (fine-tuning); the head "
                       "is replaced when the number of classes differs")
    train.add_argument("--new-head", action="store_true", help="with --init: start the head afresh even when "
                       "the number of classes is the same (new classes)")
    train.add_argument("--freeze", default="", metavar="LAYERS", help="layers to keep fixed, e.g. conv1,conv2")
    train.add_argument("--lr-mult", default="", metavar="SPEC",
                       help="learning-rate multipliers, e.g. 'fc8=10,*.bias=2' (Caffe's lr_mult)")
    train.add_argument("--decay-mult", default="", metavar="SPEC",
                       help="weight-decay multipliers, e.g. '*.bias=0'")

    pretrain = commands.add_parser("pretrain", help="layer-wise auto-encoder pre-training on unlabeled images")
    pretrain.add_argument("--data", help="images as for train (labels are ignored); default: the built-in shapes")
    pretrain.add_argument("--variant", default="mini", choices=VARIANTS)
    pretrain.add_argument("--groups", type=int, default=None, choices=(1, 2))
    pretrain.add_argument("--input-size", type=positive_int, default=None)
    pretrain.add_argument("--positive-bias", type=number(float), default=1.0)
    pretrain.add_argument("--layers", type=lambda text: [n for n in text.split(",") if n], default=["conv1", "conv2"],
                          help="conv layers to pre-train, in order (default: conv1,conv2)")
    pretrain.add_argument("--epochs", type=positive_int, default=2, help="epochs per layer")
    pretrain.add_argument("--lr", type=positive_float, default=0.01)
    pretrain.add_argument("--batch-size", type=positive_int, default=32)
    pretrain.add_argument("--seed", type=number(int), default=0)
    pretrain.add_argument("--train-images", type=positive_int, default=7000)
    pretrain.add_argument("--val-images", type=positive_int, default=1000)
    pretrain.add_argument("--out", default="runs/pretrain", help="folder for pretrained.npz")

    import_ = commands.add_parser("import-weights", help="turn a state_dict (.pth or .npz) into a checkpoint")
    import_.add_argument("file", help="torchvision AlexNet state_dict (.pth needs torch; or an .npz with the same "
                                      "keys), or an .npz with tinycnn's names (conv1.weight, ...)")
    import_.add_argument("--variant", default="torchvision", choices=VARIANTS)
    import_.add_argument("--input-size", type=positive_int, default=None)
    import_.add_argument("--classes", help="a text file with one class name per line")
    import_.add_argument("--out", required=True, help="the checkpoint to write (.npz)")

    evaluate_ = commands.add_parser("evaluate", help="top-1/top-5, per-class accuracy and a confusion matrix")
    evaluate_.add_argument("--checkpoint", required=True)
    evaluate_.add_argument("--data", help="images to evaluate on, matched to the checkpoint's classes by name "
                                          "(default: the run's validation set)")
    evaluate_.add_argument("--ten-crop", action="store_true")

    predict = commands.add_parser("predict", help="the most likely classes of images")
    predict.add_argument("--checkpoint", required=True)
    predict.add_argument("images", nargs="+", metavar="PATH", help="image files, or folders searched for them")
    predict.add_argument("--top", type=positive_int, default=5, metavar="K", help="classes to show (default: 5)")
    predict.add_argument("--csv", metavar="FILE", help="also write the results to this CSV file")
    predict.add_argument("--ten-crop", action="store_true")

    bench = commands.add_parser("bench", help="speed and memory against OpenBLAS and PyTorch (benchmarks/)")
    bench.add_argument("--quick", action="store_true", help="fewer repeats, batch 16 only")
    return main_parser


COMMANDS = {"summary": command_summary, "train": command_train, "evaluate": command_evaluate,
            "predict": command_predict, "pretrain": command_pretrain, "import-weights": command_import_weights}


def main(argv=None):
    """Run one command. -> the exit code: 0, 2 for bad input (one line on stderr), 130 for Ctrl-C, 143 for
    SIGTERM during training. Warnings print as plain lines on stderr, not in Python's warning format."""
    prog = "alexnet.py"
    try:
        args = parser().parse_args(argv)
        prog = f"alexnet.py {args.command}"
        if args.command == "bench":
            try:
                from benchmarks import bench as benchmark
            except ImportError:
                print(f"{prog}: benchmarks/ not found; run it from a checkout of tinycnn", file=sys.stderr)
                return 2
            return benchmark.main(["--quick"] if args.quick else [])
        with warnings.catch_warnings():              # Python's filters, seen afresh by each call of main
            warnings.showwarning = lambda message, *_, **__: print(f"{prog}: warning: {message}", file=sys.stderr)
            COMMANDS[args.command](args)
    except (ValueError, OSError, TrainingDiverged) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"{prog}: {stop}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:                        # Ctrl-C outside a training step; files are written whole
        print(f"{prog}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
