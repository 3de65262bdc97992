"""The slow, obvious twin of every layer: explicit loops, written to be read, used by the tests as the oracle.

Each function computes what the fast layer computes, straight from the definition and with no shared code,
so that a bug in a kernel cannot hide in both. Shapes follow the layers: NCHW images, (N, D) features.
Stride, padding and kernel sizes are pairs (height, width).
"""
import numpy as np


def _pad(x, padding, value=0.0):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


# -- convolution ---------------------------------------------------------------------------------------------

def conv2d_forward(x, w, b, stride, padding, groups):
    """x: (N, C, H, W), w: (F, C/G, KH, KW), b: (F,) or None -> y: (N, F, OH, OW)."""
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    (SH, SW), (PH, PW) = stride, padding
    xp = _pad(x, padding)
    y = np.zeros((N, F, _out(H, KH, SH, PH), _out(W, KW, SW, PW)), x.dtype)
    for n in range(N):
        for f in range(F):
            g = f // (F // groups)                       # the group of filter f sees channels g*Cg .. g*Cg+Cg-1
            for oh in range(y.shape[2]):
                for ow in range(y.shape[3]):
                    window = xp[n, g * Cg:(g + 1) * Cg, oh * SH:oh * SH + KH, ow * SW:ow * SW + KW]
                    y[n, f, oh, ow] = np.sum(window * w[f]) + (b[f] if b is not None else 0)
    return y


def conv2d_backward(x, w, dy, stride, padding, groups):
    """-> dx: (N, C, H, W), dw: (F, C/G, KH, KW), db: (F,). Every output adds its share back."""
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    (SH, SW), (PH, PW) = stride, padding
    xp = _pad(x, padding)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            g = f // (F // groups)
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    rows, cols = slice(oh * SH, oh * SH + KH), slice(ow * SW, ow * SW + KW)
                    dw[f] += dy[n, f, oh, ow] * xp[n, g * Cg:(g + 1) * Cg, rows, cols]
                    dxp[n, g * Cg:(g + 1) * Cg, rows, cols] += dy[n, f, oh, ow] * w[f]
    dx = dxp[:, :, PH:PH + H, PW:PW + W]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def conv_transpose2d_forward(x, w, b, stride, padding, output_padding):
    """x: (N, C, H, W), w: (C, F, KH, KW), b: (F,) or None -> y: (N, F, OH, OW). Each pixel stamps its kernel."""
    N, C, H, W = x.shape
    _, F, KH, KW = w.shape
    (SH, SW), (PH, PW), (OPH, OPW) = stride, padding, output_padding
    OH, OW = (H - 1) * SH - 2 * PH + KH + OPH, (W - 1) * SW - 2 * PW + KW + OPW
    big = np.zeros((N, F, OH + 2 * PH + KH, OW + 2 * PW + KW), x.dtype)     # room for stamps in the padding
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for v in range(W):
                    big[n, :, h * SH:h * SH + KH, v * SW:v * SW + KW] += x[n, c, h, v] * w[c]
    y = big[:, :, PH:PH + OH, PW:PW + OW]
    return y + (b[:, None, None] if b is not None else 0)


def conv_transpose2d_backward(x, w, dy, stride, padding):
    """-> dx: (N, C, H, W), dw: (C, F, KH, KW), db: (F,). Each pixel reads back the stamp it made."""
    N, C, H, W = x.shape
    _, F, KH, KW = w.shape
    (SH, SW), (PH, PW) = stride, padding
    big = np.zeros((N, F, dy.shape[2] + 2 * PH + KH, dy.shape[3] + 2 * PW + KW), dy.dtype)
    big[:, :, PH:PH + dy.shape[2], PW:PW + dy.shape[3]] = dy
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for v in range(W):
                    stamp = big[n, :, h * SH:h * SH + KH, v * SW:v * SW + KW]
                    dx[n, c, h, v] = np.sum(stamp * w[c])
                    dw[c] += x[n, c, h, v] * stamp
    return dx, dw, dy.sum(axis=(0, 2, 3))


# -- max-pooling ---------------------------------------------------------------------------------------------

