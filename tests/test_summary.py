"""Sequential.summary/profile reproduce the seed's AlexNet table (docs/seed_table.md); `alexnet.py summary` shows it."""
import os
import re

import numpy as np
import pytest

import alexnet as cli
import tinycnn as tc
from tinycnn.models import alexnet
from tinycnn.models.alexnet import INPUT_SIZE, VARIANTS

SEED_TABLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "seed_table.md")


def seed_table():
    """{layer: (output, parameters, forward computation)}, as docs/seed_table.md copies them from the seed notes."""
    rows = {}
    with open(SEED_TABLE, encoding="utf-8") as f:
        for line in f:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) == 4 and cells[2].isdigit():
                rows[cells[0]] = (cells[1], int(cells[2]), int(cells[3]))
    return rows


def counted_as_the_seed_counts(row):
    """tinycnn counts every bias as a parameter and multiply-adds without the bias; the seed counts a conv's bias
    in both columns (one more multiply-add per output) and a dense layer's bias in neither."""
    outputs = int(np.prod(row["output_shape"]))
    if row["kind"] == "Conv2d":
        return row["params"], row["macs"] + outputs
    return row["params"] - outputs, row["macs"]


@pytest.fixture(scope="module")
def paper_rows():
    return {row["name"]: row for row in alexnet(variant="paper", rng=0).profile((3, 227, 227))}


@pytest.mark.parametrize("name", ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"])
def test_paper_profile_matches_the_seed_table(paper_rows, name):
    output, params, macs = seed_table()[name]
    row = paper_rows[name]
    assert "x".join(map(str, row["output_shape"])) == output
    assert counted_as_the_seed_counts(row) == (params, macs)


def test_paper_totals_match_the_seed_table_and_pooling_halves_the_maps(paper_rows):
    _, params, macs = seed_table()["overall"]
    counted = [counted_as_the_seed_counts(row) for row in paper_rows.values() if row["params"]]
    assert (sum(p for p, _ in counted), sum(m for _, m in counted)) == (params, macs)
    pools = [paper_rows[name]["output_shape"] for name in ("pool1", "pool2", "pool5")]
    assert pools == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]               # section 3.4: 3x3 windows, stride 2


def test_paper_totals_with_and_without_groups():
    """62,378,344 parameters on one GPU; 60,965,224 (the paper's "60 million") with groups=2."""
    one = alexnet(variant="paper", groups=1, rng=0)
    two = alexnet(variant="paper", groups=2, rng=0)
    assert sum(p.size for p in one.parameters()) == 62_378_344
    assert sum(p.size for p in two.parameters()) == 60_965_224
    assert one.macs((3, 227, 227)) == 1_135_256_096                     # "1.1 billion"
    conv = sum(r["macs"] for r in one.profile((3, 227, 227)) if r["kind"] == "Conv2d")
    assert round(conv / one.macs((3, 227, 227)), 2) == 0.95             # the seed: conv is 95% of the compute


def test_summary_is_a_keras_style_table_with_totals():
    model = tc.Sequential([tc.Conv2d(3, 4, 3), tc.ReLU(), tc.BatchNorm2d(4), tc.Flatten(), tc.Dense(4 * 6 * 6, 2)])
    text = model.summary((3, 8, 8), print_fn=None)
    lines = text.splitlines()
    assert lines[1].split() == ["Layer", "(type)", "Kernel", "Stride", "Pad", "Groups", "Output", "Shape", "Param",
                                "#", "MACs"]
    assert lines[3].split() == ["conv2d", "(Conv2d)", "3x3", "1", "0", "1", "(None,", "4,", "6,", "6)", "112", "3,888"]
    assert lines[4].split() == ["re_lu", "(ReLU)", "(None,", "4,", "6,", "6)", "0", "0"]      # no window: blank
    assert lines[5].split()[:2] == ["batch_norm2d", "(BatchNorm2d)"]
    assert lines[5].split()[-2:] == ["16", "0"]                         # gamma, beta + 2 running statistics
    assert "Total params: 418" in text and "Trainable params: 410" in text and "Non-trainable params: 8" in text
    assert "Total MACs per image: 4,176" in text


def test_summary_names_are_unique_keras_style():
    model = tc.Sequential([tc.ReLU(), tc.ReLU(), tc.LocalResponseNorm()])
    assert [row["name"] for row in model.profile((8, 2, 2))] == ["re_lu", "re_lu_1", "local_response_norm"]


def test_unknown_variant_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown variant .vgg.; expected one of paper, caffe"):
        alexnet(variant="vgg")


def test_seed_keras_summary_reproduces_the_seeds_keras_rows():
    """conv2d (54,54,96) 34,944; max_pooling2d (27,27,96); batch_normalization 384; conv2d_1 (17,17,256)
    2,973,952; max_pooling2d_1 (8,8,256); batch_normalization_1 1,024 -- in NCHW order here."""
    rows = alexnet(num_classes=10, variant="seed-keras", rng=0).profile((3, 224, 224))
    got = [(r["name"], r["output_shape"], r["params"]) for r in rows[:8]]
    assert got == [("conv1", (96, 54, 54), 34_944), ("relu1", (96, 54, 54), 0), ("pool1", (96, 27, 27), 0),
                   ("bn1", (96, 27, 27), 384), ("conv2", (256, 17, 17), 2_973_952), ("relu2", (256, 17, 17), 0),
                   ("pool2", (256, 8, 8), 0), ("bn2", (256, 8, 8), 1_024)]
    bn_rows = [r for r in rows if r["kind"].startswith("BatchNorm")]
    assert all(r["trainable_params"] * 2 == r["params"] for r in bn_rows)     # moving mean/var: non-trainable


