"""tinycnn against PyTorch, an oracle written by other people: every layer's forward output, input gradient and
parameter gradients in float64, the losses, and the SGD update.

Each comparison runs tinycnn first, draws a random upstream gradient dy of the output's shape, and gets torch's
gradients from autograd (y.backward(dy)). Where tinycnn's convention differs from torch's (LRN's alpha, the
paper's SGD update), the docstring of the test says how it is mapped.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch oracle: torch is not installed (python -m pip install '.[torch]')")

from hypothesis import given, strategies as st  # noqa: E402

import tinycnn as tc  # noqa: E402

from helpers import away_from_zero, distinct, in_layout, layouts  # noqa: E402

F = torch.nn.functional
RTOL = 1e-10   # float64. Measured: every comparison within 5e-15 of the largest |entry|, Winograd's included


def tensor(a, requires_grad=True):
    """A float64 torch copy of a (tinycnn's arrays are never shared with torch)."""
    return torch.tensor(np.ascontiguousarray(a, np.float64), dtype=torch.float64, requires_grad=requires_grad)


def assert_same(actual, expected, what, rtol=RTOL):
    """actual (tinycnn) == expected (torch) within rtol, and within rtol of the largest |expected| where entries
    cancel to about 0."""
    expected = expected.detach().numpy() if torch.is_tensor(expected) else np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, torch's {expected.shape}"
    scale = float(np.abs(expected).max(initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def torch_gradients(fn, dy, *arrays):
    """y = fn(*tensors) and, after y.backward(dy), each tensor's gradient: (y, [grad per array])."""
    tensors = [tensor(a) for a in arrays]
    y = fn(*tensors)
    y.backward(tensor(dy, requires_grad=False))
    return y.detach().numpy(), [t.grad.numpy() for t in tensors]


def check_layer(layer, x, torch_fn, rng, x_layout="contiguous", dy_layout="contiguous", rtol=RTOL, training=False):
    """layer's y, dx and every parameter gradient == torch_fn(x, *parameters) and its autograd gradients.

    torch_fn takes the tensors in the order of layer.named_parameters(), after x."""
    y = layer.forward(in_layout(x, x_layout), training=training)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(in_layout(dy, dy_layout))
    named = layer.named_parameters()
    grads = {name: p.grad.copy() for name, p in named}
    torch_y, torch_grads = torch_gradients(torch_fn, dy, x, *[p.data for _, p in named])
    assert_same(y, torch_y, f"{layer!r} forward", rtol)
    assert_same(dx, torch_grads[0], f"{layer!r} dx", rtol)
    for (name, _), torch_grad in zip(named, torch_grads[1:]):
        assert_same(grads[name], torch_grad, f"{layer!r} d{name}", rtol)
    return y, dx


# ---------------------------------------------------------------------------------------------------- Conv2d

def torch_conv(conv):
    return lambda x, w, b=None: F.conv2d(x, w, b, conv.stride, conv.padding, 1, conv.groups)


CONV_CASES = {   # name: (Conv2d arguments, input shape, whether it takes Winograd)
    "conv1 11x11 stride 4": (dict(in_channels=3, out_channels=4, kernel_size=11, stride=4, padding=2),
                             (2, 3, 31, 31), False),
    "5x5 groups 2": (dict(in_channels=4, out_channels=6, kernel_size=5, padding=2, groups=2), (2, 4, 9, 8), True),
    "5x5 groups 2 stride 2": (dict(in_channels=4, out_channels=6, kernel_size=5, stride=2, padding=2, groups=2),
                              (2, 4, 9, 9), False),
    "3x3 padding 1": (dict(in_channels=5, out_channels=6, kernel_size=3, padding=1), (2, 5, 7, 8), True),
    "3x3 padding 1 groups 2": (dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2),
                               (1, 4, 6, 5), True),
    "3x3 stride 2": (dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1), (2, 3, 9, 10), False),
    "3x5 stride (2, 1)": (dict(in_channels=2, out_channels=3, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2)),
                          (2, 2, 7, 6), False),
    "1x1 groups 3": (dict(in_channels=6, out_channels=3, kernel_size=1, groups=3), (2, 6, 4, 4), False),
    "3x3 no bias": (dict(in_channels=3, out_channels=4, kernel_size=3, bias=False), (2, 3, 6, 6), True),
}


