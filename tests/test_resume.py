"""What the Trainer does to the learning rate, and what a resumed run takes back: every piece of state that
could be lost is given a chance to matter (a plateau that drops the rate after the cut, a pixel preparation
unlike the one the data would give now, a cut inside an epoch's short last batch)."""
import signal

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import checkpoint, data
from tinycnn.runs import build
from tinycnn.stopping import Interrupted
from tinycnn.train import Trainer

CONFIG = dict(variant="mini", num_classes=6, groups=1, input_size=32, positive_bias=1.0)


def trainer_for(out, n_train=48, batch_size=16, model=None, preprocess=None, **kwargs):
    """A fresh Trainer of the mini AlexNet (or `model`) on n_train built-in images, seeds fixed."""
    train, val = data.builtin(n_train, 24, 36, seed=0)
    model_rng = np.random.default_rng([0, 1])
    model = model or build(CONFIG, rng=model_rng)
    preprocess = preprocess or data.Preprocess.fit(train.images, 1 / 255)
    return Trainer(model, CONFIG, train, val, preprocess, 32, str(out), 0, lr=0.01,
                   batch_size=batch_size, progress=False, **kwargs)


def quiet(line):
    pass


def constant_validation(trainer):
    """Validation that never improves after the first epoch: the plateau decides every epoch after it."""
    trainer.validate = lambda: dict(loss=1.0, top1=0.5, top5=1.0)
    return trainer


# the rate at epochs 1..6 at patience 1: epoch 1 improves on nothing, then three drops, then no more
PLATEAU_RATES = [0.01, 0.01, 0.001, 0.0001, 0.00001, 0.00001]


def test_the_trainer_divides_the_rate_by_ten_at_each_plateau_at_most_three_times(tmp_path):
    trainer = constant_validation(trainer_for(tmp_path, patience=1))
    history = trainer.fit(6, log=quiet)
    np.testing.assert_allclose([h["lr"] for h in history], PLATEAU_RATES, rtol=1e-12)
    assert trainer.optimizer.lr == pytest.approx(1e-5)


def test_a_resumed_run_keeps_the_plateaus_count_and_drops_the_rate_when_the_straight_run_does(tmp_path):
    """Cut after epoch 3 (the plateau has seen 2 bad epochs, 2 drops): forgetting its state would take
    epoch 4 for an improvement and keep the rate of epoch 5 at 1e-4."""
    constant_validation(trainer_for(tmp_path, patience=1)).fit(3, log=quiet)
    resumed = constant_validation(trainer_for(tmp_path / "other", patience=1))
    resumed.out_dir = str(tmp_path)
    resumed.resume(str(tmp_path / "last.npz"))
    assert resumed.plateau.state() == dict(best=0.5, bad_epochs=0, drops=2, patience=1, max_drops=3)
    history = resumed.fit(6, log=quiet)
    np.testing.assert_allclose([h["lr"] for h in history], PLATEAU_RATES, rtol=1e-12)


def test_resume_restores_the_runs_pixel_preparation_bit_for_bit(tmp_path):
    """The run began with its own scale, mean image and colour PCA (say, a fine-tuned run's, from --init);
    a resume prepares pixels with those, not with statistics fitted again to the data, and best.npz keeps them."""
    train, _ = data.builtin(48, 24, 36, seed=0)
    own = data.Preprocess.fit(train.images[:6], 1 / 255)            # unlike what the 48 images give
    trainer_for(tmp_path, preprocess=own).fit(1, log=quiet)
    refitted = data.Preprocess.fit(train.images, 1 / 255)
    resumed = trainer_for(tmp_path / "other", preprocess=refitted)
    resumed.out_dir = str(tmp_path)
    resumed.resume(str(tmp_path / "last.npz"))
    assert resumed.preprocess is refitted                          # restored in place: the caller's object
    for key, value in own.state().items():
        np.testing.assert_array_equal(getattr(resumed.preprocess, key), value, err_msg=key)
    resumed.validate = lambda: dict(loss=0.0, top1=1.0, top5=1.0)    # epoch 2 improves: best.npz rewritten
    resumed.fit(2, log=quiet)
    entries, _ = checkpoint.read(str(tmp_path / "best.npz"))
    np.testing.assert_array_equal(entries["array/mean_image"], own.mean_image)
    np.testing.assert_array_equal(entries["array/pca_vectors"], own.pca_vectors)


