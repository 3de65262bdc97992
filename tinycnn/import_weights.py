"""Weights trained elsewhere: a state dict read from PyTorch's .pth or an .npz, renamed and loaded into AlexNet.

    read_state_dict(path)                         {name: array} from a .pth (needs torch) or an .npz
    load_state_dict(model, state, source, rename)  copy it in, every name and shape checked
    import_weights(path, variant)                 -> (model, meta, preprocess), ready to save as a checkpoint

torchvision's AlexNet names its layers by position in its nn.Sequential (features.0 is conv1, classifier.6 is
fc8: TORCHVISION_NAMES) and expects its input normalised with ImageNet's channel means and standard deviations
(IMAGENET_MEAN, IMAGENET_STD); import_weights folds that normalisation into tinycnn's pixel preparation and
conv1, so the network computes what torchvision computes.
"""
import os

import numpy as np

from .checkpoint import read_npz
from .data import Preprocess
from .models.alexnet import DEFAULT_GROUPS, INPUT_SIZE, PIXEL_SCALE, stored_size
from .runs import build

# torchvision.models.alexnet's state_dict names: features.N is the N-th module of its nn.Sequential.
TORCHVISION_NAMES = {"features.0": "conv1", "features.3": "conv2", "features.6": "conv3", "features.8": "conv4",
                     "features.10": "conv5", "classifier.1": "fc6", "classifier.4": "fc7", "classifier.6": "fc8"}
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def read_state_dict(path):
    """{name: float array} from a PyTorch .pth/.pt state_dict (needs torch) or an .npz of plain arrays.

    A .pth is read with torch.load(weights_only=True), which refuses to run code from the file; an .npz with
    allow_pickle=False.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such weights file")
    if path.endswith((".pth", ".pt")):
        try:
            import torch
        except ImportError:
            raise ValueError(f"{path}: reading a .pth file needs PyTorch (pip install torch), or save the "
                             f"state_dict as an .npz with the same key names") from None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:               # torch raises many types for a bad file
            raise ValueError(f"{path}: not a readable PyTorch state_dict ({type(error).__name__})") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
        return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}
    return read_npz(path, expected="a state_dict saved as an .npz of plain arrays (or a .pth)")


def load_state_dict(model, state, source, rename=None):
    """Copy a state dict into model, checking that every parameter and buffer is there with the right shape.

    state: {key: array}.  rename: {key prefix in the file: layer name}, e.g. {"features.0": "conv1"}
    (None: the file uses the model's own names, "conv1.weight", "bn1.running_mean").  Keys the model does not
    use are refused.
    """
    mapped = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        name = f"{rename.get(prefix, prefix)}.{leaf}" if rename else key
        mapped[name] = np.asarray(value)
    own = {name: p.data for name, p in model.named_parameters()}
    own.update(model.named_buffers())
    missing, unused = sorted(set(own) - set(mapped)), sorted(set(mapped) - set(own))
    if missing or unused:
        raise ValueError(f"{source}: keys do not match the model: missing {missing[:4]}, not used {unused[:4]}")
    for name, target in own.items():
        if mapped[name].shape != target.shape:
            raise ValueError(f"{source}: {name} has shape {mapped[name].shape}, the model expects {target.shape}")
        if not np.isfinite(mapped[name]).all():
            raise ValueError(f"{source}: {name} holds NaN or inf")
        target[...] = mapped[name]


def import_weights(path, variant="torchvision", class_names=None, input_size=None):
    """-> (model, meta, preprocess) from a state dict: torchvision's AlexNet (.pth, or an .npz with its key
    names), or any variant's weights under tinycnn's own names ("conv1.weight", ...).

    torchvision expects x = (pixels/255 - mean) / std per RGB channel. tinycnn's Preprocess subtracts a mean
    image from scale * pixels, so the mean goes there and 1/std is folded into conv1's weights: conv1 is
    linear in each input channel, and the zero padding stays zero, so the network computes the same thing.
    Weights under tinycnn's names get the variant's pixel scale and a zero mean image.
    """
    state = read_state_dict(path)
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
    load_state_dict(model, state, path, TORCHVISION_NAMES if torchvision_names else None)
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
