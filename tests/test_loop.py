"""The training loop's bookkeeping (tinycnn/train.py), each test aimed at a change to it that the rest of the suite
let through in mutation testing (docs/mutation.md): the epoch's record, the arguments SGD gets, which epoch
best.npz keeps, the epoch's line, the BatchNorm edges and the rank that writes."""
import contextlib
import re
import signal

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import checkpoint, data
from tinycnn.runs import build
from tinycnn.stopping import Interrupted
from tinycnn.train import Trainer

CONFIG = dict(variant="mini", num_classes=6, groups=1, input_size=32, positive_bias=1.0)


def trainer_for(out, n_train=42, batch_size=16, classes=6, model=None, progress=False, **kwargs):
    train, val = data.builtin(n_train, 12, 36, seed=0)
    if classes < 6:
        keep = lambda s: s.subset(np.flatnonzero(s.labels < classes))            # noqa: E731
        train, val = data.ImageSet(keep(train).images, keep(train).labels, train.classes[:classes]), keep(val)
    config = dict(CONFIG, num_classes=classes)
    return Trainer(model or build(config, rng=0), config, train, val, data.Preprocess.fit(train.images, 1 / 255),
                   32, str(out), 0, batch_size=batch_size, progress=progress, **kwargs)


def quiet(line):
    pass


def test_the_epochs_record_is_the_mean_loss_and_accuracy_over_its_images(tmp_path):
    trainer = trainer_for(tmp_path)
    seen, forward = [], trainer.loss_fn.forward

    def spy(logits, labels):
        loss = forward(logits, labels)
        seen.append((float(loss) * len(labels), int((logits.argmax(axis=1) == labels).sum()), len(labels)))
        return loss

    trainer.loss_fn.forward = spy
    trainer.fit(1, log=quiet)
    losses, correct, images = np.array(seen).sum(axis=0)
    assert [n for *_, n in seen] == [16, 16, 10] and images == 42
    record = trainer.history[0]
    assert record["train_loss"] == losses / 42                      # float64 sums of float64 products
    assert record["train_top1"] == correct / 42
    assert record["images_per_s"] > 0 and record["epoch"] == 1 and record["lr"] == 0.01


def test_the_trainer_hands_sgd_its_rate_momentum_and_decay(tmp_path):
    sgd = trainer_for(tmp_path, lr=0.03, momentum=0.8, weight_decay=1e-3).optimizer
    assert (sgd.lr, sgd.momentum, sgd.weight_decay) == (0.03, 0.8, 1e-3)


def fixed_validation(trainer, top1s):
    """Validation that scores epoch e at top1s[e - 1]."""
    scores = iter(top1s)
    trainer.validate = lambda: dict(loss=1.0, top1=next(scores), top5=1.0)
    return trainer


def best_epoch(tmp_path):
    return checkpoint.read(str(tmp_path / "best.npz"), meta_only=True)[1]["epoch"]


def test_best_npz_holds_the_epoch_with_the_best_validation_and_a_tie_keeps_the_first(tmp_path):
    fixed_validation(trainer_for(tmp_path / "a"), [0.5, 0.7, 0.6]).fit(3, log=quiet)
    assert best_epoch(tmp_path / "a") == 2
    fixed_validation(trainer_for(tmp_path / "b"), [0.5, 0.5]).fit(2, log=quiet)
    assert best_epoch(tmp_path / "b") == 1


@pytest.mark.parametrize("classes", [6, 5])
def test_the_epoch_line_says_what_the_record_holds_and_top_5_only_beyond_5_classes(tmp_path, classes):
    lines = []
    trainer = fixed_validation(trainer_for(tmp_path, classes=classes), [0.25])
    trainer.fit(1, log=lines.append)
    r = trainer.history[0]
    top5 = "top-5 1.000  " if classes > 5 else ""
    assert lines == [f"epoch 1/1  train loss {r['train_loss']:.4f} top-1 {r['train_top1']:.3f}  val loss 1.0000 "
                     f"top-1 0.250  {top5}lr 0.01  {r['images_per_s']:.0f} img/s"]


def batchnorm_model():
    return tc.Sequential({"conv": tc.Conv2d(3, 4, 3, stride=4, rng=0), "bn": tc.BatchNorm2d(4), "relu": tc.ReLU(),
                          "flatten": tc.Flatten(), "fc8": tc.Dense(4 * 8 * 8, 6, rng=0)})


