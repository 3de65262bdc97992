"""Training and evaluation with the paper's recipe (section 5): SGD with momentum 0.9 and weight decay 5e-4,
the learning rate divided by 10 when validation error stops improving (at most three times), random crops,
flips and PCA colour noise while training, and centre-crop or 10-crop evaluation (top-1 and top-5).
"""
import json
import os
import signal
import threading
import time

import numpy as np

from . import checkpoint
from .data.augment import centre_crop, colour_offsets, crop_flip, draw_crops_flips, ten_crops
from .distributed.data_parallel import DataParallel
from .distributed.ranks import Ranks
from .layers import BatchNorm1d, BatchNorm2d
from .losses import SoftmaxCrossEntropy
from .optim import SGD


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; nothing from the diverged step was saved."""

    every_rank = True        # on several ranks, each sees the summed loss and stops at the same step


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: the step in progress was finished and a resumable checkpoint saved."""

    every_rank = True        # on several ranks, they agree after each step whether any of them got a signal

    def __init__(self, signum, path, epoch, step=None):
        where = f"after epoch {epoch}" if step is None else f"at epoch {epoch}, step {step}"
        super().__init__(f"interrupted by {signal.Signals(signum).name} {where}; saved {path}, continue with --resume")
        self.signum = signum


class Plateau:
    """lr /= 10 when validation top-1 error has not improved for `patience` epochs, at most `max_drops` times."""

    def __init__(self, patience=2, max_drops=3):
        self.patience, self.max_drops = patience, max_drops
        self.best, self.bad_epochs, self.drops = float("inf"), 0, 0

    def step(self, val_error):
        """Record one epoch's validation error; return True if the learning rate should drop now."""
        if val_error < self.best:
            self.best, self.bad_epochs = val_error, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.drops < self.max_drops:
            self.bad_epochs, self.drops = 0, self.drops + 1
            return True
        return False

    def state(self):
        return dict(best=self.best, bad_epochs=self.bad_epochs, drops=self.drops, patience=self.patience,
                    max_drops=self.max_drops)

    def load(self, state):
        self.__dict__.update(state)


