"""A training run's model and images, rebuilt from what its checkpoint says.

A checkpoint written by `alexnet.py train`, `pretrain` or `import-weights` describes its run in meta (see
checkpoint.py for the file itself):
    meta["config"]  what builds the model: variant, groups, input_size, positive_bias, num_classes (train
                    also keeps its --freeze, --lr-mult and --decay-mult)
    meta["data"]    where the images came from: path (None: the built-in shapes), seed, train_images,
                    val_images, per_class
and keeps the pixel preparation (data.Preprocess) as arrays.

    build(config)               the model a config describes, freshly initialised
    load_checkpoint(path)       -> (model, meta): the model with its weights, meta["preprocess"] added
    load_run_data(data, size)   -> (train, val): the run's images again, the same split
"""
import numpy as np

from . import checkpoint, data
from .data import Preprocess
from .models.alexnet import alexnet


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
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) != meta["config"]["num_classes"]:
        raise checkpoint.CheckpointError(f"{path}: has no names for its {meta['config']['num_classes']} classes "
                                         f"(meta 'classes'); expected a checkpoint of alexnet.py train, pretrain "
                                         f"or import-weights")
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
