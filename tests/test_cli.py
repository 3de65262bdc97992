"""The command line as a user meets it (issue 13): real files made here, `alexnet.main(argv)` in this process (a
subprocess where a signal is sent), and for every refusal the exit code, the one line on stderr and a run
folder left byte for byte as it was."""
import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import alexnet
import tinycnn.setup_run
from tinycnn import checkpoint, data, plots

Image = pytest.importorskip("PIL.Image")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--train-images", "24", "--val-images", "12", "--input-size", "16", "--epochs", "1", "--batch-size", "8"]


def cli(*args):
    """alexnet.py ARGS in this process -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = alexnet.main([str(a) for a in args])
        except SystemExit as stop:                       # argparse's refusals
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def refused(code, err, *fragments):
    """Exit code 2 and exactly one line on stderr holding every fragment, no traceback."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert str(fragment) in err, err


def snapshot(folder):
    """{file name: bytes} of every file in folder, hidden ones (temporary files) included."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def save_shapes(folder, classes, per_class, seed=1, size=20):
    """per_class generated images of each class name, drawn as shape classes 0, 1, ... so they differ."""
    images, labels = data.make_shapes(per_class * 6, size, seed=seed)
    for k, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images[labels == k]):
            Image.fromarray(image).save(folder / name / f"{i}.png")


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """A one-epoch run on the built-in shapes (6 classes)."""
    out = tmp_path_factory.mktemp("shapes") / "run"
    code, stdout, err = cli("train", *TINY, "--out", out)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """A one-epoch run on a folder of 3 classes with a broken file -> (photos folder, run folder, stderr)."""
    base = tmp_path_factory.mktemp("photos")
    save_shapes(base / "photos", ["a", "b", "c"], 4)
    (base / "photos" / "b" / "broken.jpg").write_text("not a jpeg")
    code, _, err = cli("train", "--data", base / "photos", *TINY, "--out", base / "run")
    assert code == 0, err
    return base / "photos", base / "run", err


# -- runs that must not be lost ------------------------------------------------------------------------------

def test_train_refuses_a_folder_holding_a_run_and_leaves_it_byte_for_byte(shapes_run, tmp_path, monkeypatch):
    before = snapshot(shapes_run)
    refused(*cli("train", *TINY, "--out", shapes_run)[::2], f"--out {shapes_run}: already holds a run",
            "continue it with --resume", "another --out", "--overwrite")
    assert snapshot(shapes_run) == before
    (tmp_path / "runs").mkdir()
    shutil.copytree(shapes_run, tmp_path / "runs" / "alexnet")
    monkeypatch.chdir(tmp_path)                          # the default --out, runs/alexnet
    refused(*cli("train", *TINY)[::2], "--out runs/alexnet: already holds a run")
    assert snapshot(tmp_path / "runs" / "alexnet") == before
    refused(*cli("train", *TINY, "--resume", "--overwrite")[::2], "--resume and --overwrite: expected one")


def test_overwrite_starts_afresh_and_the_curves_are_redrawn_after_every_epoch(shapes_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(shapes_run, run)
    (run / "best_confusion.png").write_bytes(b"an old run's picture")
    drawn = []

    def spy(history, weight, out_dir):
        drawn.append(len(history))
        return plots.save_run_pictures(history, weight, out_dir)

    monkeypatch.setattr(alexnet, "save_run_pictures", spy)
    code, out, err = cli("train", *TINY, "--epochs", "2", "--seed", "1", "--out", run, "--overwrite")
    assert code == 0, err
    assert drawn == [1, 2]                               # a run stopped after epoch 1 has its pictures
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2]
    assert checkpoint.read(str(run / "last.npz"), meta_only=True)[1]["data"]["seed"] == 1
    assert not (run / "best_confusion.png").exists()     # nothing of the old run is left to mislead


def test_the_epoch_axis_of_the_curves_has_whole_number_ticks():
    history = [dict(epoch=e, train_loss=1 / e, val_loss=1 / e, train_top1=0.5, val_top1=0.5) for e in (1, 2, 3)]
    fig = plots.curves_figure(history)
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(t == int(t) for t in ticks), ticks
    plots.pyplot().close(fig)


def test_resume_with_other_data_is_refused_before_any_training(shapes_run, photo_run):
    before = snapshot(shapes_run)
    for args, message in [
        (["--data", photo_run[0]], f"the run was trained with no --data (the built-in shapes); this run asks for "
                                   f"--data {photo_run[0]}"),
        (["--seed", "1"], "the run was trained with --seed 0; this run asks for --seed 1"),
        (["--train-images", "30"], "the run was trained with --train-images 24; this run asks for --train-images 30"),
    ]:
        code, _, err = cli("train", *TINY, "--out", shapes_run, "--resume", *args)
        refused(code, err, f"{shapes_run}/last.npz: " + message, "start a new run with another --out")
    assert snapshot(shapes_run) == before
    photos, run, _ = photo_run                           # the same folder, now with another class
    before = snapshot(run)
    save_shapes(photos, ["d"], 4)
    try:
        code, out, err = cli("train", "--data", photos, *TINY, "--out", run, "--resume")
    finally:
        shutil.rmtree(photos / "d")
    assert err.splitlines()[-1].endswith(f"{run}/last.npz: the run was trained on classes ['a', 'b', 'c'], the "
                                         f"data now has ['a', 'b', 'c', 'd']; resume with the run's own data, or "
                                         f"start a new run with another --out"), err
    assert code == 2 and "epoch" not in out and snapshot(run) == before


def test_resume_continues_after_the_last_epoch(shapes_run, tmp_path):
    shutil.copytree(shapes_run, tmp_path / "run")
    code, out, err = cli("train", *TINY, "--epochs", "2", "--out", tmp_path / "run", "--resume")
    assert code == 0, err
    assert f"resumed {tmp_path / 'run' / 'last.npz'} after epoch 1\n" in out and "epoch 2/2" in out


def test_an_out_folder_without_write_permission_is_refused_first(tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir(mode=0o500)
    monkeypatch.setattr(checkpoint.os, "access", lambda path, mode: path != str(tmp_path / "locked"))  # even as root
    refused(*cli("train", "--data", "/no/such/folder", "--out", tmp_path / "locked" / "run")[::2],
            f"--out {tmp_path}/locked/run: cannot be written, no permission to write in {tmp_path}/locked")


def test_an_out_that_cannot_be_a_folder_is_refused_before_any_data_is_loaded(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    for out, message in [(tmp_path / "file", f"--out {tmp_path}/file: is a file; expected a folder"),
                         (tmp_path / "file" / "run", f"--out {tmp_path}/file/run: cannot be created, "
                                                     f"{tmp_path}/file is a file")]:
        for command in (["train"], ["pretrain"]):        # the missing --data would be the error if loaded first
            refused(*cli(*command, "--data", "/no/such/folder", "--out", out)[::2], message)
    refused(*cli("import-weights", "/no/such.npz", "--out", tmp_path / "file" / "w.npz")[::2],
            f"--out {tmp_path}/file/w.npz: cannot be written, its folder {tmp_path}/file is a file")
    refused(*cli("predict", "--checkpoint", "/no/such.npz", "x.png", "--csv", tmp_path)[::2],
            f"--csv {tmp_path}: is a folder; expected a file name")


# -- messages and interruption ---------------------------------------------------------------------------------

def test_a_text_file_named_npz_is_named_and_called_not_an_npz_archive(tmp_path):
    (tmp_path / "notes.npz").write_text("label,file\n0,a.png\n")
    for args in (["train", "--data", tmp_path / "notes.npz", "--out", tmp_path / "run"],
                 ["evaluate", "--checkpoint", tmp_path / "notes.npz"],
                 ["predict", "--checkpoint", tmp_path / "notes.npz", "x.png"],
                 ["train", "--init", tmp_path / "notes.npz", "--out", tmp_path / "run"],
                 ["import-weights", tmp_path / "notes.npz", "--out", tmp_path / "w.npz"]):
        refused(*cli(*args)[::2], f"{tmp_path}/notes.npz: not an .npz archive (it is not a zip file)")
        assert "pickle" not in cli(*args)[2]


@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "nan"], "argument --lr: expected a finite number > 0, got nan"),
    (["train", "--lr", "inf"], "argument --lr: expected a finite number > 0, got inf"),
    (["train", "--lr", "0"], "argument --lr: expected a finite number > 0, got 0"),
    (["train", "--positive-bias", "nan"], "argument --positive-bias: expected a finite number, got nan"),
    (["pretrain", "--lr=-inf"], "argument --lr: expected a finite number > 0, got -inf"),
    (["pretrain", "--positive-bias", "inf"], "argument --positive-bias: expected a finite number, got inf"),
    (["train", "--epochs", "two"], "argument --epochs: expected a whole number, got 'two'"),
    (["train", *TINY, "--lr-mult", "fc8=nan"], "--lr-mult: expected PATTERN=VALUE with a finite number >= 0, got "
                                               "'fc8=nan'"),
    (["train", *TINY, "--decay-mult", "*.bias=inf"], "--decay-mult: expected PATTERN=VALUE with a finite number"),
])
def test_every_float_flag_refuses_non_finite_numbers(tmp_path, args, message):
    refused(*cli(*args, "--out", tmp_path / "run")[::2], message)


def test_warnings_print_as_plain_lines(photo_run):
    _, _, err = photo_run
    broken = photo_run[0] / "b" / "broken.jpg"
    assert err.splitlines() == [
        f"alexnet.py train: warning: {broken}: not a readable image (cannot identify image file); skipped",
        "alexnet.py train: warning: 1 unreadable image file(s) skipped (named above)"]


def test_ctrl_c_outside_training_is_one_line_and_exit_130(shapes_run, tmp_path, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tinycnn.setup_run, "load_run_data", ctrl_c)          # while the data loads
    assert cli("train", *TINY, "--out", tmp_path / "a")[::2] == (130, "alexnet.py train: interrupted (Ctrl-C)\n")
    monkeypatch.undo()
    monkeypatch.setattr(alexnet, "load_checkpoint", ctrl_c)
    assert cli("predict", "--checkpoint", shapes_run / "best.npz", "x.png")[::2] == \
        (130, "alexnet.py predict: interrupted (Ctrl-C)\n")


def test_ctrl_c_while_a_picture_is_written_leaves_the_old_picture_whole(shapes_run, tmp_path, monkeypatch):
    import matplotlib.figure
    run = tmp_path / "run"
    shutil.copytree(shapes_run, run)
    before = snapshot(run)

    def half_then_ctrl_c(self, file, **kwargs):
        file.write(b"\x89PNG half a picture")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_then_ctrl_c)
    code, _, err = cli("train", *TINY, "--epochs", "2", "--out", run, "--resume")
    assert (code, err) == (130, "alexnet.py train: interrupted (Ctrl-C)\n")
    after = snapshot(run)
    assert after["curves.png"] == before["curves.png"] and sorted(after) == sorted(before)
    assert checkpoint.read(str(run / "last.npz"), meta_only=True)[1]["epoch"] == 2   # saved before the pictures


@pytest.mark.parametrize("signum, code, said", [(signal.SIGINT, 130, "interrupted (Ctrl-C)"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_real_signal_while_images_load_is_one_line_and_its_exit_code(tmp_path, signum, code, said):
    """The process blocks reading a named pipe that looks like an image; the signal arrives while it waits."""
    save_shapes(tmp_path / "photos", ["b"], 2)
    (tmp_path / "photos" / "a").mkdir()
    os.mkfifo(tmp_path / "photos" / "a" / "0.png")
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "alexnet.py"), "train", "--data",
                                str(tmp_path / "photos"), "--out", str(tmp_path / "run")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline, writer = time.monotonic() + 120, None
    while writer is None:                                # opening the writing end succeeds once the reader opened
        try:
            writer = os.open(tmp_path / "photos" / "a" / "0.png", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
    process.send_signal(signum)
    # A signal that lands just before the child blocks in read() is handled when the next bytecode runs, after
    # read() returns: end the read (EOF) so that race cannot hang the test. Normally the read is interrupted.
    time.sleep(0.5)
    os.close(writer)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (code, f"alexnet.py train: {said}\n"), err
    assert not (tmp_path / "run").exists()


# -- what users expect -----------------------------------------------------------------------------------------

def test_predict_takes_folders_and_many_paths_skips_what_it_cannot_read_and_writes_csv(shapes_run, tmp_path):
    save_shapes(tmp_path / "pics", ["x", "x/deeper"], 1)
    (tmp_path / "pics" / "broken.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "pics" / ".hidden.png").write_bytes(b"never read")
    Image.fromarray(data.make_shapes(1, 20, seed=7)[0][0]).save(tmp_path / "single.jpg")
    code, out, err = cli("predict", "--checkpoint", shapes_run / "best.npz", tmp_path / "pics", tmp_path / "single.jpg",
                         tmp_path / "missing.png", "--top", "2", "--csv", tmp_path / "out" / "top.csv")
    assert code == 2
    assert err.splitlines() == [
        f"alexnet.py predict: warning: {tmp_path}/pics/broken.png: not a readable image (cannot identify image "
        f"file); skipped",
        f"alexnet.py predict: warning: {tmp_path}/missing.png: not a readable image (No such file or directory); "
        f"skipped",
        "alexnet.py predict: 2 of 5 paths could not be read (named above); the others were predicted"]
    lines = out.splitlines()
    paths = [f"{tmp_path}/pics/x/0.png", f"{tmp_path}/pics/x/deeper/0.png", f"{tmp_path}/single.jpg"]
    assert [line.split(": ")[0] for line in lines[:3]] == paths and lines[3] == f"wrote {tmp_path}/out/top.csv"
    assert all(line.count(",") == 1 for line in lines[:3])                   # --top 2: two classes each
    with open(tmp_path / "out" / "top.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "class_1", "probability_1", "class_2", "probability_2"]
    for row, line in zip(rows[1:], lines[:3]):
        assert line == f"{row[0]}: {row[1]} {float(row[2]):.3f}, {row[3]} {float(row[4]):.3f}"
    assert len(rows) == 4
    assert cli("predict", "--checkpoint", shapes_run / "best.npz", tmp_path / "pics" / "x")[0] == 0


def test_predict_reads_an_exif_rotated_photo_upright(shapes_run, tmp_path):
    """The same picture stored upright, and stored sideways with orientation tag 6, gets the same prediction."""
    from test_data import upright_picture
    upright = Image.fromarray(upright_picture())
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.save(tmp_path / "upright.jpg", quality=100, subsampling=0)
    sideways.save(tmp_path / "tagged.jpg", quality=100, subsampling=0, exif=exif)
    sideways.save(tmp_path / "sideways.jpg", quality=100, subsampling=0)
    code, _, err = cli("predict", "--checkpoint", shapes_run / "best.npz", *(tmp_path / f"{name}.jpg" for name in
                       ("upright", "tagged", "sideways")), "--top", "6", "--csv", tmp_path / "p.csv")
    assert code == 0, err
    with open(tmp_path / "p.csv", newline="") as f:
        probs = [dict(zip(row[1::2], map(float, row[2::2]))) for row in list(csv.reader(f))[1:]]
    upright_, tagged, sideways_ = (np.array([p[name] for name in data.SHAPE_CLASSES]) for p in probs)
    assert np.abs(tagged - upright_).max() < np.abs(sideways_ - upright_).max() / 10


def test_evaluate_prints_per_class_accuracy_and_a_confusion_matrix_and_draws_it(shapes_run):
    (shapes_run / "best_confusion.png").unlink(missing_ok=True)
    code, out, err = cli("evaluate", "--checkpoint", shapes_run / "best.npz")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("12 images: loss ") and ", top-5 " in lines[0]          # 6 classes: top-5 shown
    assert lines[1].split() == ["class", "images", "top-1", "predicted", "as:", *data.SHAPE_CLASSES]
    rows = [line.split() for line in lines[2:8]]
    assert [row[0] for row in rows] == list(data.SHAPE_CLASSES) and all(row[1] == "2" for row in rows)
    counts = np.array([[int(n) for n in row[3:]] for row in rows])
    assert counts.sum() == 12 and (counts.sum(axis=1) == 2).all()
    assert [float(row[2]) for row in rows] == [counts[i, i] / 2 for i in range(6)]
    top1 = float(lines[0].split("top-1 ")[1].split(",")[0])
    assert top1 == pytest.approx(np.trace(counts) / 12, abs=1e-3)
    assert lines[8] == f"wrote {shapes_run}/best_confusion.png"
    assert (shapes_run / "best_confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_matches_a_subset_of_classes_by_name_without_top5_and_knows_its_own_data(photo_run, tmp_path):
    photos, run, _ = photo_run
    for name in ("c", "a"):                              # the folder's own order would make c label 0
        shutil.copytree(photos / name, tmp_path / "subset" / name)
    code, out, err = cli("evaluate", "--checkpoint", run / "last.npz", "--data", tmp_path / "subset")
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].startswith("8 images: loss ") and "top-5" not in lines[0]          # 3 classes: no top-5
    assert lines[1] == "evaluated on 2 of the checkpoint's 3 classes"
    assert lines[2].split()[5:] in (["a", "c"], ["a", "c", "(other)"])      # (other): predicted as b
    rows = [line.split() for line in lines[3:5]]
    assert [row[:2] for row in rows] == [["a", "4"], ["c", "4"]] and len(lines) == 6
    counts = np.array([[int(n) for n in row[3:]] for row in rows])
    assert (counts.sum(axis=1) == 4).all() and [float(row[2]) for row in rows] == [counts[0, 0] / 4, counts[1, 1] / 4]
    assert lines[5] == f"wrote {run}/last_confusion_subset.png"
    refused(*cli("evaluate", "--checkpoint", run / "last.npz", "--data", pets_folder(tmp_path))[::2],
            "classes ['cat', 'dog'] are not among the checkpoint's 3 classes ['a', 'b', 'c']")
    code, out, err = cli("evaluate", "--checkpoint", run / "last.npz", "--data", photos)
    assert code == 0 and out.startswith("12 images: ")                     # broken.jpg skipped again
    assert err.splitlines()[-1] == (
        f"alexnet.py evaluate: warning: {photos}: is the data {run}/last.npz was trained on, so these images "
        f"include the ones it learned from and the accuracy is optimistic (without --data, evaluate uses the "
        f"images the run held out)")


def pets_folder(tmp_path):
    save_shapes(tmp_path / "pets", ["cat", "dog"], 2)
    return tmp_path / "pets"


def test_bench_runs_the_benchmark_as_its_own_process_from_the_checkout(monkeypatch):
    """alexnet.py only starts `python -m benchmarks.bench` (the library never imports benchmarks/) and passes on
    its exit code."""
    started = []

    def run(command, cwd):
        started.append((command, cwd))
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(alexnet.subprocess, "run", run)
    assert cli("bench", "--quick") == (3, "", "")
    assert started == [([sys.executable, "-m", "benchmarks.bench", "--quick"], ROOT)]
    assert os.path.isfile(os.path.join(ROOT, "benchmarks", "bench.py"))