@pytest.mark.parametrize("winograd", [True, False], ids=["default path", "im2col forced"])
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv2d_equals_torch_conv2d(name, winograd):
    """Conv2d y, dx, dW, db == F.conv2d with the same weight (F, C/G, KH, KW) layout, stride, padding and groups."""
    kwargs, shape, takes_winograd = CONV_CASES[name]
    rng = np.random.default_rng(0)
    conv = tc.Conv2d(**kwargs, dtype=np.float64, rng=rng)
    conv.winograd = winograd
    assert conv._takes_winograd() == (takes_winograd and winograd)
    assert conv._takes_phases() == (name == "conv1 11x11 stride 4" and winograd)     # 3x3 phases at stride 1
    if conv.bias is not None:
        conv.bias.data[:] = rng.standard_normal(conv.bias.shape)
    assert conv.weight.shape == (conv.out_channels, conv.in_channels // conv.groups) + conv.kernel_size
    check_layer(conv, rng.standard_normal(shape), torch_conv(conv), rng)


@st.composite
def conv_cases(draw):
    """Small convolutions, in every memory layout: half of them Winograd's (3x3 or 5x5, stride 1, padding up to
    r - 1), half im2col's (kernels 1-5 of any shape, strides 1-3, padding up to half the kernel); groups 1-3."""
    groups = draw(st.integers(1, 3))
    if draw(st.booleans()):
        kh = kw = draw(st.sampled_from([3, 5]))
        stride, ph, pw = (1, 1), draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))
    else:
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        stride = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), kh - 2 * ph + 6))
    w = draw(st.integers(max(1, kw - 2 * pw), kw - 2 * pw + 6))
    return dict(shape=(draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), h, w),
                cout=groups * draw(st.integers(1, 2)), kernel=(kh, kw), stride=stride, padding=(ph, pw), groups=groups,
                seed=draw(st.integers(0, 2**32 - 1)), x_layout=draw(layouts), dy_layout=draw(layouts))


@given(case=conv_cases())
def test_conv2d_equals_torch_on_drawn_shapes(case):
    """Conv2d y, dx, dW, db == F.conv2d on drawn shapes, strides, paddings, groups and memory layouts."""
    rng = np.random.default_rng(case["seed"])
    conv = tc.Conv2d(case["shape"][1], case["cout"], case["kernel"], case["stride"], case["padding"], case["groups"],
                     dtype=np.float64, rng=rng)
    conv.bias.data[:] = rng.standard_normal(case["cout"])
    check_layer(conv, rng.standard_normal(case["shape"]), torch_conv(conv), rng, case["x_layout"], case["dy_layout"])


# ------------------------------------------------------------------------------------------- ConvTranspose2d

@pytest.mark.parametrize("kwargs, shape", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1), (2, 3, 4, 5)),
    (dict(in_channels=2, out_channels=3, kernel_size=4, stride=2, padding=1), (2, 2, 3, 3)),
    (dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0)),
     (1, 2, 4, 5)),
    (dict(in_channels=4, out_channels=2, kernel_size=5, padding=2), (2, 4, 5, 6)),
    (dict(in_channels=3, out_channels=2, kernel_size=11, stride=4, padding=2, bias=False), (1, 3, 3, 3)),
], ids=["3x3 s2 p1 op1", "4x4 s2 p1", "3x2 s(2,1) op(1,0)", "5x5 p2", "11x11 s4 no bias"])
def test_conv_transpose2d_equals_torch_conv_transpose2d(kwargs, shape):
    """ConvTranspose2d y, dx, dW, db == F.conv_transpose2d with the same weight (C_in, C_out, KH, KW) layout,
    stride, padding and output_padding."""
    rng = np.random.default_rng(1)
    layer = tc.ConvTranspose2d(**kwargs, dtype=np.float64, rng=rng)
    if layer.bias is not None:
        layer.bias.data[:] = rng.standard_normal(layer.bias.shape)
    assert layer.weight.shape == (layer.in_channels, layer.out_channels) + layer.kernel_size
    check_layer(layer, rng.standard_normal(shape),
                lambda x, w, b=None: F.conv_transpose2d(x, w, b, layer.stride, layer.padding, layer.output_padding),
                rng)


