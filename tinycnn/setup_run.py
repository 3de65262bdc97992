"""A training run built in one call: `run = setup_run(out, data=..., variant=..., ...)`, then `run.fit(epochs)`.

What the call does, in order, so that a mistake is found before any image is read or any weight trained:

    1. the output folder: writable, and holding no run unless told to resume it or replace it (overwrite)
    2. the model's shape: the variant's or the init checkpoint's, and an input size its layers take
    3. what learns: freeze, lr_mult and decay_mult name layers and parameters the model has
    4. resume: the checkpoint was written for this model and these data
    5. the images (tinycnn/runs.py: load_run_data), at least one of them held out for validation
    6. the model (seeded), the pixel preparation fitted to the training images, init's weights
    7. the Trainer (tinycnn/train.py), resumed from out/last.npz when asked

The command line (`alexnet.py train`) is this call with its flags; notebooks and tests call it too. Messages
name the arguments as the caller spells them (tinycnn/spelling.py): "out='runs/x'" and "resume=True" by
default, "--out runs/x" and "--resume" for the command line.
"""
import fnmatch
import os
import warnings

import numpy as np

from . import checkpoint, data, finetune
from .data import Preprocess
from .distributed.ranks import Ranks
from .models.alexnet import DEFAULT_GROUPS, INPUT_SIZE, PIXEL_SCALE, alexnet, stored_size
from .resume_checks import check_resumable
from .runs import build, load_run_data
from .spelling import argument
from .train import Trainer

RUN_FILES = ("last.npz", "best.npz", "history.json")       # a folder holding any of these holds a run
PICTURES = ("curves.png", "conv1_filters.png", "last_confusion.png", "best_confusion.png")
OLD_RUN = ".old-run"          # where overwrite keeps the old run until the new one has written a checkpoint


