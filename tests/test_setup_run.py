"""setup_run (tinycnn/setup_run.py): a run built in one library call, as `alexnet.py train` builds it; its
messages name setup_run's own arguments, and the command line's flags when it passes spell=flag."""
import os
import re

import numpy as np
import pytest

from tinycnn import checkpoint
from tinycnn.runs import build
from tinycnn.setup_run import setup_run
from tinycnn.spelling import argument, flag

TINY = dict(train_images=24, val_images=12, input_size=16, batch_size=8, progress=False)


def quiet(*_, **__):
    pass


def exactly(message):
    return "^" + re.escape(message) + "$"


def test_a_run_set_up_by_the_library_trains_and_resumes_to_the_same_weights(tmp_path):
    straight = setup_run(str(tmp_path / "straight"), say=quiet, **TINY)
    straight.fit(2, log=quiet)
    half = setup_run(str(tmp_path / "half"), say=quiet, **TINY)
    half.fit(1, log=quiet)
    said = []
    resumed = setup_run(str(tmp_path / "half"), resume=True, say=said.append, **TINY)
    assert said[0] == f"resumed {tmp_path / 'half' / 'last.npz'} after epoch 1"
    resumed.fit(2, log=quiet)
    for (name, p), (_, q) in zip(straight.trainer.model.named_parameters(), resumed.trainer.model.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    meta = checkpoint.read(str(tmp_path / "half" / "last.npz"), meta_only=True)[1]
    assert meta["config"] == dict(variant="mini", groups=1, input_size=16, positive_bias=1.0, freeze="", lr_mult="",
                                  decay_mult="", num_classes=6)
    assert meta["data"] == dict(path=None, seed=0, train_images=24, val_images=12, per_class=None)


def test_setup_runs_messages_name_its_arguments_or_the_flags(tmp_path):
    run = str(tmp_path / "run")
    setup_run(run, say=quiet, **TINY).fit(1, log=quiet)
    with pytest.raises(ValueError, match=exactly(f"out={run!r}: already holds a run (last.npz, best.npz, "
                                                 f"history.json); continue it with resume=True, or start again with "
                                                 f"another out (or overwrite=True to replace it)")):
        setup_run(run, say=quiet, **TINY)
    with pytest.raises(ValueError, match=exactly(f"--out {run}: already holds a run (last.npz, best.npz, "
                                                 f"history.json); continue it with --resume, or start again with "
                                                 f"another --out (or --overwrite to replace it)")):
        setup_run(run, say=quiet, spell=flag, **TINY)
    with pytest.raises(ValueError, match=exactly("resume=True and overwrite=True: expected one of them (continue the "
                                                 "run in out, or replace it)")):
        setup_run(run, resume=True, overwrite=True, say=quiet, **TINY)
    with pytest.raises(ValueError, match=exactly("input_size=200: too small for the seed-keras variant, whose layers "
                                                 "take images of at least 215 pixels a side (its own size is 224)")):
        setup_run(str(tmp_path / "other"), variant="seed-keras", say=quiet, **dict(TINY, input_size=200))
    with pytest.raises(ValueError, match=r"^freeze: layer 'relu1' has no weights to freeze"):
        setup_run(str(tmp_path / "other"), freeze="relu1", say=quiet, **TINY)
    with pytest.raises(ValueError, match=exactly(f"input_size=20 does not match the init checkpoint's 16; leave it "
                                                 f"out to use the checkpoint's")):
        setup_run(str(tmp_path / "other"), init=f"{run}/best.npz", say=quiet, **dict(TINY, input_size=20))
    with pytest.raises(checkpoint.CheckpointError, match=re.escape("the run was trained with seed=0; this run asks "
                                                                   "for seed=1; resume with the run's own data")):
        setup_run(run, resume=True, seed=1, say=quiet, **TINY)


def test_argument_and_flag_spell_a_name_and_a_value():
    assert (argument("out"), argument("out", "runs/x"), argument("resume", True)) == ("out", "out='runs/x'",
                                                                                       "resume=True")
    assert (flag("out"), flag("out", "runs/x"), flag("resume", True), flag("batch_size", 16)) == (
        "--out", "--out runs/x", "--resume", "--batch-size 16")
    assert (argument("per_class", None), flag("per_class", None)) == ("per_class=None", "--per-class None")


def test_setup_runs_defaults_are_the_train_commands():
    """The command line passes every flag, so setup_run's own defaults are met only by notebooks and tests: they
    must be train's (--no-pca is pca=False)."""
    import inspect

    import alexnet
    flags = vars(alexnet.parser().parse_args(["train"]))
    defaults = {name: p.default for name, p in inspect.signature(setup_run).parameters.items()
                if p.default is not inspect.Parameter.empty}
    shared = sorted(set(defaults) & set(flags))
    assert len(shared) == 19, shared
    assert {name: defaults[name] for name in shared} == {name: flags[name] for name in shared}
    assert defaults["pca"] is not flags["no_pca"] and (defaults["progress"], defaults["ranks"]) == (True, None)


def test_a_run_of_the_default_variant_trains_in_batches_of_32_and_the_papers_in_128(tmp_path):
    mini = setup_run(str(tmp_path / "mini"), say=quiet, **dict(TINY, batch_size=None)).trainer
    assert (mini.batch_size, mini.config["variant"], mini.pca, mini.plateau.patience, mini.optimizer.lr) == (
        32, "mini", True, 2, 0.01)
    paper = setup_run(str(tmp_path / "paper"), variant="paper", say=quiet,
                      **dict(TINY, input_size=67, batch_size=None)).trainer
    assert (paper.batch_size, paper.config["groups"], paper.input_size) == (128, 1, 67)


def test_every_argument_reaches_the_trainer_and_the_checkpoint(tmp_path):
    run = setup_run(str(tmp_path / "run"), seed=3, lr=0.02, batch_size=6, pca=False, patience=4, progress=False,
                    train_images=18, val_images=6, input_size=16, positive_bias=0.1, freeze="conv1",
                    lr_mult="fc8=10", decay_mult="*.bias=0", say=quiet)
    t = run.trainer
    assert (t.seed, t.optimizer.lr, t.batch_size, t.pca, t.plateau.patience, t.progress) == (3, 0.02, 6, False, 4,
                                                                                         False)
    assert (len(t.train), len(t.val), t.input_size) == (18, 6, 16)
    assert not t.model["conv1"].weight.trainable and t.model["conv2"].weight.trainable
    assert t.model["fc8"].weight.lr_mult == 10 and t.model["conv2"].bias.decay_mult == 0
    np.testing.assert_array_equal(t.model["conv1"].weight.data,
                                  build(dict(t.config), rng=np.random.default_rng([3, 1]))["conv1"].weight.data)
    assert t.config == dict(variant="mini", groups=1, input_size=16, positive_bias=0.1, freeze="conv1",
                            lr_mult="fc8=10", decay_mult="*.bias=0", num_classes=6)
    assert t.data_info == dict(path=None, seed=3, train_images=18, val_images=6, per_class=None)


def test_init_starts_from_the_checkpoints_weights_and_pixels_and_says_so(tmp_path):
    first = setup_run(str(tmp_path / "a"), say=quiet, **TINY)
    first.fit(1, log=quiet)
    source = str(tmp_path / "a" / "best.npz")
    said = []
    run = setup_run(str(tmp_path / "b"), init=source, seed=5, say=said.append, **dict(TINY, input_size=None))
    assert said[0] == f"fine-tuning from {source}: all weights kept"
    entries, _ = checkpoint.read(source)
    for name, p in run.trainer.model.named_parameters():
        np.testing.assert_array_equal(p.data, entries[f"param/{name}"], err_msg=name)
    np.testing.assert_array_equal(run.trainer.preprocess.mean_image, entries["array/mean_image"])
    assert run.trainer.input_size == 16                        # the checkpoint's
    said.clear()
    setup_run(str(tmp_path / "c"), init=source, new_head=True, say=said.append, **dict(TINY, input_size=None))
    assert said[0] == f"fine-tuning from {source}: new head fc8.weight, fc8.bias for 6 classes"


def test_a_resumed_run_says_where_it_goes_on_and_overwrite_keeps_the_old_run_until_the_first_checkpoint(tmp_path):
    out = tmp_path / "run"
    setup_run(str(out), say=quiet, **TINY).fit(1, log=quiet)
    said = []
    resumed = setup_run(str(out), resume=True, say=said.append, **TINY)
    assert said == [f"resumed {out / 'last.npz'} after epoch 1",
                    "training mini AlexNet (331,462 trainable parameters) on 24 images of 6 classes at 16x16, "
                    "validating on 12"]
    assert resumed.old_run is None
    before = (out / "last.npz").read_bytes()
    replaced = setup_run(str(out), overwrite=True, say=quiet, **TINY)
    assert sorted(os.listdir(out / ".old-run")) == ["best.npz", "history.json", "last.npz"]
    assert (out / ".old-run" / "last.npz").read_bytes() == before and not (out / "last.npz").exists()
    replaced.fit(1, log=quiet)
    assert not (out / ".old-run").exists() and (out / "last.npz").read_bytes() != before


# -- the pieces setup_run is made of ------------------------------------------------------------------------------

def test_a_folder_of_class_folders_is_counted_aloud_and_unreadable_files_are_warned_of(tmp_path):
    from test_cli import save_shapes
    save_shapes(tmp_path / "photos", ["a", "b", "c"], 5)
    (tmp_path / "photos" / "b" / "broken.jpg").write_text("not a jpeg")
    said = []
    with pytest.warns(UserWarning) as warned:
        run = setup_run(str(tmp_path / "run"), data=str(tmp_path / "photos"), per_class=3, say=said.append,
                        **dict(TINY, train_images=7000, val_images=1000))
    assert [str(w.message) for w in warned if "unreadable" in str(w.message)] == [
        "1 unreadable image file(s) skipped (named above)"]
    assert said[0] == f"{tmp_path / 'photos'}: 12 images in 3 class folders, each with its sub-folders: a 4, b 4, c 4"
    assert run.trainer.data_info == dict(path=str(tmp_path / "photos"), seed=0, train_images=7000, val_images=1000,
                                         per_class=3)
    assert len(run.trainer.train) == 9                          # 3 per class


def test_folder_counts_names_the_first_8_classes_then_dots():
    from tinycnn.data import ImageSet
    from tinycnn.setup_run import folder_counts
    names = [f"c{i}" for i in range(9)]

    def images(k, each):
        return ImageSet(np.zeros((k * each, 2, 2, 3), np.uint8), np.repeat(np.arange(k), each), names[:k])

    assert folder_counts("p", images(9, 2), images(9, 1)) == (
        "p: 27 images in 9 class folders, each with its sub-folders: c0 3, c1 3, c2 3, c3 3, c4 3, c5 3, c6 3, c7 3, ...")
    assert folder_counts("p", images(8, 2), images(8, 1)).endswith("c7 3")
    few = ImageSet(np.zeros((2, 2, 2, 3), np.uint8), np.array([0, 0]), names[:3])     # classes with no image count 0
    assert folder_counts("p", few, few) == "p: 4 images in 3 class folders, each with its sub-folders: c0 4, c1 0, c2 0"


def test_the_training_line_says_how_the_ranks_share_each_batch():
    from types import SimpleNamespace

    from tinycnn.setup_run import training_line

    class Three:
        size = 3

        def shares(self, n):
            return [n // 3 + (r < n % 3) for r in range(3)]

    model = build(dict(variant="mini", groups=1, input_size=16, positive_bias=1.0, num_classes=6), rng=0)
    one = SimpleNamespace(ranks=SimpleNamespace(size=1), batch_size=32, input_size=16, model=model,
                          config=dict(variant="mini"), train=SimpleNamespace(__len__=None, classes=list("abcdef")))
    one.train = type("Images", (), {"__len__": lambda self: 24, "classes": list("abcdef")})()
    one.val = type("Images", (), {"__len__": lambda self: 12})()
    base = ("training mini AlexNet (331,462 trainable parameters) on 24 images of 6 classes at 16x16, validating "
            "on 12")
    assert training_line(one) == base
    one.ranks = Three()
    assert training_line(one) == base + "; 3 ranks share each batch of 32: 11 + 11 + 10 images"


def test_run_fit_hands_its_log_to_the_trainer(tmp_path):
    lines = []
    setup_run(str(tmp_path / "run"), say=quiet, **TINY).fit(1, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1  train loss ")


def test_overwrite_of_a_folder_not_made_yet_and_an_evaluate_picture_set_aside(tmp_path):
    fresh = setup_run(str(tmp_path / "new"), overwrite=True, say=quiet, **TINY)      # no old run: nothing to keep
    assert os.path.isdir(tmp_path / "new" / ".old-run") and os.listdir(tmp_path / "new" / ".old-run") == []
    fresh.fit(1, log=quiet)
    assert not (tmp_path / "new" / ".old-run").exists()
    (tmp_path / "new" / "photos_confusion_best.png").write_bytes(b"evaluate --data photos drew this")
    (tmp_path / "new" / "notes.txt").write_text("the user's own")
    again = setup_run(str(tmp_path / "new"), overwrite=True, say=quiet, **TINY)
    assert sorted(os.listdir(tmp_path / "new" / ".old-run")) == ["best.npz", "history.json", "last.npz",
                                                                 "photos_confusion_best.png"]
    assert (tmp_path / "new" / "notes.txt").read_text() == "the user's own"
    again.fit(1, log=quiet)
    assert (tmp_path / "new" / "notes.txt").exists() and not (tmp_path / "new" / "photos_confusion_best.png").exists()


@pytest.mark.parametrize("drop", ["config", "array/scale", "array/mean_image"])
def test_init_refuses_a_checkpoint_without_config_or_pixel_preparation_each_alone(tmp_path, drop):
    import json
    setup_run(str(tmp_path / "a"), say=quiet, **TINY).fit(1, log=quiet)
    entries, meta = checkpoint.read(str(tmp_path / "a" / "best.npz"))
    meta.pop("config", None) if drop == "config" else entries.pop(drop)
    broken = str(tmp_path / "broken.npz")
    np.savez(broken, **entries, meta=np.array(json.dumps(meta)))
    with pytest.raises(checkpoint.CheckpointError, match=exactly(
            f"{broken}: not a checkpoint of alexnet.py train, pretrain or import-weights (no model configuration or "
            f"pixel preparation)")):
        setup_run(str(tmp_path / "b"), init=broken, say=quiet, **dict(TINY, input_size=None))


@pytest.mark.parametrize("key, value", [("variant", "paper"), ("groups", 2)])
def test_init_refuses_a_variant_or_groups_unlike_the_checkpoints(tmp_path, key, value):
    setup_run(str(tmp_path / "a"), say=quiet, **TINY).fit(1, log=quiet)
    source = str(tmp_path / "a" / "best.npz")
    stored = dict(variant="mini", groups=1)[key]
    with pytest.raises(ValueError, match=exactly(f"{key}={value!r} does not match the init checkpoint's {stored}; "
                                                 f"leave it out to use the checkpoint's")):
        setup_run(str(tmp_path / "b"), init=source, say=quiet, **{key: value}, **dict(TINY, input_size=None))


def test_freezing_every_layer_with_weights_is_refused(tmp_path):
    everything = "conv1,conv2,conv3,conv4,conv5,fc6,fc7,fc8"
    with pytest.raises(ValueError, match=exactly(f"freeze={everything!r}: leaves nothing to train")):
        setup_run(str(tmp_path / "run"), freeze=everything, say=quiet, **TINY)
