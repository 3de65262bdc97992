"""im2col and col2im: turn convolution into one matrix product.

Legend
    n       images in this chunk            C   input channels
    H, W    input height, width             KH, KW  kernel height, width
    OH, OW  output height, width            SH, SW / PH, PW  strides / zero padding
    cols    (C*KH*KW, n*OH*OW): row (c, i, j) holds pixel x[b, c, oh*SH - PH + i, ow*SW - PW + j]
            at column (b, oh, ow); positions in the zero padding hold 0.

With cols in hand a convolution is  y[f, (b, oh, ow)] = sum_row w[f, row] * cols[row, (b, oh, ow)],
a GEMM (F, C*KH*KW) x (C*KH*KW, n*OH*OW). col2im is the transpose of im2col: it adds every column entry
back onto the pixel it came from, which is exactly the gradient of im2col.
"""
from .jit import kernel, prange


@kernel
def _inside(j, S, P, W, OW):
    """The outputs ow whose input column w = ow*S - P + j lies inside [0, W): ow_lo <= ow < ow_hi."""
    ow_lo = min(OW, max(0, -((j - P) // S)))
    ow_hi = max(ow_lo, min(OW, (W - 1 + P - j) // S + 1))
    return ow_lo, ow_hi


@kernel(parallel=True)
def im2col(x, KH, KW, SH, SW, PH, PW, cols):
    """x: (n, C, H, W) -> fills cols: (C*KH*KW, n*OH*OW). Parallel over rows of cols (each written whole)."""
    # exercise: im2col
    n, C, H, W = x.shape
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    zero = x.dtype.type(0)
    for row in prange(C * KH * KW):
        c, i, j = row // (KH * KW), row // KW % KH, row % KW
        ow_lo, ow_hi = _inside(j, SW, PW, W, OW)
        for b in range(n):
            for oh in range(OH):
                h = oh * SH - PH + i
                col = (b * OH + oh) * OW                 # column of output (b, oh, 0)
                if h < 0 or h >= H:                      # the whole output row reads zero padding
                    for ow in range(OW):
                        cols[row, col + ow] = zero
                    continue
                for ow in range(ow_lo):
                    cols[row, col + ow] = zero
                for ow in range(ow_lo, ow_hi):
                    cols[row, col + ow] = x[b, c, h, ow * SW - PW + j]
                for ow in range(ow_hi, OW):
                    cols[row, col + ow] = zero
    # end exercise


@kernel(parallel=True)
def col2im(cols, KH, KW, SH, SW, PH, PW, dx):
    """cols: (C*KH*KW, n*OH*OW) -> adds into dx: (n, C, H, W). Overlapping windows accumulate.

    Parallel over channels: each thread owns whole channels of dx, so no two threads add to one pixel
    and the order of additions (hence the result) is fixed.
    """
    # exercise: col2im
    n, C, H, W = dx.shape
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    for c in prange(C):
        for i in range(KH):
            for j in range(KW):
                row = (c * KH + i) * KW + j
                ow_lo, ow_hi = _inside(j, SW, PW, W, OW)
                for b in range(n):
                    for oh in range(OH):
                        h = oh * SH - PH + i
                        if 0 <= h < H:                   # padding rows receive nothing
                            col = (b * OH + oh) * OW
                            for ow in range(ow_lo, ow_hi):
                                dx[b, c, h, ow * SW - PW + j] += cols[row, col + ow]
    # end exercise
