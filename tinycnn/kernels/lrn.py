"""Local response normalisation across channels, with a sliding window sum.

Legend: a (N, C, P) activations with P = H*W pixels; window(c) = channels max(0, c-half) .. min(C-1, c+half),
half = size // 2. scale s[c] = k + alpha * sum_{j in window(c)} a[j]^2;  y[c] = a[c] * s[c]^-beta.

Moving from channel c-1 to c, the window gains channel c+half and loses channel c-half-1, so each window sum
costs two updates instead of `size` additions.
"""
import numpy as np

from .jit import kernel, prange


@kernel
def _pow_minus(s, beta, one, three_quarters):
    """s ** -beta. For the paper's beta = 3/4 this is 1 / sqrt(s * sqrt(s)): square roots vectorise, pow does not."""
    if beta == three_quarters:
        return one / np.sqrt(s * np.sqrt(s))
    return np.exp(-beta * np.log(s))            # not s ** -beta: numba computes float32 ** in float64


@kernel(parallel=True)
def lrn_forward(a, size, alpha, beta, k, y, scale):
    """a: (N, C, P) -> fills y and scale, both (N, C, P). Parallel over images."""
    N, C, P = a.shape
    half = size // 2
    one, three_quarters = a.dtype.type(1), a.dtype.type(0.75)
    for n in prange(N):
        window = np.zeros(P, a.dtype)            # running sum of squares, one per pixel
        for j in range(min(half, C)):
            for p in range(P):
                window[p] += a[n, j, p] * a[n, j, p]
        for c in range(C):
            enter, leave = c + half, c - half - 1
            if enter < C:
                for p in range(P):
                    window[p] += a[n, enter, p] * a[n, enter, p]
            if leave >= 0:
                for p in range(P):
                    window[p] -= a[n, leave, p] * a[n, leave, p]
            for p in range(P):
                s = k + alpha * window[p]
                scale[n, c, p] = s
                y[n, c, p] = a[n, c, p] * _pow_minus(s, beta, one, three_quarters)


@kernel(parallel=True)
def lrn_backward(a, y, scale, dy, size, two_alpha_beta, beta, dx):
    """Fills dx: (N, C, P) from a, y, scale, dy (all (N, C, P)).

    dx[j] = dy[j] * s[j]^-beta - 2*alpha*beta * a[j] * sum_{c in window(j)} dy[c] * y[c] / s[c]
    (the window is symmetric: j is in window(c) exactly when c is in window(j)).
    """
    N, C, P = a.shape
    half = size // 2
    one, three_quarters = a.dtype.type(1), a.dtype.type(0.75)
    for n in prange(N):
        window = np.zeros(P, a.dtype)            # running sum of dy*y/s over the window
        for j in range(min(half, C)):
            for p in range(P):
                window[p] += dy[n, j, p] * y[n, j, p] / scale[n, j, p]
        for c in range(C):
            enter, leave = c + half, c - half - 1
            if enter < C:
                for p in range(P):
                    window[p] += dy[n, enter, p] * y[n, enter, p] / scale[n, enter, p]
            if leave >= 0:
                for p in range(P):
                    window[p] -= dy[n, leave, p] * y[n, leave, p] / scale[n, leave, p]
            for p in range(P):
                dx[n, c, p] = (dy[n, c, p] * _pow_minus(scale[n, c, p], beta, one, three_quarters)
                               - two_alpha_beta * a[n, c, p] * window[p])
