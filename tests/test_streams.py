"""Random numbers keyed to the image (tinycnn/streams.py): an image's draws depend on (seed, epoch, its place in
the epoch) alone, not on the images drawn beside it, so a process holding part of a batch draws what one process
holding all of it draws for those images."""
import json
import re

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import checkpoint, data
from tinycnn.data import Preprocess, pca_colour, random_crop_flip
from tinycnn.runs import build
from tinycnn.streams import ImageStreams, epoch_order, stream
from tinycnn.train import Trainer


def test_an_images_draws_do_not_depend_on_the_images_beside_it():
    whole = ImageStreams(7, 2, np.arange(10))
    part = ImageStreams(7, 2, np.arange(3, 7))
    np.testing.assert_array_equal(whole.random((10, 5), np.float32)[3:7], part.random((4, 5), np.float32))
    np.testing.assert_array_equal(whole.integers(0, 9, (10, 2))[3:7], part.integers(0, 9, (4, 2)))
    np.testing.assert_array_equal(whole.normal(0.0, 0.1, (10, 3))[3:7], part.normal(0.0, 0.1, (4, 3)))
    np.testing.assert_array_equal(whole.random(10)[3:7], part.random(4))       # one number each: shape (k,)


def test_each_image_epoch_and_seed_has_its_own_stream():
    first = ImageStreams(7, 2, [0, 1]).random((2, 1000))
    assert not np.isin(first[0], first[1]).any()                                 # image 0 is not image 1
    assert not np.isin(first[0], ImageStreams(7, 3, [0]).random((1, 1000))).any()      # nor epoch 3's image 0
    assert not np.isin(first[0], ImageStreams(8, 2, [0]).random((1, 1000))).any()      # nor seed 8's
    np.testing.assert_array_equal(first, ImageStreams(7, 2, [0, 1]).random((2, 1000)))  # the same key: the same
    again = stream(7, 2, 0, 1)                    # image 1's stream, drawn on: it never reaches image 2's
    again.random(10_000)
    assert not np.isin(again.random(1000), ImageStreams(7, 2, [2]).random((1, 1000))).any()


def test_the_epochs_order_is_a_permutation_of_its_own_stream():
    order = epoch_order(7, 0, 50)
    np.testing.assert_array_equal(np.sort(order), np.arange(50))
    np.testing.assert_array_equal(order, epoch_order(7, 0, 50))
    assert not np.array_equal(order, epoch_order(7, 1, 50))
    assert not np.array_equal(order, epoch_order(8, 0, 50))


def test_streams_refuse_a_number_of_rows_they_do_not_hold_and_draw_nothing_for_no_image():
    with pytest.raises(ValueError, match=re.escape("ImageStreams: asked for 3 rows, but holds the streams of 2 "
                                                   "images; expected a first axis of 2")):
        ImageStreams(0, 0, [4, 5]).random((3, 4))
    empty = ImageStreams(0, 0, [])
    assert empty.random((0, 4), np.float32).shape == (0, 4) and empty.random((0, 4), np.float32).dtype == np.float32
    assert empty.integers(0, 3, (0, 2)).dtype == np.int64


def test_dropout_draws_from_the_rng_the_network_is_given_and_keeps_its_own():
    own = np.random.default_rng(0)
    drop = tc.Dropout(0.5, rng=own)
    net = tc.Sequential([tc.Flatten(), drop])
    x = np.ones((4, 2, 3), np.float32)
    y = net.forward(x, training=True, rng=ImageStreams(3, 1, [10, 11, 12, 13]))
    keep = ImageStreams(3, 1, [10, 11, 12, 13]).random((4, 6), np.float32) >= 0.5
    np.testing.assert_array_equal(y, keep * np.float32(2))
    assert drop.rng is own                                      # given for one call only
    np.testing.assert_array_equal(net.forward(x, training=True), (np.random.default_rng(0).random((4, 6), np.float32)
                                                                  >= 0.5) * np.float32(2))


