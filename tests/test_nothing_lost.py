"""Issue 22: nothing of the user's is lost, and every odd dataset either trains or is refused in one line. Real
files made here, `alexnet.main(argv)` in this process (test_cli's helpers), and every refusal checked for its
exit code, its one line naming the flag or file, and the files left byte for byte as they were."""
import csv
import os
import shutil

import pytest

import alexnet
from test_cli import TINY, cli, photo_run, refused, save_shapes, shapes_run, snapshot   # noqa: F401 (fixtures)
from tinycnn import checkpoint
from tinycnn.setup_run import OLD_RUN

# -- files a command must never destroy ------------------------------------------------------------------------


def test_predict_csv_never_writes_over_a_photo_a_checkpoint_or_an_input(shapes_run, tmp_path):
    save_shapes(tmp_path, ["x"], 2)
    holiday, beach, best = tmp_path / "x" / "0.png", tmp_path / "x" / "1.png", shapes_run / "best.npz"
    trained = tmp_path / "long" / "best.npz"
    trained.parent.mkdir()
    shutil.copy(best, trained)
    before = {path: path.read_bytes() for path in (holiday, beach, best, trained)}
    for csv_name, paths, message in [
        (holiday, [beach], f"--csv {holiday}: already exists and is not a CSV that predict wrote"),  # --csv a switch
        (trained, [beach], f"--csv {trained}: already exists and is not a CSV that predict wrote"),
        (beach, [beach], f"--csv {beach}: is also an image PATH of this command"),
        (best, [beach], f"--csv {best}: is also --checkpoint of this command"),
    ]:
        code, out, err = cli("predict", "--checkpoint", best, "--csv", csv_name, *paths)
        refused(code, err, message)
        assert out == ""                                 # refused before anything was predicted
    assert {path: path.read_bytes() for path in before} == before
    table = tmp_path / "table.csv"
    for _ in range(2):                                   # a CSV of predict's own is replaced
        code, _, err = cli("predict", "--checkpoint", best, "--csv", table, beach, "--top", "1")
        assert code == 0, err
    assert b"\r" not in table.read_bytes() and table.read_text().count("\n") == 2     # LF line endings


def test_predict_writes_a_csv_whose_name_is_as_long_as_the_file_system_allows(shapes_run, tmp_path):
    """A 250-byte name is legal; the temporary file beside it must be too ([Errno 36] after predicting)."""
    save_shapes(tmp_path, ["x"], 1)
    table = tmp_path / ("t" * 246 + ".csv")
    code, out, err = cli("predict", "--checkpoint", shapes_run / "best.npz", tmp_path / "x", "--csv", table)
    assert code == 0, err
    with open(table, newline="") as f:
        assert len(list(csv.reader(f))) == 2
    assert sorted(os.listdir(tmp_path)) == sorted(["x", table.name])          # no temporary file left


def test_import_weights_never_writes_over_a_checkpoint_unless_told(shapes_run, tmp_path):
    from test_finetune import torchvision_state
    import numpy as np
    np.savez(tmp_path / "tv.npz", **torchvision_state(num_classes=3))
    trained = tmp_path / "best.npz"
    shutil.copy(shapes_run / "best.npz", trained)
    before = trained.read_bytes()
    refused(*cli("import-weights", tmp_path / "tv.npz", "--out", trained)[::2],
            f"--out {trained}: already exists; write another --out (or --overwrite to replace it)")
    refused(*cli("import-weights", tmp_path / "tv.npz", "--out", tmp_path / "tv.npz", "--overwrite")[::2],
            f"--out {tmp_path}/tv.npz: is also FILE of this command")
    refused(*cli("import-weights", tmp_path / "tv.npz", "--classes", "/nope.txt", "--out", tmp_path / "new.npz")[::2],
            "--classes /nope.txt: cannot be read (No such file or directory); expected a text file with one class")
    assert trained.read_bytes() == before
    code, out, err = cli("import-weights", tmp_path / "tv.npz", "--out", trained, "--overwrite")
    assert code == 0 and out.startswith(f"wrote {trained}: torchvision AlexNet, 3 classes"), err


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_an_out_with_a_name_too_long_for_the_file_system_is_refused_before_any_data_is_loaded(command, tmp_path):
    """A 300-byte --out passed the check and failed after an epoch with [Errno 36], naming no flag."""
    out = tmp_path / ("r" * 300)
    refused(*cli(command, "--data", "/no/such/folder", "--out", out)[::2],
            f"--out {out}: has a name of 300 bytes (rrrrrrrrrrrrrrrr...); expected at most 255")
    deep = tmp_path.joinpath(*["d" * 250] * 17)          # each name legal, the whole over PATH_MAX (4096)
    refused(*cli(command, "--data", "/no/such/folder", "--out", deep)[::2], f"--out {deep}: is ",
            "bytes long in all; expected well under 4096")
    refused(*cli("import-weights", "/no/such.npz", "--out", out / "w.npz")[::2],
            f"--out {out}/w.npz: cannot be written, its folder {out} has a name of 300 bytes")


