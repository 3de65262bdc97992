"""Tests written for the mutants that survived the first mutation run (docs/mutation.md): each names the change
to the recipe's code that it would catch. Messages are matched whole, since a user reads them whole."""
import re

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import Parameter, checkpoint, data
from tinycnn.data import Preprocess, centre_crop, pca_colour, random_crop_flip, ten_crops
from tinycnn.losses import MSELoss, SoftmaxCrossEntropy
from tinycnn.optim import SGD
from tinycnn.runs import build
from tinycnn.evaluation import evaluate, predict_probs, scores, top_k_correct
from tinycnn.optim import Plateau
from tinycnn.streams import ImageStreams, epoch_order
from tinycnn.train import Trainer


def raises_exactly(error, message):
    return pytest.raises(error, match="^" + re.escape(message) + "$")


# -- losses ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("logits, got", [([[1.0, 2.0]], "list "), (np.ones((2, 3), np.int64), "int64 (2, 3)"),
                                         (np.ones(3), "float64 (3,)")])
def test_cross_entropy_names_what_it_got_instead_of_float_logits(logits, got):
    with raises_exactly(ValueError, f"SoftmaxCrossEntropy: expected float logits of shape (N, K), got {got}"):
        SoftmaxCrossEntropy().forward(logits, np.zeros(1, np.int64))


@pytest.mark.parametrize("labels, got", [(np.zeros(2), "float64 (2,)"), (np.zeros((2, 1), np.int64), "int64 (2, 1)")])
def test_cross_entropy_wants_integer_labels_one_per_row(labels, got):
    with raises_exactly(ValueError, f"SoftmaxCrossEntropy: expected integer labels of shape (2,), got {got}"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), labels)


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy, MSELoss])
def test_a_loss_backward_before_forward_says_so(loss):
    with raises_exactly(RuntimeError, f"{loss.__name__}: backward called before forward"):
        loss().backward()                            # a new one: what __init__ leaves is what is checked


@pytest.mark.parametrize("prediction, target, message", [
    (np.ones(2, np.int64), np.ones(2), "MSELoss: expected a float array as prediction, got int64"),
    (np.ones(2), [1.0, 2.0], "MSELoss: expected a float array as target, got list")])
def test_mse_names_the_argument_that_is_not_a_float_array(prediction, target, message):
    with raises_exactly(ValueError, message):
        MSELoss().forward(prediction, target)


# -- SGD ------------------------------------------------------------------------------------------------------

def test_sgd_defaults_are_the_papers_and_zero_momentum_or_decay_is_allowed():
    p = Parameter(np.ones(2))
    sgd = SGD([p])
    assert (sgd.lr, sgd.momentum, sgd.weight_decay) == (0.01, 0.9, 5e-4)
    SGD([p], momentum=0.0, weight_decay=0.0)


def test_sgd_skips_a_frozen_parameter_and_still_updates_the_ones_after_it():
    frozen, learning = Parameter(np.ones(2)), Parameter(np.ones(2))
    frozen.trainable = False
    for p in (frozen, learning):
        p.grad[:] = 1.0
    SGD([frozen, learning], lr=0.1, momentum=0.0, weight_decay=0.0).step()
    np.testing.assert_array_equal(frozen.data, [1.0, 1.0])
    np.testing.assert_allclose(learning.data, [0.9, 0.9])


def test_sgd_updates_a_parameter_whose_array_is_not_contiguous():
    p = Parameter(np.ones((2, 3)))
    p.data = np.ones((3, 2)).T                           # a transposed view, as a user may assign
    p.grad[:] = 1.0
    SGD([p], lr=0.1, momentum=0.0, weight_decay=0.0).step()
    np.testing.assert_allclose(p.data, np.full((2, 3), 0.9))


# -- Preprocess -----------------------------------------------------------------------------------------------

