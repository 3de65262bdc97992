"""Training with the paper's recipe (section 5): SGD with momentum 0.9 and weight decay 5e-4, the learning rate
divided by 10 when validation error stops improving (at most three times), and random crops, flips and PCA colour
noise on every training image.

Read it from the top down:

    Trainer.fit(epochs)         epoch after epoch: train, validate, adjust the learning rate, save
    Trainer.train_epoch()       one step of SGD on each batch, in the epoch's order
    Trainer.train_step(batch)   augment, forward, loss, backward, step

What hangs off the loop lives in its own file: every image's random numbers (streams.py), scoring
(evaluation.py), the learning-rate schedule (optim.py), signals (stopping.py), checkpoints (checkpoint.py,
resume_checks.py) and several processes (distributed/data_parallel.py).
"""
import json
import os
import time
from typing import NamedTuple

import numpy as np

from . import checkpoint
from .cores import CoreShare
from .data.augment import pca_colour, random_crop_flip
from .distributed.data_parallel import DataParallel
from .distributed.ranks import Ranks
from .evaluation import predict_probs, scores
from .layers import BatchNorm1d, BatchNorm2d
from .losses import SoftmaxCrossEntropy
from .optim import SGD, Plateau
from .resume_checks import check_resumable
from .spelling import argument
from .stopping import Interrupted, StopRequests
from .streams import ImageStreams, epoch_order


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; nothing from the diverged step was saved."""

    every_rank = True        # on several ranks, each sees the summed loss and stops at the same step


class Batch(NamedTuple):
    """This rank's part of one batch: images (indices into the training set), their random streams, and share =
    how many they are over the whole batch's size (1 on one rank)."""
    step: int                # 0, 1, ... within the epoch
    size: int                # the whole batch's images, over every rank
    images: np.ndarray
    rng: ImageStreams
    share: float


