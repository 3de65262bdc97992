"""The checks that grade the exercises (tinycnn/exercises.py names which check which), run by
`python -m tinycnn.grade` in a fresh process whose `import tinycnn` finds the student's workspace.

Each check is a function of no arguments: None when the student's code does what the library's does, else one
message a student can act on: the layer, the case, the first entry that differs (numpy index), the value
expected and theirs, and a hint, e.g.

    MaxPool2d(3, stride=2).backward on x (1, 2, 7, 7): dx differs from the numerical gradient at [0, 0, 2, 2]:
    numerical 2.3, yours 1.1; overlapping windows must add (+=): a pixel that wins two windows gets both dy

The checks are those that guard the library's own code: its slow twin in reference.py, central differences
(tinycnn.gradient_errors) and the properties its tests hold, on fixed cases drawn from seeded Generators. The
oracle, reference.py, is read from beside this file, so a grader's twin judges the student's copy; everything
else (the layers, gradcheck) is the workspace's.
"""
import importlib.util
import json
import os
import re
import sys
import traceback

import numpy as np

tc = None                                     # the workspace's tinycnn, imported by run()


def _beside(name):
    """The module `name`.py from this file's folder, loaded by its path (not through sys.path)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    spec = importlib.util.spec_from_file_location(f"tinycnn_grader_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _beside("reference")
TOLERANCE = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5), np.dtype(np.float64): dict(rtol=1e-7, atol=1e-9)}


def check(subject, hint):
    """A check's decorator: the hint is added to its message; `subject` names what an exception came from."""
    def wrap(f):
        def run():
            problem = f()
            return None if problem is None else f"{subject} {problem}; {hint}"
        run.__name__, run.__doc__, run.subject = f.__name__, f.__doc__, subject
        return run
    return wrap


# -- inputs and comparisons ------------------------------------------------------------------------------------

def away_from_zero(rng, shape, dtype=np.float64, margin=0.1):
    """|v| >= margin: a central difference never steps across ReLU's kink."""
    v = rng.standard_normal(shape)
    return (np.sign(v) * (margin + np.abs(v))).astype(dtype)


