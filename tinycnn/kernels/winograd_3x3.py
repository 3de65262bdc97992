"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution with 2.25 times fewer multiplications.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016).

Legend
    d   a 4x4 tile of the zero-padded input; tiles start every 2 pixels, so neighbours overlap by 2
    g   a 3x3 filter          Y   the 2x2 block of outputs that tile d produces
    T   tiles per channel: n * TH * TW with TH = ceil(OH / 2), TW = ceil(OW / 2)

For one tile and one filter, with * the elementwise product:

    Y = A^T [ (G g G^T) * (B^T d B) ] A

    B^T = [[1, 0, -1, 0],      G = [[1,    0,    0  ],      A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],           [1/2,  1/2,  1/2],             [0, 1, -1, -1]]
           [0, -1, 1, 0],           [1/2, -1/2,  1/2],
           [0, 1,  0, -1]]          [0,    0,    1  ]]

A direct 3x3 convolution multiplies 9 times per output and channel; this multiplies 16 times per 4 outputs.
The transforms only add and subtract (and halve, in G), so float32 keeps nearly all of its accuracy.

These are the three transforms, each of a whole array of filters or tiles. Summing the elementwise products over
the channels as 16 matrix products, chunk by chunk of images, is the layer's work: Conv2d._winograd in
layers/conv.py.
"""
import numpy as np

from .jit import kernel, prange

# A^T and G of the docstring in float64: the weight gradient uses them as matrices (Conv2d._winograd_weight_gradient)
AT_3x3 = np.array([[1, 1, 1, 0],
                   [0, 1, -1, -1]], dtype=np.float64)
G_3x3 = np.array([[1, 0, 0],
                  [1 / 2, 1 / 2, 1 / 2],
                  [1 / 2, -1 / 2, 1 / 2],
                  [0, 0, 1]])


@kernel(parallel=True)
def filters_3x3(w, U):
    """w: (F, C, 3, 3) -> fills U: (16, F, C) with U[4*i + j, f, c] = (G g G^T)[i, j], g = w[f, c].

    Written out: G holds only 0, 1 and 1/2, so an entry is g0, g2 or a halved sum, with no products by 0 or 1.
    """
    F, C = w.shape[0], w.shape[1]
    half = w.dtype.type(0.5)
    for f in prange(F):
        Gg = np.empty((4, 3), w.dtype)
        for c in range(C):
            for j in range(3):                          # G g: combine the rows of g
                g0, g1, g2 = w[f, c, 0, j], w[f, c, 1, j], w[f, c, 2, j]
                Gg[0, j], Gg[1, j], Gg[2, j], Gg[3, j] = g0, half * (g0 + g1 + g2), half * (g0 - g1 + g2), g2
            for i in range(4):                          # (G g) G^T: the same for its columns
                g0, g1, g2 = Gg[i, 0], Gg[i, 1], Gg[i, 2]
                U[4 * i, f, c] = g0
                U[4 * i + 1, f, c] = half * (g0 + g1 + g2)
                U[4 * i + 2, f, c] = half * (g0 - g1 + g2)
                U[4 * i + 3, f, c] = g2


@kernel(parallel=True)
def inputs_3x3(x, PH, PW, TH, TW, V):
    """x: (n, C, H, W) -> fills V: (16, C, n*TH*TW) with B^T d B for every channel and tile.

    Tile (th, tw) covers rows 2*th - PH .. +3 and columns 2*tw - PW .. +3 of x, zero outside the image.
    Parallel over channels. An image at a time, B^T written out (its entries are only 0 and +-1): B^T down
    every tile row's four rows for every column, then across, each of the 16 entries for the image's tiles in
    order, along V's last axis (fewer loops, and no copies of even and odd columns, than tile row by tile row:
    on 4x4 maps those spent their time starting loops).
    """
    n, C, H, W = x.shape
    Hp, Wp = 2 * TH + 2, 2 * TW + 2                     # the zero-padded image the tiles cover
    for c in prange(C):
        padded = np.zeros((Hp, Wp), x.dtype)
        down = np.empty((4, TH, Wp), x.dtype)           # B^T d down every tile row, every column
        for b in range(n):
            for h in range(min(H, Hp - PH)):
                for w in range(min(W, Wp - PW)):
                    padded[PH + h, PW + w] = x[b, c, h, w]
            for th in range(TH):
                for w in range(Wp):
                    r0, r1 = padded[2 * th, w], padded[2 * th + 1, w]
                    r2, r3 = padded[2 * th + 2, w], padded[2 * th + 3, w]
                    down[0, th, w] = r0 - r2
                    down[1, th, w] = r1 + r2
                    down[2, th, w] = r2 - r1
                    down[3, th, w] = r1 - r3
            t0 = b * TH * TW
            for i in range(4):                          # (B^T d) B: tile tw's columns are 2*tw .. 2*tw + 3
                for th in range(TH):
                    s = down[i, th]
                    for tw in range(TW):
                        c0, c1, c2, c3 = s[2 * tw], s[2 * tw + 1], s[2 * tw + 2], s[2 * tw + 3]
                        t = t0 + th * TW + tw
                        V[4 * i, c, t] = c0 - c2
                        V[4 * i + 1, c, t] = c1 + c2
                        V[4 * i + 2, c, t] = c2 - c1
                        V[4 * i + 3, c, t] = c1 - c3


@kernel(parallel=True)
def outputs_3x3(M, bias, TH, TW, y):
    """M: (16, F, n*TH*TW), bias: (F,) -> fills y: (n, F, OH, OW) with A^T m A + bias[f] for every filter f and
    tile (the bias added here, while y is written, not in a second pass over y; zeros for dx).

    The last row or column of tiles may reach past OH or OW: those outputs are dropped. Parallel over filters.
    Tile by tile, A^T written out as 24 additions for 4 outputs (its entries are only 0 and +-1), then the bias.
    """
    n, F, OH, OW = y.shape
    for f in prange(F):
        bf = bias[f]
        for b in range(n):
            for th in range(TH):
                for tw in range(TW):
                    t = (b * TH + th) * TW + tw
                    # A^T m: row 0 = m0 + m1 + m2, row 1 = m1 - m2 - m3 (m_i the rows of the 4x4 tile)
                    s0 = M[0, f, t] + M[4, f, t] + M[8, f, t]
                    s1 = M[1, f, t] + M[5, f, t] + M[9, f, t]
                    s2 = M[2, f, t] + M[6, f, t] + M[10, f, t]
                    s3 = M[3, f, t] + M[7, f, t] + M[11, f, t]
                    e0 = M[4, f, t] - M[8, f, t] - M[12, f, t]
                    e1 = M[5, f, t] - M[9, f, t] - M[13, f, t]
                    e2 = M[6, f, t] - M[10, f, t] - M[14, f, t]
                    e3 = M[7, f, t] - M[11, f, t] - M[15, f, t]
                    h, w = 2 * th, 2 * tw                # then times A: the same combination of columns
                    y[b, f, h, w] = s0 + s1 + s2 + bf
                    if w + 1 < OW:
                        y[b, f, h, w + 1] = s1 - s2 - s3 + bf
                    if h + 1 < OH:
                        y[b, f, h + 1, w] = e0 + e1 + e2 + bf
                        if w + 1 < OW:
                            y[b, f, h + 1, w + 1] = e1 - e2 - e3 + bf

