"""Winograd's backward pass, the two steps the forward pass's transforms do not cover (Conv2d.backward in
layers/conv.py):

dW: the forward pass gives a tile's outputs as Y = A^T [U * V] A (kernels/winograd_3x3.py, winograd_5x5.py). Its
gradient by U is (A e A^T) * V, e the tile's 2x2 block of dy: so dW needs A e A^T, an (r+1) x (r+1) tile, for
every tile, filter and image (gradient_tiles), then sums its products with V. One kernel for both filter sizes:
the products by A come in as a matrix, kron(A, A). It reads dy once and writes E in the order the matrix
products read it (tiles down, filters across), which a transposed view would cost them.

dx: the convolution of dy with the filters turned 180 degrees, their in and out channels swapped group by group
(turned_filters).
"""
import numpy as np

from .jit import kernel, prange


@kernel(parallel=True)
def gradient_tiles(dy, spread, TH, TW, E):
    """dy: (n, F, OH, OW), spread: (t, 4) = kron(A, A), t = (r+1)^2 -> fills E: (t, G, n*TH*TW, F/G) with

        E[k, g, tile, f] = (A e A^T)[i, j] = sum over a, b of spread[k, 2*a + b] * e[a, b],   k = (r+1)*i + j

    e the 2x2 block dy[b, g*F/G + f, 2*th : 2*th + 2, 2*tw : 2*tw + 2], zero past OH or OW, for tile = (b*TH + th)*TW
    + tw. Parallel over the rows of tiles of every image and group. Each takes its two rows of dy with the filters
    last (a transposing copy, zero-padded), so that every entry of E is 4 products along its row of F/G filters:
    one loop that vectorises, where reading dy filter by filter would not.
    """
    n, F, OH, OW = dy.shape
    t, G, Fg = spread.shape[0], E.shape[1], E.shape[3]
    for task in prange(n * G * TH):
        b, g, th = task // (G * TH), task // TH % G, task % TH
        rows = np.zeros((2, 2 * TW, Fg), dy.dtype)      # rows[a, w, f] = dy[b, g*F/G + f, 2*th + a, w]
        for a in range(min(2, OH - 2 * th)):
            for f in range(Fg):
                for w in range(OW):
                    rows[a, w, f] = dy[b, g * Fg + f, 2 * th + a, w]
        for tw in range(TW):
            tile = (b * TH + th) * TW + tw
            e00, e01 = rows[0, 2 * tw], rows[0, 2 * tw + 1]
            e10, e11 = rows[1, 2 * tw], rows[1, 2 * tw + 1]
            for k in range(t):
                s00, s01, s10, s11 = spread[k, 0], spread[k, 1], spread[k, 2], spread[k, 3]
                out = E[k, g, tile]
                for f in range(Fg):
                    out[f] = s00 * e00[f] + s01 * e01[f] + s10 * e10[f] + s11 * e11[f]


@kernel(parallel=True)
def turned_filters(w, G, turned):
    """w: (F, C/G, r, r), G groups -> fills turned: (C, F/G, r, r) with

        turned[g*C/G + c, f, i, j] = w[g*F/G + f, c, r - 1 - i, r - 1 - j]

    dx's filters: filter f of group g turned 180 degrees and its in and out channels swapped. Parallel over
    dx's filters (the in channels), so each writes one row of turned.
    """
    F, Cg, KH, KW = w.shape
    Fg = F // G
    for task in prange(G * Cg):
        g, c = task // Cg, task % Cg
        for f in range(Fg):
            for i in range(KH):
                for j in range(KW):
                    turned[task, f, i, j] = w[g * Fg + f, c, KH - 1 - i, KW - 1 - j]
