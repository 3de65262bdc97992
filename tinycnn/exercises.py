"""The exercises of a class in a box: which regions of the library a student writes, and the checks that grade
each one.

The library is the answer key. Each exercise is a region of its own source, marked by `# exercise: NAME` and
`# end exercise` (tinycnn/regions.py); `python alexnet.py exercises --out DIR` writes a workspace where the
chosen regions are stubs (tinycnn/workspace.py), and `python -m tinycnn.grade DIR` runs the checks named below
on the student's copy (tinycnn/grade.py, tinycnn/exercise_checks.py). The checks are the ones that guard the
library's code: its twin in reference.py, gradcheck, and the properties its tests hold.

To add an exercise: put the markers around the lines in the library's source, then add a row to EXERCISES
naming the file, what the student writes, a one-line hint, the checks (functions of exercise_checks.py, each
returning None or a message) and the test files. tests/test_exercises.py then checks that the region exists,
that every check fails on the stub, and that the library's own lines pass.
"""
import os
from dataclasses import dataclass

from .regions import MarkerError, find_regions

PACKAGE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class Exercise:
    """name: the markers' name.  file: the region's file, relative to the folder holding tinycnn/.
    what: what the student writes, as the messages name it.  hint: the stub's one line.
    checks: names of functions in tinycnn/exercise_checks.py, run in this order; the first that fails is told.
    tests: the library's test files that guard this code.
    kernel: a numba kernel, graded as plain Python (NUMBA_DISABLE_JIT=1) and compiled."""
    name: str
    file: str
    what: str
    hint: str
    checks: tuple
    tests: tuple
    kernel: bool = False


KERNEL_HINT = "plain loops over arrays (numba compiles them; grade runs them as plain Python too)"

EXERCISES = (           # in the order a student meets them: element-wise first, then matrices, then kernels,
                        # then the convolution they make (im2col, col2im, Conv2d's forward on them)
    Exercise("relu_backward", "tinycnn/layers/activation.py", "ReLU.backward",
             "dx = dy where y > 0, else 0 (return a new array of dy's shape and dtype).",
             ("relu_matches_twin", "relu_numerical_gradient"),
             ("tests/test_dense_activation_dropout.py",)),
    Exercise("dropout_forward", "tinycnn/layers/dropout.py", "Dropout.forward",
             "draw u = self.rng.random(x.shape, dtype=x.dtype), keep where u >= p, scale survivors by "
             "1/(1-p); save x_shape, dtype and the mask (None when not training).",
             ("dropout_is_the_identity_when_not_training", "dropout_scales_survivors", "dropout_keeps_1_minus_p",
              "dropout_matches_twin", "dropout_backward_uses_the_mask", "dropout_numerical_gradient"),
             ("tests/test_dense_activation_dropout.py",)),
    Exercise("dense_backward", "tinycnn/layers/dense.py", "Dense.backward",
             "dx = dy W, dW = dy^T x, db = sum over n of dy; a frozen parameter (p.trainable False) keeps its "
             "grad.",
             ("dense_matches_twin", "dense_numerical_gradient", "dense_leaves_frozen_gradients"),
             ("tests/test_dense_activation_dropout.py",)),
    Exercise("softmax_cross_entropy_backward", "tinycnn/losses.py", "SoftmaxCrossEntropy.backward",
             "dL/dz = (softmax(z) - onehot(labels)) / N, from self.probabilities and self.labels.",
             ("softmax_cross_entropy_matches_twin", "softmax_cross_entropy_numerical_gradient",
              "softmax_cross_entropy_backward_twice"),
             ("tests/test_loss_optim.py",)),
    Exercise("sgd_update", "tinycnn/kernels/sgd.py", "sgd_update (the SGD step's kernel)",
             "v <- momentum * v - decay * w - lr * g; w <- w + v, in place, entry by entry: " + KERNEL_HINT + ".",
             ("sgd_update_matches_twin", "sgd_steps_match_twin"),
             ("tests/test_loss_optim.py",), kernel=True),
    Exercise("maxpool_backward", "tinycnn/kernels/pool.py", "MaxPool2d.backward (kernel maxpool_backward)",
             "each window's winner, argmax = h*W + w in its plane, receives that window's dy; " + KERNEL_HINT + ".",
             ("maxpool_matches_twin", "maxpool_overlapping_numerical_gradient", "maxpool_padded_matches_twin"),
             ("tests/test_pool.py",), kernel=True),
    Exercise("lrn_backward", "tinycnn/kernels/lrn.py", "LocalResponseNorm.backward (kernel lrn_backward)",
             "dx[j] = dy[j] * s[j]^-beta - two_alpha_beta * a[j] * sum over c in window(j) of dy[c] * y[c] / s[c]; "
             + KERNEL_HINT + ".",
             ("lrn_matches_twin", "lrn_edges_match_twin", "lrn_numerical_gradient"),
             ("tests/test_lrn.py",), kernel=True),
    Exercise("im2col", "tinycnn/kernels/im2col.py", "im2col (the kernel under Conv2d)",
             "cols[(c, i, j), (b, oh, ow)] = x[b, c, oh*SH - PH + i, ow*SW - PW + j], 0 in the padding; write "
             "every entry; " + KERNEL_HINT + ".",
             ("im2col_matches_twin", "im2col_padded_strided_matches_twin", "im2col_larger_matches_twin"),
             ("tests/test_kernels.py", "tests/test_conv.py"), kernel=True),
    Exercise("col2im", "tinycnn/kernels/im2col.py", "col2im (the kernel under Conv2d.backward's dx)",
             "the transpose of im2col: dx[b, c, oh*SH - PH + i, ow*SW - PW + j] += cols[(c, i, j), (b, oh, ow)] "
             "for every entry whose pixel is inside x (padding receives nothing); windows that overlap add; "
             + KERNEL_HINT + ".",
             ("col2im_matches_twin", "col2im_padded_strided_matches_twin", "col2im_larger_matches_twin"),
             ("tests/test_kernels.py", "tests/test_conv.py"), kernel=True),
    Exercise("conv2d_im2col_forward", "tinycnn/layers/conv.py", "Conv2d._im2col_forward (Y_g = W_g @ cols_g)",
             "y = np.empty((N, F, OH, OW), x.dtype); for n0, n1, cols in self._column_chunks(x): group g's "
             "filters W_g = self.weight.data.reshape(G, F/G, -1)[g] times its rows of cols, cols.reshape(G, -1, "
             "n*OH*OW)[g] (gemm(a, b, out=...)); the (F, n*OH*OW) result reshaped (F, n, OH, OW) and transposed "
             "into y[n0:n1]; return y.",
             ("conv2d_im2col_matches_twin", "conv2d_im2col_groups_match_twin", "conv2d_im2col_chunks_match_twin",
              "conv2d_im2col_numerical_gradient"),
             ("tests/test_conv.py",)),
)

