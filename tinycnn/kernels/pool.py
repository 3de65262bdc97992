"""Max-pooling forward and backward, one fused loop each.

Legend: x (N, C, H, W) -> y (N, C, OH, OW); window (KH, KW), stride (SH, SW), padding (PH, PW).
argmax[n, c, oh, ow] is the flat index h*W + w of the winning input pixel inside its (H, W) plane.
Ties go to the first maximum in row-major window order; a NaN in a window wins (it propagates).
"""
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