def distinct(rng, shape, dtype=np.float64, spacing=0.05):
    """Shuffled values `spacing` apart: no two pixels tie for a max-pooling window."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * spacing - size * spacing / 2).astype(dtype)


def differs(name, got, expected, oracle, dtype=None, place=None):
    """None if `got` equals `expected` (shape, dtype when given, values to the dtype's tolerance), else what
    differs first. place(index) may name an index in words."""
    expected = np.asarray(expected)
    problem = not_like(name, got, expected.shape, dtype)
    if problem:
        return problem
    bad = ~np.isclose(got, expected, **TOLERANCE.get(np.dtype(expected.dtype), TOLERANCE[np.dtype(np.float64)]))
    if not bad.any():
        return None
    at = tuple(int(i) for i in np.argwhere(bad)[0])
    yours = "nan (never written?)" if np.isnan(got[at]) else f"{got[at]:.6g}"
    where = list(at) if place is None else place(at)
    message = f"{name} differs from {oracle} at {where}: expected {expected[at]:.6g}, yours {yours}"
    return message + factor(got, expected)


def not_like(name, got, shape, dtype=None):
    """None if `got` is an array of `shape` (and `dtype`, when given), else what it is instead."""
    if not isinstance(got, np.ndarray):
        return f"{name} is {type(got).__name__}, expected an array of shape {shape}"
    if got.shape != shape:
        return f"{name} has shape {got.shape}, expected {shape}"
    if dtype is not None and got.dtype != np.dtype(dtype):
        return f"{name} is {got.dtype}, expected {np.dtype(dtype)} (the input's dtype)"
    return None


def factor(got, expected):
    """" (yours is c times it everywhere)" when one factor c != 1 relates every entry; else ""."""
    nonzero = expected != 0
    if not nonzero.any() or not np.isfinite(got).all():
        return ""
    if not got.any():
        return " (yours is 0 everywhere)"
    ratios = got[nonzero] / expected[nonzero]
    c = float(np.median(ratios))
    same = np.allclose(ratios, c, rtol=1e-5) and np.allclose(got[~nonzero], 0)
    return f" (yours is {c:.4g} times it everywhere: a factor off)" if same and abs(c - 1) > 1e-5 else ""


GRADIENT_NAMES = {"input": "dx", "weight": "weight.grad (dW)", "bias": "bias.grad (db)"}


def numerical(layer, x, training=True, atol=1e-6, rtol=1e-4):
    """None if every gradient of `layer` at x (float64) matches central differences, else the first that
    does not, in the words of differs()."""
    try:
        records = tc.gradient_errors(layer, x, training=training)
    except (AssertionError, ValueError) as error:
        if not str(error).startswith("gradcheck:"):
            raise
        return str(error)[len("gradcheck: "):]
    for r in records:
        name = GRADIENT_NAMES.get(r["name"], r["name"])
        if r["never_set"]:
            return f"{name} was never set by backward"
        if r["abs_error"] > atol + rtol * abs(r["numerical"]):
            return (f"{name} differs from the numerical gradient at {list(r['index'])}: numerical "
                    f"{r['numerical']:.6g}, yours {r['analytical']:.6g}")
    return None


def shape_of(x):
    return f"{tuple(x.shape)}" + ("" if x.dtype == np.float64 else f" {x.dtype}")


# -- ReLU ------------------------------------------------------------------------------------------------------

@check("ReLU.backward", "dx = dy where x > 0 (where y > 0), else 0")
def relu_matches_twin():
    """dx against reference.relu_backward, float64 and float32, dy C-ordered and a transposed view."""
    rng = np.random.default_rng(0)
    for shape, dtype, transposed in [((2, 3, 4, 5), np.float64, False), ((3, 7), np.float32, False),
                                     ((2, 3, 4, 5), np.float32, True)]:
        x, dy = away_from_zero(rng, shape, dtype), rng.standard_normal(shape).astype(dtype)
        relu = tc.ReLU()
        relu.forward(x, training=True)
        dx = relu.backward(np.ascontiguousarray(dy.T).T if transposed else dy)
        problem = differs("dx", dx, ref.relu_backward(x, dy), "reference.relu_backward", dtype)
        if problem:
            return f"on x {shape_of(x)}{' (dy a transposed view)' if transposed else ''}: {problem}"


@check("ReLU.backward", "dx = dy where x > 0, else 0")
def relu_numerical_gradient():
    """dx against central differences (float64, inputs kept off the kink at 0)."""
    x = away_from_zero(np.random.default_rng(1), (2, 3, 4, 4))
    problem = numerical(tc.ReLU(), x)
    return problem and f"on x {shape_of(x)}: {problem}"


# -- Dropout ---------------------------------------------------------------------------------------------------

def dropout_case(p=0.5, shape=(2, 3, 4, 4), dtype=np.float32, seed=7):
    """-> (layer, x, the mask reference.dropout_mask draws from the same seed)."""
    x = away_from_zero(np.random.default_rng(100 + seed), shape, dtype)
    mask = ref.dropout_mask(shape, np.dtype(dtype), p, np.random.default_rng(seed))
    return tc.Dropout(p, rng=seed), x, mask


@check("Dropout.forward(x, training=False)", "when not training, y = x and backward passes dy on (the mask is None)")
def dropout_is_the_identity_when_not_training():
    """Evaluation: y = x, dx = dy."""
    layer, x, _ = dropout_case()
    problem = differs("y", layer.forward(x, training=False), x, "x", x.dtype)
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(x.dtype)
    problem = problem or differs("dx", layer.backward(dy), dy, "dy", x.dtype)
    return problem and f"on x {shape_of(x)}: {problem}"


@check("Dropout.forward(x, training=True)", "survivors are scaled by 1/(1-p) (inverted dropout), the others are 0")
def dropout_scales_survivors():
    """Every y is 0 or x / (1 - p), for p = 0.5 and 0.25."""
    for p in (0.5, 0.25):
        layer, x, _ = dropout_case(p)
        y = layer.forward(x, training=True)
        problem = not_like("y", y, x.shape, x.dtype)
        if problem:
            return f"with p={p} on x {shape_of(x)}: {problem}"
        scaled = x / x.dtype.type(1 - p)
        fine = (y == 0) | np.isclose(y, scaled, rtol=1e-5)
        if not fine.all():
            at = tuple(int(i) for i in np.argwhere(~fine)[0])
            return (f"with p={p}: y at {list(at)} is {y[at]:.6g} where x is {x[at]:.6g}; expected 0 or x / (1 - p) = "
                    f"{scaled[at]:.6g}")


@check("Dropout.forward(x, training=True)", "an entry survives with probability 1 - p")
def dropout_keeps_1_minus_p():
    """Of 20,000 entries with p = 0.3, between 69% and 71% survive."""
    layer, x, _ = dropout_case(0.3, (20, 1000))
    kept = float(np.mean(layer.forward(x, training=True) != 0))
    if abs(kept - 0.7) > 0.01:
        return f"with p=0.3 kept {kept:.1%} of 20,000 entries, expected 70%"


@check("Dropout.forward(x, training=True)", "draw the numbers as reference.dropout_mask does: u = "
       "self.rng.random(x.shape, dtype=x.dtype), once per forward, and keep where u >= p (training draws each "
       "image's numbers from its own stream this way)")
def dropout_matches_twin():
    """y = x * mask, with the mask reference.dropout_mask draws from the same seed."""
    layer, x, mask = dropout_case()
    problem = differs("y", layer.forward(x, training=True), x * mask, "x * reference.dropout_mask(...)", x.dtype)
    return problem and f"with p=0.5, rng=7, on x {shape_of(x)}: {problem}"


@check("Dropout.backward", "backward multiplies dy by the mask forward drew: save it with "
       "self.save_for_backward(x_shape=x.shape, dtype=x.dtype, mask=mask)")
def dropout_backward_uses_the_mask():
    """dx = dy * mask, the mask of the forward pass before."""
    layer, x, mask = dropout_case()
    layer.forward(x, training=True)
    dy = np.random.default_rng(4).standard_normal(x.shape).astype(x.dtype)
    problem = differs("dx", layer.backward(dy), dy * mask, "dy * reference.dropout_mask(...)", x.dtype)
    return problem and f"after forward(x, training=True) with p=0.5, rng=7: {problem}"


@check("Dropout", "y = x * mask and dx = dy * mask, with one mask drawn per forward")
def dropout_numerical_gradient():
    """dx against central differences, training (gradcheck replays the Generator before every pass)."""
    layer, x, _ = dropout_case(0.5, (2, 3, 4), np.float64, seed=3)
    problem = numerical(layer, x)
    return problem and f"(training, p=0.5) on x {shape_of(x)}: {problem}"


# -- Dense -----------------------------------------------------------------------------------------------------

DENSE_HINT = ("dx = dy W: (N, K)(K, D); dW = dy^T x: (K, N)(N, D); db = sum over n of dy: (K,); without a bias, "
              "self.bias is None")


@check("Dense.backward", DENSE_HINT)
def dense_matches_twin():
    """dx, weight.grad and bias.grad against reference.dense_backward; float32 and float64, with and without
    a bias."""
    for n, d, k, dtype, bias in [(4, 5, 3, np.float64, True), (2, 7, 7, np.float32, True),
                                 (3, 4, 6, np.float64, False)]:
        rng = np.random.default_rng(n * 100 + d)
        dense = tc.Dense(d, k, bias=bias, dtype=dtype, rng=rng)
        if bias:
            dense.bias.data[:] = rng.standard_normal(k)
        x, dy = rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((n, k)).astype(dtype)
        dense.forward(x, training=True)
        dx = dense.backward(dy)
        want_dx, want_dw, want_db = ref.dense_backward(x, dense.weight.data, dy)
        problem = (differs("dx", dx, want_dx, "reference.dense_backward", dtype)
                   or differs("weight.grad (dW)", dense.weight.grad, want_dw, "reference.dense_backward", dtype)
                   or (bias and differs("bias.grad (db)", dense.bias.grad, want_db, "reference.dense_backward",
                                        dtype)))
        if problem:
            return f"of Dense({d}, {k}{'' if bias else ', bias=False'}) on x {shape_of(x)}: {problem}"


@check("Dense.backward", DENSE_HINT)
def dense_numerical_gradient():
    """dx, dW and db against central differences (float64)."""
    rng = np.random.default_rng(5)
    dense, x = tc.Dense(4, 3, dtype=np.float64, rng=rng), rng.standard_normal((2, 4))
    dense.bias.data[:] = rng.standard_normal(3)
    problem = numerical(dense, x)
    return problem and f"of Dense(4, 3) on x {shape_of(x)}: {problem}"


@check("Dense.backward", "a frozen parameter (p.trainable False) keeps its grad array as it was: fine-tuning "
       "freezes layers (tinycnn/finetune.py)")
def dense_leaves_frozen_gradients():
    """With weight and bias frozen, their grad arrays stay as they were, and dx is still right."""
    rng = np.random.default_rng(6)
    dense = tc.Dense(5, 3, dtype=np.float64, rng=rng)
    x, dy = rng.standard_normal((2, 5)), rng.standard_normal((2, 3))
    for p in dense.parameters():
        p.trainable, p.grad = False, np.full(p.shape, 7.0)
    before = [p.grad for p in dense.parameters()]
    dense.forward(x, training=True)
    dx = dense.backward(dy)
    for name, p, grad in zip(("weight.grad", "bias.grad"), dense.parameters(), before):
        if p.grad is not grad or not (grad == 7.0).all():
            return f"of a frozen Dense(5, 3): {name} was changed"
    problem = differs("dx", dx, ref.dense_backward(x, dense.weight.data, dy)[0], "reference.dense_backward")
    return problem and f"of a frozen Dense(5, 3): {problem}"


# -- softmax cross-entropy ---------------------------------------------------------------------------------------

def loss_as_layer(labels):
    """The loss with fixed labels, seen as a layer from logits to the (scalar) loss, for gradient_errors (a class
    made here: tc.Layer is the workspace's, imported when grading starts)."""
    class LossAsLayer(tc.Layer):
        def __init__(self):
            self.loss = tc.SoftmaxCrossEntropy()

        def forward(self, x, training=False):
            return np.asarray(self.loss.forward(x, labels))

        def backward(self, dy):
            return dy * self.loss.backward()
    return LossAsLayer()


def logits_case(n, k, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)) * 3).astype(dtype), rng.integers(0, k, n)