def interrupt_at_step(trainer, cut):
    """Let the trainer's `cut`-th step (counted from 1) finish, then deliver SIGINT as Ctrl-C would."""
    step, steps = trainer.train_step, []

    def step_then_signal(batch):
        done = step(batch)
        steps.append(batch.size)
        if len(steps) == cut:
            trainer.stop.signum = signal.SIGINT
        return done

    trainer.train_step = step_then_signal
    return steps


def test_an_epoch_cut_during_its_short_last_batch_resumes_and_equals_the_straight_run(tmp_path):
    """48 images in batches of 20: 20 + 20 + 8. Cut after the short third step, the saved step (3) times 20 is
    not the images seen (48); the checkpoint keeps the batch size, so --batch-size 20 resumes."""
    straight = trainer_for(tmp_path / "straight", batch_size=20)
    straight.fit(2, log=quiet)
    cut = trainer_for(tmp_path / "cut", batch_size=20)
    assert interrupt_at_step(cut, 3) == []
    with pytest.raises(Interrupted, match="at epoch 1, step 3"):
        cut.fit(2, log=quiet)
    resumed = trainer_for(tmp_path / "cut", batch_size=20)
    assert resumed.resume(str(tmp_path / "cut" / "last.npz"))["partial"]["seen"] == 48
    resumed.fit(2, log=quiet)
    for (name, p), q in zip(straight.model.named_parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(q.data, p.data, err_msg=name)


def test_best_keeps_no_momentum_and_last_keeps_it_to_resume(tmp_path):
    trainer_for(tmp_path).fit(1, log=quiet)
    with np.load(tmp_path / "best.npz", allow_pickle=False) as best, \
            np.load(tmp_path / "last.npz", allow_pickle=False) as last:
        assert "param/fc8.weight" in best.files and not any(k.startswith("velocity/") for k in best.files)
        assert "velocity/fc8.weight" in last.files


def batchnorm_model():
    """conv -> ReLU -> flatten -> dense -> BatchNorm1d -> dense: BatchNorm1d sees one value per feature and image."""
    rng = np.random.default_rng(3)
    return tc.Sequential({"conv1": tc.Conv2d(3, 4, 3, stride=3, rng=rng), "relu": tc.ReLU(), "flatten": tc.Flatten(),
                          "fc7": tc.Dense(4 * 10 * 10, 8, rng=rng), "bn7": tc.BatchNorm1d(8),
                          "fc8": tc.Dense(8, 6, rng=rng)})


def test_batchnorm_trains_when_the_last_batch_holds_one_image_by_dropping_it(tmp_path):
    """49 images in batches of 16: 16 + 16 + 16 + 1. The single image is left out of this epoch (the order is
    new each epoch), as PyTorch's drop_last would; a model without BatchNorm trains on it."""
    trainer = trainer_for(tmp_path, n_train=49, model=batchnorm_model())
    sizes = interrupt_at_step(trainer, cut=0)
    trainer.fit(1, log=quiet)
    assert sizes == [16, 16, 16]
    plain = trainer_for(tmp_path / "plain", n_train=49)
    sizes = interrupt_at_step(plain, cut=0)
    plain.fit(1, log=quiet)
    assert sizes == [16, 16, 16, 1]


def test_batchnorm_refuses_a_batch_size_that_gives_one_image_per_step(tmp_path):
    with pytest.raises(ValueError, match="Trainer: batch_size 1 gives a rank 1 image per step, and the model's "
                                         "BatchNorm needs at least 2: expected a batch size of at least 2"):
        trainer_for(tmp_path, model=batchnorm_model(), batch_size=1)


def test_a_trainer_without_validation_images_is_refused_before_training(tmp_path):
    train, val = data.builtin(48, 24, 36, seed=0)
    empty = data.ImageSet(val.images[:0], val.labels[:0], val.classes)
    with pytest.raises(ValueError, match="Trainer: val holds no images; expected at least one"):
        Trainer(build(CONFIG, rng=0), CONFIG, train, empty, data.Preprocess.fit(train.images, 1 / 255), 32,
                str(tmp_path), 0)