# ------------------------------------------------------------------------------------------------- MaxPool2d

def torch_maxpool(pool):
    return lambda x: F.max_pool2d(x, pool.kernel_size, pool.stride, pool.padding)


@pytest.mark.parametrize("shape", [(2, 4, 13, 13), (1, 2, 27, 27), (2, 3, 8, 11)], ids=["13x13", "27x27", "8x11"])
def test_overlapping_maxpool_equals_torch(shape):
    """MaxPool2d(3, 2) y and dx == F.max_pool2d(3, 2) (floor mode) on a shuffled input without ties; a pixel that
    wins two overlapping windows gets both gradients."""
    rng = np.random.default_rng(2)
    x = distinct(rng, shape)
    _, dx = check_layer(tc.MaxPool2d(3, 2), x, torch_maxpool(tc.MaxPool2d(3, 2)), rng)
    oh, ow = (shape[2] - 3) // 2 + 1, (shape[3] - 3) // 2 + 1
    assert np.count_nonzero(dx) < shape[0] * shape[1] * oh * ow          # some pixel won two windows


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)),
                       draw(st.integers(max(1, kh - 2 * ph), kh - 2 * ph + 6)),
                       draw(st.integers(max(1, kw - 2 * pw), kw - 2 * pw + 6))),
                kernel=(kh, kw), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(ph, pw),
                seed=draw(st.integers(0, 2**32 - 1)), x_layout=draw(layouts), dy_layout=draw(layouts))


@given(case=pool_cases())
def test_maxpool_equals_torch_on_drawn_shapes(case):
    """MaxPool2d y and dx == F.max_pool2d (padding with -inf, floor mode) on drawn windows, strides, paddings and
    memory layouts, inputs without ties."""
    rng = np.random.default_rng(case["seed"])
    pool = tc.MaxPool2d(case["kernel"], case["stride"], case["padding"])
    check_layer(pool, distinct(rng, case["shape"]), torch_maxpool(pool), rng, case["x_layout"], case["dy_layout"])


def test_maxpool_ties_go_to_the_first_maximum_as_in_torch():
    """On an all-equal input (ties everywhere) MaxPool2d(3, 2) dx == F.max_pool2d's: the first maximum in row-major
    window order wins, as MaxPool2d's docstring says (what torch's CPU kernel does; torch documents no tie rule)."""
    rng = np.random.default_rng(3)
    check_layer(tc.MaxPool2d(3, 2), np.zeros((1, 2, 7, 9)), torch_maxpool(tc.MaxPool2d(3, 2)), rng)


# ----------------------------------------------------------------------------------------- LocalResponseNorm

def torch_lrn(size, alpha, beta, k, groups=1):
    """The paper's LRN in torch: alpha * n for torch (which divides alpha by n), each of `groups` blocks of
    channels normalised on its own."""
    def fn(x):
        blocks = torch.chunk(x, groups, dim=1)
        return torch.cat([F.local_response_norm(b, size, alpha=alpha * size, beta=beta, k=k) for b in blocks], dim=1)
    return fn


@pytest.mark.parametrize("alpha, beta, k, scale", [(1e-4, 0.75, 2.0, 30.0), (1.0, 0.75, 2.0, 3.0),
                                                   (10.0, 0.6, 1.0, 1.0)],
                         ids=["paper", "alpha 1", "alpha 10 beta 0.6"])
