"""Whether a checkpoint is the run's own (tinycnn/resume_checks.py): which data descriptions give other images,
and the whole messages, in the library's words and the command line's."""
import os
import re

import pytest

from tinycnn import checkpoint
from tinycnn.resume_checks import check_resumable, data_differences, describe_data
from tinycnn.runs import build
from tinycnn.spelling import flag

BUILT_IN = dict(path=None, seed=0, train_images=40, val_images=12, per_class=None)
FOLDER = dict(path="/photos", seed=0, train_images=7000, val_images=1000, per_class=None)


def exactly(message):
    return "^" + re.escape(message) + "$"


@pytest.mark.parametrize("source, key, value, differs", [
    (BUILT_IN, "seed", 1, True), (BUILT_IN, "train_images", 50, True), (BUILT_IN, "val_images", 20, True),
    (BUILT_IN, "per_class", 5, False),                   # per_class takes images of a folder only
    (BUILT_IN, "path", "/photos", True),
    (FOLDER, "seed", 1, True), (FOLDER, "per_class", 5, True), (FOLDER, "path", None, True),
    (FOLDER, "path", "/elsewhere", True),
    (FOLDER, "train_images", 50, False), (FOLDER, "val_images", 20, False),     # the built-in shapes' counts
])
def test_each_key_that_chooses_the_images_differs_alone(source, key, value, differs):
    assert data_differences(source, dict(source, **{key: value})) == ([key] if differs else [])


def test_a_folder_named_two_ways_is_the_same_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    os.symlink(tmp_path / "photos", tmp_path / "link")
    stored = dict(FOLDER, path=str(tmp_path / "photos"))
    for other in (tmp_path / "link", tmp_path / "photos" / ".." / "photos"):
        assert data_differences(stored, dict(FOLDER, path=str(other))) == []


def test_the_data_is_described_in_the_callers_words():
    assert describe_data(BUILT_IN, ["path", "seed"]) == "no data (the built-in shapes), seed=0"
    assert describe_data(BUILT_IN, ["path", "seed"], flag) == "no --data (the built-in shapes), --seed 0"
    assert describe_data(FOLDER, ["path", "per_class"]) == "data='/photos', per_class=None"
    assert describe_data(FOLDER, ["path"], flag) == "--data /photos"


CONFIG = dict(variant="mini", groups=1, input_size=32, positive_bias=1.0, num_classes=6)


@pytest.fixture
def written(tmp_path):
    path = str(tmp_path / "last.npz")
    checkpoint.save(path, build(CONFIG, rng=0), dict(config=CONFIG, data=BUILT_IN, classes=list("abcdef")))
    return path


def test_another_model_is_refused_naming_every_key_that_differs(written):
    with pytest.raises(checkpoint.CheckpointError, match=exactly(
            f"{written}: was written for variant='mini', num_classes=6; this run asks for variant='paper', "
            f"num_classes=3")):
        check_resumable(written, dict(CONFIG, variant="paper", num_classes=3))


def test_other_classes_alone_are_refused_by_their_number_when_no_names_are_given(written):
    with pytest.raises(checkpoint.CheckpointError, match=exactly(
            f"{written}: was written for num_classes=6; this run asks for num_classes=3")):
        check_resumable(written, dict(CONFIG, num_classes=3))
    assert check_resumable(written, CONFIG)["classes"] == list("abcdef")


@pytest.mark.parametrize("spell, said", [(None, ("seed=0", "seed=1", "out")), (flag, ("--seed 0", "--seed 1", "--out"))])
def test_other_data_and_other_classes_are_refused_in_the_callers_words(written, spell, said):
    words = {} if spell is None else dict(spell=spell)
    with pytest.raises(checkpoint.CheckpointError, match=exactly(
            f"{written}: the run was trained with {said[0]}; this run asks for {said[1]}; resume with the run's own "
            f"data, or start a new run with another {said[2]}")):
        check_resumable(written, CONFIG, dict(BUILT_IN, seed=1), **words)
    with pytest.raises(checkpoint.CheckpointError, match=exactly(
            f"{written}: the run was trained on classes ['a', 'b', 'c', 'd', 'e', 'f'], the data now has ['a', 'b', "
            f"'c', 'd', 'e', 'g']; resume with the run's own data, or start a new run with another {said[2]}")):
        check_resumable(written, CONFIG, BUILT_IN, list("abcdeg"), **words)


def test_fewer_classes_by_name_are_told_by_their_names_not_their_number(written):
    with pytest.raises(checkpoint.CheckpointError, match=re.escape(
            f"{written}: the run was trained on classes ['a', 'b', 'c', 'd', 'e', 'f'], the data now has ['a', 'b', "
            f"'c']")):
        check_resumable(written, dict(CONFIG, num_classes=3), BUILT_IN, list("abc"))