def test_preprocess_keeps_its_mean_image_in_float32_and_fits_over_many_chunks():
    """fit sums in chunks of 512 images: 1100 images take three, and every chunk must count."""
    images = np.random.default_rng(0).integers(0, 256, (1100, 2, 3, 3), dtype=np.uint8)
    pre = Preprocess.fit(images, 1 / 255)
    assert pre.mean_image.dtype == np.float32 and pre.mean_image.shape == (3, 2, 3)
    pixels = images.astype(np.float64) / 255
    np.testing.assert_allclose(pre.mean_image, pixels.mean(axis=0).transpose(2, 0, 1), rtol=1e-6)
    values = np.linalg.eigvalsh(np.cov(pixels.reshape(-1, 3).T, bias=True))
    np.testing.assert_allclose(pre.pca_values, values, rtol=1e-4)


def test_grey_images_give_no_colour_direction_and_finite_noise():
    """Grey pixels (R = G = B) have two zero eigenvalues, which rounding may make slightly negative: clipped to 0,
    their square roots stay 0 instead of NaN."""
    grey = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 1), dtype=np.uint8).repeat(3, axis=3)
    pre = Preprocess.fit(grey, 1 / 255)
    assert (pre.pca_values >= 0).all()
    assert np.isfinite(pca_colour(np.zeros((20, 3, 1, 1), np.float32), pre, np.random.default_rng(0))).all()


@pytest.mark.parametrize("images", [np.zeros((2, 4, 4, 3), np.float32), np.zeros((2, 4, 4, 4), np.uint8),
                                    np.zeros((2, 4, 4), np.uint8)])
def test_preprocess_fit_wants_uint8_rgb_images(images):
    with raises_exactly(ValueError, f"Preprocess.fit: expected uint8 images of shape (N, S, S, 3), got "
                                    f"{images.dtype} {images.shape}"):
        Preprocess.fit(images, 1.0)


def test_preprocess_names_the_shape_it_was_fitted_on():
    pre = Preprocess.fit(np.zeros((2, 4, 6, 3), np.uint8), 1.0)
    with raises_exactly(ValueError, "Preprocess: expected images of shape (N, 4, 6, 3), got (2, 5, 5, 3)"):
        pre(np.zeros((2, 5, 5, 3), np.uint8))


# -- crops, flips and colour ----------------------------------------------------------------------------------

def test_about_half_the_crops_are_mirrored_and_the_rest_are_not():
    x = np.arange(2000 * 4, dtype=np.float32).reshape(2000, 1, 2, 2)
    out = random_crop_flip(x, 2, np.random.default_rng(0))
    mirrored = np.all(out == x[:, :, :, ::-1], axis=(1, 2, 3))
    assert np.all(mirrored | np.all(out == x, axis=(1, 2, 3)))
    assert 0.45 < mirrored.mean() < 0.55