SOFTMAX_HINT = "dL/dz = (softmax(z) - onehot(labels)) / N: the loss is the mean over the batch"


@check("SoftmaxCrossEntropy.backward", SOFTMAX_HINT)
def softmax_cross_entropy_matches_twin():
    """dlogits against reference.softmax_cross_entropy, float64 and float32."""
    for n, k, dtype in [(4, 6, np.float64), (3, 5, np.float32)]:
        logits, labels = logits_case(n, k, dtype, n)
        loss = tc.SoftmaxCrossEntropy()
        loss.forward(logits, labels)
        problem = differs("dlogits", loss.backward(), ref.softmax_cross_entropy(logits, labels)[1],
                          "reference.softmax_cross_entropy", dtype)
        if problem:
            return f"on logits {shape_of(logits)}, labels {labels.tolist()}: {problem}"


@check("SoftmaxCrossEntropy.backward", SOFTMAX_HINT)
def softmax_cross_entropy_numerical_gradient():
    """dlogits against central differences of the loss (float64)."""
    logits, labels = logits_case(3, 4, np.float64, 9)
    problem = numerical(loss_as_layer(labels), logits)
    return problem and f"on logits {shape_of(logits)}, labels {labels.tolist()}: {problem}"


@check("SoftmaxCrossEntropy.backward", "backward must leave self.probabilities as forward left it (subtract from "
       "a copy)")
