"""The SGD update as one pass over memory.

Written with NumPy the update reads and writes every weight array several times and allocates two temporaries
the size of the weights (fc6 alone holds 37.7 M weights). Here each weight is read, updated and written once,
in parallel. The arithmetic is NumPy's, step for step and in the same order (no fastmath), so both give
bit-identical results.
"""
from .jit import kernel, prange


@kernel(parallel=True)
def sgd_update(w, g, v, lr, momentum, decay):
    """w, g, v: 1-D arrays of one dtype; lr, momentum, decay: scalars of that dtype (decay = weight decay * lr).

    v <- momentum * v - decay * w - lr * g;   w <- w + v
    """
    # exercise: sgd_update
    for i in prange(w.size):
        vi = momentum * v[i] - decay * w[i] - lr * g[i]
        v[i] = vi
        w[i] += vi
    # end exercise