def test_overwrite_keeps_the_old_run_until_the_new_one_has_written_a_checkpoint(shapes_run, tmp_path, monkeypatch):
    """A new run that failed in its first epoch left the folder empty: now the old run is back, byte for byte."""
    from tinycnn.train import Trainer, TrainingDiverged
    run = tmp_path / "run"
    shutil.copytree(shapes_run, run)
    (run / "best_confusion.png").write_bytes(b"the old run's picture")
    before = snapshot(run)
    epochs = []
    real_epoch = Trainer.train_epoch

    def fail_in_epoch(n):
        def train_epoch(self):
            epochs.append(self.epoch + 1)
            if self.epoch + 1 == n:
                raise TrainingDiverged(f"the loss became nan at epoch {n}, step 1")
            return real_epoch(self)
        return train_epoch

    monkeypatch.setattr(Trainer, "train_epoch", fail_in_epoch(1))
    refused(*cli("train", *TINY, "--seed", "1", "--out", run, "--overwrite")[::2], "the loss became nan at epoch 1")
    assert snapshot(run) == before and epochs == [1]
    monkeypatch.setattr(Trainer, "train_epoch", fail_in_epoch(2))      # it fails after its first checkpoint
    refused(*cli("train", *TINY, "--epochs", "2", "--seed", "1", "--out", run, "--overwrite")[::2], "epoch 2")
    assert sorted(snapshot(run)) == ["best.npz", "conv1_filters.png", "curves.png", "history.json", "last.npz"]
    assert checkpoint.read(str(run / "last.npz"), meta_only=True)[1]["data"]["seed"] == 1    # the new run's
    (run / OLD_RUN).mkdir()                      # set aside by a run that was killed (SIGKILL)
    refused(*cli("train", *TINY, "--out", run, "--overwrite")[::2], f"--out {run}: holds .old-run, a run that "
            f"--overwrite set aside")


def test_an_out_inside_data_is_refused(tmp_path):
    save_shapes(tmp_path / "photos", ["a", "b"], 2)
    for command in ("train", "pretrain"):
        refused(*cli(command, "--data", tmp_path / "photos", "--out", tmp_path / "photos" / "run")[::2],
                f"--out {tmp_path}/photos/run: is inside --data {tmp_path}/photos, where the run's pictures would "
                f"become images to train on; expected an --out outside it")
    assert not (tmp_path / "photos" / "run").exists()


# -- datasets that crash or mislead -----------------------------------------------------------------------------

def test_one_image_per_class_is_refused_before_training_for_want_of_validation_images(tmp_path):
    save_shapes(tmp_path / "photos", ["a", "b", "c"], 1)
    code, out, err = cli("train", "--data", tmp_path / "photos", *TINY, "--out", tmp_path / "run")
    refused(code, err, f"--data {tmp_path}/photos: leaves no image for validation", "expected at least two images")
    assert "epoch" not in out and not (tmp_path / "run").exists()


def test_train_and_predict_read_a_class_folder_with_its_sub_folders_and_say_so(shapes_run, tmp_path):
    save_shapes(tmp_path / "photos", ["apple", "banana", "banana/more/deeper"], 2)
    code, out, err = cli("train", "--data", tmp_path / "photos", *TINY, "--out", tmp_path / "run")
    assert code == 0, err
    assert out.splitlines()[0] == (f"{tmp_path}/photos: 6 images in 2 class folders, each with its sub-folders: "
                                   f"apple 2, banana 4")
    assert "on 4 images of 2 classes" in out.splitlines()[1]
    code, out, err = cli("predict", "--checkpoint", tmp_path / "run" / "best.npz", tmp_path / "photos" / "banana")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("4 images predicted (a folder is searched with its sub-folders")


def test_evaluate_takes_a_folder_of_one_of_the_checkpoints_classes(photo_run, tmp_path):
    """README: a folder may hold some of the checkpoint's classes; one of them was refused."""
    photos, run, _ = photo_run
    shutil.copytree(photos / "c", tmp_path / "only-c" / "c")
    code, out, err = cli("evaluate", "--checkpoint", run / "last.npz", "--data", tmp_path / "only-c")
    assert code == 0, err
    assert out.startswith("4 images: loss ") and "evaluated on 1 of the checkpoint's 3 classes" in out


# -- smaller things a user hit -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["train", "--seed", "-1"], "argument --seed: expected a whole number >= 0, got -1"),
    (["pretrain", "--seed=-1"], "argument --seed: expected a whole number >= 0, got -1"),
    (["summary", "--variant", "seed-keras", "--input-size", "200"], "--input-size 200: too small for the seed-keras "
     "variant, whose layers take images of at least 215 pixels a side (its own size is 224)"),
    (["train", "--variant", "paper", "--input-size", "64", "--data", "/no/such/folder"], "--input-size 64: too small "
     "for the paper variant, whose layers take images of at least 67 pixels a side (its own size is 227)"),
    (["train", "--freeze", "relu1", "--data", "/no/such/folder"], "--freeze: layer 'relu1' has no weights to freeze; "
     "its layers with weights are conv1, conv2"),
    (["train", "--freeze", "conv1,cnov2", "--data", "/no/such/folder"], "--freeze: the model has no layer 'cnov2'"),
    (["train", "--lr-mult", "fc9=10", "--data", "/no/such/folder"], "--lr-mult: 'fc9' matches no parameter"),
])
def test_bad_flags_are_named_before_any_data_is_loaded(tmp_path, args, message):
    """/no/such/folder would be the error if the data were loaded first."""
    refused(*cli(*args, "--out", tmp_path / "run")[::2] if args[0] != "summary" else cli(*args)[::2], message)