def top_k_correct(probs, labels, k):
    """Number of rows whose true label is among the k largest probabilities."""
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def predict_probs(model, images, preprocess, size, batch_size=100, ten_crop=False):
    """Softmax outputs (N, classes) for uint8 images (N, S, S, 3): centre crop, or the mean over ten crops."""
    out = []
    for i in range(0, len(images), batch_size):
        x = preprocess(images[i:i + batch_size])
        views = ten_crops(x, size) if ten_crop else [centre_crop(x, size)]
        probs = 0
        for view in views:
            logits = model.forward(np.ascontiguousarray(view), training=False).astype(np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = probs + e / e.sum(axis=1, keepdims=True)
        out.append(probs / len(views))
    return np.concatenate(out)


def scores(probs, labels):
    """-> dict(loss, top1, top5) of softmax outputs (N, classes): the mean cross-entropy and the accuracies."""
    picked = probs[np.arange(len(labels)), labels]
    return dict(loss=float(-np.mean(np.log(np.maximum(picked, 1e-12)))),
                top1=top_k_correct(probs, labels, 1) / len(labels),
                top5=top_k_correct(probs, labels, 5) / len(labels))


def evaluate(model, data, preprocess, size, batch_size=100, ten_crop=False):
    """-> dict(loss, top1, top5) on an ImageSet: the mean cross-entropy of the (averaged) softmax, accuracies."""
    return scores(predict_probs(model, data.images, preprocess, size, batch_size, ten_crop), data.labels)


def confusion_matrix(predicted, labels, num_classes):
    """counts[t, p]: how many images of true class t were predicted as class p. -> int64 (classes, classes)."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


# The data flags of a run (meta["data"]), with the flag that sets each; which ones matter depends on the source.
DATA_FLAGS = {"path": "--data", "seed": "--seed", "train_images": "--train-images", "val_images": "--val-images",
              "per_class": "--per-class"}


def data_differences(stored, given):
    """The keys of two data descriptions (meta["data"]) that give different images -> list of keys."""
    relevant = ("path", "seed", "per_class") if given["path"] else ("path", "seed", "train_images", "val_images")

    def same(key):
        a, b = stored.get(key), given.get(key)
        if key == "path" and a is not None and b is not None:
            return os.path.realpath(a) == os.path.realpath(b)
        return a == b

    return [key for key in relevant if not same(key)]


def describe_data(info, keys):
    """The flags that chose a run's images, e.g. "--data /photos, --seed 0"."""
    return ", ".join("no --data (the built-in shapes)" if key == "path" and info.get(key) is None
                     else f"{DATA_FLAGS[key]} {info.get(key)}" for key in keys)


def check_resumable(path, config, data_info=None, classes=None):
    """Raise CheckpointError unless the checkpoint at path was written for this config (the keys given), and,
    when given, for this data (data_info: --data and the flags that choose its images) and these class names.
    -> the checkpoint's meta."""
    meta = checkpoint.read(path, meta_only=True)[1]
    written_for = meta.get("config") or {}
    differ = [key for key in config if written_for.get(key) != config[key]]

    def refuse_config(keys):
        raise checkpoint.CheckpointError(
            f"{path}: was written for " + ", ".join(f"{k}={written_for.get(k)!r}" for k in keys)
            + "; this run asks for " + ", ".join(f"{k}={config[k]!r}" for k in keys))

    if set(differ) - {"num_classes"}:            # other classes are told apart by name below
        refuse_config(differ)
    start_again = "resume with the run's own data, or start a new run with another --out"
    changed = data_differences(meta["data"], data_info) if data_info and meta.get("data") else []
    if changed:
        raise checkpoint.CheckpointError(f"{path}: the run was trained with {describe_data(meta['data'], changed)}; "
                                         f"this run asks for {describe_data(data_info, changed)}; {start_again}")
    if classes is not None and meta.get("classes") != list(classes):
        raise checkpoint.CheckpointError(f"{path}: the run was trained on classes {meta.get('classes')}, the data "
                                         f"now has {list(classes)}; {start_again}")
    if differ:
        refuse_config(differ)
    return meta


class Trainer:
    """Trains `model` on ImageSets with the paper's recipe; after every epoch writes out_dir/last.npz,
    out_dir/history.json and, when validation top-1 improved, out_dir/best.npz.

    config: JSON-able description of the model, stored in every checkpoint so it can be rebuilt.
    rng: the Generator that draws data order and augmentation; dropout_rngs: the model's own Generators,
    saved and restored with it so a resumed run continues the same random streams.
    data_info: JSON-able description of the data, stored in checkpoints as meta["data"].
    ranks: the processes training together (tinycnn/distributed/ranks.py; default: this one alone). Each holds
    the whole model and learns from its rows of every batch (tinycnn/distributed/data_parallel.py); rank 0
    alone writes files, logs and draws the progress bar.
    The layers that read the images are told to skip their input gradient (model.skip_input_gradient()).

    An epoch's last batch is dropped when some rank would get one image of it and the model holds BatchNorm
    (one image of a 1x1 map gives one value per channel, whose variance is nothing to normalise by). That is
    PyTorch's drop_last for this one case only: a last batch of several images is trained on. A batch size that
    gives a rank one image in every batch is refused.
    """

    def __init__(self, model, config, train, val, preprocess, input_size, out_dir, rng, lr=0.01, momentum=0.9,
                 weight_decay=5e-4, batch_size=128, pca=True, patience=2, progress=True, dropout_rngs=(),
                 data_info=None, ranks=None):
        if len(val) == 0:
            raise ValueError("Trainer: val holds no images; expected at least one (validation decides when the "
                             "learning rate drops and which epoch is best.npz)")
        self.model, self.config, self.train, self.val = model, config, train, val
        model.skip_input_gradient()
        self.preprocess, self.input_size, self.out_dir, self.rng = preprocess, input_size, out_dir, rng
        self.optimizer = SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.loss_fn = SoftmaxCrossEntropy()
        self.ranks = ranks or Ranks()
        self.writes = self.ranks.rank == 0
        self.parallel = DataParallel(model, self.ranks, (3, input_size, input_size))
        self.batch_size, self.pca, self.progress = batch_size, pca, progress and self.writes
        self.plateau = Plateau(patience)
        self.drop_single = any(isinstance(layer, (BatchNorm1d, BatchNorm2d)) for layer in model.layers())
        fewest = min(self.ranks.shares(batch_size))
        if self.drop_single and fewest < 2:
            raise ValueError(f"Trainer: batch_size {batch_size} gives a rank {fewest} image per step, and the model's "
                             f"BatchNorm needs at least 2: expected a batch size of at least {2 * self.ranks.size}")
        self.dropout_rngs = list(dropout_rngs)
        self.data_info = data_info
        self.epoch, self.history = 0, []
        self.partial = None            # an epoch cut short: (order, next step, (loss sum, correct, seen))
        self._signal = None

    # -- one epoch --------------------------------------------------------------------------------------------
    def augmented_batch(self, index, start=0, stop=None):
        """Rows [start, stop) of the augmented batch of images `index`: the random numbers are drawn for the
        whole batch (as one process training on all of it draws them), and used for these rows only."""
        corners, flips = draw_crops_flips(len(index), self.train.images.shape[1], self.input_size, self.rng)
        colour = colour_offsets(len(index), self.preprocess, self.rng) if self.pca else None
        x = crop_flip(self.preprocess(self.train.images[index[start:stop]]), self.input_size, corners[start:stop],
                      flips[start:stop])
        return x if colour is None else x + colour[start:stop, :, None, None]

    def train_step(self, index, where):
        """One SGD step on the batch of images `index`, this rank learning from its rows of it.
        -> (the batch's summed loss, its correct count), over every rank. where: "epoch E, step S" for messages."""
        start, stop = self.parallel.shard(len(index))
        labels = self.train.labels[index[start:stop]]
        x = self.augmented_batch(index, start, stop)
        if stop > start:
            logits = self.model.forward(x, training=True)
            loss = float(self.loss_fn.forward(logits, labels))
            mine = (loss * len(labels), int((logits.argmax(axis=1) == labels).sum()))
        else:                                    # more ranks than images in this batch: nothing to learn here
            mine = (0.0, 0)
        total_loss, correct = self.ranks.sum(mine) if self.ranks.size > 1 else mine
        if not np.isfinite(total_loss):          # the sum: a NaN on any rank stops every rank
            raise TrainingDiverged(f"the loss became {total_loss / len(index)} at {where}; "
                                   f"try a smaller learning rate (now {self.optimizer.lr:g})")
        share = len(labels) / len(index)
        if stop > start:
            dlogits = self.loss_fn.backward()
            self.model.backward(dlogits if share == 1 else dlogits * dlogits.dtype.type(share))
        else:
            self.parallel.skip()
        self.parallel.sum_gradients(share)
        self.optimizer.step()
        return total_loss, int(correct)

    def train_epoch(self):
        from tqdm import tqdm
        if self.partial is None:
            order, first, (total_loss, correct, seen) = self.rng.permutation(len(self.train)), 0, (0.0, 0, 0)
        else:                                    # finish the epoch an interruption cut short
            order, first, (total_loss, correct, seen) = self.partial
            self.partial = None
        steps = range(first * self.batch_size, self.epoch_end(len(order)), self.batch_size)
        bar = tqdm(steps, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False, mininterval=0.5,
                   disable=None if self.progress else True)         # None: no bar when not a terminal
        start, seen_before = time.perf_counter(), seen
        for step, i in enumerate(bar, start=first):
            index = order[i:i + self.batch_size]
            batch_loss, batch_correct = self.train_step(index, f"epoch {self.epoch + 1}, step {step + 1}")
            total_loss += batch_loss
            correct += batch_correct
            seen += len(index)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{(seen - seen_before) / (time.perf_counter() - start):.0f}")
            signum = self.ranks.largest(self._signal or 0)      # every rank stops after the same step
            if signum:                           # a signal arrived during this step: save and stop
                bar.close()
                self.partial = (order, step + 1, (total_loss, correct, seen))
                path = os.path.join(self.out_dir, "last.npz")
                self.save(path)
                raise Interrupted(signum, path, self.epoch + 1, step + 1)
        bar.close()
        seconds = max(time.perf_counter() - start, 1e-9)
        return dict(train_loss=total_loss / seen, train_top1=correct / seen, images_per_s=(seen - seen_before) / seconds,
                    train_seconds=seconds)

    def epoch_end(self, n):
        """Where an epoch of n images stops: n, or before a last batch that would give a rank one image of it
        when the model holds BatchNorm."""
        last = n % self.batch_size
        if self.drop_single and last and n > last and min(self.ranks.shares(last)) < 2:
            return n - last
        return n

    def _on_signal(self, signum, frame):
        if self._signal is not None:             # a second signal: stop now, without saving
            raise KeyboardInterrupt
        self._signal = signum

    # -- the loop ---------------------------------------------------------------------------------------------
    def fit(self, epochs, log=print, after_epoch=None):
        """Train until `epochs` epochs are done in all (counting those before a resume).

        after_epoch(trainer): called when an epoch's files are written (the command line draws its pictures).
        SIGINT (Ctrl-C) or SIGTERM lets the current step finish, saves a resumable last.npz and raises
        Interrupted; a second signal stops at once.
        """
        handlers, self._signal = {}, None
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._fit(epochs, log, after_epoch)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        return self.history

    def _fit(self, epochs, log, after_epoch):
        while self.epoch < epochs:
            lr = self.optimizer.lr
            record = self.train_epoch()
            self.epoch += 1
            record.update({f"val_{k}": v for k, v in self.validate().items()})
            record.update(epoch=self.epoch, lr=lr)
            self.history.append(record)
            improved = 1 - record["val_top1"] < self.plateau.best
            if self.plateau.step(1 - record["val_top1"]):
                self.optimizer.lr = lr / 10
            top5 = f"top-5 {record['val_top5']:.3f}  " if len(self.train.classes) > 5 else ""   # else always 1
            communication = self.communication(record)
            if self.writes:
                log(f"epoch {self.epoch}/{epochs}  train loss {record['train_loss']:.4f} top-1 "
                    f"{record['train_top1']:.3f}  val loss {record['val_loss']:.4f} top-1 {record['val_top1']:.3f}  "
                    f"{top5}lr {lr:g}  {record['images_per_s']:.0f} img/s{communication}")
            self.save(os.path.join(self.out_dir, "last.npz"))
            if improved:                         # the weights to use; only last.npz keeps momentum to resume
                self.save(os.path.join(self.out_dir, "best.npz"), momentum=False)
            if self.writes:
                with checkpoint.atomic_open(os.path.join(self.out_dir, "history.json"), "w") as f:
                    json.dump(self.history, f, indent=1)
            if after_epoch is not None and self.writes:
                after_epoch(self)
            signum = self.ranks.largest(self._signal or 0)
            if signum:                           # it came after the epoch's last step: last.npz holds the epoch
                raise Interrupted(signum, os.path.join(self.out_dir, "last.npz"), self.epoch)

    def validate(self):
        """-> dict(loss, top1, top5) on the validation images (centre crops). Each rank predicts a slice of them and
        the ranks exchange their softmax outputs (Allgather), so every rank scores all of them alike (and takes
        the same learning-rate decisions)."""
        start, stop = self.ranks.shard(len(self.val))
        probs = (predict_probs(self.model, self.val.images[start:stop], self.preprocess, self.input_size)
                 if stop > start else np.zeros((0, len(self.train.classes))))     # fewer images than ranks
        return scores(self.ranks.rows(probs), self.val.labels)

    def communication(self, record):
        """For the epoch line on several ranks: "  N ranks, communication X% of the time (Y MB per step)", and the
        same in the record; "" on one rank."""
        parallel, seconds = self.parallel, record.pop("train_seconds", None)
        if self.ranks.size == 1 or not parallel.steps:
            return ""
        record.update(communication_s=parallel.seconds, bytes_per_step=parallel.sent / parallel.steps)
        share = parallel.seconds / seconds
        parallel.seconds = parallel.sent = parallel.steps = 0
        return (f"  {self.ranks.size} ranks, communication {100 * share:.0f}% of the time "
                f"({record['bytes_per_step'] / 1e6:.2f} MB per step)")

    # -- checkpoints ------------------------------------------------------------------------------------------
    def save(self, path, momentum=True):
        """Write a checkpoint of the run (rank 0 alone: the other ranks hold the same model); momentum=False
        leaves out SGD's velocities (as large as the weights), which only resuming needs."""
        if not self.writes:
            return
        meta = dict(config=self.config, classes=self.train.classes, data=self.data_info, epoch=self.epoch,
                    lr=self.optimizer.lr,
                    history=self.history, plateau=self.plateau.state(), rng=self.rng.bit_generator.state,
                    dropout_rngs=[g.bit_generator.state for g in self.dropout_rngs], partial=None)
        arrays = self.preprocess.state()
        if self.partial is not None:
            order, step, (total_loss, correct, seen) = self.partial
            meta["partial"] = dict(step=step, batch_size=self.batch_size, total_loss=total_loss, correct=correct,
                                   seen=seen)
            arrays["order"] = order
        checkpoint.save(path, self.model, meta, self.optimizer if momentum else None, arrays=arrays)

    def resume(self, path):
        """Continue from a checkpoint written by save(): weights, momentum, schedule (the learning rate and the
        plateau's count), history, RNG streams and the pixel preparation (scale, mean image, colour PCA: the
        run's own, not one fitted again to the data given now).

        A checkpoint of another model, other data or other classes is refused (CheckpointError)."""
        def read():                              # rank 0 reads, every rank gets it: --out need not be shared
            check_resumable(path, self.config, self.data_info, self.train.classes)
            entries, meta = checkpoint.read(path)
            self._check_same_batches(path, meta)
            return entries, meta

        entries, meta = self.ranks.from_root(read)
        checkpoint.restore(path, self.model, entries, self.optimizer)
        self.preprocess.load({key: entries[f"array/{key}"] for key in self.preprocess.state()})
        self.epoch, self.history, self.optimizer.lr = meta["epoch"], meta["history"], meta["lr"]
        self.plateau.load(meta["plateau"])
        self.rng.bit_generator.state = meta["rng"]
        for g, state in zip(self.dropout_rngs, meta["dropout_rngs"]):
            g.bit_generator.state = state
        if meta.get("partial"):
            p = meta["partial"]
            self.partial = (entries["array/order"], p["step"], (p["total_loss"], p["correct"], p["seen"]))
        return meta

    def _check_same_batches(self, path, meta):
        """An epoch cut short is continued from its saved step, which counts batches: it must go on with batches
        of the size it was cut with, or images of that epoch would be skipped or seen twice."""
        partial = meta.get("partial")
        if not partial or not partial["step"]:
            return
        cut_with = partial.get("batch_size") or partial["seen"] // partial["step"]   # older checkpoints: whole batches
        if cut_with != self.batch_size:
            raise checkpoint.CheckpointError(
                f"{path}: epoch {meta['epoch'] + 1} was interrupted after step {partial['step']} with --batch-size "
                f"{cut_with}; this run asks for --batch-size {self.batch_size}: resume with --batch-size {cut_with}")
