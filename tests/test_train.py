"""Training, checkpoints and the command line, on tiny runs of the built-in data."""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import checkpoint, data
from tinycnn.data import ten_crops
from tinycnn.models import alexnet
from tinycnn.runs import build, load_checkpoint
from tinycnn.evaluation import evaluate, predict_probs, top_k_correct
from tinycnn.optim import Plateau
from tinycnn.stopping import Interrupted
from tinycnn.train import Trainer, TrainingDiverged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_plateau_divides_after_patience_and_at_most_three_times():
    plateau = Plateau(patience=2, max_drops=3)
    errors = [0.5, 0.4, 0.4, 0.45, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    drops = [plateau.step(e) for e in errors]
    assert [i for i, d in enumerate(drops) if d] == [3, 6, 8]


def test_top_k_counts_labels_among_the_k_largest():
    probs = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
    assert top_k_correct(probs, np.array([2, 0]), 1) == 1
    assert top_k_correct(probs, np.array([2, 2]), 2) == 1
    assert top_k_correct(probs, np.array([2, 2]), 5) == 2          # k larger than the classes: all of them


def small_run(tmp_path, epochs=1, **kwargs):
    train, val = data.builtin(48, 24, 36, seed=0)
    config = dict(variant="mini", num_classes=6, groups=1, input_size=32, positive_bias=1.0)
    model_rng = np.random.default_rng([0, 1])
    model = build(config, rng=model_rng)
    pre = data.Preprocess.fit(train.images, 1 / 255)
    trainer = Trainer(model, config, train, val, pre, 32, str(tmp_path), 0, lr=0.01,
                      batch_size=16, progress=False, **kwargs)
    trainer.fit(epochs, log=lambda line: None)
    return trainer


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    trainer = small_run(tmp_path)
    model, meta = load_checkpoint(str(tmp_path / "last.npz"))
    assert meta["classes"] == list(data.SHAPE_CLASSES) and meta["epoch"] == 1
    images = trainer.val.images
    expected = predict_probs(trainer.model, images, trainer.preprocess, 32)
    np.testing.assert_array_equal(predict_probs(model, images, meta["preprocess"], 32), expected)
    np.testing.assert_array_equal(meta["preprocess"].mean_image, trainer.preprocess.mean_image)


def test_checkpoints_hold_plain_arrays_and_refuse_pickles(tmp_path):
    small_run(tmp_path)
    with np.load(tmp_path / "last.npz", allow_pickle=False) as archive:
        assert "param/conv1.weight" in archive.files and "velocity/fc8.bias" in archive.files
    entries = dict(np.load(tmp_path / "last.npz", allow_pickle=False))
    entries["param/conv1.weight"] = np.array([object()], dtype=object)
    np.savez(tmp_path / "evil.npz", **entries)
    with pytest.raises(checkpoint.CheckpointError, match="refusing to load pickled objects"):
        load_checkpoint(str(tmp_path / "evil.npz"))


def test_corrupt_and_mismatched_checkpoints_are_clear_errors(tmp_path):
    small_run(tmp_path)
    blob = (tmp_path / "last.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="truncated.npz: corrupt or truncated"):
        load_checkpoint(str(tmp_path / "truncated.npz"))
    with pytest.raises(checkpoint.CheckpointError, match="missing.npz: no such file; expected a tinycnn checkpoint"):
        load_checkpoint(str(tmp_path / "missing.npz"))
    other = alexnet(num_classes=3, variant="mini", rng=0, input_size=32)
    entries, _ = checkpoint.read(str(tmp_path / "last.npz"))
    with pytest.raises(checkpoint.CheckpointError, match=r"param/fc8.weight has shape \(6, 256\), the model "
                                                         r"expects \(3, 256\)"):
        checkpoint.restore("last.npz", other, entries)


def test_training_writes_history_last_and_best_and_the_loss_falls(tmp_path):
    trainer = small_run(tmp_path, epochs=3)
    assert [h["epoch"] for h in trainer.history] == [1, 2, 3]
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]
    assert (tmp_path / "last.npz").exists() and (tmp_path / "best.npz").exists()
    assert [h["epoch"] for h in json.loads((tmp_path / "history.json").read_text())] == [1, 2, 3]


def test_ten_crop_prediction_is_the_mean_of_the_ten_views_softmaxes():
    """A linear model on the pixels sees every crop and mirror differently, so averaging shows in the output."""
    images = np.random.default_rng(0).integers(0, 256, (3, 10, 10, 3), dtype=np.uint8)
    model = tc.Sequential({"flatten": tc.Flatten(), "fc": tc.Dense(3 * 8 * 8, 4, rng=0, weight_std=0.5)})
    pre = data.Preprocess.fit(images, 1 / 255)
    views = ten_crops(pre(images), 8).astype(np.float64)                    # (10, N, 3, 8, 8)
    logits = views.reshape(10, 3, -1) @ model["fc"].weight.data.T.astype(np.float64) + model["fc"].bias.data
    softmax = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)  # (10, N, 4), one per view
    assert np.ptp(softmax, axis=0).max() > 0.05                           # the views disagree
    np.testing.assert_allclose(predict_probs(model, images, pre, 8, ten_crop=True), softmax.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(predict_probs(model, images, pre, 8), softmax[4], rtol=1e-5)   # the centre crop
    val = data.ImageSet(images, np.array([0, 1, 2]), ["a", "b", "c", "d"])
    assert evaluate(model, val, pre, 8, ten_crop=True)["loss"] == pytest.approx(
        -np.log(softmax.mean(axis=0)[[0, 1, 2], [0, 1, 2]]).mean(), rel=1e-5)


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, os.path.join(ROOT, "alexnet.py"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_command_line_train_evaluate_predict(tmp_path):
    out = tmp_path / "run"
    done = run_cli("train", "--epochs", "2", "--train-images", "60", "--val-images", "30", "--batch-size", "16",
                   "--out", str(out), "--ten-crop")
    assert done.returncode == 0, done.stderr
    assert "epoch 2/2" in done.stdout and "(10-crop)" in done.stdout
    history = json.loads((out / "history.json").read_text())
    assert {"train_loss", "val_loss", "val_top1", "val_top5", "lr"} <= set(history[0])
    pictures = [name for name in os.listdir(out) if name.endswith(".png")]
    try:
        import matplotlib  # noqa: F401
        assert sorted(pictures) == ["conv1_filters.png", "curves.png"]
    except ImportError:
        assert pictures == []
    done = run_cli("evaluate", "--checkpoint", str(out / "best.npz"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("30 images: loss")
    from PIL import Image
    Image.fromarray(data.make_shapes(1, 36, seed=5)[0][0]).save(tmp_path / "one.png")
    done = run_cli("predict", "--checkpoint", str(out / "best.npz"), str(tmp_path / "one.png"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{tmp_path / 'one.png'}: ") and done.stdout.count(",") == 4
    bad_input_gets_one_line_errors(tmp_path, out)


def bad_input_gets_one_line_errors(tmp_path, out):
    """What a learner gets wrong with files, each answered by one line naming the file and what was expected."""
    blob = (out / "last.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(blob[:len(blob) // 3])
    np.savez(tmp_path / "nan.npz", x=np.full((4, 8, 8, 3), np.nan), y=np.zeros(4, np.int64))
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-images" / "cats").mkdir(parents=True)
    (tmp_path / "no-images" / "cats" / "notes.txt").write_text("not an image")
    for class_name in ("cats", "dogs"):
        (tmp_path / "pets" / class_name).mkdir(parents=True)
        for i in range(2):
            from PIL import Image
            Image.fromarray(data.make_shapes(1, 36, seed=i)[0][0]).save(tmp_path / "pets" / class_name / f"{i}.png")
    checkpoint_ = ["--checkpoint", str(out / "best.npz")]
    for args, message in [
        (["evaluate", "--checkpoint", str(tmp_path / "truncated.npz")], "truncated.npz: corrupt or truncated"),
        (["evaluate", *checkpoint_, "--data", str(tmp_path / "pets")],
         "classes ['cats', 'dogs'] are not among the checkpoint's 6 classes"),
        (["train", "--resume", "--out", str(out), "--variant", "caffe"],
         "last.npz: was written for variant='mini', groups=1, input_size=32; this run asks for "
         "variant='caffe', groups=2, input_size=227"),
        (["train", "--data", str(tmp_path / "nan.npz")], "nan.npz: x: expected finite numbers, got 768 NaN"),
        (["train", "--data", str(tmp_path / "empty")], "empty: expected one sub-folder per class, found no sub-folders"),
        (["train", "--data", str(tmp_path / "no-images")], "cats: class folder has no readable images"),
    ]:
        done = run_cli(*args, *(["--out", str(tmp_path / "new-run")] if args[0] == "train" and "--out" not in args
                                else []))
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "0"], "argument --lr: expected a finite number > 0, got 0"),
    (["train", "--batch-size", "0"], "argument --batch-size: expected a whole number > 0, got 0"),
    (["train", "--variant", "vgg"], "invalid choice: 'vgg'"),
    (["train", "--data", "/no/such/folder", "--out", "/no/such/run"], "/no/such/folder: no such file or folder"),
    (["evaluate", "--checkpoint", "/no/such.npz"], "/no/such.npz: no such file; expected a tinycnn checkpoint"),
    (["train", "--epochs", "0"], "argument --epochs: expected a whole number > 0, got 0"),
    (["train", "--epochs", "two"], "argument --epochs: expected a whole number, got 'two'"),
    (["summary", "--groups", "3"], "argument --groups: invalid choice: 3"),
    (["predict", "--checkpoint", os.path.join(ROOT, "README.md"), "x.png"],
     "README.md: not an .npz archive (it is not a zip file); expected a tinycnn checkpoint"),
])
def test_command_line_errors_are_one_line_without_traceback(args, message):
    done = run_cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_paper_alexnet_takes_a_training_step_at_227():
    model = alexnet(num_classes=4, variant="paper", rng=0)
    x = np.random.default_rng(0).uniform(-100, 100, (2, 3, 227, 227)).astype(np.float32)
    loss_fn = tc.SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(x, training=True), np.array([0, 3]))
    model.backward(loss_fn.backward())
    tc.SGD(model.parameters(), lr=0.01).step()
    assert np.isfinite(loss) and all(np.isfinite(p.data).all() for p in model.parameters())


def test_command_line_trains_on_a_folder_of_images_and_evaluates_it(tmp_path):
    from PIL import Image
    images, labels = data.make_shapes(24, 40, seed=1)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / "photos" / data.SHAPE_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.jpg" if i % 2 else folder / f"{i}.png")
    out = tmp_path / "run"
    done = run_cli("train", "--data", str(tmp_path / "photos"), "--epochs", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "on 18 images of 6 classes" in done.stdout                  # 24 minus one per class held out
    _, meta = load_checkpoint(str(out / "last.npz"))
    assert meta["classes"] == sorted(data.SHAPE_CLASSES, key=data.natural_key)
    done = run_cli("evaluate", "--checkpoint", str(out / "last.npz"))
    assert done.returncode == 0 and done.stdout.startswith("6 images:"), done.stderr
    done = run_cli("evaluate", "--checkpoint", str(out / "last.npz"), "--data", str(tmp_path / "photos"))
    assert done.returncode == 0 and done.stdout.startswith("24 images:"), done.stderr


def test_resume_after_one_epoch_equals_two_epochs_straight(tmp_path):
    straight = small_run(tmp_path / "straight", epochs=2)
    first = small_run(tmp_path / "resumed", epochs=1)
    second = small_run(tmp_path / "other", epochs=0)                   # a fresh trainer, then resume
    second.out_dir = first.out_dir
    second.resume(os.path.join(first.out_dir, "last.npz"))
    second.fit(2, log=lambda line: None)
    for (name, p), q in zip(straight.model.named_parameters(), second.model.parameters()):
        np.testing.assert_array_equal(q.data, p.data, err_msg=name)
    untimed = [[{k: v for k, v in h.items() if k != "images_per_s"} for h in run.history] for run in (second, straight)]
    assert untimed[0] == untimed[1]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_training_saves_a_checkpoint_that_resumes_exactly(tmp_path, signum):
    """The signal lands during epoch 2, just after epoch 1's files and pictures are written (or, on a slow
    machine, later); --resume must then say where it starts and finish with the very weights that an
    uninterrupted run of 4 epochs gives."""
    args = ["--epochs", "4", "--train-images", "160", "--val-images", "24", "--batch-size", "16"]
    cut = tmp_path / "cut"
    process = subprocess.Popen([sys.executable, "-u", os.path.join(ROOT, "alexnet.py"), "train", *args,
                                "--out", str(cut)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in process.stdout:
        if line.startswith("epoch 1/4"):
            break
    last_file = "conv1_filters.png" if importlib.util.find_spec("matplotlib") else "history.json"
    while not (cut / last_file).exists() and process.poll() is None:   # epoch 1 is wholly written
        time.sleep(0.01)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signum, stderr
    stopped = re.fullmatch(rf"alexnet.py train: interrupted by {signal.Signals(signum).name} "
                           rf"(at epoch (\d+), step (\d+)|after epoch (\d+)); saved {cut}/last.npz, continue with "
                           rf"--resume\n", stderr)
    assert stopped, stderr
    resumed = run_cli("train", *args, "--out", str(cut), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    where = stopped[1] + " of 10" if stopped[2] else stopped[1]
    assert resumed.stdout.startswith(f"resumed {cut}/last.npz {where}\n"), resumed.stdout
    straight = run_cli("train", *args, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    a = np.load(tmp_path / "cut" / "last.npz", allow_pickle=False)
    b = np.load(tmp_path / "straight" / "last.npz", allow_pickle=False)
    for key in b.files:
        if key.startswith(("param/", "velocity/", "buffer/")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_signal_after_an_epochs_last_step_stops_at_the_end_of_that_epoch(tmp_path):
    """Ctrl-C while the epoch's checkpoint or pictures are written: the epoch is kept, and no new one begins
    (at the end of the last epoch the signal would otherwise be lost)."""
    trainer = small_run(tmp_path, epochs=0)
    epochs = []

    def signal_arrives(trainer):
        epochs.append(trainer.epoch)
        trainer.stop._catch(signal.SIGINT, None)

    with pytest.raises(Interrupted, match=rf"interrupted by SIGINT after epoch 1; saved {tmp_path}/last.npz"):
        trainer.fit(2, log=lambda line: None, after_epoch=signal_arrives)
    assert epochs == [1]
    assert checkpoint.read(str(tmp_path / "last.npz"), meta_only=True)[1]["epoch"] == 1


def test_an_epoch_cut_short_resumes_only_with_the_batch_size_it_was_cut_with(tmp_path):
    """The saved step counts batches: continued with batches of another size, the rest of the epoch would skip
    or repeat images. Another size is refused in one line; the same size resumes."""
    trainer = small_run(tmp_path, epochs=0)
    first_step = trainer.train_step

    def step_then_signal(batch):                         # Ctrl-C during the first step of epoch 1
        done = first_step(batch)
        trainer.stop.signum = signal.SIGINT
        return done

    trainer.train_step = step_then_signal
    with pytest.raises(Interrupted, match="at epoch 1, step 1"):
        trainer.fit(1, log=lambda line: None)
    for batch_size, refused in ((8, True), (16, False)):
        again = small_run(tmp_path / str(batch_size), epochs=0)
        again.batch_size = batch_size
        if refused:
            with pytest.raises(checkpoint.CheckpointError, match="epoch 1 was interrupted after step 1 with "
                                                                 "batch_size=16; this run asks for batch_size=8"):
                again.resume(str(tmp_path / "last.npz"))
        else:
            assert again.resume(str(tmp_path / "last.npz"))["partial"]["step"] == 1


def test_divergence_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = small_run(tmp_path, epochs=1)
    good = dict(np.load(tmp_path / "last.npz", allow_pickle=False))
    trainer.optimizer.lr = 1e12
    with pytest.raises(TrainingDiverged, match=r"the loss became (nan|inf) at epoch 2, step \d+"):
        trainer.fit(2, log=lambda line: None)
    after = dict(np.load(tmp_path / "last.npz", allow_pickle=False))
    for key, value in good.items():
        if key != "meta":
            np.testing.assert_array_equal(after[key], value, err_msg=key)


def test_non_finite_weights_or_a_failed_write_leave_the_checkpoint_and_the_folder_as_they_were(tmp_path, monkeypatch):
    trainer = small_run(tmp_path, epochs=1)
    before, listing = (tmp_path / "last.npz").read_bytes(), sorted(os.listdir(tmp_path))
    trainer.model["fc8"].weight.data[0, 0] = np.nan
    with pytest.raises(checkpoint.CheckpointError, match="refusing to save param/fc8.weight, it holds NaN or inf"):
        trainer.save(str(tmp_path / "last.npz"))
    trainer.model["fc8"].weight.data[0, 0] = 0

    def disk_full(file, **entries):                                     # a write that fails half-way
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", disk_full)                # numpy.savez, for this test
    with pytest.raises(OSError, match="No space left"):
        trainer.save(str(tmp_path / "last.npz"))
    assert (tmp_path / "last.npz").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing                      # no temporary file left behind


def test_the_same_seed_gives_bit_identical_weights(tmp_path):
    """Parallel kernels included: every reduction runs in a fixed order, whatever the threads do."""
    a = small_run(tmp_path / "a", epochs=2)
    b = small_run(tmp_path / "b", epochs=2)
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


WRITER = """
import sys, numpy as np, tinycnn as tc
from tinycnn import checkpoint
model = tc.Sequential([tc.Dense(2000, 2000, rng=0)])
print("ready", flush=True)
for i in range(10**6):
    model[0].bias.data[:] = i
    checkpoint.save(sys.argv[1], model, {"i": i})
"""


def test_a_writer_killed_mid_write_never_leaves_a_corrupt_checkpoint(tmp_path):
    path = tmp_path / "last.npz"
    for delay in (0.3, 0.55, 0.8):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                                  cwd=ROOT)
        assert writer.stdout.readline().strip() == "ready"
        while not path.exists() and writer.poll() is None:               # a loaded machine may take a while
            time.sleep(0.01)
        time.sleep(delay)
        writer.kill()                                                    # SIGKILL: no chance to clean up
        writer.wait()
        entries, meta = checkpoint.read(str(path))                       # always a whole checkpoint
        assert (entries["param/dense.bias"] == meta["i"]).all()


def test_a_save_removes_what_killed_writers_left_behind_and_nothing_else(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True).stdout.strip()
    dead, alive = tmp_path / f".last.npz.{ended}.tmp", tmp_path / f".last.npz.{os.getppid()}.tmp"
    other = tmp_path / f".best.npz.{ended}.tmp"
    for leftover in (dead, alive, other):
        leftover.write_bytes(b"half a checkpoint")
    checkpoint.save(str(tmp_path / "last.npz"), tc.Sequential([tc.Dense(2, 2, rng=0)]), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.npz", alive.name, other.name])
