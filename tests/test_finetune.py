"""Fine-tuning (frozen layers, a new head, multipliers), importing weights, and auto-encoder pre-training."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import checkpoint, data, finetune
from tinycnn.import_weights import IMAGENET_MEAN, IMAGENET_STD, TORCHVISION_NAMES, import_weights, load_state_dict
from tinycnn.models import alexnet
from tinycnn.pretrain import decoder_for, pretrain_layerwise
from tinycnn.runs import build, load_checkpoint
from tinycnn.train import Trainer

from helpers import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = dict(variant="mini", groups=1, input_size=32, positive_bias=1.0)


def three_classes(images, seed):
    train, val = data.builtin(images, images // 2, 36, seed=seed)
    keep = lambda s: s.subset(np.flatnonzero(s.labels < 3))      # noqa: E731
    return data.ImageSet(keep(train).images, keep(train).labels, train.classes[:3]), keep(val)


def test_fine_tuning_keeps_frozen_layers_bit_identical_and_the_new_head_learns(tmp_path):
    source = build(dict(CONFIG, num_classes=6), rng=1)
    checkpoint.save(str(tmp_path / "source.npz"), source, {})
    entries, _ = checkpoint.read(str(tmp_path / "source.npz"))
    model = build(dict(CONFIG, num_classes=3), rng=2)
    assert finetune.transfer_weights(model, entries, "source.npz") == ["fc8.weight", "fc8.bias"]
    same_classes = build(dict(CONFIG, num_classes=6), rng=2)
    assert finetune.transfer_weights(same_classes, entries, "source.npz") == []
    fresh = build(dict(CONFIG, num_classes=6), rng=2)
    assert finetune.transfer_weights(fresh, entries, "source.npz", new_head=True) == ["fc8.weight", "fc8.bias"]
    assert not np.array_equal(fresh["fc8"].weight.data, entries["param/fc8.weight"])
    frozen = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    finetune.freeze(model, frozen)
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    train, val = three_classes(120, seed=3)
    trainer = Trainer(model, dict(CONFIG, num_classes=3), train, val, data.Preprocess.fit(train.images, 1 / 255),
                      32, str(tmp_path / "run"), 0, lr=0.02, batch_size=16, progress=False)
    trainer.fit(4, log=lambda line: None)
    for name, p in model.named_parameters():
        if name.split(".")[0] in frozen:
            np.testing.assert_array_equal(p.data, before[name], err_msg=name)     # not even weight decay
        else:
            assert not np.array_equal(p.data, before[name]), name
    # The head learns from the loss: its gradient reaches it, while backward never fills the frozen layers'. (With
    # every conv frozen at its random start the features hardly differ between images, so the loss itself need not
    # fall in 4 epochs of 60 images.)
    assert np.abs(model["fc8"].weight.grad).max() > 0
    assert not any(model[name].weight.grad.any() for name in frozen)          # still the zeros they started as


def test_only_the_head_may_change_shape():
    entries = {f"param/{n}": p.data for n, p in build(dict(CONFIG, num_classes=6), rng=0).named_parameters()}
    entries["param/conv2.weight"] = entries["param/conv2.weight"][:10]
    with pytest.raises(checkpoint.CheckpointError, match=r"x.npz: param/conv2.weight has shape \(10, 32, 5, 5\), "
                                                         r"the model expects \(64, 32, 5, 5\); only the head"):
        finetune.transfer_weights(build(dict(CONFIG, num_classes=6), rng=0), entries, "x.npz")


class Spy:
    """Counts calls to a layer's backward."""

    def __init__(self, layer):
        self.calls, self.inner = 0, layer.backward
        layer.backward = self

    def __call__(self, dy):
        self.calls += 1
        return self.inner(dy)