class SecondOfTwo:
    """The second of two ranks (Ranks' interface): it holds the second half of every batch and never writes."""
    rank, size = 1, 2

    def shares(self, n):
        return [n - n // 2, n // 2]

    def shard(self, n):
        return n - n // 2, n


def test_batchnorm_refuses_a_batch_size_that_leaves_a_rank_one_image_and_takes_two(tmp_path):
    message = "Trainer: batch_size {} gives a rank 1 image per step, and the model's BatchNorm needs at least 2: " \
              "expected a batch size of at least {}"
    with pytest.raises(ValueError, match="^" + re.escape(message.format(1, 2)) + "$"):
        trainer_for(tmp_path, batch_size=1, model=batchnorm_model())
    with pytest.raises(ValueError, match="^" + re.escape(message.format(3, 4)) + "$"):
        trainer_for(tmp_path, batch_size=3, model=batchnorm_model(), ranks=SecondOfTwo())
    trainer_for(tmp_path, batch_size=2, model=batchnorm_model())                  # two images: taken
    trainer_for(tmp_path, batch_size=4, model=batchnorm_model(), ranks=SecondOfTwo())


def test_with_batchnorm_an_epoch_stops_before_a_last_batch_of_one_image_only(tmp_path):
    trainer = trainer_for(tmp_path, batch_size=8, model=batchnorm_model())
    assert [trainer.epoch_end(n) for n in (17, 18, 16, 1)] == [16, 18, 16, 1]   # 1: the epoch's only batch
    two = trainer_for(tmp_path, batch_size=8, model=batchnorm_model(), ranks=SecondOfTwo())
    assert [two.epoch_end(n) for n in (19, 20, 21)] == [16, 20, 21]             # 3 = 2 + 1: a rank would get 1
    plain = trainer_for(tmp_path, batch_size=8)
    assert plain.epoch_end(17) == 17


def test_only_the_writing_rank_shows_progress(tmp_path):
    assert trainer_for(tmp_path, progress=True).progress
    assert not trainer_for(tmp_path, progress=False).progress
    assert not trainer_for(tmp_path, progress=True, ranks=SecondOfTwo()).progress


def test_interrupted_keeps_the_signal_for_the_exit_code(tmp_path):
    trainer = trainer_for(tmp_path)
    step = trainer.train_step

    def signal_during(batch):
        trainer.stop.signum = signal.SIGTERM
        return step(batch)

    trainer.train_step = signal_during
    with pytest.raises(Interrupted) as stopped:
        trainer.fit(1, log=quiet)
    assert stopped.value.signum == signal.SIGTERM
    assert str(stopped.value) == (f"interrupted by SIGTERM at epoch 1, step 1; saved {tmp_path}/last.npz, continue "
                                  f"with --resume")


def test_resume_refuses_a_checkpoint_of_other_data_or_other_classes(tmp_path):
    trainer_for(tmp_path, data_info=dict(path=None, seed=0, train_images=42, val_images=12, per_class=None)).fit(
        1, log=quiet)
    path = str(tmp_path / "last.npz")
    other_data = trainer_for(tmp_path, data_info=dict(path=None, seed=0, train_images=50, val_images=12,
                                                      per_class=None))
    with pytest.raises(checkpoint.CheckpointError, match=re.escape("the run was trained with train_images=42; this "
                                                                   "run asks for train_images=50")):
        other_data.resume(path)
    renamed = trainer_for(tmp_path)
    renamed.train.classes = ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(checkpoint.CheckpointError, match=re.escape("the run was trained on classes ['disc'")):
        renamed.resume(path)


# -- stopping: the signal handlers -----------------------------------------------------------------------------

def test_stop_requests_start_at_no_signal_and_hold_the_handlers_only_within_the_block():
    from tinycnn.stopping import StopRequests
    stop, before = StopRequests(), signal.getsignal(signal.SIGINT)
    assert stop.signum == 0
    with stop as inside:
        assert inside is stop and stop.signum == 0
        assert signal.getsignal(signal.SIGINT) == stop._catch and signal.getsignal(signal.SIGTERM) == stop._catch
        stop._catch(signal.SIGTERM, None)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):             # a second signal: stop at once
            stop._catch(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) == before
    with stop:                                             # a new block forgets the last one's signal
        assert stop.signum == 0


def test_stop_requests_in_a_worker_thread_leave_the_handlers_alone_block_after_block():
    import threading
    from tinycnn.stopping import StopRequests
    stop, seen, errors = StopRequests(), [], []

    def twice():
        try:
            for _ in range(2):
                with stop:
                    seen.append(signal.getsignal(signal.SIGINT))
        except Exception as error:                         # noqa: BLE001 (reported below)
            errors.append(error)

    worker = threading.Thread(target=twice)
    worker.start()
    worker.join()
    assert errors == [] and seen == [signal.getsignal(signal.SIGINT)] * 2


def test_every_training_step_runs_inside_the_trainers_core_share(tmp_path, monkeypatch):
    """The Trainer judges the cores step by step (tinycnn/cores.py): each step of SGD runs inside CoreShare.step,
    told its batch size."""
    trainer = trainer_for(tmp_path, n_train=42, batch_size=16)
    inside, seen, works = [False], [], []
    real_step = trainer.cores.step

    @contextlib.contextmanager
    def watched_step(work):
        works.append(work)
        with real_step(work):
            inside[0] = True
            yield
            inside[0] = False
    monkeypatch.setattr(trainer.cores, "step", watched_step)
    original = trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda batch: (seen.append(inside[0]), original(batch))[1])
    trainer.train_epoch()
    assert seen == [True, True, True]                    # 42 images, batch 16: three steps, each inside
    assert works == [16, 16, 10]                         # each step's work: its batch size