class Trainer:
    """Trains `model` on ImageSets with the paper's recipe; after every epoch writes out_dir/last.npz,
    out_dir/history.json and, when validation top-1 improved, out_dir/best.npz.

    config: JSON-able description of the model, stored in every checkpoint so it can be rebuilt.
    seed: an int >= 0 that fixes every epoch's order and every image's crop, flip, colour noise and dropout masks
    (tinycnn/streams.py): the same seed gives the same run, on one process or several, resumed or not.
    data_info: JSON-able description of the data, stored in checkpoints as meta["data"].
    ranks: the processes training together (tinycnn/distributed/ranks.py; default: this one alone). Each holds
    the whole model and learns from its images of every batch; rank 0 alone writes files, logs and draws the
    progress bar.

    An epoch's last batch is dropped when some rank would get one image of it and the model holds BatchNorm
    (one image of a 1x1 map gives one value per channel, whose variance is nothing to normalise by). That is
    PyTorch's drop_last for this one case only: a last batch of several images is trained on. A batch size that
    gives a rank one image in every batch is refused.
    """

    def __init__(self, model, config, train, val, preprocess, input_size, out_dir, seed, lr=0.01, momentum=0.9,
                 weight_decay=5e-4, batch_size=128, pca=True, patience=2, progress=True, data_info=None, ranks=None):
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"Trainer: seed must be a whole number >= 0 (it keys every image's random numbers), "
                             f"got {seed!r}")
        if len(val) == 0:
            raise ValueError("Trainer: val holds no images; expected at least one (validation decides when the "
                             "learning rate drops and which epoch is best.npz)")
        self.model, self.config, self.train, self.val = model, config, train, val
        model.skip_input_gradient()              # the layers that read the images need not compute dL/dx
        self.preprocess, self.input_size, self.out_dir, self.seed = preprocess, input_size, out_dir, int(seed)
        self.optimizer = SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.loss_fn = SoftmaxCrossEntropy()
        self.ranks = ranks or Ranks()
        self.writes = self.ranks.rank == 0
        self.parallel = DataParallel(model, self.ranks)
        self.batch_size, self.pca, self.progress = batch_size, pca, progress and self.writes
        self.plateau = Plateau(patience)
        self.drop_single = any(isinstance(layer, (BatchNorm1d, BatchNorm2d)) for layer in model.layers())
        fewest = min(self.ranks.shares(batch_size))
        if self.drop_single and fewest < 2:
            raise ValueError(f"Trainer: batch_size {batch_size} gives a rank {fewest} image per step, and the model's "
                             f"BatchNorm needs at least 2: expected a batch size of at least {2 * self.ranks.size}")
        self.data_info = data_info
        self.epoch, self.history = 0, []
        self.cut = None                # an epoch cut short: (its next step, (loss sum, correct, images seen))
        self.stop = StopRequests()
        self.cores = CoreShare()

    # -- the loop ---------------------------------------------------------------------------------------------
    def fit(self, epochs, log=print, after_epoch=None):
        """Train until `epochs` epochs are done in all (counting those before a resume). -> the history.

        after_epoch(trainer): called when an epoch's files are written (the command line draws its pictures).
        SIGINT (Ctrl-C) or SIGTERM lets the current step finish, saves a resumable last.npz and raises
        Interrupted; a second signal stops at once.
        """
        with self.stop:
            while self.epoch < epochs:
                lr = self.optimizer.lr
                record = self.train_epoch()
                self.epoch += 1
                record.update({f"val_{k}": v for k, v in self.validate().items()}, epoch=self.epoch, lr=lr)
                improved = 1 - record["val_top1"] < self.plateau.best
                if self.plateau.step(1 - record["val_top1"]):
                    self.optimizer.lr = lr / 10
                self.history.append(record)
                self.end_epoch(record, epochs, improved, log, after_epoch)
        return self.history

    def train_epoch(self):
        """One epoch: a step of SGD on each batch, in the epoch's order.
        -> dict(train_loss, train_top1, images_per_s, train_seconds) over the epoch's images."""
        first, (total_loss, correct, seen) = self.cut or (0, (0.0, 0, 0))
        self.cut = None
        bar = self.progress_bar(first)
        start, seen_before = time.perf_counter(), seen
        for batch in self.batches(first):
            with self.cores.step(batch.size):            # fewer threads while other programs have the cores
                batch_loss, batch_correct = self.train_step(batch)
            total_loss, correct, seen = total_loss + batch_loss, correct + batch_correct, seen + batch.size
            bar.update()
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{(seen - seen_before) / (time.perf_counter() - start):.0f}")
            signum = self.ranks.largest(self.stop.signum)      # a signal on any rank: every rank stops here
            if signum:
                bar.close()
                self.cut = (batch.step + 1, (total_loss, correct, seen))
                raise Interrupted(signum, self.save_last(), self.epoch + 1, batch.step + 1)
        bar.close()
        seconds = max(time.perf_counter() - start, 1e-9)
        return dict(train_loss=total_loss / seen, train_top1=correct / seen, images_per_s=(seen - seen_before) / seconds,
                    train_seconds=seconds)

    def train_step(self, batch):
        """One step of SGD on the batch, this rank learning from its images of it.
        -> (the whole batch's summed loss, how many of its images the model got right), over every rank."""
        if not len(batch.images):                # several ranks, a last batch of fewer images: none for this one
            return self.idle_step(batch)
        x, labels = self.augment(batch)
        logits = self.model.forward(x, training=True, rng=batch.rng)
        loss = float(self.loss_fn.forward(logits, labels))
        sums = self.batch_sums(batch, loss * len(labels), int((logits.argmax(axis=1) == labels).sum()))
        self.model.backward(self.loss_fn.backward() * batch.share)
        self.parallel.sum_gradients(batch.share)           # several ranks: each gets the whole batch's gradient
        self.optimizer.step()
        return sums

    # -- what the loop calls ----------------------------------------------------------------------------------
    def batches(self, first=0):
        """This rank's part of each batch of the epoch, from step `first` on. -> Batch, ..."""
        order, n = epoch_order(self.seed, self.epoch, len(self.train)), len(self.train)
        for step, i in enumerate(self.batch_starts(first), start=first):
            places = np.arange(i, min(i + self.batch_size, n))        # the batch's places in the epoch's order
            start, stop = self.ranks.shard(len(places))
            mine = places[start:stop]
            yield Batch(step, len(places), order[mine], ImageStreams(self.seed, self.epoch, mine),
                        len(mine) / len(places))

    def augment(self, batch):
        """The batch's images as training shows them: prepared, a random crop, flipped or not, colour noise.
        -> (x (b, 3, size, size) float32, labels (b,))."""
        x = random_crop_flip(self.preprocess(self.train.images[batch.images]), self.input_size, batch.rng)
        if self.pca:
            x = pca_colour(x, self.preprocess, batch.rng)
        return x, self.train.labels[batch.images]

    def batch_sums(self, batch, loss_sum, correct):
        """This rank's summed loss and correct count -> the whole batch's, on every rank; a NaN or infinite loss on
        any rank stops every rank before the step changes a weight."""
        loss_sum, correct = self.ranks.sum((loss_sum, correct)) if self.ranks.size > 1 else (loss_sum, correct)
        if not np.isfinite(loss_sum):
            raise TrainingDiverged(f"the loss became {loss_sum / batch.size} at epoch {self.epoch + 1}, step "
                                   f"{batch.step + 1}; try a smaller learning rate (now {self.optimizer.lr:g})")
        return float(loss_sum), int(correct)

    def idle_step(self, batch):
        """A rank with no image of a batch takes part in the step all the same: it adds nothing to the sums and
        zero gradients, and applies the same update as the others."""
        sums = self.batch_sums(batch, 0.0, 0)
        self.parallel.sum_gradients(0.0)
        self.optimizer.step()
        return sums

    def epoch_end(self, n):
        """Where an epoch of n images stops: n, or before a last batch that would give a rank one image of it
        when the model holds BatchNorm."""
        last = n % self.batch_size
        if self.drop_single and last and n > last and min(self.ranks.shares(last)) < 2:
            return n - last
        return n

    def batch_starts(self, first=0):
        """Where in the epoch's order each batch from step `first` on begins: a range of places."""
        return range(first * self.batch_size, self.epoch_end(len(self.train)), self.batch_size)

    def progress_bar(self, first):
        from tqdm import tqdm
        return tqdm(total=len(self.batch_starts(first)), desc=f"epoch {self.epoch + 1}", unit="batch", leave=False, mininterval=0.5,
                    disable=None if self.progress else True)         # None: no bar when not a terminal

    def validate(self):
        """-> dict(loss, top1, top5) on the validation images (centre crops). Each rank predicts a slice of them and
        the ranks exchange their softmax outputs (Allgather), so every rank scores all of them alike (and takes
        the same learning-rate decisions)."""
        start, stop = self.ranks.shard(len(self.val))
        probs = (predict_probs(self.model, self.val.images[start:stop], self.preprocess, self.input_size)
                 if stop > start else np.zeros((0, len(self.train.classes))))     # fewer images than ranks
        return scores(self.ranks.rows(probs), self.val.labels)

    def end_epoch(self, record, epochs, improved, log, after_epoch):
        """The epoch's line, last.npz, best.npz when validation improved, history.json and after_epoch; then stop
        if a signal came after the epoch's last step (last.npz holds the whole epoch)."""
        top5 = f"top-5 {record['val_top5']:.3f}  " if len(self.train.classes) > 5 else ""   # else always 1
        communication = self.parallel.report(record)
        if self.writes:
            log(f"epoch {self.epoch}/{epochs}  train loss {record['train_loss']:.4f} top-1 "
                f"{record['train_top1']:.3f}  val loss {record['val_loss']:.4f} top-1 {record['val_top1']:.3f}  "
                f"{top5}lr {record['lr']:g}  {record['images_per_s']:.0f} img/s{communication}")
        last = self.save_last()
        if improved:                             # the weights to use; only last.npz keeps momentum to resume
            self.save(os.path.join(self.out_dir, "best.npz"), momentum=False)
        if self.writes:
            with checkpoint.atomic_open(os.path.join(self.out_dir, "history.json"), "w") as f:
                json.dump(self.history, f, indent=1)
        if after_epoch is not None and self.writes:
            after_epoch(self)
        signum = self.ranks.largest(self.stop.signum)
        if signum:
            raise Interrupted(signum, last, self.epoch)

    # -- checkpoints ------------------------------------------------------------------------------------------
    def save_last(self):
        """Write out_dir/last.npz, the checkpoint a resume continues from. -> its path."""
        path = os.path.join(self.out_dir, "last.npz")
        self.save(path)
        return path

    def save(self, path, momentum=True):
        """Write a checkpoint of the run (rank 0 alone: the other ranks hold the same model); momentum=False
        leaves out SGD's velocities (as large as the weights), which only resuming needs."""
        if not self.writes:
            return
        meta = dict(config=self.config, classes=self.train.classes, data=self.data_info, epoch=self.epoch,
                    lr=self.optimizer.lr, history=self.history, plateau=self.plateau.state(), seed=self.seed,
                    partial=None)
        if self.cut is not None:
            step, (total_loss, correct, seen) = self.cut
            meta["partial"] = dict(step=step, batch_size=self.batch_size, total_loss=total_loss, correct=correct,
                                   seen=seen)
        checkpoint.save(path, self.model, meta, self.optimizer if momentum else None, arrays=self.preprocess.state())

    def resume(self, path, spell=argument):
        """Continue from a checkpoint written by save(): weights, momentum, schedule (the learning rate and the
        plateau's count), history, where an epoch was cut, and the pixel preparation (scale, mean image, colour
        PCA: the run's own, not one fitted again to the data given now). The random numbers need no state: they
        follow from (seed, epoch, image).

        A checkpoint of another model, other data, other classes or another seed is refused (CheckpointError);
        spell: how its message names the arguments (tinycnn/spelling.py)."""
        def read():                              # rank 0 reads, every rank gets it: --out need not be shared
            check_resumable(path, self.config, self.data_info, self.train.classes, spell)
            entries, meta = checkpoint.read(path)
            self._check_same_stream(path, meta, spell)
            self._check_same_batches(path, meta, spell)
            return entries, meta

        entries, meta = self.ranks.from_root(read)
        checkpoint.restore(path, self.model, entries, self.optimizer)
        self.preprocess.load({key: entries[f"array/{key}"] for key in self.preprocess.state()})
        self.epoch, self.history, self.optimizer.lr = meta["epoch"], meta["history"], meta["lr"]
        self.plateau.load(meta["plateau"])
        if meta.get("partial"):
            p = meta["partial"]
            self.cut = (p["step"], (p["total_loss"], p["correct"], p["seen"]))
        return meta

    def _check_same_stream(self, path, meta, spell):
        """The run's random numbers follow from its seed: another seed, or a checkpoint of a version whose numbers
        came from the process's Generators (it holds their states), cannot continue the same run."""
        if "seed" not in meta:
            raise checkpoint.CheckpointError(
                f"{path}: was written by an older tinycnn, whose random numbers came from Generators kept in the "
                f"checkpoint; today's follow from the seed and each image, so the run cannot go on as it began. "
                f"Start a new run from its weights ({spell('init', path)}), or finish it with that version")
        if meta["seed"] != self.seed:
            raise checkpoint.CheckpointError(f"{path}: the run was trained with {spell('seed', meta['seed'])}; this run "
                                             f"asks for {spell('seed', self.seed)}: resume with "
                                             f"{spell('seed', meta['seed'])}")

    def _check_same_batches(self, path, meta, spell):
        """An epoch cut short is continued from its saved step, which counts batches: it must go on with batches
        of the size it was cut with, or images of that epoch would be skipped or seen twice."""
        partial = meta.get("partial")
        if partial and partial["step"] and partial["batch_size"] != self.batch_size:
            raise checkpoint.CheckpointError(
                f"{path}: epoch {meta['epoch'] + 1} was interrupted after step {partial['step']} with "
                f"{spell('batch_size', partial['batch_size'])}; this run asks for {spell('batch_size', self.batch_size)}: "
                f"resume with {spell('batch_size', partial['batch_size'])}")
