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
    Parallel over channels. A row of tiles at a time, B^T written out: the loop over tiles vectorises.
    """
    n, C, H, W = x.shape
    Hp, Wp = 2 * TH + 4, 2 * TW + 4                     # the zero-padded image the tiles cover
    two, four, five = x.dtype.type(2), x.dtype.type(4), x.dtype.type(5)
    for c in prange(C):
        padded = np.zeros((Hp, Wp), x.dtype)
        down = np.empty((6, Wp), x.dtype)               # B^T down the six rows of a tile row, every column
        even = np.empty((6, TW + 2), x.dtype)           # its even and odd columns apart
        odd = np.empty((6, TW + 2), x.dtype)
        for b in range(n):
            for h in range(min(H, Hp - PH)):
                for w in range(min(W, Wp - PW)):
                    padded[PH + h, PW + w] = x[b, c, h, w]
            for th in range(TH):
                r0, r1, r2 = padded[2 * th], padded[2 * th + 1], padded[2 * th + 2]
                r3, r4, r5 = padded[2 * th + 3], padded[2 * th + 4], padded[2 * th + 5]
                for w in range(Wp):
                    d0, d1, d2, d3, d4, d5 = r0[w], r1[w], r2[w], r3[w], r4[w], r5[w]
                    down[0, w] = four * d0 - five * d2 + d4
                    down[1, w] = d3 + d4 - four * (d1 + d2)
                    down[2, w] = four * (d1 - d2) - d3 + d4
                    down[3, w] = two * (d3 - d1) - d2 + d4
                    down[4, w] = two * (d1 - d3) - d2 + d4
                    down[5, w] = four * d1 - five * d3 + d5
                for i in range(6):
                    for t in range(TW + 2):
                        even[i, t] = down[i, 2 * t]
                        odd[i, t] = down[i, 2 * t + 1]
                t0 = (b * TH + th) * TW
                for i in range(6):                      # B^T across: tile tw's columns are 2*tw .. 2*tw + 5
                    e, o = even[i], odd[i]
                    v0, v1, v2 = V[6 * i, c, t0:t0 + TW], V[6 * i + 1, c, t0:t0 + TW], V[6 * i + 2, c, t0:t0 + TW]
                    v3, v4, v5 = V[6 * i + 3, c, t0:t0 + TW], V[6 * i + 4, c, t0:t0 + TW], V[6 * i + 5, c, t0:t0 + TW]
                    for tw in range(TW):
                        d0, d1, d2, d3, d4, d5 = e[tw], o[tw], e[tw + 1], o[tw + 1], e[tw + 2], o[tw + 2]
                        v0[tw] = four * d0 - five * d2 + d4
                        v1[tw] = d3 + d4 - four * (d1 + d2)
                        v2[tw] = four * (d1 - d2) - d3 + d4
                        v3[tw] = two * (d3 - d1) - d2 + d4
                        v4[tw] = two * (d1 - d3) - d2 + d4
                        v5[tw] = four * d1 - five * d3 + d5


@kernel(parallel=True)
def outputs_5x5(M, TH, TW, y):
    """M: (36, F, n*TH*TW) -> fills y: (n, F, OH, OW) with A^T m A for every filter and tile.

    A^T turns six values into two: (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2*(m3 - m4) + m5). The last row or column
    of tiles may reach past OH or OW: those outputs are dropped. Parallel over filters. A row of tiles at a time,
    A^T written out: the loops over tiles vectorise.
    """
    n, F, OH, OW = y.shape
    two = y.dtype.type(2)
    for f in prange(F):
        down = np.empty((2, 6, TW), y.dtype)            # A^T down the six rows of every tile of a tile row
        left, right = np.empty(TW, y.dtype), np.empty(TW, y.dtype)
        for b in range(n):
            for th in range(TH):
                t0 = (b * TH + th) * TW
                for q in range(6):
                    m0, m1, m2 = M[q, f, t0:t0 + TW], M[6 + q, f, t0:t0 + TW], M[12 + q, f, t0:t0 + TW]
                    m3, m4, m5 = M[18 + q, f, t0:t0 + TW], M[24 + q, f, t0:t0 + TW], M[30 + q, f, t0:t0 + TW]
                    for tw in range(TW):
                        down[0, q, tw] = m0[tw] + m1[tw] + m2[tw] + m3[tw] + m4[tw]
                        down[1, q, tw] = m1[tw] - m2[tw] + two * (m3[tw] - m4[tw]) + m5[tw]
                for i in range(min(2, OH - 2 * th)):
                    s = down[i]
                    for tw in range(TW):                # A^T across: each tile's two outputs of this row
                        left[tw] = s[0, tw] + s[1, tw] + s[2, tw] + s[3, tw] + s[4, tw]
                        right[tw] = s[1, tw] - s[2, tw] + two * (s[3, tw] - s[4, tw]) + s[5, tw]
                    row = y[b, f, 2 * th + i]
                    for tw in range(OW // 2):
                        row[2 * tw] = left[tw]
                        row[2 * tw + 1] = right[tw]
                    if OW % 2:
                        row[OW - 1] = left[OW // 2]