def maxpool2d_forward(x, kernel, stride, padding):
    """x: (N, C, H, W) -> y: (N, C, OH, OW). Padding is -inf, so it never wins."""
    N, C, H, W = x.shape
    (KH, KW), (SH, SW) = kernel, stride
    xp = _pad(x, padding, -np.inf)
    y = np.zeros((N, C, _out(H, KH, SH, padding[0]), _out(W, KW, SW, padding[1])), x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(y.shape[2]):
                for ow in range(y.shape[3]):
                    y[n, c, oh, ow] = xp[n, c, oh * SH:oh * SH + KH, ow * SW:ow * SW + KW].max()
    return y


def maxpool2d_backward(x, dy, kernel, stride, padding):
    """-> dx: (N, C, H, W). Each window sends dy to its first maximum; overlapping windows add up."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    xp = _pad(x, padding, -np.inf)
    dxp = np.zeros_like(xp)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    window = xp[n, c, oh * SH:oh * SH + KH, ow * SW:ow * SW + KW]
                    i, j = np.unravel_index(np.argmax(window), window.shape)
                    dxp[n, c, oh * SH + i, ow * SW + j] += dy[n, c, oh, ow]
    return dxp[:, :, PH:PH + x.shape[2], PW:PW + x.shape[3]]


def _adaptive_window(i, n, out):
    """Bin i of `out` along an axis of length n: floor(i*n/out) .. ceil((i+1)*n/out) - 1."""
    return int(np.floor(i * n / out)), int(np.ceil((i + 1) * n / out))


def adaptive_avgpool2d_forward(x, output_size):
    """x: (N, C, H, W) -> y: (N, C, OH, OW); window (i, j) spans rows floor(i*H/OH) .. ceil((i+1)*H/OH) - 1."""
    N, C, H, W = x.shape
    OH, OW = output_size
    y = np.zeros((N, C, OH, OW), x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    (h0, h1), (w0, w1) = _adaptive_window(i, H, OH), _adaptive_window(j, W, OW)
                    y[n, c, i, j] = x[n, c, h0:h1, w0:w1].mean()
    return y


def adaptive_avgpool2d_backward(x_shape, dy):
    """-> dx: x_shape. Every pixel of window (i, j) receives dy[i, j] / (window area); overlapping windows add."""
    N, C, H, W = x_shape
    OH, OW = dy.shape[2:]
    dx = np.zeros(x_shape, dy.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    (h0, h1), (w0, w1) = _adaptive_window(i, H, OH), _adaptive_window(j, W, OW)
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            dx[n, c, h, w] += dy[n, c, i, j] / ((h1 - h0) * (w1 - w0))
    return dx


# -- local response normalisation ----------------------------------------------------------------------------

def _lrn_window(i, C, size):
    return range(max(0, i - size // 2), min(C - 1, i + size // 2) + 1)


def lrn_forward(x, size, alpha, beta, k):
    """b_i = a_i / (k + alpha * sum_{j in window(i)} a_j^2)^beta, for each channel i. x, y: (N, C, H, W)."""
    y = np.zeros_like(x)
    for i in range(x.shape[1]):
        s = k + alpha * sum(x[:, j] ** 2 for j in _lrn_window(i, x.shape[1], size))
        y[:, i] = x[:, i] / s ** beta
    return y


def lrn_backward(x, dy, size, alpha, beta, k):
    """dx_j = sum_i dy_i * db_i/da_j, with db_i/da_j = [i == j] s_i^-beta - 2 alpha beta a_i a_j s_i^(-beta-1)
    for every j in window(i)."""
    C = x.shape[1]
    s = [k + alpha * sum(x[:, j] ** 2 for j in _lrn_window(i, C, size)) for i in range(C)]
    dx = np.zeros_like(x)
    for i in range(C):
        dx[:, i] += dy[:, i] * s[i] ** -beta
        for j in _lrn_window(i, C, size):
            dx[:, j] -= dy[:, i] * 2 * alpha * beta * x[:, i] * x[:, j] * s[i] ** (-beta - 1)
    return dx


# -- dense ---------------------------------------------------------------------------------------------------

def dense_forward(x, w, b):
    """x: (N, D), w: (K, D), b: (K,) or None -> y: (N, K), y[n, k] = sum_d x[n, d] w[k, d] + b[k]."""
    y = np.zeros((x.shape[0], w.shape[0]), x.dtype)
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            y[n, k] = np.dot(x[n], w[k]) + (b[k] if b is not None else 0)
    return y


def dense_backward(x, w, dy):
    """-> dx: (N, D), dw: (K, D), db: (K,)."""
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            dx[n] += dy[n, k] * w[k]
            dw[k] += dy[n, k] * x[n]
    return dx, dw, dy.sum(axis=0)


# -- batch normalisation -------------------------------------------------------------------------------------

def batchnorm_forward(x, gamma, beta, eps, mean=None, var=None):
    """x: (N, C) or (N, C, H, W). Uses the batch statistics, or `mean` and `var` when given (evaluation)."""
    y = np.zeros_like(x)
    for c in range(x.shape[1]):
        values = x[:, c]
        mu = values.mean() if mean is None else mean[c]
        sigma2 = ((values - mu) ** 2).mean() if var is None else var[c]
        y[:, c] = gamma[c] * (values - mu) / np.sqrt(sigma2 + eps) + beta[c]
    return y


def batchnorm_eval_backward(x, gamma, dy, eps, mean, var):
    """Evaluation-mode backward: mean and var are constants, so each channel is an affine map.
    -> dx = gamma / sqrt(var + eps) * dy,  dgamma = sum(dy * xhat),  dbeta = sum(dy)."""
    dx = np.zeros_like(x)
    dgamma, dbeta = np.zeros_like(gamma), np.zeros_like(gamma)
    for c in range(x.shape[1]):
        xhat = (x[:, c] - mean[c]) / np.sqrt(var[c] + eps)
        dgamma[c], dbeta[c] = np.sum(dy[:, c] * xhat), np.sum(dy[:, c])
        dx[:, c] = gamma[c] / np.sqrt(var[c] + eps) * dy[:, c]
    return dx, dgamma, dbeta


def batchnorm_backward(x, gamma, dy, eps):
    """Training-mode backward, by the chain rule one stage at a time. -> dx, dgamma, dbeta."""
    dx = np.zeros_like(x)
    dgamma, dbeta = np.zeros_like(gamma), np.zeros_like(gamma)
    for c in range(x.shape[1]):
        v, g = x[:, c], dy[:, c]
        m = v.size
        mu = v.mean()
        var = ((v - mu) ** 2).mean()
        xhat = (v - mu) / np.sqrt(var + eps)
        dgamma[c], dbeta[c] = np.sum(g * xhat), np.sum(g)
        dxhat = g * gamma[c]
        dvar = np.sum(dxhat * (v - mu)) * -0.5 * (var + eps) ** -1.5
        dmu = -np.sum(dxhat) / np.sqrt(var + eps) + dvar * np.mean(-2 * (v - mu))
        dx[:, c] = dxhat / np.sqrt(var + eps) + dvar * 2 * (v - mu) / m + dmu / m
    return dx, dgamma, dbeta


# -- element-wise and the loss -------------------------------------------------------------------------------

def relu_forward(x):
    return np.where(x > 0, x, 0)


def relu_backward(x, dy):
    return np.where(x > 0, dy, 0)


def tanh_forward(x):
    """tanh x = (e^x - e^-x) / (e^x + e^-x) = sign(x) (1 - e^(-2|x|)) / (1 + e^(-2|x|)): no exponential overflows."""
    e = np.exp(-2 * np.abs(x))
    return np.sign(x) * (1 - e) / (1 + e)


def tanh_backward(x, dy):
    """d tanh x / dx = 1 - tanh^2 x = 4 / (e^x + e^-x)^2, written as 4 e^(-2|x|) / (1 + e^(-2|x|))^2."""
    e = np.exp(-2 * np.abs(x))
    return dy * 4 * e / (1 + e) ** 2


def dropout_mask(shape, dtype, p, rng):
    """The mask Dropout draws: one uniform number per entry, rng.random(shape, dtype); an entry survives when its
    number is >= p, and survivors are scaled by 1/(1-p). y = x * mask, dx = dy * mask."""
    u = rng.random(shape, dtype=dtype)
    mask = np.zeros(shape, dtype)
    for index in np.ndindex(shape):
        if u[index] >= p:
            mask[index] = 1 / (1 - p)
    return mask


def flatten_forward(x):
    """(N, d1, d2, ...) -> (N, d1*d2*...): each example's values one after another, last axis fastest."""
    y = np.zeros((x.shape[0], int(np.prod(x.shape[1:]))), x.dtype)
    for n in range(x.shape[0]):
        for i, index in enumerate(np.ndindex(x.shape[1:])):
            y[n, i] = x[(n,) + index]
    return y


def concat_forward(xs):
    """[(N, C_1, ...), (N, C_2, ...), ...] -> (N, C_1 + C_2 + ..., ...): the channels of each input in turn."""
    y = np.zeros((xs[0].shape[0], sum(x.shape[1] for x in xs)) + xs[0].shape[2:], xs[0].dtype)
    start = 0
    for x in xs:
        for c in range(x.shape[1]):
            y[:, start + c] = x[:, c]
        start += x.shape[1]
    return y


def concat_backward(dy, channels):
    """-> [dx_1, dx_2, ...]: each input gets back the channels it contributed (channels = [C_1, C_2, ...])."""
    dxs, start = [], 0
    for count in channels:
        dxs.append(np.array([dy[:, start + c] for c in range(count)]).swapaxes(0, 1))
        start += count
    return dxs


def mse(prediction, target):
    """-> (mean squared error over every entry, its gradient)."""
    diff = prediction - target
    return np.sum(diff ** 2) / diff.size, 2 * diff / diff.size


def softmax_cross_entropy(logits, labels):
    """-> (mean loss, dlogits). Loops over examples; log-sum-exp with the maximum taken out."""
    N = logits.shape[0]
    loss, grad = 0.0, np.zeros_like(logits)
    for n in range(N):
        z = logits[n] - logits[n].max()
        log_sum = np.log(np.exp(z).sum())               # log p_k = z_k - log_sum, finite even where p_k is 0
        loss += (log_sum - z[labels[n]]) / N
        grad[n] = np.exp(z - log_sum) / N
        grad[n, labels[n]] -= 1 / N
    return loss, grad


def sgd_step(w, g, v, lr, momentum, decay):
    """The paper's update with whole-array NumPy operations; decay = weight decay * lr. Updates w and v."""
    v *= momentum
    v -= decay * w
    v -= lr * g
    w += v