BY_NAME = {e.name: e for e in EXERCISES}


def choose(names, spell):
    """The exercises named in `names` (a list, or None for all), in the table's order. Refuses an unknown name
    or none at all, naming the argument as `spell` spells it."""
    if names is None:
        return list(EXERCISES)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        problem = f"unknown exercise {', '.join(unknown)}" if unknown else "names no exercise"
        raise ValueError(f"{spell('only', ','.join(names))}: {problem}; expected names among {', '.join(BY_NAME)}")
    return [e for e in EXERCISES if e.name in names]


def library_regions(root=os.path.dirname(PACKAGE)):
    """{name: (file relative to root, Region)} of every region in the .py files of root/tinycnn.

    Raises MarkerError for markers that make no region (regions.find_regions), a name marked twice, a region
    in another file than the table says, or a name of the table with no region.
    """
    found = {}
    for folder, dirs, files in os.walk(os.path.join(root, "tinycnn")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
            for region in find_regions(text, relative, BY_NAME.keys()):
                if region.name in found:
                    raise MarkerError(f"{relative}, line {region.begin + 1}: exercise {region.name!r} is marked "
                                      f"again (first in {found[region.name][0]}); expected one region per name")
                if relative != BY_NAME[region.name].file:
                    raise MarkerError(f"{relative}, line {region.begin + 1}: exercise {region.name!r} is marked "
                                      f"here; tinycnn/exercises.py says it is in {BY_NAME[region.name].file}")
                found[region.name] = (relative, region)
    missing = [name for name in BY_NAME if name not in found]
    if missing:
        raise MarkerError(f"tinycnn/exercises.py names {', '.join(missing)}, but no file of {root}/tinycnn marks "
                          f"{'it' if len(missing) == 1 else 'them'} with '# exercise: NAME' ... '# end exercise'")
    return found