@pytest.mark.parametrize("groups", [1, 2])
def test_lrn_equals_torch_with_alpha_times_n(alpha, beta, k, scale, groups):
    """LocalResponseNorm(5, alpha, beta, k) y and dx == F.local_response_norm(5, alpha * 5, beta, k) (torch divides
    alpha by n, the paper does not); groups=2 == torch on each half of the channels."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 16, 3, 4)) * scale          # scale: so alpha * sum(a^2) is comparable with k
    check_layer(tc.LocalResponseNorm(5, alpha, beta, k, groups=groups), x, torch_lrn(5, alpha, beta, k, groups), rng)


@st.composite
def lrn_cases(draw):
    groups = draw(st.integers(1, 3))
    return dict(size=draw(st.sampled_from([1, 3, 5, 7])), alpha=draw(st.sampled_from([1e-4, 1e-2, 0.5, 2.0])),
                beta=draw(st.one_of(st.just(0.75), st.floats(0.5, 1.0))), k=draw(st.floats(0.5, 3.0)), groups=groups,
                shape=(draw(st.integers(1, 2)), groups * draw(st.integers(1, 7)), draw(st.integers(1, 4)),
                       draw(st.integers(1, 4))),
                scale=draw(st.sampled_from([1.0, 10.0, 100.0])), seed=draw(st.integers(0, 2**32 - 1)),
                x_layout=draw(layouts), dy_layout=draw(layouts))


@given(case=lrn_cases())
def test_lrn_equals_torch_on_drawn_shapes(case):
    """LocalResponseNorm y and dx == F.local_response_norm with alpha * n, per group of channels, on drawn sizes
    (windows wider than the channels included), constants, scales and memory layouts."""
    rng = np.random.default_rng(case["seed"])
    args = case["size"], case["alpha"], case["beta"], case["k"]
    x = rng.standard_normal(case["shape"]) * case["scale"]
    check_layer(tc.LocalResponseNorm(*args, groups=case["groups"]), x, torch_lrn(*args, case["groups"]), rng,
                case["x_layout"], case["dy_layout"])


# ------------------------------------------------------------------------------------------------ BatchNorm

BATCHNORMS = [(tc.BatchNorm2d, (4, 3, 5, 6)), (tc.BatchNorm1d, (8, 5)), (tc.BatchNorm2d, (3, 2, 1, 1))]


def random_batchnorm(kind, channels, momentum, rng):
    bn = kind(channels, eps=1e-5, momentum=momentum, dtype=np.float64)
    bn.weight.data[:] = rng.uniform(0.5, 2.0, channels)
    bn.bias.data[:] = rng.standard_normal(channels)
    bn.running_mean[:] = rng.standard_normal(channels)
    bn.running_var[:] = rng.uniform(0.5, 2.0, channels)
    return bn


@pytest.mark.parametrize("momentum", [0.1, 0.3])
@pytest.mark.parametrize("kind, shape", BATCHNORMS, ids=["2d", "1d", "2d one pixel, m=3"])
def test_batchnorm_training_equals_torch(kind, shape, momentum):
    """BatchNorm training y, dx, dgamma, dbeta and the running statistics after one step == F.batch_norm(training=
    True): the same conventions (biased variance to normalise, unbiased m/(m-1) in running_var, running <-
    (1 - momentum) * running + momentum * batch statistic), so no mapping."""
    rng = np.random.default_rng(5)
    bn = random_batchnorm(kind, shape[1], momentum, rng)
    running_mean, running_var = tensor(bn.running_mean, False), tensor(bn.running_var, False)
    before = bn.running_var.copy()
    x = rng.standard_normal(shape) * 3 + 1
    check_layer(bn, x, lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b, training=True,
                                                    momentum=momentum, eps=1e-5), rng, training=True)
    assert_same(bn.running_mean, running_mean, "running_mean")
    assert_same(bn.running_var, running_var, "running_var")
    # torch's running_var takes the unbiased variance (ddof=1): state it, so a biased tinycnn could not match by luck
    axes = (0,) + tuple(range(2, x.ndim))
    assert_same(running_var, (1 - momentum) * before + momentum * x.var(axis=axes, ddof=1), "torch's running_var")


@pytest.mark.parametrize("kind, shape", BATCHNORMS[:2], ids=["2d", "1d"])
def test_batchnorm_evaluation_equals_torch(kind, shape):
    """BatchNorm evaluation y, dx, dgamma, dbeta == F.batch_norm(training=False) with the running statistics."""
    rng = np.random.default_rng(6)
    bn = random_batchnorm(kind, shape[1], 0.1, rng)
    running_mean, running_var = tensor(bn.running_mean, False), tensor(bn.running_var, False)
    check_layer(bn, rng.standard_normal(shape), lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b,
                                                                             training=False, eps=1e-5), rng)


# --------------------------------------------------------------------------- Dense, activations, Flatten, pooling

@pytest.mark.parametrize("bias", [True, False])
def test_dense_equals_torch_linear(bias):
    """Dense y, dx, dW, db == F.linear: the same weight layout (out_features, in_features), y = x W^T + b."""
    rng = np.random.default_rng(7)
    dense = tc.Dense(12, 5, bias=bias, dtype=np.float64, rng=rng)
    assert dense.weight.shape == (5, 12)
    if bias:
        dense.bias.data[:] = rng.standard_normal(5)
    check_layer(dense, rng.standard_normal((4, 12)), lambda x, w, b=None: F.linear(x, w, b), rng)


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "channels-last"])
def test_relu_and_tanh_equal_torch(layout):
    """ReLU and Tanh y and dx == torch.relu and torch.tanh, on inputs away from ReLU's kink, in memory layouts."""
    rng = np.random.default_rng(8)
    x = away_from_zero(rng, (2, 3, 4, 5)) * 2
    check_layer(tc.ReLU(), x, torch.relu, rng, layout, layout)
    check_layer(tc.Tanh(), x, torch.tanh, rng, layout, layout)