def softmax_cross_entropy_backward_twice():
    """A second backward gives what the first gave, and self.probabilities is unchanged."""
    logits, labels = logits_case(4, 5, np.float64, 11)
    loss = tc.SoftmaxCrossEntropy()
    loss.forward(logits, labels)
    probabilities = np.array(loss.probabilities, copy=True)
    first = np.array(loss.backward(), copy=True)
    problem = (differs("self.probabilities after backward", loss.probabilities, probabilities, "softmax(z)")
               or differs("the second backward's dlogits", loss.backward(), first, "the first's"))
    return problem and f"on logits {shape_of(logits)}: {problem}"


# -- SGD -------------------------------------------------------------------------------------------------------

SGD_HINT = "v <- momentum * v - decay * w - lr * g, then w <- w + v, both in place"


@check("sgd_update", SGD_HINT)
def sgd_update_matches_twin():
    """One update of w and v against reference.sgd_step, float64 and float32."""
    from tinycnn.kernels import sgd_update
    for dtype in (np.float64, np.float32):
        rng, t = np.random.default_rng(12), np.dtype(dtype).type
        w, g, v = (rng.standard_normal(37).astype(dtype) for _ in range(3))
        want_w, want_v = w.copy(), v.copy()
        lr, momentum, decay = t(0.1), t(0.9), t(0.01 * 0.1)
        sgd_update(w, g, v, lr, momentum, decay)
        ref.sgd_step(want_w, g, want_v, lr, momentum, decay)
        problem = (differs("w", w, want_w, "reference.sgd_step", dtype)
                   or differs("v (momentum)", v, want_v, "reference.sgd_step", dtype))
        if problem:
            return f"(lr 0.1, momentum 0.9, decay 0.001) on {np.dtype(dtype)} arrays of 37: {problem}"


@check("SGD.step", SGD_HINT)
def sgd_steps_match_twin():
    """Three steps of tc.SGD (lr 0.05, momentum 0.9, weight decay 0.01) against three of reference.sgd_step."""
    rng = np.random.default_rng(13)
    p = tc.Parameter(rng.standard_normal((3, 4)))
    want_w, want_v = p.data.copy(), np.zeros((3, 4))
    opt = tc.SGD([p], lr=0.05, momentum=0.9, weight_decay=0.01)
    for step in range(3):
        p.grad = rng.standard_normal((3, 4))
        opt.step()
        ref.sgd_step(want_w, p.grad, want_v, 0.05, 0.9, 0.01 * 0.05)
        problem = differs("the weights", p.data, want_w, "reference.sgd_step")
        if problem:
            return f"after step {step + 1} of SGD(lr=0.05, momentum=0.9, weight_decay=0.01): {problem}"


# -- max-pooling -------------------------------------------------------------------------------------------------

def maxpool_backward_case(pool, x):
    """-> (dx of the student's backward, the twin's) for a random dy."""
    y = pool.forward(x, training=True)
    dy = np.random.default_rng(14).standard_normal(y.shape).astype(x.dtype)
    return pool.backward(dy), ref.maxpool2d_backward(x, dy, pool.kernel_size, pool.stride, pool.padding)


@check("MaxPool2d(2, stride=2).backward", "each window's winner, dx[n, c, argmax // W, argmax % W], receives that "
       "window's dy[n, c, oh, ow]")
