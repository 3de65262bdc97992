"""Max-pooling: forward with the winners for backward, forward for evaluation (the values alone), and backward.

Legend: x (N, C, H, W) -> y (N, C, OH, OW); window (KH, KW), stride (SH, SW), padding (PH, PW).
argmax[n, c, oh, ow] is the flat index h*W + w of the winning input pixel inside its (H, W) plane.
Ties go to the first maximum in row-major window order; a NaN in a window wins (it propagates).
"""
import numpy as np

from .jit import kernel, prange


@kernel(parallel=True)
def maxpool_forward(x, KH, KW, SH, SW, PH, PW, y, argmax):
    """Fills y and argmax. Padding never wins: only pixels inside the image are candidates."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for oh in range(OH):
            h0 = max(oh * SH - PH, 0)
            h1 = min(oh * SH - PH + KH, H)
            for ow in range(OW):
                w0 = max(ow * SW - PW, 0)
                w1 = min(ow * SW - PW + KW, W)
                best = x[n, c, h0, w0]
                best_at = h0 * W + w0
                seen_nan = False
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = x[n, c, h, w]
                        seen_nan |= v != v               # no branch: testing NaN inside the `if` halves speed
                        if v > best:
                            best = v
                            best_at = h * W + w
                if seen_nan:                             # rare: scan again, the first NaN wins
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            v = x[n, c, h, w]
                            if v != v and best == best:
                                best = v
                                best_at = h * W + w
                y[n, c, oh, ow] = best
                argmax[n, c, oh, ow] = best_at


@kernel(parallel=True)
def maxpool_values(x, KH, KW, SH, SW, PH, PW, y):
    """Fills y alone, as maxpool_forward does, without the winners (evaluation; paper pool1 at batch 32, float32:
    16 against 51 ms on the project's 2-core AVX-512 machine, 2026-12-01). Of a -0.0 and a +0.0 in one window,
    either may come back (maxpool_forward returns the first in row-major order).

    The max is separable, so a row of outputs at a time: first the largest value down each column of the
    windows' KH rows (a loop along whole rows, which vectorises), then across, each output's largest of its KW
    column maxima. The row of column maxima has PW columns of -inf before the image and enough after it for
    the last window, so the loop across tests no bounds: padding never wins, as every window holds a pixel.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    width = max(PW + W, (OW - 1) * SW + KW)            # the padded row the windows cover
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        down = np.full(width, -np.inf, x.dtype)         # column maxima, column w of x at PW + w
        for oh in range(OH):
            h0 = max(oh * SH - PH, 0)
            h1 = min(oh * SH - PH + KH, H)
            for w in range(W):
                down[PW + w] = x[n, c, h0, w]
            for h in range(h0 + 1, h1):
                for w in range(W):
                    v, best = x[n, c, h, w], down[PW + w]
                    down[PW + w] = v if v > best or v != v else best      # a NaN stays, once in
            for ow in range(OW):
                best = down[ow * SW]
                for w in range(ow * SW + 1, ow * SW + KW):
                    v = down[w]
                    best = v if v > best or v != v else best
                y[n, c, oh, ow] = best


@kernel(parallel=True)
def maxpool_backward(dy, argmax, dx):
    """dx[argmax] += dy: with overlapping windows one pixel can win several windows, so gradients add.

    dx: (N, C, H, W), zeroed by the caller. Parallel over (n, c) planes: threads never share a pixel.
    """
    # exercise: maxpool_backward
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for oh in range(OH):
            for ow in range(OW):
                at = argmax[n, c, oh, ow]
                dx[n, c, at // W, at % W] += dy[n, c, oh, ow]
    # end exercise