@pytest.mark.parametrize("content", [b"I12x\n.", b"\x80\x04\x95"])
def test_a_corrupt_cifar_batches_meta_is_named(tmp_path, content):
    from test_data import write_cifar
    write_cifar(tmp_path / "cifar")
    (tmp_path / "cifar" / "batches.meta").write_bytes(content)
    refused(*cli("train", "--data", tmp_path / "cifar", "--out", tmp_path / "run")[::2],
            f"{tmp_path}/cifar/batches.meta: not a readable CIFAR-10 batches.meta")


def test_a_checkpoint_without_class_names_is_named(shapes_run, tmp_path):
    entries, meta = checkpoint.read(str(shapes_run / "best.npz"))
    del meta["classes"]
    import json
    import numpy as np
    np.savez(tmp_path / "nameless.npz", **entries, meta=np.array(json.dumps(meta)))
    for command in (["predict", "--checkpoint", tmp_path / "nameless.npz", tmp_path / "x.png"],
                    ["evaluate", "--checkpoint", tmp_path / "nameless.npz"]):
        refused(*cli(*command)[::2], f"{tmp_path}/nameless.npz: has no names for its 6 classes (meta 'classes')")


def test_every_command_has_a_description_an_example_and_every_flag_help_and_its_default():
    commands = alexnet.parser()._subparsers._group_actions[0].choices
    assert sorted(commands) == sorted(alexnet.COMMANDS)
    for name, command in commands.items():
        text = " ".join(command.format_help().split())               # lines unwrapped
        assert command.description and f"example: " in text and f"alexnet.py {name}" in text.split("example:")[1]
        for action in command._actions:
            assert action.help, (name, action.dest)
            if action.default not in (None, False, "", "==SUPPRESS=="):
                shown = ",".join(action.default) if isinstance(action.default, list) else action.default
                assert f"default: {shown}" in text, (name, action.dest)
    assert alexnet.parser().parse_args(["summary"]).variant == "mini"    # as train's




def test_predict_and_evaluate_show_progress_on_a_terminal_only(shapes_run, photo_run, tmp_path, monkeypatch):
    bars = []

    class Bar:                                           # tqdm as the commands use it
        def __init__(self, total, desc, disable, **kwargs):
            bars.append(dict(total=total, desc=desc, disable=disable, done=0))

        def update(self, n):
            bars[-1]["done"] += n

        def write(self, line, file):
            print(line, file=file)

        def close(self):
            pass

        __enter__ = lambda self: self
        __exit__ = lambda self, *exc: self.close()

    monkeypatch.setattr(alexnet, "tqdm", Bar)
    save_shapes(tmp_path / "pics", ["x"], 3)
    code, out, err = cli("predict", "--checkpoint", shapes_run / "best.npz", tmp_path / "pics")
    assert code == 0 and len(out.splitlines()) == 4, err
    code, _, err = cli("evaluate", "--checkpoint", photo_run[1] / "last.npz")
    assert code == 0, err
    assert bars == [dict(total=3, desc="predicting", disable=None, done=3),     # None: no bar unless a terminal
                    dict(total=3, desc="evaluating", disable=None, done=3)]


def test_evaluate_draws_one_confusion_picture_per_data_set(photo_run, tmp_path):
    """A second evaluate of the same checkpoint on other data silently replaced the first one's picture."""
    photos, run, _ = photo_run
    for subset in ("ab", "bc"):
        for name in subset:
            shutil.copytree(photos / name, tmp_path / subset / name)
        code, out, err = cli("evaluate", "--checkpoint", run / "last.npz", "--data", tmp_path / subset)
        assert code == 0 and out.splitlines()[-1] == f"wrote {run}/last_confusion_{subset}.png", err
    assert (run / "last_confusion_ab.png").read_bytes() != (run / "last_confusion_bc.png").read_bytes()


def test_reading_a_folder_shows_progress_on_a_terminal_only(tmp_path, monkeypatch):
    """Loading a large folder is the slow part of train and evaluate: it gets a bar of its own."""
    import tinycnn.data.images as images
    bars = []

    def bar(iterable, desc, disable, **kwargs):
        bars.append(dict(total=len(iterable), desc=desc, disable=disable))
        return iterable

    monkeypatch.setattr(images, "tqdm", bar)
    save_shapes(tmp_path / "pics", ["a", "b"], 3)
    assert len(images.load_folder(str(tmp_path / "pics"), 16)) == 6
    assert bars == [dict(total=6, desc=f"reading {tmp_path / 'pics'}", disable=None)]
