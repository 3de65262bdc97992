"""Whole networks: a tiny AlexNet passes gradcheck on every parameter, and a small CNN really learns."""
import time

import numpy as np

import tinycnn as tc

from helpers import away_from_zero


def tiny_alexnet(rng, dtype=np.float64):
    """The paper's layer order at small widths: (conv-relu-lrn-pool) x2, three convs, pool,
    (dropout-dense-relu) x2, dense. Groups as on the paper's two GPUs; alpha=1 so LRN really matters."""
    def conv(cin, cout, k, stride=1, padding=0, groups=1):
        layer = tc.Conv2d(cin, cout, k, stride, padding, groups, dtype=dtype, rng=rng)
        layer.bias.data[:] = rng.uniform(-0.5, 0.5, cout)         # mixed signs: ReLUs both on and off
        return layer

    def dense(d, k):
        layer = tc.Dense(d, k, dtype=dtype, rng=rng)
        layer.bias.data[:] = rng.uniform(-0.5, 0.5, k)
        return layer

    return tc.Sequential({
        "conv1": conv(3, 4, 5, stride=2, padding=1), "relu1": tc.ReLU(),
        "norm1": tc.LocalResponseNorm(5, alpha=1.0, beta=0.75, k=2.0), "pool1": tc.MaxPool2d(3, 2),
        "conv2": conv(4, 6, 3, padding=1, groups=2), "relu2": tc.ReLU(),
        "norm2": tc.LocalResponseNorm(5, alpha=1.0, beta=0.75, k=2.0), "pool2": tc.MaxPool2d(3, 2),
        "conv3": conv(6, 8, 3, padding=1), "relu3": tc.ReLU(),
        "conv4": conv(8, 8, 3, padding=1, groups=2), "relu4": tc.ReLU(),
        "conv5": conv(8, 6, 3, padding=1, groups=2), "relu5": tc.ReLU(),
        "pool5": tc.MaxPool2d(3, 2), "flatten": tc.Flatten(),
        "drop6": tc.Dropout(0.5, rng=rng), "fc6": dense(6, 16), "relu6": tc.ReLU(),
        "drop7": tc.Dropout(0.5, rng=rng), "fc7": dense(16, 16), "relu7": tc.ReLU(),
        "fc8": dense(16, 5),
    })


def test_tiny_alexnet_passes_gradcheck_on_the_input_and_every_parameter():
    rng = np.random.default_rng(2012)
    model = tiny_alexnet(rng)
    x = away_from_zero(rng, (2, 3, 33, 33))
    assert model.output_shape((3, 33, 33)) == (5,)
    records = tc.gradient_errors(model, x, training=True, full_limit=400, directions=8)
    checked = {r["name"] for r in records}
    assert checked == {"input"} | {name for name, _ in model.named_parameters()}
    assert len(checked) == 1 + 2 * 8                              # 5 convs + 3 dense, weight and bias each
    assert tc.gradcheck(model, x, training=True, full_limit=400, directions=8)


def test_tiny_alexnet_gradcheck_catches_a_planted_bug_deep_inside():
    """Scale conv3's weight gradient by 1.001: the whole-network check must notice and name it."""
    rng = np.random.default_rng(2012)
    model = tiny_alexnet(rng)
    conv3 = model["conv3"]
    original = conv3.backward

    def slightly_wrong_backward(dy):
        dx = original(dy)
        conv3.weight.grad *= 1.001
        return dx

    conv3.backward = slightly_wrong_backward
    try:
        tc.gradcheck(model, away_from_zero(rng, (2, 3, 33, 33)), full_limit=400, directions=8)
    except tc.GradcheckError as error:
        assert "conv3.weight" in str(error)
        assert "the first to fail is Conv2d 'conv3'" in str(error)          # checked layer by layer
    else:
        raise AssertionError("gradcheck missed a 0.1% error in conv3.weight")


def bars_dataset(n, rng, size=16):
    """Three classes a linear model on raw pixels cannot separate by position: a horizontal bar, a vertical bar,
    or a small square, each at a random place, with random brightness and noise."""
    x = rng.normal(0, 0.3, (n, 1, size, size))
    y = rng.integers(0, 3, n)
    for i in range(n):
        r, c = rng.integers(2, size - 6, 2)
        v = rng.uniform(1, 2)
        if y[i] == 0:
            x[i, 0, r, c:c + 6] += v
        elif y[i] == 1:
            x[i, 0, r:r + 6, c] += v
        else:
            x[i, 0, r:r + 2, c:c + 2] += v
    return x.astype(np.float32), y


def test_a_small_cnn_learns_to_tell_bars_from_squares_within_seconds():
    rng = np.random.default_rng(0)
    x, y = bars_dataset(1200, rng)
    x_val, y_val = bars_dataset(300, rng)
    model = tc.Sequential([tc.Conv2d(1, 8, 3, padding=1, rng=rng), tc.ReLU(), tc.MaxPool2d(3, 2),
                           tc.Conv2d(8, 16, 3, padding=1, rng=rng), tc.ReLU(), tc.MaxPool2d(3, 2),
                           tc.Flatten(), tc.Dense(16 * 3 * 3, 3, rng=rng)])
    loss_fn, opt = tc.SoftmaxCrossEntropy(), None
    opt = tc.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    start = time.perf_counter()
    for epoch in range(3):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 32):
            batch = order[i:i + 32]
            loss_fn.forward(model.forward(x[batch], training=True), y[batch])
            model.backward(loss_fn.backward())
            opt.step()
    accuracy = np.mean(model.forward(x_val).argmax(axis=1) == y_val)
    print(f"validation accuracy {accuracy:.3f} after {time.perf_counter() - start:.1f} s")
    assert accuracy > 0.9                                        # chance is 1/3