@pytest.mark.parametrize("layout", ["contiguous", "channels-last", "reversed"])
def test_flatten_equals_torch_flatten(layout):
    """Flatten y and dx == torch.flatten(x, 1): C order of the logical (N, C, H, W) indices, whatever the memory."""
    rng = np.random.default_rng(9)
    check_layer(tc.Flatten(), rng.standard_normal((2, 3, 4, 5)), lambda x: torch.flatten(x, 1), rng, layout, layout)


@pytest.mark.parametrize("in_hw, out_hw", [((13, 13), (6, 6)), ((5, 5), (6, 6)), ((6, 6), (6, 6)), ((7, 9), (3, 4)),
                                           ((1, 1), (2, 3)), ((10, 3), (4, 5))],
                         ids=["13 to 6", "5 to 6", "6 to 6", "7x9 to 3x4", "1 to 2x3", "10x3 to 4x5"])
def test_adaptive_avg_pool_equals_torch(in_hw, out_hw):
    """AdaptiveAvgPool2d y and dx == F.adaptive_avg_pool2d: the same bins [floor(i n / out), ceil((i+1) n / out)),
    overlapping when the output is larger than the input."""
    rng = np.random.default_rng(10)
    check_layer(tc.AdaptiveAvgPool2d(out_hw), rng.standard_normal((2, 3) + in_hw),
                lambda x: F.adaptive_avg_pool2d(x, out_hw), rng)


# -------------------------------------------------------------------------------------------------- losses

@pytest.mark.parametrize("scale", [1.0, 1e3], ids=["logits ~1", "logits ~1e3"])
def test_softmax_cross_entropy_equals_torch_cross_entropy(scale):
    """SoftmaxCrossEntropy loss and dlogits == F.cross_entropy(reduction='mean') and its gradient."""
    rng = np.random.default_rng(11)
    logits, labels = rng.standard_normal((6, 5)) * scale, rng.integers(0, 5, 6)
    loss_fn = tc.SoftmaxCrossEntropy()
    loss, dlogits = loss_fn.forward(logits, labels), loss_fn.backward()
    z = tensor(logits)
    torch_loss = F.cross_entropy(z, torch.tensor(labels), reduction="mean")
    torch_loss.backward()
    assert_same(loss, torch_loss, "loss")
    assert_same(dlogits, z.grad, "dlogits")


