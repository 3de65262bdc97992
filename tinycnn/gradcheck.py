"""Numerical gradient checking: does backward() really compute the derivative of forward()?

For a random fixed tensor R of the output's shape, the scalar L(x, theta) = sum(forward(x) * R) has
dL/dy = R, so backward(R) must return dL/dx and set p.grad = dL/dp. Central differences estimate each of these:

    dL/dv_i  ~  (L(v + eps e_i) - L(v - eps e_i)) / (2 eps)        error O(eps^2)

For a tensor with at most `full_limit` entries every entry is checked (the full vector-Jacobian product).
Larger tensors are checked along `directions` random directions d: (L(v + eps d) - L(v - eps d)) / (2 eps)
must equal sum(grad * d). A check passes when |analytical - numerical| <= atol + rtol * |numerical|.
Only float64 is accurate enough for this; float32 is refused.

Random layers (Dropout) must draw the same mask in every forward pass: before each pass, the state of every
layer's `rng` is put back to what it was at the start, the way Caffe reseeds in its gradient checker.
"""
import numpy as np

from .layers.base import backward_after_evaluation


class GradcheckError(AssertionError):
    """A backward pass disagrees with central differences. The message names the gradient and the worst entry."""


def _require_float64(layer, x):
    dtypes = {np.asarray(x).dtype} | {p.data.dtype for p in layer.parameters()}
    if dtypes != {np.dtype(np.float64)}:
        raise ValueError(f"gradcheck: needs float64 input and parameters (central differences are too coarse "
                         f"in float32), got {sorted(str(d) for d in dtypes)}; build the layer with "
                         f"dtype=np.float64 and pass a float64 x")


def gradient_errors(layer, x, training=True, eps=1e-6, full_limit=1024, directions=12, seed=0):
    """Compare backward() with central differences. Returns one record per entry (or random direction) checked,
    the input's first, then each trainable parameter's, each in index order:

    [{"name": "input" or a parameter name, "index": tuple or "direction k", "numerical": float,
      "analytical": float, "abs_error": float, "rel_error": float}, ...]

    Sort them to find the worst: max(records, key=lambda r: r["abs_error"]).

    Leaves the layer's parameters and buffers as they were.
    """
    with backward_after_evaluation():                  # training=False: a model's pass must keep its values
        return _compare(layer, x, training, eps, full_limit, directions, seed)


def _compare(layer, x, training, eps, full_limit, directions, seed):
    _require_float64(layer, x)
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64, copy=True)
    generators = [l.rng for l in layer.layers() if isinstance(getattr(l, "rng", None), np.random.Generator)]
    start_states = [g.bit_generator.state for g in generators]
    saved_buffers = [(b, b.copy()) for _, b in layer.named_buffers()]

    def loss():
        for g, state in zip(generators, start_states):
            g.bit_generator.state = state
        return float(np.sum(layer.forward(x, training) * weights))

    weights = rng.standard_normal(layer.forward(x, training).shape)
    loss()
    dx = layer.backward(weights.copy())
    if dx is None:
        raise ValueError(f"gradcheck: {layer.label()} returned no input gradient; a layer with "
                         f"needs_input_grad = False skips it (set it back to True to check)")
    targets = [("input", x, np.array(dx, copy=True))]
    targets += [(name, p.data, p.grad.copy()) for name, p in layer.named_parameters() if p.trainable]

    records = []
    for name, values, grad in targets:
        if grad.shape != values.shape:
            raise GradcheckError(f"gradcheck: the gradient of {name} has shape {grad.shape}, expected {values.shape}")
        original = values.copy()
        rows = []
        if values.size <= full_limit:
            for index in np.ndindex(values.shape):
                values[index] = original[index] + eps
                plus = loss()
                values[index] = original[index] - eps
                minus = loss()
                values[index] = original[index]
                rows.append((index, (plus - minus) / (2 * eps), grad[index]))
        else:
            for k in range(directions):
                d = rng.standard_normal(values.shape)
                values[...] = original + eps * d
                plus = loss()
                values[...] = original - eps * d
                minus = loss()
                values[...] = original
                rows.append((f"direction {k}", (plus - minus) / (2 * eps), float(np.sum(grad * d))))
        for index, numerical, analytical in rows:
            abs_error = abs(analytical - numerical)
            scale = max(abs(analytical), abs(numerical))
            records.append(dict(name=name, index=index, numerical=numerical, analytical=float(analytical),
                                abs_error=abs_error, rel_error=abs_error / scale if scale > 0 else 0.0))
    for buffer, saved in saved_buffers:
        buffer[...] = saved
    return records


def gradcheck(layer, x, training=True, eps=1e-6, atol=1e-6, rtol=1e-4, full_limit=1024, directions=12, seed=0):
    """Return True if every gradient of `layer` at `x` matches central differences; raise GradcheckError if not.

    The error names the gradient ("input" or the parameter, e.g. "conv1.weight"), the worst index (or random
    direction), and the numerical and analytical values there. layer and x must be float64.
    """
    records = gradient_errors(layer, x, training, eps, full_limit, directions, seed)
    worst = max(records, key=lambda r: r["abs_error"] / (atol + rtol * abs(r["numerical"])))
    if worst["abs_error"] > atol + rtol * abs(worst["numerical"]):
        raise GradcheckError(
            f"gradcheck: the gradient of {worst['name']} is wrong at {worst['index']}: numerical "
            f"{worst['numerical']:.8g}, analytical {worst['analytical']:.8g} (|difference| "
            f"{worst['abs_error']:.3g} > atol {atol:g} + rtol {rtol:g} * |numerical|)")
    return True
