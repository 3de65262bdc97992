"""Winograd's F(2x2, 5x5): a 5x5 convolution (AlexNet's conv2) with 2.8 times fewer multiplications.

The scheme of kernels/winograd_3x3.py with 6x6 tiles (2 + 5 - 1) that start every 2 pixels, built on the points
0, 1, -1, 2, -2 and infinity (the points of Lavin and Gray's F(4x4, 3x3), so B^T is theirs):

    B^T = [[4,  0, -5,  0, 1, 0],    G = [[ 1/4,     0,    0,     0,    0],    A^T = [[1, 1,  1, 1,  1, 0],
           [0, -4, -4,  1, 1, 0],         [-1/6,  -1/6, -1/6,  -1/6, -1/6],           [0, 1, -1, 2, -2, 1]]
           [0,  4, -4, -1, 1, 0],         [-1/6,   1/6, -1/6,   1/6, -1/6],
           [0, -2, -1,  2, 1, 0],         [1/24,  1/12,  1/6,   1/3,  2/3],
           [0,  2, -1, -2, 1, 0],         [1/24, -1/12,  1/6,  -1/3,  2/3],
           [0,  4,  0, -5, 0, 1]]         [   0,     0,    0,     0,    1]]

    Y = A^T [ (G g G^T) * (B^T d B) ] A      for a 6x6 tile d and a 5x5 filter g

A direct 5x5 convolution multiplies 25 times per output and channel; this multiplies 36 times per 4 outputs.
The transforms multiply by 2, 4, 5 and 1/6, 1/24: float32 results are within about 1e-5 of the largest output
(tests/test_conv.py measures 1.4e-6 over 48 channels), where the direct sum is within 1e-7.

The transforms run along a whole row of tiles at once (the tiles' columns are read as even and odd columns of
the image), so every inner loop runs over consecutive tiles and vectorises. As for 3x3, the layer sums the
products over the channels as 36 matrix products: Conv2d._winograd in layers/conv.py.
"""
import numpy as np

from .jit import kernel, prange

# G and A^T of the docstring in float64; filters_5x5 rounds G to its filters' dtype, and the weight gradient uses
# both as matrices (Conv2d._winograd_weight_gradient)
AT_5x5 = np.array([[1, 1, 1, 1, 1, 0],
                   [0, 1, -1, 2, -2, 1]], dtype=np.float64)
G_5x5 = np.array([[1 / 4, 0, 0, 0, 0],
                  [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6],
                  [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3],
                  [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3],
                  [0, 0, 0, 0, 1]])


@kernel(parallel=True)
def filters_5x5(w, U):
    """w: (F, C, 5, 5) -> fills U: (36, F, C) with U[6*i + j, f, c] = (G g G^T)[i, j], g = w[f, c].

    A generic G g G^T loop: G is mostly fractions (22 of 30), and U is made once a pass (conv2: 0.6 ms).
    """
    F, C = w.shape[0], w.shape[1]
    G = G_5x5.astype(w.dtype)                             # rounded once: the products stay in w's dtype
    zero = w.dtype.type(0)
    for f in prange(F):
        Gg = np.empty((6, 5), w.dtype)
        for c in range(C):
            for i in range(6):                          # G g: combine the rows of g
                for j in range(5):
                    s = zero
                    for p in range(5):
                        s += G[i, p] * w[f, c, p, j]
                    Gg[i, j] = s
            for i in range(6):                          # (G g) G^T: combine its columns
                for j in range(6):
                    s = zero
                    for q in range(5):
                        s += Gg[i, q] * G[j, q]
                    U[6 * i + j, f, c] = s