def test_mse_loss_equals_torch_mse_loss():
    """MSELoss loss and dprediction == F.mse_loss(reduction='mean') (mean over every entry) and its gradient."""
    rng = np.random.default_rng(12)
    prediction, target = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    loss_fn = tc.MSELoss()
    loss, grad = loss_fn.forward(prediction, target), loss_fn.backward()
    p = tensor(prediction)
    torch_loss = F.mse_loss(p, tensor(target, False))
    torch_loss.backward()
    assert_same(loss, torch_loss, "loss")
    assert_same(grad, p.grad, "dprediction")


# ------------------------------------------------------------------------------------------------------ SGD

def parameters_and_gradients(rng, steps):
    params = [tc.Parameter(rng.standard_normal((4, 3))), tc.Parameter(rng.standard_normal(4))]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    return params, grads


def test_sgd_equals_torch_sgd_at_a_constant_learning_rate():
    """Four SGD steps (lr 0.01, momentum 0.9, weight decay 5e-4) == torch.optim.SGD with the same settings. tinycnn
    is the paper's v <- 0.9 v - wd lr w - lr g, w <- w + v; torch's is b <- 0.9 b + g + wd w, w <- w - lr b: at a
    constant lr they are the same update with v = -lr b, which is checked too."""
    rng = np.random.default_rng(13)
    params, grads = parameters_and_gradients(rng, 4)
    opt = tc.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    torch_params = [tensor(p.data) for p in params]
    torch_opt = torch.optim.SGD(torch_params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    for step_grads in grads:
        for p, t, g in zip(params, torch_params, step_grads):
            p.grad, t.grad = g.copy(), tensor(g, False)
        opt.step()
        torch_opt.step()
        for p, t, v in zip(params, torch_params, opt.velocity):
            assert_same(p.data, t, "w")
            assert_same(v, -0.01 * torch_opt.state[t]["momentum_buffer"], "v = -lr * torch's momentum buffer")


def test_sgd_follows_the_paper_when_the_learning_rate_changes_where_torch_sgd_differs():
    """SGD with lr divided by 10 after two steps == the paper's rule v <- 0.9 v - wd lr w - lr g, w <- w + v written
    in torch ops; torch.optim.SGD differs there (its new lr also rescales the old momentum), which is checked too."""
    rng = np.random.default_rng(14)
    params, grads = parameters_and_gradients(rng, 4)
    lrs = [0.01, 0.01, 0.001, 0.001]
    opt = tc.SGD(params, lr=lrs[0], momentum=0.9, weight_decay=5e-4)
    paper_w = [tensor(p.data, False) for p in params]
    paper_v = [torch.zeros_like(w) for w in paper_w]
    torch_params = [tensor(p.data) for p in params]
    torch_opt = torch.optim.SGD(torch_params, lr=lrs[0], momentum=0.9, weight_decay=5e-4)
    for lr, step_grads in zip(lrs, grads):
        opt.lr = lr
        for group in torch_opt.param_groups:
            group["lr"] = lr
        for p, w, v, t, g in zip(params, paper_w, paper_v, torch_params, step_grads):
            p.grad, t.grad = g.copy(), tensor(g, False)
            v.mul_(0.9).sub_(5e-4 * lr * w).sub_(lr * tensor(g, False))
            w.add_(v)
        opt.step()
        torch_opt.step()
        for p, w in zip(params, paper_w):
            assert_same(p.data, w, "w against the paper's rule")
    assert not np.allclose(params[0].data, torch_params[0].detach().numpy(), rtol=1e-6, atol=0)


def test_sgd_lr_mult_and_decay_mult_equal_torch_parameter_groups():
    """SGD with the bias at lr_mult=2, decay_mult=0 (Caffe's biases) == torch.optim.SGD with a parameter group of
    lr 2 * lr and weight_decay 0 for it, three steps at a constant lr."""
    rng = np.random.default_rng(15)
    params, grads = parameters_and_gradients(rng, 3)
    params[1].lr_mult, params[1].decay_mult = 2.0, 0.0
    opt = tc.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    torch_params = [tensor(p.data) for p in params]
    torch_opt = torch.optim.SGD([{"params": [torch_params[0]]},
                                 {"params": [torch_params[1]], "lr": 0.02, "weight_decay": 0.0}],
                                lr=0.01, momentum=0.9, weight_decay=5e-4)
    for step_grads in grads:
        for p, t, g in zip(params, torch_params, step_grads):
            p.grad, t.grad = g.copy(), tensor(g, False)
        opt.step()
        torch_opt.step()
    for p, t in zip(params, torch_params):
        assert_same(p.data, t, "w")


# ------------------------------------------------------------------------------------------- a whole network

def test_small_network_loss_and_every_gradient_equal_torch():
    """A small AlexNet-like Sequential (conv 5x5/2, ReLU, overlapping max-pool, LRN, grouped 3x3 conv with Winograd,
    ReLU, adaptive pool, Flatten, Dense) with SoftmaxCrossEntropy: loss, dx and every parameter gradient == the
    same chain of torch functions (LRN with alpha * n)."""
    rng = np.random.default_rng(16)
    model = tc.Sequential({
        "conv1": tc.Conv2d(3, 4, 5, stride=2, padding=2, dtype=np.float64, rng=rng), "relu1": tc.ReLU(),
        "pool1": tc.MaxPool2d(3, 2), "norm1": tc.LocalResponseNorm(3, 1e-2, 0.75, 2.0),
        "conv2": tc.Conv2d(4, 6, 3, padding=1, groups=2, dtype=np.float64, rng=rng), "relu2": tc.ReLU(),
        "pool2": tc.AdaptiveAvgPool2d(2), "flatten": tc.Flatten(), "fc": tc.Dense(24, 5, dtype=np.float64, rng=rng)})
    for name in ("conv1", "conv2", "fc"):
        model[name].bias.data[:] = rng.standard_normal(model[name].bias.shape) * 0.1
    x, labels = rng.standard_normal((3, 3, 17, 17)) * 10, rng.integers(0, 5, 3)
    loss_fn = tc.SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(x, training=True), labels)
    dx = model.backward(loss_fn.backward())
    named = model.named_parameters()

    xt = tensor(x)
    tp = {name: tensor(p.data) for name, p in named}
    h = F.relu(F.conv2d(xt, tp["conv1.weight"], tp["conv1.bias"], 2, 2))
    h = F.local_response_norm(F.max_pool2d(h, 3, 2), 3, alpha=3e-2, beta=0.75, k=2.0)
    h = F.relu(F.conv2d(h, tp["conv2.weight"], tp["conv2.bias"], 1, 1, 1, 2))
    logits = F.linear(torch.flatten(F.adaptive_avg_pool2d(h, 2), 1), tp["fc.weight"], tp["fc.bias"])
    torch_loss = F.cross_entropy(logits, torch.tensor(labels))
    torch_loss.backward()
    assert_same(loss, torch_loss, "loss")
    assert_same(dx, xt.grad, "dx")
    for name, p in named:
        assert_same(p.grad, tp[name].grad, f"d{name}")


def test_the_busy_benchmarks_pytorch_network_is_tinycnns_mini():
    """benchmarks/busy.py times the main job's network on both sides: with tinycnn's weights copied in, PyTorch's
    copy gives the same outputs (same layers, LRN constants, pooling padding and order of parameters)."""
    from benchmarks import busy
    from tinycnn.models import alexnet
    ours, theirs = alexnet(busy.CLASSES, variant="mini", rng=0), busy.torch_model().eval()
    with torch.no_grad():
        for mine, copy in zip(ours.parameters(), theirs.parameters(), strict=True):
            copy.copy_(torch.from_numpy(mine.data))
    x = np.random.default_rng(0).uniform(0, 1, (4, 3, busy.SIZE, busy.SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.forward(x, training=False), expected, rtol=1e-4, atol=1e-5)