def maxpool_matches_twin():
    """dx against reference.maxpool2d_backward, 2x2 windows that do not overlap."""
    x = distinct(np.random.default_rng(15), (2, 3, 6, 6))
    dx, want = maxpool_backward_case(tc.MaxPool2d(2, 2), x)
    problem = differs("dx", dx, want, "reference.maxpool2d_backward", x.dtype)
    return problem and f"on x {shape_of(x)}: {problem}"


@check("MaxPool2d(3, stride=2).backward", "overlapping windows must add (+=): a pixel that wins two windows gets "
       "both dy")
def maxpool_overlapping_numerical_gradient():
    """dx against central differences, 3x3 windows moved by 2 (the paper's overlapping pooling), with pixels
    on the windows' shared borders winning both windows."""
    x = distinct(np.random.default_rng(16), (1, 2, 7, 7))
    x[:, :, 2::2, 2::2] += 100                   # pixels where windows overlap win all of them
    problem = numerical(tc.MaxPool2d(3, 2), x)
    return problem and f"on x {shape_of(x)}: {problem}"


@check("MaxPool2d((3, 2), stride=(2, 1), padding=(1, 1)).backward", "argmax is the flat index h*W + w of the "
       "winner in its (H, W) plane (padding never wins); dx is zeroed before the kernel adds to it")
def maxpool_padded_matches_twin():
    """dx against reference.maxpool2d_backward with padding and unequal windows and strides, float32."""
    x = distinct(np.random.default_rng(17), (2, 2, 5, 6), np.float32)
    pool = tc.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 1))
    dx, want = maxpool_backward_case(pool, x)
    problem = differs("dx", dx, want, "reference.maxpool2d_backward", x.dtype)
    return problem and f"on x {shape_of(x)}: {problem}"


# -- local response normalisation --------------------------------------------------------------------------------

LRN_HINT = ("dx[j] = dy[j] * s[j]^-beta - two_alpha_beta * a[j] * sum over c in window(j) of dy[c] * y[c] / s[c] "
            "(two_alpha_beta is 2 * alpha * beta already)")


def lrn_backward_case(x, size, alpha, beta, k):
    """-> (dx of the student's backward, the twin's) for a random dy."""
    layer = tc.LocalResponseNorm(size, alpha, beta, k)
    layer.forward(x, training=True)
    dy = np.random.default_rng(18).standard_normal(x.shape)
    return layer.backward(dy), ref.lrn_backward(x, dy, size, alpha, beta, k)


@check("LocalResponseNorm(size=5, alpha=0.1, beta=0.75, k=2).backward", LRN_HINT)
def lrn_matches_twin():
    """dx against reference.lrn_backward, 7 channels (a large alpha, so the window's term counts)."""
    x = np.random.default_rng(19).standard_normal((2, 7, 3, 3)) * 1.5
    dx, want = lrn_backward_case(x, 5, 0.1, 0.75, 2.0)
    problem = differs("dx", dx, want, "reference.lrn_backward", x.dtype)
    return problem and f"on x {shape_of(x)}: {problem}"


@check("LocalResponseNorm(size=5, alpha=0.5, beta=0.6, k=1).backward", "windows near the first and last channels "
       "are cut short: c from max(0, j - half) to min(C - 1, j + half); beta is any number, not only 0.75")
def lrn_edges_match_twin():
    """dx against reference.lrn_backward, 3 channels (every window cut short) and beta 0.6."""
    x = np.random.default_rng(20).standard_normal((2, 3, 2, 3))
    dx, want = lrn_backward_case(x, 5, 0.5, 0.6, 1.0)
    problem = differs("dx", dx, want, "reference.lrn_backward", x.dtype)
    return problem and f"on x {shape_of(x)}: {problem}"


@check("LocalResponseNorm(size=3, alpha=0.3, beta=0.75, k=1.5).backward", LRN_HINT)
def lrn_numerical_gradient():
    """dx against central differences (float64)."""
    x = np.random.default_rng(21).standard_normal((1, 4, 2, 2))
    problem = numerical(tc.LocalResponseNorm(3, 0.3, 0.75, 1.5), x)
    return problem and f"on x {shape_of(x)}: {problem}"


# -- im2col ------------------------------------------------------------------------------------------------------

IM2COL_HINT = ("row (c, i, j) = (c*KH + i)*KW + j and column (b, oh, ow) = (b*OH + oh)*OW + ow hold "
               "x[b, c, oh*SH - PH + i, ow*SW - PW + j], and 0 where that is in the padding")