def setup_run(out, data=None, variant=None, groups=None, input_size=None, positive_bias=1.0, seed=0,
              train_images=7000, val_images=1000, per_class=None, init=None, new_head=False, freeze="", lr_mult="",
              decay_mult="", lr=0.01, batch_size=None, pca=True, patience=2, resume=False, overwrite=False,
              progress=True, ranks=None, say=print, spell=argument):
    """-> a Run, ready to fit. Every argument is the command line's flag of the same name (alexnet.py train -h).

    out: the run's folder.  data: a folder of class folders, a CIFAR-10 folder or an .npz (None: the built-in
    shapes, train_images and val_images of them).  variant: default "mini", or init's.  batch_size: default 32
    for mini, the paper's 128 otherwise.  seed: the weights, the split and every image's random numbers.
    init: a checkpoint to start from (fine-tuning).  freeze: "conv1,conv2".  resume: continue out/last.npz.
    overwrite: replace the run in out (kept until the new one has written its first checkpoint).
    say: where the run's lines go (rank 0 only).  spell: how messages name the arguments (spelling.py).
    """
    ranks = ranks or Ranks()
    say = say if ranks.rank == 0 else (lambda *_, **__: None)
    last = os.path.join(out, "last.npz")
    data_info = data_description(data, seed, train_images, val_images, per_class)
    with ranks.agree():                          # a mistake any rank finds stops every rank, told once
        if ranks.rank == 0:                      # the rank that writes out checks it
            check_out(out, data, resume, overwrite, spell)
        start = start_from(init, variant, groups, input_size, spell) if init else None
        config = model_config(start[1]["config"] if start else architecture(variant or "mini", groups, input_size,
                                                                            positive_bias),
                              freeze, lr_mult, decay_mult, spell)
        if resume and ranks.rank == 0:           # another model or other data fails before any data is loaded
            check_resumable(last, config, data_info, spell=spell)
        train, val = load_images(data, data_info, stored_size(config["input_size"]), say, spell)
        config = dict(config, num_classes=len(train.classes))
        model = build(config, rng=np.random.default_rng([seed, 1]))
        preprocess = Preprocess.fit(train.images, PIXEL_SCALE[config["variant"]])
        if start:
            fine_tune_from(start[0], init, model, preprocess, new_head, len(train.classes), say)
        set_what_learns(model, freeze, lr_mult, decay_mult, spell)
    batch_size = batch_size or (32 if config["variant"] == "mini" else 128)
    trainer = Trainer(model, config, train, val, preprocess, config["input_size"], out, seed, lr=lr,
                      batch_size=batch_size, pca=pca, patience=patience, progress=progress, data_info=data_info,
                      ranks=ranks)
    if resume:                                   # other classes in the same folder fail here, before training
        trainer.resume(last, spell=spell)
        steps = -(-len(train) // batch_size)
        say(f"resumed {last} " + (f"at epoch {trainer.epoch + 1}, step {trainer.cut[0]} of {steps}"
                                  if trainer.cut else f"after epoch {trainer.epoch}"))
    say(training_line(trainer))
    return Run(trainer, OldRun(out) if overwrite and ranks.rank == 0 else None)


def data_description(data, seed, train_images, val_images, per_class):
    """What a checkpoint keeps of the images a run chose (meta["data"], tinycnn/runs.py reads it back)."""
    return dict(path=data and os.path.abspath(data), seed=seed, train_images=train_images, val_images=val_images,
                per_class=per_class)


def architecture(variant, groups=None, input_size=None, positive_bias=1.0):
    """The model-shaping arguments, with the variant's defaults filled in (groups, input size)."""
    return dict(variant=variant, groups=groups or DEFAULT_GROUPS[variant], input_size=input_size or INPUT_SIZE[variant],
                positive_bias=positive_bias)


def model_config(architecture, freeze, lr_mult, decay_mult, spell=argument):
    """The config a run's checkpoints keep: the architecture (variant, groups, input_size, positive_bias) and what
    learns, checked against the variant before any data is loaded."""
    config = dict({k: architecture[k] for k in ("variant", "groups", "input_size", "positive_bias")},
                  freeze=freeze, lr_mult=lr_mult, decay_mult=decay_mult)
    check_input_size(config["variant"], config["input_size"], spell)
    if freeze or lr_mult or decay_mult:          # the names do not depend on the number of classes
        set_what_learns(build(dict(config, num_classes=2), rng=0), freeze, lr_mult, decay_mult, spell)
    return config


def load_images(data, data_info, size, say=print, spell=argument):
    """The run's (train, val) ImageSets (data: the path as given, data_info: the run's description of its images),
    with at least one image to validate on; a folder of class folders is counted aloud, class by class."""
    train, val = load_run_data(data_info, size)
    if train.skipped:
        warnings.warn(f"{len(train.skipped)} unreadable image file(s) skipped (named above)")
    if len(val) == 0:
        raise ValueError(f"{spell('data', data)}: leaves no image for validation (a fifth of each class is held "
                         f"out, none of a class of one image); expected at least two images in some class")
    if holds_class_folders(data):
        say(folder_counts(data, train, val))
    return train, val


def training_line(trainer):
    """"training mini AlexNet (380,614 trainable parameters) on 7000 images of 6 classes at 32x32, validating on
    1000", and how the ranks share each batch."""
    ranks, batch_size, size = trainer.ranks, trainer.batch_size, trainer.input_size
    where = "" if ranks.size == 1 else (f"; {ranks.size} ranks share each batch of {batch_size}: "
                                        f"{' + '.join(map(str, ranks.shares(batch_size)))} images")
    trainable = sum(p.size for p in trainer.model.parameters() if p.trainable)
    return (f"training {trainer.config['variant']} AlexNet ({trainable:,} trainable parameters) on {len(trainer.train)} "
            f"images of {len(trainer.train.classes)} classes at {size}x{size}, validating on {len(trainer.val)}{where}")


class Run:
    """A Trainer, and (overwrite) the old run it replaces. run.fit(epochs, after_epoch) trains; the old run's files
    are deleted once the new run has written its first checkpoint, and put back if it stops before."""

    def __init__(self, trainer, old_run=None):
        self.trainer, self.old_run = trainer, old_run

    def fit(self, epochs, log=print, after_epoch=None):
        """Trainer.fit, settling the old run after the first epoch's files (or when training stops)."""
        def settle_then(trainer):
            if self.old_run:
                self.old_run.settle()
            if after_epoch is not None:
                after_epoch(trainer)

        try:
            return self.trainer.fit(epochs, log=log, after_epoch=settle_then)
        finally:
            if self.old_run:
                self.old_run.settle()


class OldRun:
    """overwrite: the old run's files wait in out/.old-run until the new run has written its first checkpoint,
    and are deleted then; a new run that stops before that gets them back, byte for byte."""

    def __init__(self, out):
        self.out, self.aside = out, os.path.join(out, OLD_RUN)
        held = os.listdir(out) if os.path.isdir(out) else []
        self.names = [name for name in held if name in RUN_FILES + PICTURES
                      or fnmatch.fnmatch(name, "*_confusion_*.png")]     # evaluate --data DATA's pictures
        os.makedirs(self.aside)
        for name in self.names:
            os.replace(os.path.join(out, name), os.path.join(self.aside, name))

    def settle(self):
        """Once the new run stops or has a checkpoint: delete the old files if it has one, else put them back."""
        if not os.path.isdir(self.aside):
            return
        replaced = os.path.exists(os.path.join(self.out, "last.npz"))
        for name in self.names:
            old = os.path.join(self.aside, name)
            os.remove(old) if replaced else os.replace(old, os.path.join(self.out, name))
        os.rmdir(self.aside)


def check_out(out, data, resume, overwrite, spell=argument):
    """The run's folder, before anything is loaded: one we can write in, holding no run unless told what to do."""
    checkpoint.check_writable_folder(out, spell("out"), RUN_FILES + PICTURES)
    if resume and overwrite:
        raise ValueError(f"{spell('resume', True)} and {spell('overwrite', True)}: expected one of them (continue "
                         f"the run in {spell('out')}, or replace it)")
    if os.path.isdir(os.path.join(out, OLD_RUN)):
        raise ValueError(f"{spell('out', out)}: holds {OLD_RUN}, a run that {spell('overwrite', True)} set aside for a "
                         f"new run that was stopped before its first checkpoint; move its files back into {out} (or "
                         f"delete it), then start again")
    check_outside_data(out, data, spell)
    held = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
    if held and not (resume or overwrite):
        raise ValueError(f"{spell('out', out)}: already holds a run ({', '.join(held)}); continue it with "
                         f"{spell('resume', True)}, or start again with another {spell('out')} (or "
                         f"{spell('overwrite', True)} to replace it)")


def check_outside_data(out, data, spell=argument):
    """out inside a data folder of class folders: the run's pictures would become a class of the next run that
    reads it."""
    if holds_class_folders(data):
        data_folder, folder = os.path.realpath(data), os.path.realpath(out)
        if os.path.commonpath([data_folder, folder]) == data_folder:
            raise ValueError(f"{spell('out', out)}: is inside {spell('data', data)}, where the run's pictures would "
                             f"become images to train on; expected an {spell('out')} outside it")


def holds_class_folders(path):
    """data is a folder of class folders (not an .npz, a CIFAR folder or the built-in shapes)."""
    return bool(path) and os.path.isdir(path) and not data.is_cifar(path)


def folder_counts(path, train, val):
    """For a folder of class folders: "PATH: N images in K class folders, each with its sub-folders: a 4, b 5, ..."
    (the first 8 classes)."""
    counts = np.bincount(np.concatenate([train.labels, val.labels]), minlength=len(train.classes))
    listed = ", ".join(f"{name} {n}" for name, n in zip(train.classes[:8], counts))
    return (f"{path}: {counts.sum()} images in {len(counts)} class folders, each with its sub-folders: {listed}"
            + (", ..." if len(counts) > 8 else ""))


def start_from(init, variant, groups, input_size, spell=argument):
    """init: the checkpoint's architecture, checked against the arguments given. -> (entries, meta)."""
    entries, meta = checkpoint.read(init)
    if "config" not in meta or "array/scale" not in entries or "array/mean_image" not in entries:
        raise checkpoint.CheckpointError(f"{init}: not a checkpoint of alexnet.py train, pretrain or "
                                         f"import-weights (no model configuration or pixel preparation)")
    for key, value in dict(variant=variant, groups=groups, input_size=input_size).items():
        if value is not None and value != meta["config"][key]:
            raise ValueError(f"{spell(key, value)} does not match the {spell('init')} checkpoint's "
                             f"{meta['config'][key]}; leave it out to use the checkpoint's")
    return entries, meta


def smallest_input_size(variant):
    """The smallest image side the variant's convolutions and poolings take: their shape arithmetic on ever larger
    sides, up to the flatten before fc6 (which is sized for the side)."""
    children = list(alexnet(2, variant, rng=0).children())
    maps = [layer for name, layer in children[:[name for name, _ in children].index("flatten")]]
    for side in range(1, INPUT_SIZE[variant] + 1):
        shape = (3, side, side)
        try:
            for layer in maps:
                shape = layer.output_shape(shape)
            return side
        except ValueError:                       # a window larger than the maps left at some layer
            continue


def check_input_size(variant, size, spell=argument):
    """input_size, before anything is built or loaded: a side the variant's layers can take."""
    smallest = smallest_input_size(variant) if size < INPUT_SIZE[variant] else size
    if size < smallest:
        raise ValueError(f"{spell('input_size', size)}: too small for the {variant} variant, whose layers take "
                         f"images of at least {smallest} pixels a side (its own size is {INPUT_SIZE[variant]})")


def fine_tune_from(entries, init, model, preprocess, new_head, num_classes, say=print):
    """init: copy the checkpoint's weights (a new head for other classes) and prepare pixels as it did."""
    fresh = finetune.transfer_weights(model, entries, init, new_head=new_head)
    say(f"fine-tuning from {init}: " + (f"new head {', '.join(fresh)} for {num_classes} classes"
                                        if fresh else "all weights kept"))
    # the pixels must be prepared as the weights learned them; colour PCA is fitted on the new images
    preprocess.scale, preprocess.mean_image = float(entries["array/scale"]), entries["array/mean_image"]


def set_what_learns(model, freeze, lr_mult, decay_mult, spell=argument):
    """freeze, lr_mult and decay_mult; refuses a model left with nothing to train."""
    finetune.freeze(model, [name for name in freeze.split(",") if name], spell("freeze"))
    finetune.set_multipliers(model, lr_mult, "lr_mult", spell("lr_mult"))
    finetune.set_multipliers(model, decay_mult, "decay_mult", spell("decay_mult"))
    if not any(p.trainable for p in model.parameters()):
        raise ValueError(f"{spell('freeze', freeze)}: leaves nothing to train")