@pytest.mark.parametrize("variant, groups, total", [("torchvision", None, 61_100_840), ("caffe", None, 60_965_224),
                                                    ("paper", 2, 60_965_224), ("paper", 1, 62_378_344)])
def test_variant_parameter_totals(variant, groups, total):
    model = alexnet(variant=variant, groups=groups, rng=0)
    side = INPUT_SIZE[variant]
    assert sum(r["params"] for r in model.profile((3, side, side))) == total


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_takes_any_number_of_classes_and_runs(variant):
    size = 32 if variant == "mini" else None
    model = alexnet(num_classes=6, variant=variant, rng=0, input_size=size)
    side = size or INPUT_SIZE[variant]
    if variant == "mini":
        y = model.forward(np.random.default_rng(0).standard_normal((2, 3, side, side)).astype(np.float32), True)
        assert y.shape == (2, 6) and np.isfinite(y).all()
    assert model.output_shape((3, side, side)) == (6,)


def test_caffe_lrn_is_the_papers_formula_with_alpha_over_n_and_k_1():
    norm = alexnet(variant="caffe", rng=0)["norm1"]
    assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 1e-4 / 5, 0.75, 1.0)
    paper = alexnet(variant="paper", rng=0)
    assert paper["conv2"].bias.data[0] == 1.0 and paper["conv3"].bias.data[0] == 0.0
    assert alexnet(variant="paper", rng=0, positive_bias=0.1)["fc7"].bias.data[0] == np.float32(0.1)


def summary_rows(capsys, *args):
    """Run `alexnet.py summary ARGS` -> {layer name: the cells of its row}, and the whole text."""
    assert cli.main(["summary", *args]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()
            if re.match(r"\w+ \(\w+\)", line) and not line.startswith("Layer (type)")}
    return rows, text


def test_summary_shows_each_layers_kernel_stride_padding_and_groups(capsys):
    """With --groups 2 the table shows where the paper's two GPUs split: conv2, conv4, conv5 and both LRNs."""
    rows, _ = summary_rows(capsys, "--variant", "paper", "--groups", "2")
    assert rows["conv1"][:5] == ["(Conv2d)", "11x11", "4", "0", "1"]
    assert rows["conv2"][:5] == ["(Conv2d)", "5x5", "1", "2", "2"]
    assert rows["conv3"][:5] == ["(Conv2d)", "3x3", "1", "1", "1"]
    assert [rows[name][4] for name in ("conv4", "conv5")] == ["2", "2"]
    assert rows["pool1"][:4] == ["(MaxPool2d)", "3x3", "2", "0"] and rows["pool1"][4] == "(None,"
    assert rows["norm1"][:2] == ["(LocalResponseNorm)", "2"]           # groups only: LRN has no spatial window
    assert rows["fc6"][1] == "(None,"                                   # a dense layer has no window


@pytest.mark.parametrize("variant", VARIANTS)
def test_summary_runs_for_every_variant_with_trains_default_classes(capsys, variant):
    rows, text = summary_rows(capsys, "--variant", variant)
    classes = 6 if variant == "mini" else 1000                         # mini: the built-in shapes, as in train
    model = alexnet(classes, variant, rng=0)
    assert list(rows) == [name for name, _ in model.children()]
    total = sum(p.size for p in model.parameters()) + sum(b.size for _, b in model.named_buffers())
    assert f"Total params: {total:,}" in text
    assert rows["fc8"][1:3] == ["(None,", f"{classes})"]
    for name, layer in model.children():
        if isinstance(layer, tc.Conv2d):
            assert rows[name][1] == "{}x{}".format(*layer.kernel_size), name


def test_summary_names_a_users_layer_that_has_no_output_shape():
    """Issue #22: the default output_shape returned the input's shape, so a layer that halves the maps but does not
    say so made summary() blame the Dense layer after it. Now the layer itself is named."""

    class Halve(tc.Layer):
        def forward(self, x, training=False):
            return x[:, :, ::2, ::2]

    model = tc.Sequential({"conv": tc.Conv2d(3, 4, 3), "halve": Halve(), "flatten": tc.Flatten(),
                           "fc": tc.Dense(4 * 3 * 3, 2)})
    assert model.forward(np.ones((1, 3, 8, 8), np.float32)).shape == (1, 2)
    with pytest.raises(NotImplementedError, match=r"Halve 'halve' \(\): output_shape is not implemented"):
        model.summary((3, 8, 8))


@pytest.mark.parametrize("layer, x_shape", [
    (tc.ReLU(), (2, 3, 4, 5)), (tc.Tanh(), (2, 7)), (tc.Dropout(0.5, rng=0), (2, 3, 4, 5)),
    (tc.LocalResponseNorm(), (2, 6, 3, 3)), (tc.BatchNorm2d(3), (2, 3, 4, 5)), (tc.BatchNorm1d(7), (2, 7))])
def test_every_shipped_layer_that_keeps_the_shape_says_so(layer, x_shape):
    """The layers whose output has the input's shape each have their own output_shape (there is no default)."""
    y = layer.forward(np.ones(x_shape, np.float32), training=True)
    assert layer.output_shape(x_shape[1:]) == y.shape[1:]