def im2col_case(shape, kernel, stride, padding, dtype, seed):
    """None if the student's im2col fills cols as the twin's convolution with one-hot filters does: the filter
    that picks channel c at offset (i, j) computes exactly row (c, i, j) of cols. Else what differs."""
    from tinycnn.kernels import im2col
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    (n, C, H, W), (KH, KW), (SH, SW), (PH, PW) = shape, kernel, stride, padding
    rows = C * KH * KW
    one_hot = np.eye(rows, dtype=dtype).reshape(rows, C, KH, KW)
    y = ref.conv2d_forward(x, one_hot, None, stride, padding, 1)           # (n, rows, OH, OW)
    OH, OW = y.shape[2:]
    want = y.transpose(1, 0, 2, 3).reshape(rows, n * OH * OW)
    cols = np.full(want.shape, np.nan, dtype)                              # unwritten entries show as nan

    def place(at):
        row, col = at
        return (f"[{row}, {col}] (row c={row // (KH * KW)}, i={row // KW % KH}, j={row % KW}; column "
                f"b={col // (OH * OW)}, oh={col // OW % OH}, ow={col % OW})")

    im2col(x, KH, KW, SH, SW, PH, PW, cols)
    problem = differs("cols", cols, want, "reference.conv2d_forward with one-hot filters", dtype, place)
    return problem and (f"on x {shape_of(x)}, kernel {KH}x{KW}, stride ({SH}, {SW}), padding ({PH}, {PW}), cols "
                        f"{want.shape}: {problem}")


@check("im2col", IM2COL_HINT)
def im2col_matches_twin():
    """cols against the twin's convolution with one-hot filters: 3x3, stride 1, no padding."""
    return im2col_case((1, 2, 4, 5), (3, 3), (1, 1), (0, 0), np.float64, 22)


@check("im2col", "positions in the zero padding hold 0 (cols comes uninitialised: write every entry); " + IM2COL_HINT)
def im2col_padded_strided_matches_twin():
    """The same with a 3x2 kernel, strides (2, 1), padding (1, 2) (whole windows in the padding), float32."""
    return im2col_case((2, 2, 5, 6), (3, 2), (2, 1), (1, 2), np.float32, 23)


@check("im2col", IM2COL_HINT)
def im2col_larger_matches_twin():
    """The same with 3 images of 3 channels, 5x5, stride 2, padding 2."""
    return im2col_case((3, 3, 7, 7), (5, 5), (2, 2), (2, 2), np.float64, 24)


# -- col2im ------------------------------------------------------------------------------------------------------

COL2IM_HINT = ("windows that overlap must add (+=): dx[b, c, oh*SH - PH + i, ow*SW - PW + j] += "
               "cols[(c*KH + i)*KW + j, (b*OH + oh)*OW + ow], so a pixel in k windows gets the sum of its k entries "
               "of cols")


def col2im_case(shape, kernel, stride, padding, dtype, seed):
    """None if the student's col2im adds cols back onto dx as the twin's convolution backward with one-hot filters
    does: the filter that picks channel c at offset (i, j) sends dy's plane (c, i, j), which is row (c, i, j) of
    cols, back to exactly the pixels that row came from. Else what differs."""
    from tinycnn.kernels import col2im
    (n, C, H, W), (KH, KW), (SH, SW), (PH, PW) = shape, kernel, stride, padding
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    rows = C * KH * KW
    cols = np.random.default_rng(seed).standard_normal((rows, n * OH * OW)).astype(dtype)
    one_hot = np.eye(rows, dtype=dtype).reshape(rows, C, KH, KW)
    dy = cols.reshape(rows, n, OH, OW).transpose(1, 0, 2, 3)              # dy[b, (c, i, j), oh, ow]
    want = ref.conv2d_backward(np.zeros(shape, dtype), one_hot, dy, stride, padding, 1)[0]

    def windows(p, S, P, K, O):                    # how many (output, offset) pairs reach input position p
        return sum(0 <= p + P - k < S * O and (p + P - k) % S == 0 for k in range(K))

    def place(at):
        b, c, h, w = at
        k = windows(h, SH, PH, KH, OH) * windows(w, SW, PW, KW, OW)
        return f"[{b}, {c}, {h}, {w}] (image b={b}, channel c={c}, pixel h={h}, w={w}, in {k} window{'s' * (k != 1)})"

    dx = np.zeros(shape, dtype)
    col2im(cols, KH, KW, SH, SW, PH, PW, dx)
    problem = differs("dx", dx, want, "reference.conv2d_backward with one-hot filters", dtype, place)
    x_dtype = "" if dtype == np.float64 else f" {np.dtype(dtype).name}"
    return problem and (f"on cols {cols.shape} for x {shape}{x_dtype}, kernel {KH}x{KW}, stride ({SH}, {SW}), "
                        f"padding ({PH}, {PW}): {problem}")


@check("col2im", COL2IM_HINT)
def col2im_matches_twin():
    """dx against the twin's convolution backward with one-hot filters: 3x3, stride 1, no padding (windows
    overlap: an inner pixel is in 9)."""
    return col2im_case((1, 2, 4, 5), (3, 3), (1, 1), (0, 0), np.float64, 25)


@check("col2im", "entries of cols whose pixel lies in the zero padding are dropped (dx has no room for them); "
       + COL2IM_HINT)
