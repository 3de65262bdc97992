"""Local response normalisation across channels.

Legend: a (N, C, P) activations with P = H*W pixels; window(c) = channels max(0, c-half) .. min(C-1, c+half),
half = size // 2. scale s[c] = k + alpha * sum_{j in window(c)} a[j]^2;  y[c] = a[c] * s[c]^-beta.

Every window is summed afresh, `size` additions per pixel. Sliding it instead (add the channel that enters,
subtract the one that leaves) is cheaper but wrong in float32: the rounding error of one large square stays
in every later sum, so a channel at 5000 beside channels near 0 put errors of 1e-3 into its neighbours and
could even drive a sum to 0 or below. A sum of a few non-negative terms is accurate to a few units in the last
place, whatever their sizes.
"""
import numpy as np

from .jit import kernel, prange


@kernel
def _pow_minus(s, beta, one, three_quarters):
    """s ** -beta for s > 0. For the paper's beta = 3/4: r * sqrt(r) with r = 1/sqrt(s), as square roots
    vectorise and pow does not (and s * sqrt(s) would overflow float32 for s above 5e25)."""
    if beta == three_quarters:
        r = one / np.sqrt(s)
        return r * np.sqrt(r)
    return np.exp(-beta * np.log(s))            # not s ** -beta: numba computes float32 ** in float64


@kernel(parallel=True)
def lrn_forward(a, size, alpha, beta, k, y, scale):
    """a: (N, C, P) -> fills y and scale, both (N, C, P). Parallel over images.

    Returns how many scales overflowed to inf (squares beyond the dtype's range); 0 for any |a| < 1.8e19 in
    float32. The layer then normalises again in float64.
    """
    N, C, P = a.shape
    half = size // 2
    one, three_quarters, inf = a.dtype.type(1), a.dtype.type(0.75), a.dtype.type(np.inf)
    overflowed = 0
    for n in prange(N):
        window = np.empty(P, a.dtype)            # sum of squares over the window of channel c, one per pixel
        for c in range(C):
            for p in range(P):
                window[p] = 0
            for j in range(max(0, c - half), min(C, c + half + 1)):
                for p in range(P):
                    window[p] += a[n, j, p] * a[n, j, p]
            for p in range(P):
                s = k + alpha * window[p]
                scale[n, c, p] = s
                y[n, c, p] = a[n, c, p] * _pow_minus(s, beta, one, three_quarters)
                if not s < inf:
                    overflowed += 1
    return overflowed


@kernel(parallel=True)
def lrn_backward(a, y, scale, dy, size, two_alpha_beta, beta, dx):
    """Fills dx: (N, C, P) from a, y, scale, dy (all (N, C, P)).

    dx[j] = dy[j] * s[j]^-beta - 2*alpha*beta * a[j] * sum_{c in window(j)} dy[c] * y[c] / s[c]
    (the window is symmetric: j is in window(c) exactly when c is in window(j)). The terms dy[c] * y[c] / s[c]
    of one image are computed once, then summed window by window.
    """
    # exercise: lrn_backward
    N, C, P = a.shape
    half = size // 2
    one, three_quarters = a.dtype.type(1), a.dtype.type(0.75)
    for n in prange(N):
        terms = np.empty((C, P), a.dtype)
        for c in range(C):
            for p in range(P):
                terms[c, p] = dy[n, c, p] * y[n, c, p] / scale[n, c, p]
        window = np.empty(P, a.dtype)
        for j in range(C):
            for p in range(P):
                window[p] = 0
            for c in range(max(0, j - half), min(C, j + half + 1)):
                for p in range(P):
                    window[p] += terms[c, p]
            for p in range(P):
                dx[n, j, p] = (dy[n, j, p] * _pow_minus(scale[n, j, p], beta, one, three_quarters)
                               - two_alpha_beta * a[n, j, p] * window[p])
    # end exercise
