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


@kernel(parallel=True)
def im2col(x, KH, KW, SH, SW, PH, PW, cols):
    """x: (n, C, H, W) -> fills cols: (C*KH*KW, n*OH*OW). Parallel over channels (disjoint rows)."""
    n, C, H, W = x.shape
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    for c in prange(C):
        for i in range(KH):
            for j in range(KW):
                row = (c * KH + i) * KW + j
                for b in range(n):
                    for oh in range(OH):
                        h = oh * SH - PH + i
                        col = (b * OH + oh) * OW
                        for ow in range(OW):
                            w = ow * SW - PW + j
                            if 0 <= h < H and 0 <= w < W:
                                cols[row, col + ow] = x[b, c, h, w]
                            else:
                                cols[row, col + ow] = 0


@kernel(parallel=True)
def col2im(cols, KH, KW, SH, SW, PH, PW, dx):
    """cols: (C*KH*KW, n*OH*OW) -> adds into dx: (n, C, H, W). Overlapping windows accumulate.

    Parallel over channels: each thread owns whole channels of dx, so no two threads add to one pixel
    and the order of additions (hence the result) is fixed.
    """
    n, C, H, W = dx.shape
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    for c in prange(C):
        for i in range(KH):
            for j in range(KW):
                row = (c * KH + i) * KW + j
                for b in range(n):
                    for oh in range(OH):
                        h = oh * SH - PH + i
                        if h < 0 or h >= H:
                            continue
                        col = (b * OH + oh) * OW
                        for ow in range(OW):
                            w = ow * SW - PW + j
                            if 0 <= w < W:
                                dx[b, c, h, w] += cols[row, col + ow]