def col2im_padded_strided_matches_twin():
    """The same with a 3x2 kernel, strides (2, 1), padding (1, 2) (whole windows in the padding), float32."""
    return col2im_case((2, 2, 5, 6), (3, 2), (2, 1), (1, 2), np.float32, 26)


@check("col2im", COL2IM_HINT)
def col2im_larger_matches_twin():
    """The same with 3 images of 3 channels, 7x7, a 5x5 kernel, stride 2, padding 2."""
    return col2im_case((3, 3, 7, 7), (5, 5), (2, 2), (2, 2), np.float64, 27)


# -- Conv2d's forward by im2col ----------------------------------------------------------------------------------

CONV2D = "Conv2d.forward (winograd = False: _im2col_forward)"
CONV2D_HINT = ("Y = W @ cols: (F, C*KH*KW)(C*KH*KW, n*OH*OW), W = self.weight.data.reshape(F, -1); column "
               "(b, oh, ow) of cols is (b*OH + oh)*OW + ow, so Y.reshape(F, n, OH, OW).transpose(1, 0, 2, 3) is "
               "y[n0:n1] (n, F, OH, OW)")


def conv2d_case(in_channels, out_channels, kernel, stride, padding, groups, shape, dtype, seed, images=None):
    """None if the student's Conv2d.forward with winograd = False gives reference.conv2d_forward's y (bias
    included), else what differs. images: a memory_budget of that many images' columns (chunks of images)."""
    from tinycnn.layers.conv import image_chunks
    rng = np.random.default_rng(seed)
    conv = tc.Conv2d(in_channels, out_channels, kernel, stride, padding, groups, dtype=dtype, rng=rng)
    conv.winograd = False
    conv.bias.data[:] = rng.standard_normal(out_channels)
    x = rng.standard_normal(shape).astype(dtype)
    want = ref.conv2d_forward(x, conv.weight.data, conv.bias.data, conv.stride, conv.padding, groups)
    (KH, KW), (OH, OW) = conv.kernel_size, want.shape[2:]
    per_image = in_channels * KH * KW * OH * OW * np.dtype(dtype).itemsize
    budget = "" if images is None else f" with memory_budget {images * per_image} ({images} images' columns)"
    runs = image_chunks(shape[0], per_image, conv.memory_budget if images is None else images * per_image)[1]
    if images is not None:
        conv.memory_budget = images * per_image
    runs_text = ", ".join(f"{n0}..{n1}" for n0, n1 in runs)

    def place(at):
        n, f, oh, ow = at
        n0, n1 = next(r for r in runs if r[0] <= n < r[1])
        chunk = f" of chunk {n0}..{n1} (the chunks: {runs_text})" if len(runs) > 1 else ""
        return (f"[{n}, {f}, {oh}, {ow}] (image {n}{chunk}, filter {f} of group {f // (out_channels // groups)}, "
                f"output pixel ({oh}, {ow}))")

    y = conv.forward(x, training=False)
    problem = differs("y", y, want, "reference.conv2d_forward", dtype, place)
    if problem and not not_like("y", y, want.shape, dtype):
        n = int(np.argwhere(~np.isclose(y, want, **TOLERANCE[np.dtype(dtype)]))[0][0])
        others = [m for m in range(len(want)) if m != n and np.allclose(y[n], want[m], **TOLERANCE[np.dtype(dtype)])]
        if others:
            problem += f"; yours holds image {others[0]}'s y as image {n}'s: a chunk written at the wrong images"
    return problem and f"of Conv2d({conv.extra_repr()}){budget} on x {shape_of(x)}: {problem}"


@check(CONV2D, CONV2D_HINT)
def conv2d_im2col_matches_twin():
    """y against reference.conv2d_forward, groups 1: 3x3 padded by 1 (float64), and a 2x3 kernel with strides
    (1, 2) (float32)."""
    return (conv2d_case(3, 4, 3, 1, 1, 1, (2, 3, 6, 7), np.float64, 28)
            or conv2d_case(2, 5, (2, 3), (1, 2), (0, 1), 1, (1, 2, 5, 6), np.float32, 29))


@check(CONV2D, "group g's filters g*F/G .. (g+1)*F/G - 1 see channels g*C/G .. (g+1)*C/G - 1 only, which are rows "
       "g*C/G*KH*KW .. (g+1)*C/G*KH*KW - 1 of cols: Y_g = W_g @ cols_g with W_g = self.weight.data.reshape(G, F/G, "
       "-1)[g] and cols_g = cols.reshape(G, -1, cols.shape[1])[g]")
def conv2d_im2col_groups_match_twin():
    """The same with groups 2 (a 3x2 kernel, stride 2, padding (1, 0), a non-square input, float32) and groups 3."""
    return (conv2d_case(4, 6, (3, 2), 2, (1, 0), 2, (3, 4, 7, 5), np.float32, 30)
            or conv2d_case(6, 3, (1, 3), 1, (0, 1), 3, (2, 6, 3, 4), np.float64, 31))