def test_pca_colour_adds_one_offset_per_image_drawn_at_the_sigma_given():
    pre = Preprocess.fit(np.random.default_rng(1).integers(0, 256, (20, 4, 4, 3), dtype=np.uint8), 1 / 255)
    x = np.zeros((6, 3, 2, 2), np.float32)
    a = np.random.default_rng(0).normal(0.0, 0.3, (6, 3)).astype(np.float32)
    offsets = (a * np.sqrt(pre.pca_values)) @ pre.pca_vectors.T
    np.testing.assert_allclose(pca_colour(x, pre, np.random.default_rng(0), sigma=0.3),
                               np.broadcast_to(offsets[:, :, None, None], x.shape), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(pca_colour(x, pre, np.random.default_rng(0)),          # the paper's 0.1
                                  pca_colour(x, pre, np.random.default_rng(0), sigma=0.1))


def test_ten_crops_take_each_corner_of_a_window_that_is_not_square():
    x = np.arange(1 * 1 * 5 * 7, dtype=np.float32).reshape(1, 1, 5, 7)
    crops = ten_crops(x, 3)
    for k, (top, left) in enumerate([(0, 0), (0, 4), (2, 0), (2, 4), (1, 2)]):
        np.testing.assert_array_equal(crops[k], x[:, :, top:top + 3, left:left + 3])
    np.testing.assert_array_equal(crops[4], centre_crop(x, 3))


# -- the Trainer and its scores -------------------------------------------------------------------------------

def test_scores_are_the_mean_cross_entropy_and_the_top_1_and_top_5_fractions():
    probs = np.array([[0.7, 0.1, 0.1, 0.05, 0.03, 0.02],     # label 0: top-1
                      [0.1, 0.5, 0.2, 0.1, 0.05, 0.05],      # label 2: top-5, not top-1
                      [0.5, 0.2, 0.1, 0.1, 0.07, 0.03]])     # label 5: neither
    labels = np.array([0, 2, 5])
    got = scores(probs, labels)
    assert got["top1"] == pytest.approx(1 / 3) and got["top5"] == pytest.approx(2 / 3)
    assert got["loss"] == pytest.approx(-np.mean(np.log([0.7, 0.2, 0.03])))


def test_top_k_counts_equal_a_count_by_sorting():
    rng = np.random.default_rng(0)
    probs, labels = rng.random((50, 8)), rng.integers(0, 8, 50)
    ranks = (-probs).argsort(axis=1)
    for k in (1, 2, 3, 8):
        assert top_k_correct(probs, labels, k) == sum(labels[i] in ranks[i, :k] for i in range(50))


def test_the_plateau_defaults_are_the_papers_and_its_state_round_trips():
    plateau = Plateau()
    assert (plateau.patience, plateau.max_drops) == (2, 3)
    for error in (0.5, 0.4, 0.45, 0.45):
        plateau.step(error)
    again = Plateau(patience=7, max_drops=1)
    again.load(plateau.state())
    assert again.state() == dict(best=0.4, bad_epochs=0, drops=1, patience=2, max_drops=3)


def small_trainer(tmp_path, **kwargs):
    train, val = data.builtin(24, 12, 36, seed=0)
    config = dict(variant="mini", num_classes=6, groups=1, input_size=32, positive_bias=1.0)
    return Trainer(build(config, rng=0), config, train, val, Preprocess.fit(train.images, 1 / 255), 32,
                   str(tmp_path), 5, progress=False, **kwargs)


def test_the_trainers_defaults_are_the_papers_recipe(tmp_path):
    trainer = small_trainer(tmp_path)
    sgd = trainer.optimizer
    assert (sgd.lr, sgd.momentum, sgd.weight_decay) == (0.01, 0.9, 5e-4)
    assert (trainer.batch_size, trainer.pca, trainer.plateau.patience) == (128, True, 2)


@pytest.mark.parametrize("pca, epoch", [(True, 0), (False, 0), (True, 2)])
def test_a_training_batch_is_cropped_flipped_and_coloured_from_its_images_streams(tmp_path, pca, epoch):
    trainer = small_trainer(tmp_path, pca=pca, batch_size=10)
    trainer.epoch = epoch
    batch = list(trainer.batches())[1]                         # the second batch: places 10..19 of the epoch
    np.testing.assert_array_equal(batch.images, epoch_order(5, epoch, 24)[10:20])
    x, labels = trainer.augment(batch)
    rng = ImageStreams(5, epoch, np.arange(10, 20))           # seed 5
    expected = random_crop_flip(trainer.preprocess(trainer.train.images[batch.images]), 32, rng)
    if pca:
        expected = pca_colour(expected, trainer.preprocess, rng)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(labels, trainer.train.labels[batch.images])
    assert [(b.step, b.size, b.share) for b in trainer.batches()] == [(0, 10, 1.0), (1, 10, 1.0), (2, 4, 1.0)]


def test_predictions_stay_finite_for_huge_logits_and_evaluation_takes_the_centre_crop(tmp_path):
    trainer = small_trainer(tmp_path)
    trainer.model["fc8"].weight.data *= 1e6                     # logits of about 1e5
    probs = predict_probs(trainer.model, trainer.val.images, trainer.preprocess, 32)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    assert evaluate(trainer.model, trainer.val, trainer.preprocess, 32) == scores(probs, trainer.val.labels)


# -- checkpoints ----------------------------------------------------------------------------------------------

def bn_model(rng=0):
    return tc.Sequential({"conv1": tc.Conv2d(3, 2, 3, rng=rng), "bn1": tc.BatchNorm2d(2)})


def test_a_checkpoint_gives_back_the_buffers_and_names_one_that_is_missing(tmp_path):
    model = bn_model()
    model["bn1"].running_mean[:] = [0.5, -1.5]
    model["bn1"].running_var[:] = [2.0, 3.0]
    checkpoint.save(str(tmp_path / "c.npz"), model, {"epoch": 0})
    entries, meta = checkpoint.read(str(tmp_path / "c.npz"))
    again = bn_model(rng=1)
    checkpoint.restore("c.npz", again, entries)
    np.testing.assert_array_equal(again["bn1"].running_mean, [0.5, -1.5])
    np.testing.assert_array_equal(again["bn1"].running_var, [2.0, 3.0])
    del entries["buffer/bn1.running_var"]
    with raises_exactly(checkpoint.CheckpointError, "c.npz: missing buffer/bn1.running_var"):
        checkpoint.restore("c.npz", again, entries)


def test_a_checkpoint_of_another_model_names_what_is_missing_and_unexpected(tmp_path):
    checkpoint.save(str(tmp_path / "c.npz"), bn_model(), {})
    entries, _ = checkpoint.read(str(tmp_path / "c.npz"))
    other = tc.Sequential({"conv9": tc.Conv2d(3, 2, 3, rng=0), "bn1": tc.BatchNorm2d(2)})
    with raises_exactly(checkpoint.CheckpointError, "c.npz: parameters do not match the model (missing "
                        "['conv9.bias', 'conv9.weight'], unexpected ['conv1.bias', 'conv1.weight'])"):
        checkpoint.restore("c.npz", other, entries)


def test_npz_files_that_are_not_checkpoints_are_named_for_what_they_are(tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with raises_exactly(checkpoint.CheckpointError, f"{tmp_path}/plain.npz: not a tinycnn checkpoint (no 'meta' "
                                                    f"entry)"):
        checkpoint.read(str(tmp_path / "plain.npz"))
    np.savez(tmp_path / "bad.npz", meta=np.array("{"))
    with pytest.raises(checkpoint.CheckpointError, match="bad.npz: not a tinycnn checkpoint \\(its 'meta' entry is "
                                                         "not JSON: "):
        checkpoint.read(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "empty.npz")                       # an empty zip starts PK\x05\x06
    assert checkpoint.read_npz(str(tmp_path / "empty.npz")) == {}
    with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path))}: cannot be read \\(Is a directory\\); "
                                         f"expected an .npz archive of arrays$"):
        checkpoint.read_npz(str(tmp_path))