class Half:
    """Ranks of which this process is one of two: it holds rows [start, stop) of every batch (Ranks.shard)."""

    def __init__(self, rank):
        self.rank, self.size = rank, 2

    def shares(self, n):
        return [n - n // 2, n // 2]

    def shard(self, n):
        return (0, n - n // 2) if self.rank == 0 else (n - n // 2, n)


def test_a_rank_augments_its_part_of_a_batch_as_one_process_augments_those_images(tmp_path):
    train, val = data.builtin(30, 6, 36, seed=0)
    config = dict(variant="mini", num_classes=6, groups=1, input_size=32, positive_bias=1.0)
    pre = Preprocess.fit(train.images, 1 / 255)

    def trainer(ranks):
        return Trainer(build(config, rng=0), config, train, val, pre, 32, str(tmp_path), 4, batch_size=12,
                       progress=False, ranks=ranks)

    alone = [(batch, trainer(None).augment(batch)) for batch in trainer(None).batches()]
    for rank in (0, 1):
        for (whole, (x_all, labels_all)), part in zip(alone, trainer(Half(rank)).batches()):
            start, stop = Half(rank).shard(whole.size)
            assert part.share == (stop - start) / whole.size
            x, labels = trainer(Half(rank)).augment(part)
            np.testing.assert_array_equal(x, x_all[start:stop])
            np.testing.assert_array_equal(labels, labels_all[start:stop])


def test_each_images_crop_flip_and_colour_are_the_bits_it_gets_when_drawn_alone():
    """Row i of a batch equals image i augmented alone, bit for bit (a matrix product for the colour offsets
    rounds some rows differently with other rows beside it: 23 of 32 here)."""
    x = np.arange(32 * 3 * 6 * 6, dtype=np.float32).reshape(32, 3, 6, 6)
    pre = Preprocess.fit(np.random.default_rng(1).integers(0, 256, (8, 6, 6, 3), dtype=np.uint8), 1 / 255)
    zeros = np.zeros((32, 3, 1, 1), np.float32)                # the offsets alone, not rounded into pixels
    streams = ImageStreams(0, 0, range(32))
    crops, offsets = random_crop_flip(x, 4, streams), pca_colour(zeros, pre, streams)
    for i in range(32):
        own = ImageStreams(0, 0, [i])
        np.testing.assert_array_equal(crops[i:i + 1], random_crop_flip(x[i:i + 1], 4, own))
        np.testing.assert_array_equal(offsets[i:i + 1], pca_colour(zeros[i:i + 1], pre, own))


def resumable(tmp_path, seed):
    train, val = data.builtin(16, 6, 36, seed=0)
    config = dict(variant="mini", num_classes=6, groups=1, input_size=32, positive_bias=1.0)
    return Trainer(build(config, rng=0), config, train, val, Preprocess.fit(train.images, 1 / 255), 32,
                   str(tmp_path), seed, batch_size=8, progress=False)


def test_a_checkpoint_of_another_seed_or_of_per_process_generators_is_not_resumed(tmp_path):
    run = resumable(tmp_path, 3)
    run.fit(1, log=lambda line: None)
    path = str(tmp_path / "last.npz")
    with pytest.raises(checkpoint.CheckpointError, match=re.escape(f"{path}: the run was trained with seed=3; this "
                                                                   f"run asks for seed=4: resume with seed=3")):
        resumable(tmp_path, 4).resume(path)
    entries, meta = checkpoint.read(path)                       # as an older tinycnn wrote it
    meta.pop("seed")
    meta["rng"] = np.random.default_rng(0).bit_generator.state
    old = str(tmp_path / "old.npz")
    np.savez(old, **entries, meta=np.array(json.dumps(meta)))
    with pytest.raises(checkpoint.CheckpointError, match=re.escape(f"{old}: was written by an older tinycnn, whose "
                                                                   f"random numbers came from Generators")):
        resumable(tmp_path, 3).resume(old)
    assert resumable(tmp_path, 3).resume(path)["epoch"] == 1


@pytest.mark.parametrize("seed", [-1, 1.5, True, np.random.default_rng(0)])
def test_the_trainers_seed_is_a_whole_number_of_at_least_zero(tmp_path, seed):
    with pytest.raises(ValueError, match=re.escape(f"Trainer: seed must be a whole number >= 0 (it keys every "
                                                   f"image's random numbers), got {seed!r}")):
        resumable(tmp_path, seed)


def test_the_streams_are_philox_with_the_documented_key_and_counter():
    """stream(seed, epoch, purpose, index) is Philox under the key seed, its counter starting at
    (0, purpose, index, epoch); an image's draws come from the IMAGES stream of its place, the order from ORDER's."""
    def philox(counter):
        return np.random.Generator(np.random.Philox(key=7, counter=counter))

    np.testing.assert_array_equal(stream(7, 2, 0, 5).random(4), philox([0, 0, 5, 2]).random(4))
    np.testing.assert_array_equal(epoch_order(7, 2, 30), philox([0, 1, 0, 2]).permutation(30))
    rows = ImageStreams(7, 2, [5, 9])
    np.testing.assert_array_equal(rows.random((2, 3), np.float32),
                                  [philox([0, 0, 5, 2]).random(3, np.float32), philox([0, 0, 9, 2]).random(3, np.float32)])
    np.testing.assert_array_equal(ImageStreams(7, 2, [5, 9]).normal(1.0, 0.5, (2, 3)),
                                  [philox([0, 0, 5, 2]).normal(1.0, 0.5, 3), philox([0, 0, 9, 2]).normal(1.0, 0.5, 3)])
    assert rows.random((2, 3), np.float32).dtype == np.float32
    assert ImageStreams(0, 0, []).normal(0.0, 1.0, (0, 3)).dtype == np.float64