def test_backward_does_no_work_below_the_last_frozen_layer():
    model = tc.Sequential({"conv1": tc.Conv2d(3, 4, 3, rng=0), "relu1": tc.ReLU(), "conv2": tc.Conv2d(4, 4, 3, rng=1),
                           "relu2": tc.ReLU(), "flatten": tc.Flatten(), "fc": tc.Dense(4 * 4 * 4, 2, rng=2)})
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    dy = np.ones((2, 2), np.float32)
    model.skip_input_gradient()                           # training: no gradient for the images
    model.forward(x, training=True)
    model.backward(dy)
    full_grad = model["conv2"].weight.grad.copy()
    model["conv1"].freeze()
    spies = {name: Spy(model[name]) for name in ("conv1", "relu1", "conv2")}
    model.forward(x, training=True)
    assert model.backward(dy) is None
    assert spies["conv1"].calls == spies["relu1"].calls == 0
    assert spies["conv2"].calls == 1 and model["conv2"].needs_input_grad is False
    np.testing.assert_array_equal(model["conv2"].weight.grad, full_grad)
    model["conv1"].freeze(False)
    model.forward(x, training=True)
    model.backward(dy)
    assert spies["conv1"].calls == 1                      # unfrozen: it learns again


def test_multipliers_follow_patterns_and_later_entries_win():
    model = build(dict(CONFIG, num_classes=6), rng=0)
    finetune.set_multipliers(model, "fc8=10,*.bias=2", "lr_mult", "--lr-mult")
    finetune.set_multipliers(model, "*.bias=0", "decay_mult", "--decay-mult")
    p = dict(model.named_parameters())
    assert (p["fc8.weight"].lr_mult, p["fc8.bias"].lr_mult, p["conv1.weight"].lr_mult, p["conv1.bias"].lr_mult) \
        == (10, 2, 1, 2)
    assert (p["fc8.weight"].decay_mult, p["conv3.bias"].decay_mult) == (1, 0)
    with pytest.raises(ValueError, match=r"--lr-mult: 'fc9' matches no parameter"):
        finetune.set_multipliers(model, "fc9=2", "lr_mult", "--lr-mult")
    with pytest.raises(ValueError, match=r"--lr-mult: expected PATTERN=VALUE with a finite number >= 0, got 'fc8'"):
        finetune.set_multipliers(model, "fc8", "lr_mult", "--lr-mult")
    with pytest.raises(ValueError, match=r"^freeze: the model has no layer 'conv9'"):     # the library's own name
        finetune.freeze(model, ["conv9"])
    with pytest.raises(ValueError, match=r"^--freeze: layer 'relu1' has no weights to freeze"):
        finetune.freeze(model, ["relu1"], "--freeze")


# -- importing weights ----------------------------------------------------------------------------------------

def torchvision_state(num_classes=10, seed=0):
    """A state dict with torchvision.models.alexnet's key names and shapes, random values."""
    rng = np.random.default_rng(seed)
    shapes = {"features.0": (64, 3, 11, 11), "features.3": (192, 64, 5, 5), "features.6": (384, 192, 3, 3),
              "features.8": (256, 384, 3, 3), "features.10": (256, 256, 3, 3), "classifier.1": (4096, 9216),
              "classifier.4": (4096, 4096), "classifier.6": (num_classes, 4096)}
    state = {}
    for key, shape in shapes.items():
        fan_in = np.prod(shape[1:])
        state[f"{key}.weight"] = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
        state[f"{key}.bias"] = (rng.standard_normal(shape[0]) * 0.1).astype(np.float32)
    return state