def test_a_zip_of_garbage_and_a_truncated_archive_say_what_numpy_found(tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / "garbage.npz", "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00\x10\x00{not a header}   \n")   # magic, then garbage
    with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path))}/garbage.npz: not a readable .npz archive \\("):
        checkpoint.read_npz(str(tmp_path / "garbage.npz"))
    np.savez(tmp_path / "whole.npz", x=np.zeros(1000))
    blob = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(ValueError, match="cut.npz: corrupt or truncated .npz archive \\(BadZipFile: "):
        checkpoint.read_npz(str(tmp_path / "cut.npz"))


# -- evaluation ---------------------------------------------------------------------------------------------------

def test_top_k_counts_as_a_full_sort_does():
    probs = np.random.default_rng(3).random((300, 10))
    labels = np.random.default_rng(4).integers(0, 10, 300)
    for k in (1, 2, 3, 5, 10):
        top = np.argsort(-probs, axis=1)[:, :k]
        assert top_k_correct(probs, labels, k) == int((top == labels[:, None]).any(axis=1).sum()), k


def test_predictions_are_float64_softmax_outputs(tmp_path):
    trainer = small_trainer(tmp_path)
    probs = predict_probs(trainer.model, trainer.val.images[:5], trainer.preprocess, 32)
    assert probs.dtype == np.float64 and probs.shape == (5, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-12)


def test_the_confusion_matrix_counts_true_class_by_predicted_class():
    from tinycnn.evaluation import confusion_matrix
    predicted, labels = np.array([0, 1, 1, 1, 2]), np.array([0, 1, 0, 0, 2])
    counts = confusion_matrix(predicted, labels, 4)                     # two 0s taken for 1s
    np.testing.assert_array_equal(counts, [[1, 2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    assert counts.dtype == np.int64