@check(CONV2D, "y[n0:n1] takes chunk n0..n1: each chunk's cols hold only its n1 - n0 images (n*OH*OW columns), "
       "and chunks may differ in length")
def conv2d_im2col_chunks_match_twin():
    """The same with memory_budget set for 2 images' columns, on 5 images: chunks 0..1, 1..3 and 3..5 (groups 2)."""
    return conv2d_case(4, 6, 3, 1, 1, 2, (5, 4, 5, 6), np.float64, 32, images=2)


@check("Conv2d (winograd = False)", "y must be the convolution, of which backward (the library's) is the derivative; "
       + CONV2D_HINT)
def conv2d_im2col_numerical_gradient():
    """dx, dW and db of Conv2d (groups 2, a 3x2 kernel, stride 2, padding 1, chunks of 1 image) against central
    differences of the student's forward (float64)."""
    rng = np.random.default_rng(33)
    conv = tc.Conv2d(2, 4, (3, 2), 2, 1, 2, dtype=np.float64, rng=rng)
    conv.winograd, conv.memory_budget = False, 1
    conv.bias.data[:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 2, 5, 4))
    problem = numerical(conv, x)
    return problem and f"of Conv2d({conv.extra_repr()}) with chunks of 1 image on x {shape_of(x)}: {problem}"


# -- running them in the grading process ---------------------------------------------------------------------------

def run(name, checks, workspace):
    """Import the workspace's tinycnn and run `checks` (names of the functions above) for exercise `name`.

    -> {"status": "right" | "wrong" | "not started" | "import error" | "error", "message": str or None,
        "check": the failing check's name, "file": for an import error, the file that failed}
    "not started": the exercise's stub raised NotImplementedError("exercise NAME: ...").
    "error" (graded "not graded"): tinycnn is not the workspace's, or the exercise's code called the stub of
    another exercise (Conv2d's forward calls im2col), which is named.
    """
    global tc
    try:
        import tinycnn
    except Exception as error:                  # a syntax error in some file of the workspace
        file, line = failing_place(error, workspace)
        return dict(status="import error", message=raised(error, workspace), file=file, line=line)
    package = os.path.realpath(os.path.join(workspace, "tinycnn"))
    if os.path.realpath(os.path.dirname(tinycnn.__file__)) != package:
        return dict(status="error", message=f"import tinycnn found {tinycnn.__file__}, expected the workspace's "
                                            f"{package}/__init__.py")
    tc = tinycnn
    for check_name in checks:
        f = globals()[check_name]
        try:
            problem = f()
        except NotImplementedError as error:
            if str(error).startswith(f"exercise {name}:"):
                return dict(status="not started", message=None, check=check_name)
            other = re.match(r"exercise (\S+): not written yet", str(error))
            if other:                           # the code of this exercise calls another one's stub
                return dict(status="error", check=check_name, message=(
                    f"{f.subject} calls {other[1]}, another exercise, which is not written yet: write {other[1]} "
                    f"first (python -m tinycnn.grade . --only {other[1]})"))
            problem = f"{f.subject}: {raised(error, workspace)}"
        except Exception as error:
            problem = f"{f.subject}: {raised(error, workspace)}"
        if problem:
            return dict(status="wrong", message=problem, check=check_name)
    return dict(status="right", message=None, check=None)


def failing_place(error, workspace):
    """-> (file relative to the workspace, line) of the deepest place in the workspace the error passed, or
    (None, None)."""
    root = os.path.realpath(workspace) + os.sep
    if isinstance(error, SyntaxError) and error.filename and os.path.realpath(error.filename).startswith(root):
        return os.path.relpath(os.path.realpath(error.filename), root).replace(os.sep, "/"), error.lineno
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if os.path.realpath(frame.filename).startswith(root):
            return os.path.relpath(os.path.realpath(frame.filename), root).replace(os.sep, "/"), frame.lineno
    return None, None


def raised(error, workspace):
    """An exception in a student's words: "raised IndexError: ... (tinycnn/kernels/pool.py, line 52)"."""
    file, line = failing_place(error, workspace)
    lines = [text.strip() for text in str(error).splitlines() if text.strip()]
    if type(error).__module__.startswith("numba"):       # a typing error: its second line says what
        return f"numba cannot compile it: {' '.join(lines[1:3] or lines[:1])}" + (f" ({file}, line {line})"
                                                                              if file else "")
    text = f": {lines[0]}" if lines else ""
    if isinstance(error, SyntaxError):
        text = f": {error.msg}"
    return f"raised {type(error).__name__}{text}" + (f" ({file}, line {line})" if file else "")


def main(argv):
    """argv: NAME CHECKS(comma-separated) WORKSPACE RESULT_FILE; writes run()'s outcome to RESULT_FILE as JSON."""
    name, checks, workspace, result = argv
    outcome = run(name, checks.split(","), workspace)
    with open(result, "w", encoding="utf-8") as f:
        json.dump(outcome, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