@kernel(parallel=True)
def inputs_5x5(x, PH, PW, TH, TW, V):
    """x: (n, C, H, W) -> fills V: (36, C, n*TH*TW) with B^T d B for every channel and 6x6 tile d.

    Tile (th, tw) covers rows 2*th - PH .. +5 and columns 2*tw - PW .. +5 of x, zero outside the image.
    Parallel over channels. An image at a time, B^T written out: down every tile row's six rows for every
    column, then across, each of the 36 entries for the image's tiles in order, along V's last axis.
    """
    n, C, H, W = x.shape
    Hp, Wp = 2 * TH + 4, 2 * TW + 4                     # the zero-padded image the tiles cover
    two, four, five = x.dtype.type(2), x.dtype.type(4), x.dtype.type(5)
    for c in prange(C):
        padded = np.zeros((Hp, Wp), x.dtype)
        down = np.empty((6, TH, Wp), x.dtype)           # B^T d down every tile row, every column
        for b in range(n):
            for h in range(min(H, Hp - PH)):
                for w in range(min(W, Wp - PW)):
                    padded[PH + h, PW + w] = x[b, c, h, w]
            for th in range(TH):
                r0, r1, r2 = padded[2 * th], padded[2 * th + 1], padded[2 * th + 2]
                r3, r4, r5 = padded[2 * th + 3], padded[2 * th + 4], padded[2 * th + 5]
                for w in range(Wp):
                    d0, d1, d2, d3, d4, d5 = r0[w], r1[w], r2[w], r3[w], r4[w], r5[w]
                    down[0, th, w] = four * d0 - five * d2 + d4
                    down[1, th, w] = d3 + d4 - four * (d1 + d2)
                    down[2, th, w] = four * (d1 - d2) - d3 + d4
                    down[3, th, w] = two * (d3 - d1) - d2 + d4
                    down[4, th, w] = two * (d1 - d3) - d2 + d4
                    down[5, th, w] = four * d1 - five * d3 + d5
            t0 = b * TH * TW
            for i in range(6):                          # B^T across: tile tw's columns are 2*tw .. 2*tw + 5
                for th in range(TH):
                    s = down[i, th]
                    for tw in range(TW):
                        d0, d1, d2 = s[2 * tw], s[2 * tw + 1], s[2 * tw + 2]
                        d3, d4, d5 = s[2 * tw + 3], s[2 * tw + 4], s[2 * tw + 5]
                        t = t0 + th * TW + tw
                        V[6 * i, c, t] = four * d0 - five * d2 + d4
                        V[6 * i + 1, c, t] = d3 + d4 - four * (d1 + d2)
                        V[6 * i + 2, c, t] = four * (d1 - d2) - d3 + d4
                        V[6 * i + 3, c, t] = two * (d3 - d1) - d2 + d4
                        V[6 * i + 4, c, t] = two * (d1 - d3) - d2 + d4
                        V[6 * i + 5, c, t] = four * d1 - five * d3 + d5


@kernel(parallel=True)
def outputs_5x5(M, bias, TH, TW, y):
    """M: (36, F, n*TH*TW), bias: (F,) -> fills y: (n, F, OH, OW) with A^T m A + bias[f] for every filter f and
    tile (the bias added here, while y is written, not in a second pass over y; zeros for dx).

    A^T turns six values into two: (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2*(m3 - m4) + m5). The last row or column
    of tiles may reach past OH or OW: those outputs are dropped. Parallel over filters. A^T written out, down
    the six rows of every tile of the filter in one pass (M's entries lie in the tiles' order, so these loops
    run over all n*TH*TW tiles at once and vectorise), then across, tile row by tile row, into y.
    """
    n, F, OH, OW = y.shape
    T = n * TH * TW
    two = y.dtype.type(2)
    for f in prange(F):
        bf = bias[f]
        down = np.empty((2, 6, T), y.dtype)             # A^T down the six rows of every tile
        for q in range(6):
            m0, m1, m2, m3, m4, m5 = M[q, f], M[6 + q, f], M[12 + q, f], M[18 + q, f], M[24 + q, f], M[30 + q, f]
            for t in range(T):
                down[0, q, t] = m0[t] + m1[t] + m2[t] + m3[t] + m4[t]
                down[1, q, t] = m1[t] - m2[t] + two * (m3[t] - m4[t]) + m5[t]
        for b in range(n):
            for th in range(TH):
                t0 = (b * TH + th) * TW
                for i in range(min(2, OH - 2 * th)):
                    s, row = down[i], y[b, f, 2 * th + i]
                    for tw in range(OW // 2):           # A^T across: each tile's two outputs of this row
                        t = t0 + tw
                        row[2 * tw] = s[0, t] + s[1, t] + s[2, t] + s[3, t] + s[4, t] + bf
                        row[2 * tw + 1] = s[1, t] - s[2, t] + two * (s[3, t] - s[4, t]) + s[5, t] + bf
                    if OW % 2:
                        t = t0 + OW // 2
                        row[OW - 1] = s[0, t] + s[1, t] + s[2, t] + s[3, t] + s[4, t] + bf
