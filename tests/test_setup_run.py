"""setup_run (tinycnn/setup_run.py): a run built in one library call, as `alexnet.py train` builds it; its
messages name setup_run's own arguments, and the command line's flags when it passes spell=flag."""
import re

import numpy as np
import pytest

from tinycnn import checkpoint
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