def test_torchvision_weights_give_the_network_torchvision_computes(tmp_path):
    """Importing folds 1/std into conv1; the result on raw pixels equals the unfolded net on normalised input."""
    state = torchvision_state()
    np.savez(tmp_path / "alexnet.npz", **state)
    model, meta, preprocess = import_weights(str(tmp_path / "alexnet.npz"))
    assert meta["config"]["num_classes"] == 10 and meta["classes"] == [str(i) for i in range(10)]
    np.testing.assert_array_equal(model["fc6"].weight.data, state["classifier.1.weight"])
    pixels = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    crop = np.pad(pixels, ((0, 0), (14, 14), (14, 14), (0, 0)))           # stored size 252, centre crop 224
    ours = model.forward(data.augment.centre_crop(preprocess(crop), 224))
    plain = build(meta["config"], rng=0)
    load_state_dict(plain, state, "alexnet.npz", TORCHVISION_NAMES)
    normalised = ((pixels / 255 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)
    np.testing.assert_allclose(ours, plain.forward(normalised.transpose(0, 3, 1, 2)), rtol=1e-3, atol=1e-4)
    torch_logits = torch_forward(state, normalised)
    if torch_logits is not None:
        np.testing.assert_allclose(ours, torch_logits, rtol=1e-3, atol=1e-4)


def torch_forward(state, normalised):
    """torchvision's AlexNet written out in torch.nn (torchvision itself may not install), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    nn = torch.nn
    net = nn.Module()
    net.features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
    net.avgpool = nn.AdaptiveAvgPool2d(6)
    net.classifier = nn.Sequential(nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(),
                                   nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    net.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))
        return net.classifier(torch.flatten(net.avgpool(net.features(x)), 1)).numpy()


def test_import_refuses_weights_that_do_not_fit(tmp_path):
    state = torchvision_state()
    del state["features.3.bias"]
    np.savez(tmp_path / "partial.npz", **state)
    with pytest.raises(ValueError, match=r"partial.npz: keys do not match the model: missing \['conv2.bias'\]"):
        import_weights(str(tmp_path / "partial.npz"))
    with pytest.raises(ValueError, match=r"holds torchvision's key names .* expected --variant torchvision"):
        import_weights(str(tmp_path / "partial.npz"), variant="paper")
    np.savez(tmp_path / "evil.npz", w=np.array([object()]))
    with pytest.raises(ValueError, match="evil.npz: refusing to load pickled objects"):
        import_weights(str(tmp_path / "evil.npz"))


def test_weights_under_tinycnn_names_round_trip(tmp_path):
    model = build(dict(CONFIG, num_classes=6), rng=4)
    np.savez(tmp_path / "mine.npz", **{name: p.data for name, p in model.named_parameters()})
    imported, meta, _ = import_weights(str(tmp_path / "mine.npz"), variant="mini")
    for (name, p), q in zip(model.named_parameters(), imported.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_batchnorm_statistics_import_with_the_weights(tmp_path):
    model = alexnet(num_classes=6, variant="seed-keras", rng=4)
    for _, buffer in model.named_buffers():
        buffer[...] = np.random.default_rng(5).random(buffer.shape)
    state = {name: p.data for name, p in model.named_parameters()}
    np.savez(tmp_path / "keras.npz", **state, **dict(model.named_buffers()))
    imported, _, _ = import_weights(str(tmp_path / "keras.npz"), variant="seed-keras")
    for (name, b), (_, c) in zip(model.named_buffers(), imported.named_buffers()):
        np.testing.assert_array_equal(b, c, err_msg=name)
    np.savez(tmp_path / "no-statistics.npz", **state)
    with pytest.raises(ValueError, match=r"no-statistics.npz: keys do not match the model: missing \['bn1.running_mean'"):
        import_weights(str(tmp_path / "no-statistics.npz"), variant="seed-keras")


# -- auto-encoder pre-training --------------------------------------------------------------------------------

@given(k=st.integers(1, 7), s=st.integers(1, 4), h=st.integers(8, 20), data_=st.data())
def test_the_decoder_gives_back_the_encoders_input_shape(k, s, h, data_):
    p = data_.draw(st.integers(0, (k - 1) // 2))
    conv = tc.Conv2d(3, 5, k, s, p, rng=0)
    decoder = decoder_for(conv, (h, h + 1), rng=0)
    assert decoder.output_shape(conv.output_shape((3, h, h + 1))) == (3, h, h + 1)


def test_layerwise_pretraining_learns_to_reconstruct_and_touches_only_its_layers():
    train, _ = data.builtin(96, 6, 36, seed=5)
    model = build(dict(CONFIG, num_classes=6), rng=0)
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    history = pretrain_layerwise(model, ["conv1", "conv2"], train.images, data.Preprocess.fit(train.images, 1 / 255),
                                 32, np.random.default_rng(0), epochs=3, batch_size=16, progress=False,
                                 log=lambda line: None)
    assert [(h["layer"], h["epoch"]) for h in history] == [(f"conv{i}", e) for i in (1, 2) for e in (1, 2, 3)]
    conv1 = [h["loss"] for h in history if h["layer"] == "conv1"]
    assert conv1[-1] < 0.6 * conv1[0]                                      # reconstructs ever better
    for name, p in model.named_parameters():
        changed = not np.array_equal(p.data, before[name])
        assert changed == (name.split(".")[0] in ("conv1", "conv2")), name
    assert model["conv1"].name == "conv1"


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, "alexnet.py"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_command_line_pretrain_then_fine_tune_and_import(tmp_path):
    done = run_cli("pretrain", "--train-images", "60", "--epochs", "1", "--layers", "conv1", "--out", "pre",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "conv1 epoch 1/1: unexplained variance" in done.stdout
    done = run_cli("train", "--init", "pre/pretrained.npz", "--freeze", "conv1", "--lr-mult", "*.bias=2",
                   "--train-images", "60", "--val-images", "30", "--epochs", "1", "--out", "ft", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fine-tuning from pre/pretrained.npz: all weights kept" in done.stdout
    tuned, _ = load_checkpoint(str(tmp_path / "ft" / "last.npz"))
    pretrained, _ = load_checkpoint(str(tmp_path / "pre" / "pretrained.npz"))
    np.testing.assert_array_equal(tuned["conv1"].weight.data, pretrained["conv1"].weight.data)
    assert not np.array_equal(tuned["conv2"].weight.data, pretrained["conv2"].weight.data)

    pretrained_bytes = (tmp_path / "pre" / "pretrained.npz").read_bytes()
    np.savez(tmp_path / "tv.npz", **torchvision_state(num_classes=3))
    (tmp_path / "names.txt").write_text("cat\ndog\nfox\n")
    done = run_cli("import-weights", "tv.npz", "--classes", "names.txt", "--out", "tv-model.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from PIL import Image
    Image.fromarray(data.make_shapes(1, 64, seed=0)[0][0]).save(tmp_path / "one.png")
    done = run_cli("predict", "--checkpoint", "tv-model.npz", "one.png", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("one.png: ") and "fox" in done.stdout, done.stderr
    checkpoint.save(str(tmp_path / "bare.npz"), tc.Sequential([tc.Dense(2, 2, rng=0)]), {})
    for args, message in [
        (["train", "--init", "bare.npz"], "bare.npz: not a checkpoint of alexnet.py train, pretrain or import"),
        (["train", "--init", "pre/pretrained.npz", "--variant", "paper"], "--variant paper does not match the "
                                                                          "--init checkpoint's mini"),
        (["train", "--init", "pre/pretrained.npz", "--freeze", "conv1,conv2,conv3,conv4,conv5,fc6,fc7,fc8",
          "--train-images", "12", "--val-images", "6"], "leaves nothing to train"),
        (["evaluate", "--checkpoint", "tv-model.npz"], "tv-model.npz: was not trained here"),
        (["import-weights", "tv.npz", "--classes", "names.txt", "--variant", "caffe", "--out", "x.npz"],
         "expected --variant torchvision"),
        (["import-weights", "missing.pth", "--out", "x.npz"], "missing.pth: no such weights file"),
        (["pretrain", "--layers", "conv1,fc6"], "--layers: expected conv layers among conv1..conv5, got conv1,fc6"),
        (["pretrain", "--train-images", "60", "--out", "pre"], "--out pre: already holds pretrained.npz"),
    ]:
        done = run_cli(*args, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (tmp_path / "pre" / "pretrained.npz").read_bytes() == pretrained_bytes      # refused: nothing lost


def test_a_pth_state_dict_imports_like_its_npz(tmp_path):
    torch = pytest.importorskip("torch")          # never installed by the test extras; the .npz path covers CI
    state = torchvision_state(num_classes=4)
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "alexnet.pth")
    np.savez(tmp_path / "alexnet.npz", **state)
    from_pth, _, _ = import_weights(str(tmp_path / "alexnet.pth"))
    from_npz, _, _ = import_weights(str(tmp_path / "alexnet.npz"))
    for p, q in zip(from_pth.parameters(), from_npz.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_a_frozen_conv_computes_its_input_gradient_without_building_columns(monkeypatch):
    conv = tc.Conv2d(3, 4, 3, stride=2, padding=1, groups=1, dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((3, 3, 9, 9))
    dy = np.random.default_rng(2).standard_normal((3, 4, 5, 5))
    conv.forward(x)
    expected = conv.backward(dy)
    conv.freeze()
    conv.weight.grad[...] = 0
    calls = []
    real_im2col = tc.layers.conv.im2col
    monkeypatch.setattr("tinycnn.layers.conv.im2col", lambda *a: calls.append(1) or real_im2col(*a))
    np.testing.assert_array_equal(conv.backward(dy), expected)
    assert calls == [] and not conv.weight.grad.any()
