"""Conv2d: convolution as im2col followed by one matrix product per group (Winograd for 3x3 and 5x5 filters at
stride 1, and for strided filters that cut into 3x3 or 5x5 phases)."""
import functools

import numpy as np

from ..kernels import (AT_3x3, AT_5x5, G_3x3, G_5x5, col2im, filters_3x3, filters_5x5, gemm, gradient_tiles,
                       im2col, inputs_3x3, inputs_5x5, outputs_3x3, outputs_5x5, turned_filters)
from .base import Layer, Parameter, check_dtype, normal_weight, window, window_output_hw
from .scratch import scratch

# Winograd's F(2x2, r x r) by filter size r: its (filters, inputs, outputs) transforms, from kernels/
WINOGRAD = {3: (filters_3x3, inputs_3x3, outputs_3x3), 5: (filters_5x5, inputs_5x5, outputs_5x5)}
# ... and its matrices A^T (2, r+1) and G (r+1, r), in float64
WINOGRAD_MATRICES = {3: (AT_3x3, G_3x3), 5: (AT_5x5, G_5x5)}


class Conv2d(Layer):
    """2-D convolution with stride, zero padding and groups (strictly, cross-correlation, as in every framework).

    Shapes
        x: (N, C, H, W),  weight: (F, C/G, KH, KW),  bias: (F,)  ->  y: (N, F, OH, OW)
        OH = floor((H + 2*PH - KH) / SH) + 1, and the same for OW.

    Forward
        y[n, f, oh, ow] = bias[f] + sum_{c, i, j} weight[f, c, i, j] * x[n, g*C/G + c, oh*SH - PH + i, ow*SW - PW + j]
        where g = f // (F/G) is the group of filter f: groups split the channels into G independent
        convolutions (the paper's two GPUs are groups=2).

    As matrices, with cols = im2col(x) (see kernels/im2col.py) cut into G row blocks cols_g:
        Y_g     = W_g @ cols_g          W_g: (F/G, C/G*KH*KW),  cols_g: (C/G*KH*KW, N*OH*OW)
    Backward, from dY_g: (F/G, N*OH*OW)
        dW_g    = dY_g @ cols_g^T       dbias = sum of dY over n, oh, ow
        dcols_g = W_g^T @ dY_g          dx = col2im(dcols)

    Images are processed in chunks so the column matrix never exceeds `memory_budget` bytes (or one image's
    columns, if that is larger; `conv.memory_budget = ...` sets it for one layer). Backward recomputes the
    columns instead of keeping them: memory stays bounded.

    r x r filters with stride 1 and padding <= r - 1 take Winograd's F(2x2, 3x3) (AlexNet's conv3-5) or
    F(2x2, 5x5) (conv2) instead of im2col for y, dx and dW (_winograd, _winograd_weight_gradient, with the
    transforms of kernels/winograd_3x3.py and kernels/winograd_5x5.py): the same result with 2.25x or 2.8x fewer
    multiplications, in chunks under the same memory_budget. dx is then the convolution of dy, padded by
    r - 1 - P, with the filters turned 180 degrees and their in and out channels swapped; dW is the forward
    pass's bilinear form differentiated by the filter.
    A strided convolution whose stride s cuts its filters into 3x3 or 5x5 phases takes Winograd too, when that
    makes at most 0.6 of im2col's multiplications (the paper's conv1, 11x11 at stride 4: 0.53): the image cut
    into s x s phases, C*s*s channels each 1/s of the size, convolved at stride 1 with the filters cut the same
    way (_phases, _phase_weight).
    Set `conv.winograd = False` to use im2col + GEMM throughout.

    Saved for backward: x, the input (C-ordered, not copied), and on the phases' path its phases too (a copy the
    size of x padded).
    Initialisation: weight ~ N(0, weight_std^2), by default weight_std = sqrt(2/fan_in) (He), bias 0.
    """

    winograd = True
    memory_budget = 32 * 2**20          # bytes a chunk of images may take for its column matrix (or V and M)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True,
                 dtype=np.float32, rng=None, weight_std=None):
        self.kernel_size, self.stride, self.padding = window("Conv2d", kernel_size, stride, padding)
        if in_channels < 1 or out_channels < 1 or groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                             f"positive multiples of groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        dtype = check_dtype(dtype, "Conv2d")
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self.weight = normal_weight((out_channels, in_channels // groups) + self.kernel_size, fan_in, weight_std,
                                    dtype, rng)
        self.bias = Parameter(np.zeros(out_channels, dtype)) if bias else None

    def extra_repr(self):
        return convolution_repr(self, f", groups={self.groups}" if self.groups > 1 else "")

    def output_shape(self, input_shape):
        oh, ow = window_output_hw(self, input_shape[1:], self.kernel_size, self.stride, self.padding)
        return (self.out_channels, oh, ow)

    def macs(self, input_shape):
        _, oh, ow = self.output_shape(input_shape)
        return self.weight.size * oh * ow

    def forward(self, x, training=False):
        """x: (N, C, H, W) -> y: (N, F, OH, OW)."""
        self.check_input(x, 4, self.in_channels, self.weight.data.dtype)
        self.output_shape(x.shape[1:])                  # names the layer if the window does not fit
        x = np.ascontiguousarray(x)
        bias, phases = (self.bias.data if self.bias is not None else None), None
        if self._takes_winograd():                      # adds the bias as it writes y
            y = self._winograd(x, self.weight.data, self.padding, bias)
        elif self._takes_phases():                      # stride s: stride 1 on the image's s x s phases
            phases = self._phases(x)
            y = self._winograd(phases, self._phase_weight(self.weight.data), (0, 0), bias)
        else:
            y = self._im2col_forward(x)
            if self.bias is not None:
                y += self.bias.data[:, None, None]
        self.save_for_backward(x=x, phases=phases)
        return y

    def _im2col_forward(self, x):
        """Y_g = W_g @ cols_g, chunk by chunk of images."""
        # exercise: conv2d_im2col_forward
        F, G = self.out_channels, self.groups
        N, (OH, OW) = x.shape[0], self.output_shape(x.shape[1:])[1:]
        w = self.weight.data.reshape(G, F // G, -1)                       # (G, F/G, C/G*KH*KW)
        y = np.empty((N, F, OH, OW), x.dtype)
        for n0, n1, cols in self._column_chunks(x):
            cols = cols.reshape(G, -1, cols.shape[1])                     # (G, C/G*KH*KW, n*OH*OW)
            out = scratch("products", F * cols.shape[2], x.dtype).reshape(G, F // G, -1)  # (G, F/G, n*OH*OW)
            for g in range(G):
                gemm(w[g], cols[g], out=out[g])
            y[n0:n1] = out.reshape(F, n1 - n0, OH, OW).transpose(1, 0, 2, 3)
        return y
        # end exercise

    def _winograd(self, x, w, padding, bias=None):
        """y = x convolved with w at stride 1, plus bias, by F(2x2, r x r), r = 3 or 5, chunk by chunk of images.

        x: (N, C, H, W), w: (F, C/G, r, r), padding (PH, PW), bias: (F,) or None -> y: (N, F, OH, OW),
        OH = H + 2*PH - r + 1 (and OW).
        For a tile d of x and a filter g, Y = A^T [(G g G^T) * (B^T d B)] A (the matrices are in the kernels'
        docstrings). A transformed tile has t = (r + 1)^2 entries, and a chunk of n images T = n*TH*TW tiles
        per channel, TH = ceil(OH / 2), TW = ceil(OW / 2). Summed over the channels, the t elementwise products
        become t matrix products per group, one per entry k of the tile:

            U[k] (F, C/G) = (G g G^T)[k] for every filter and channel       (filters, once)
            V[k] (C, T)   = (B^T d B)[k] for every channel and tile         (inputs, per chunk)
            M[k] (F, T)   = U[k] @ V[k], group by group: the group's F/G rows of U and C/G rows of V
            y             = A^T M A + bias for every filter and tile        (outputs)

        so 16 or 36 products per group and chunk, run as one stack of t*G products (one parallel region, not
        t*G of them: on small images, starting the threads costs as much as the products). V and M share one
        buffer under memory_budget bytes.
        """
        N, C, H, W = x.shape
        F, r, G = w.shape[0], w.shape[2], self.groups
        (PH, PW), Fg, Cg = padding, F // G, C // G
        OH, OW = H + 2 * PH - r + 1, W + 2 * PW - r + 1
        TH, TW = (OH + 1) // 2, (OW + 1) // 2
        filters, inputs, outputs = WINOGRAD[r]
        t = (r + 1) ** 2
        bias = np.zeros(F, x.dtype) if bias is None else bias            # the output transform adds it
        U = np.empty((t, F, Cg), x.dtype)
        filters(w, U)
        y = np.empty((N, F, OH, OW), x.dtype)
        _, runs = self._winograd_chunks(N, C, F, TH, TW, t, x.dtype)
        for n0, n1, V, rest in runs:
            T = V.shape[2]
            M = rest.reshape(t, F, T)
            inputs(x[n0:n1], PH, PW, TH, TW, V)
            gemm(U.reshape(t * G, Fg, Cg), V.reshape(t * G, Cg, T), out=M.reshape(t * G, Fg, T))   # one stack
            outputs(M, bias, TH, TW, y[n0:n1])
        return y

    def backward(self, dy):
        """dy: (N, F, OH, OW) -> dx: (N, C, H, W); sets weight.grad (F, C/G, KH, KW) and bias.grad (F,).

        A frozen parameter (trainable = False) gets no gradient: a frozen conv3 below a learning conv4 costs
        only dx. With needs_input_grad = False (a first layer, whose input is the data) dx is skipped: returns
        None.
        """
        saved = self.saved()
        x, phases = saved.x, saved.phases
        self.check_dy(dy, (x.shape[0], self.out_channels) + self.output_shape(x.shape[1:])[1:], x.dtype)
        dy = np.ascontiguousarray(dy)                   # once, for dW and dx alike: Winograd's kernels read C order
        if self.weight.trainable:
            self.weight.grad = self._weight_gradient(x, dy, phases)       # dW_g = dY_g @ cols_g^T
        if self.bias is not None and self.bias.trainable:
            self.bias.grad = np.einsum("nfhw->f", dy)                    # dbias = sum of dY over n, oh, ow
        if not self.needs_input_grad:
            return None
        return self._input_gradient(dy, x.shape)                          # dx = col2im(W_g^T @ dY_g)

    def _weight_gradient(self, x, dy, phases=None):
        """dW_g = dY_g @ cols_g^T, summed over the chunks of images; or Winograd (3x3, 5x5 at stride 1; or on
        x's phases, which forward made). -> (F, C/G, KH, KW)."""
        if self._takes_winograd():
            return self._winograd_weight_gradient(x, dy, self.kernel_size[0], self.padding)
        if self._takes_phases():
            dw = self._winograd_weight_gradient(phases, dy, self._phase_size(), (0, 0))
            return self._unphase_weight(dw)
        F, G = self.out_channels, self.groups
        dw = np.empty(self.weight.shape, x.dtype).reshape(G, F // G, -1)  # (G, F/G, C/G*KH*KW), C-ordered
        for n0, n1, cols in self._column_chunks(x):
            cols = cols.reshape(G, -1, cols.shape[1])                     # (G, C/G*KH*KW, n*OH*OW)
            dy_g = self._by_group(dy[n0:n1])                              # (G, F/G, n*OH*OW)
            for g in range(G):
                gemm(dy_g[g], cols[g].T, out=dw[g], accumulate=n0 > 0)   # the first chunk writes, the rest add
        return dw.reshape(self.weight.shape)

    def _winograd_weight_gradient(self, x, dy, r, padding):
        """dW by F(2x2, r x r), r = 3 or 5, x padded by `padding` (PH, PW). x: (N, C, H, W), dy: (N, F, OH, OW)
        -> (F, C/G, r, r).

        The forward pass gives each tile Y = A^T [U * V] A, U = G g G^T, V = B^T d B. Its gradient by U is
        (A e A^T) * V, e the 2x2 block of dy over the tile's outputs (zero past OH or OW), and so

            dg = G^T [ (A e A^T) * (B^T d B) ] G      summed over the tiles of every image.

        With t = (r + 1)^2 entries per tile and T tiles, entry by entry k the sum over the tiles is one matrix
        product per group:

            V[k] (C, T)      = (B^T d B)[k]                      (the forward pass's input transform)
            E[k] (G, T, F/G) = (A e A^T)[k], k = (i, j)           (kernels/winograd_backward.py)
            D[k] (C/G, F/G)  = V[k] @ E[k], group by group       (one stack of t*G products)
            dW[f, c]         = G^T D[:, c, f] G                  (a product by kron(G, G))

        so (r*r*C/G) multiplications per tile and filter become t*C/G, as in the forward pass.
        """
        N, C, H, W = x.shape
        F, G = self.out_channels, self.groups
        (PH, PW), Fg, Cg = padding, F // G, C // G
        OH, OW = dy.shape[2:]
        TH, TW = (OH + 1) // 2, (OW + 1) // 2
        inputs, t = WINOGRAD[r][1], (r + 1) ** 2
        spread, gather = _gradient_matrices(r, x.dtype)                  # (t, 4): e -> A e A^T; (r*r, t): D -> G^T D G
        _, runs = self._winograd_chunks(N, C, F, TH, TW, t, x.dtype)
        D = scratch("winograd dW", t * G * Cg * Fg, x.dtype).reshape(t * G, Cg, Fg)      # the sum over the runs
        for n0, n1, V, rest in runs:
            T = V.shape[2]
            E = rest.reshape(t, G, T, Fg)
            inputs(x[n0:n1], PH, PW, TH, TW, V)
            gradient_tiles(dy[n0:n1], spread, TH, TW, E)
            gemm(V.reshape(t * G, Cg, T), E.reshape(t * G, T, Fg), out=D, accumulate=n0 > 0)
        dw = gemm(gather, D.reshape(t, G * Cg * Fg))                     # (r*r, G*Cg*Fg)
        return dw.reshape(r, r, G, Cg, Fg).transpose(2, 4, 3, 0, 1).reshape(F, Cg, r, r)

    def _winograd_chunks(self, N, C, F, TH, TW, t, dtype):
        """-> (chunk, runs): the batch of N images in runs of at most `chunk`, runs yielding (n0, n1, V, rest)
        for images [n0, n1): V (t, C, T), room for the run's transformed inputs, and rest, the t*F*T entries
        after it (the forward pass's M, dW's E), T = (n1 - n0)*TH*TW; views of one buffer under memory_budget
        bytes, reused run by run and call by call (scratch.py: fresh memory costs more than the transforms)."""
        per_image = t * (C + F) * TH * TW
        chunk, runs = image_chunks(N, per_image * np.dtype(dtype).itemsize, self.memory_budget)
        buffer = scratch("winograd", per_image * chunk, dtype)

        def views():
            for n0, n1 in runs:
                T = (n1 - n0) * TH * TW
                yield n0, n1, buffer[:t * C * T].reshape(t, C, T), buffer[t * C * T:t * (C + F) * T]
        return chunk, views()

    def _input_gradient(self, dy, x_shape):
        """dx = col2im(dcols), dcols_g = W_g^T @ dY_g, chunk by chunk; or Winograd (3x3, 5x5 at stride 1, or on the
        phases). -> x_shape."""
        G, (KH, KW), (SH, SW), (PH, PW) = self.groups, self.kernel_size, self.stride, self.padding
        if self._takes_winograd():         # dy padded by r - 1 - P, convolved with the filters turned around
            return self._winograd(dy, self._turned(self.weight.data), (KH - 1 - PH, KW - 1 - PW))
        if self._takes_phases():           # the same on the phases, P = 0: the phases' gradient, then put together
            r, w = self._phase_size(), self._phase_weight(self.weight.data)
            return self._unphase(self._winograd(dy, self._turned(w), (r - 1, r - 1)), x_shape)
        w = self.weight.data.reshape(G, self.out_channels // G, -1)       # (G, F/G, C/G*KH*KW)
        dx = np.zeros(x_shape, dy.dtype)
        for n0, n1, dcols in self._chunks(x_shape, dy.dtype):
            dcols = dcols.reshape(G, -1, dcols.shape[1])                  # (G, C/G*KH*KW, n*OH*OW)
            dy_g = self._by_group(dy[n0:n1])                              # (G, F/G, n*OH*OW)
            for g in range(G):
                gemm(w[g].T, dy_g[g], out=dcols[g])
            col2im(dcols.reshape(-1, dcols.shape[2]), KH, KW, SH, SW, PH, PW, dx[n0:n1])
        return dx

    def _by_group(self, dy):
        """dy: (n, F, OH, OW) -> dY_g for every group: (G, F/G, n*OH*OW), the columns in im2col's order."""
        n, F, G = dy.shape[0], self.out_channels, self.groups
        return dy.reshape(n, G, F // G, -1).transpose(1, 2, 0, 3).reshape(G, F // G, -1)

    def _takes_winograd(self):
        """3x3 and 5x5 filters with stride 1, padded by at most r - 1 (so dx's padding r - 1 - P is not negative)."""
        r = self.kernel_size[0]
        return (self.winograd and self.kernel_size in ((3, 3), (5, 5)) and self.stride == (1, 1)
                and max(self.padding) <= r - 1)

    def _turned(self, w):
        """The filters of dx = conv(dy): w[f, c] turned 180 degrees, in and out channels swapped per group.

        w: (F, C/G, r, r) -> (C, F/G, r, r)
        """
        F, Cg, KH, KW = w.shape
        turned = np.empty((self.groups * Cg, F // self.groups, KH, KW), w.dtype)
        turned_filters(w, self.groups, turned)         # a kernel: NumPy's copy of the turned view took 2x as long
        return turned

    def _takes_phases(self):
        """Square filters K x K at stride s > 1 that cut into r x r phases, r = ceil(K / s) = 3 or 5, where Winograd
        on the phases makes at most 0.6 of im2col's multiplications: s*s*C channels times (r + 1)^2 / 4 per
        output (F(2x2, r x r)) against C*K*K. The paper's conv1, K = 11, s = 4: 16*C*4 = 64*C against 121*C. The
        mini network's conv1, K = 5, s = 2: 0.64, and there its backward pass ran 1.5x slower than im2col's
        (this project's 2-core AVX-512 machine, 2026-12-01)."""
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        if not self.winograd or KH != KW or SH != SW or SH == 1:
            return False
        s, r = SH, self._phase_size()
        return r in (3, 5) and s * s * (r + 1) ** 2 <= 0.6 * 4 * KH * KH

    def _phase_size(self):
        """r = ceil(K / s): the side of a filter's phases."""
        return -(-self.kernel_size[0] // self.stride[0])

    def _phases(self, x):
        """x: (N, C, H, W) -> its s x s phases (N, C*s*s, Hs, Ws), Hs = OH + r - 1 (and Ws):
        phases[n, (c*s + a)*s + b, i, j] = x[n, c, s*i + a - PH, s*j + b - PW], zero outside the image.

        A convolution of x at stride s is a convolution of its phases at stride 1 without padding, with the
        filters cut the same way (_phase_weight): output (oh, ow) reads pixel (s*oh + i - PH, s*ow + j - PW)
        for i = s*i' + a, which is phase (a, b)'s pixel (oh + i', ow + j')."""
        N, C, H, W = x.shape
        s, r, (PH, PW) = self.stride[0], self._phase_size(), self.padding
        _, OH, OW = self.output_shape(x.shape[1:])
        Hs, Ws = OH + r - 1, OW + r - 1
        padded = np.zeros((N, C, s * Hs, s * Ws), x.dtype)
        h, w = min(H, s * Hs - PH), min(W, s * Ws - PW)            # the rows and columns some window reads
        padded[:, :, PH:PH + h, PW:PW + w] = x[:, :, :h, :w]
        return cut_into_phases(padded, s)

    def _unphase(self, phases, x_shape):
        """The inverse of _phases, for dx: (N, C*s*s, Hs, Ws) -> x_shape (N, C, H, W); pixels that no window
        reads get 0."""
        N, C, H, W = x_shape
        s, (PH, PW) = self.stride[0], self.padding
        Hs, Ws = phases.shape[2:]
        padded = join_phases(phases, s)                                   # (N, C, s*Hs, s*Ws)
        dx = np.zeros(x_shape, phases.dtype)
        h, w = min(H, s * Hs - PH), min(W, s * Ws - PW)
        dx[:, :, :h, :w] = padded[:, :, PH:PH + h, PW:PW + w]
        return dx

    def _phase_weight(self, w):
        """w: (F, C/G, K, K) -> its phases (F, C/G*s*s, r, r), w_phase[f, (c*s + a)*s + b, i, j] = w[f, c, s*i + a,
        s*j + b], zero past K."""
        F, Cg, K, _ = w.shape
        s, r = self.stride[0], self._phase_size()
        padded = np.zeros((F, Cg, r * s, r * s), w.dtype)
        padded[:, :, :K, :K] = w
        return cut_into_phases(padded, s)

    def _unphase_weight(self, dw):
        """The inverse of _phase_weight, for dW: (F, C/G*s*s, r, r) -> (F, C/G, K, K) (the taps past K dropped)."""
        K = self.kernel_size[0]
        return np.ascontiguousarray(join_phases(dw, self.stride[0])[:, :, :K, :K])

    def _chunks(self, x_shape, dtype):
        """Yield (n0, n1, cols): runs of images [n0, n1) and an uninitialised column matrix for them,
        (C*KH*KW, (n1-n0)*OH*OW), one buffer under memory_budget bytes reused for every run."""
        N, C = x_shape[:2]
        OH, OW = window_output_hw(self, x_shape[2:], self.kernel_size, self.stride, self.padding)
        rows, per_image = C * self.kernel_size[0] * self.kernel_size[1], OH * OW
        chunk, runs = image_chunks(N, rows * per_image * dtype.itemsize, self.memory_budget)
        buffer = scratch("columns", rows * per_image * chunk, dtype)
        for n0, n1 in runs:
            yield n0, n1, buffer[:rows * per_image * (n1 - n0)].reshape(rows, per_image * (n1 - n0))

    def _column_chunks(self, x):
        """Yield (n0, n1, cols) with cols = im2col(x[n0:n1]): (C*KH*KW, (n1-n0)*OH*OW)."""
        for n0, n1, cols in self._chunks(x.shape, x.dtype):
            im2col(x[n0:n1], *self.kernel_size, *self.stride, *self.padding, cols)
            yield n0, n1, cols


@functools.lru_cache(maxsize=None)
def _gradient_matrices(r, dtype):
    """Winograd dW's two fixed products for F(2x2, r x r), in `dtype`, made once: spread = kron(A, A) (t, 4)
    turns a tile's 2x2 block e of dy into A e A^T (gradient_tiles), gather = kron(G, G)^T (r*r, t) turns D into
    G^T D G. Shared by every call: only ever read, never written."""
    AT, Gm = WINOGRAD_MATRICES[r]
    return np.kron(AT.T, AT.T).astype(dtype), np.kron(Gm, Gm).T.astype(dtype)


def cut_into_phases(a, s):
    """a: (P, Q, s*H, s*W) -> its s x s phases (P, Q*s*s, H, W), out[p, (q*s + i)*s + j, h, w] =
    a[p, q, s*h + i, s*w + j]: images (Conv2d._phases) and filters (_phase_weight) are cut the same way."""
    P, Q, H, W = a.shape[0], a.shape[1], a.shape[2] // s, a.shape[3] // s
    return a.reshape(P, Q, H, s, W, s).transpose(0, 1, 3, 5, 2, 4).reshape(P, Q * s * s, H, W)


def join_phases(a, s):
    """The inverse of cut_into_phases: (P, Q*s*s, H, W) -> (P, Q, s*H, s*W) (dx and dW back from the phases)."""
    P, Q, H, W = a.shape[0], a.shape[1] // (s * s), a.shape[2], a.shape[3]
    return a.reshape(P, Q, s, s, H, W).transpose(0, 1, 4, 2, 5, 3).reshape(P, Q, s * H, s * W)


def image_chunks(n_images, bytes_per_image, budget):
    """-> (chunk, [(n0, n1), ...]): the batch cut into as few runs as keep each run's buffers under `budget` bytes,
    with at least one image a run however large, and the runs as equal as they can be (16 images under a
    budget of 13 are 8 + 8, not 13 + 3: a small last run multiplies small matrices). chunk: the longest run.
    Conv2d's and ConvTranspose2d's chunks, their budget the layer's memory_budget."""
    most = max(int(budget // bytes_per_image), 1)
    count = max(1, -(-n_images // most))                # runs: ceil(n_images / most), one even for no images
    bounds = [i * n_images // count for i in range(count + 1)]
    return -(-n_images // count), list(zip(bounds[:-1], bounds[1:]))


def convolution_repr(layer, extra):
    """What Conv2d and ConvTranspose2d print: "3, 96, kernel_size=(11, 11), stride=(4, 4)", then the padding if
    any, `extra` (groups, or output_padding), and ", bias=False" for a layer without bias."""
    s = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, stride={layer.stride}"
    s += f", padding={layer.padding}" if any(layer.padding) else ""
    return s + extra + ("" if layer.bias else ", bias=False")
