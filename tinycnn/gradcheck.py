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

Before backward, each trainable parameter's grad is replaced by a NaN-filled marker array: a parameter whose grad
is still that marker afterwards was never set by backward, and is reported so (not as "analytical 0").

When a model (Sequential or Graph) fails, the worst gradient is often a layer's below the fault (conv1.weight
collects every error above it). gradcheck then checks each layer alone, on the input it gets inside the model
(moved only as the model's input moves it), and names the first that fails; if none does, the fault is in how
the model joins them.
"""
import numpy as np

from .cores import one_thread
from .graph import Graph
from .layers.base import backward_after_evaluation


class GradcheckError(AssertionError):
    """A backward pass disagrees with central differences. The message names the gradient and the worst entry."""


def _require_float64(layer, xs):
    dtypes = {np.asarray(x).dtype for x in xs} | {p.data.dtype for p in layer.parameters()}
    if dtypes != {np.dtype(np.float64)}:
        raise ValueError(f"gradcheck: needs float64 input and parameters (central differences are too coarse "
                         f"in float32), got {sorted(str(d) for d in dtypes)}; build the layer with "
                         f"dtype=np.float64 and pass a float64 x")


def gradient_errors(layer, x, training=True, eps=1e-6, full_limit=1024, directions=12, seed=0):
    """Compare backward() with central differences. Returns one record per entry (or random direction) checked,
    the input's first, then each trainable parameter's, each in index order:

    [{"name": "input" or a parameter name, "index": tuple or "direction k", "numerical": float,
      "analytical": float, "abs_error": float, "rel_error": float, "never_set": bool}, ...]

    never_set: backward left this parameter's grad as it was (analytical is then taken as 0).
    x is one array, or a list of arrays for a layer that takes several (Concat): their records are named
    "input[0]", "input[1]", ...

    Sort them to find the worst: max(records, key=lambda r: r["abs_error"]).

    Leaves the layer's parameters and buffers as they were.
    """
    with backward_after_evaluation(), one_thread():    # training=False: a model's pass must keep its values
        return _compare(layer, x, training, eps, full_limit, directions, seed)


def _compare(layer, x, training, eps, full_limit, directions, seed, moved=None):
    """moved: None, or [(x_plus, x_minus), ...]: x where the model's input moved by +eps d and -eps d (one pair
    per direction d). The input is then checked only along the ways it really moves inside the model."""
    several = isinstance(x, (list, tuple))              # a layer with several inputs (Concat)
    _require_float64(layer, x if several else [x])
    xs = [np.array(v, dtype=np.float64, copy=True) for v in (x if several else [x])]
    x = xs if several else xs[0]
    rng = np.random.default_rng(seed)
    generators = [l.rng for l in layer.layers() if isinstance(getattr(l, "rng", None), np.random.Generator)]
    start_states = [g.bit_generator.state for g in generators]
    saved_buffers = [(b, b.copy()) for _, b in layer.named_buffers()]

    def loss():
        for g, state in zip(generators, start_states):
            g.bit_generator.state = state
        return float(np.sum(layer.forward(x, training) * weights))

    weights = rng.standard_normal(layer.forward(x, training).shape)
    loss()
    params = [(name, p) for name, p in layer.named_parameters() if p.trainable]
    before = [p.grad for _, p in params]
    markers = [np.full(p.shape, np.nan, p.data.dtype) for _, p in params]
    for (_, p), marker in zip(params, markers):
        p.grad = marker                                 # backward must replace it, or write over it in place
    dx = layer.backward(weights.copy())
    if dx is None:
        raise ValueError(f"gradcheck: {layer.label()} returned no input gradient; a layer with "
                         f"needs_input_grad = False skips it (set it back to True to check)")
    dxs = list(dx) if several else [dx]
    targets = [(f"input[{i}]" if several else "input", v, np.array(d, copy=True), False)
               for i, (v, d) in enumerate(zip(xs, dxs))]
    for (name, p), marker, grad in zip(params, markers, before):
        never_set = p.grad is marker and bool(np.isnan(marker).all())
        if never_set:
            p.grad = grad                               # leave no NaN behind for an optimizer
        targets.append((name, p.data, np.zeros(p.shape) if never_set else p.grad.copy(), never_set))

    records = []
    if moved is not None:                               # the input along the given pairs, not entry by entry
        targets = targets[len(xs):]
        originals = [v.copy() for v in xs]

        def loss_at(inputs):
            for v, u in zip(xs, inputs if several else [inputs]):
                v[...] = u
            value = loss()
            for v, u in zip(xs, originals):
                v[...] = u
            return value

        for k, (plus_x, minus_x) in enumerate(moved):
            steps = zip(dxs, plus_x if several else [plus_x], minus_x if several else [minus_x])
            analytical = sum(float(np.sum(d * (u - w))) for d, u, w in steps) / (2 * eps)
            records.append(_record("input", f"direction {k}", (loss_at(plus_x) - loss_at(minus_x)) / (2 * eps),
                                   analytical, False))
    for name, values, grad, never_set in targets:
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
        records += [_record(name, index, numerical, analytical, never_set) for index, numerical, analytical in rows]
    for buffer, saved in saved_buffers:
        buffer[...] = saved
    return records


def _record(name, index, numerical, analytical, never_set):
    abs_error = abs(analytical - numerical)
    scale = max(abs(analytical), abs(numerical))
    return dict(name=name, index=index, numerical=numerical, analytical=float(analytical), abs_error=abs_error,
                rel_error=abs_error / scale if scale > 0 else 0.0, never_set=never_set)


def gradcheck(layer, x, training=True, eps=1e-6, atol=1e-6, rtol=1e-4, full_limit=1024, directions=12, seed=0):
    """Return True if every gradient of `layer` at `x` matches central differences; raise GradcheckError if not.

    The error names the gradient ("input" or the parameter, e.g. "conv1.weight"), the worst index (or random
    direction), and the numerical and analytical values there, or says that backward never set it. For a model
    (Sequential or Graph) it also names the first layer that fails when checked alone. layer and x must be
    float64.
    """
    options = dict(training=training, eps=eps, atol=atol, rtol=rtol, full_limit=full_limit, directions=directions,
                   seed=seed)
    message = _verdict(gradient_errors(layer, x, training, eps, full_limit, directions, seed), atol, rtol)
    if message is not None:
        if isinstance(layer, Graph):
            message += "\n" + _first_failing_layer(layer, x, options)
        raise GradcheckError(message)
    return True


def _verdict(records, atol, rtol):
    """None if every record passes; else a message on the worst (a gradient never set before any other)."""
    failed = [r for r in records if r["abs_error"] > atol + rtol * abs(r["numerical"])]
    if not failed:
        return None
    worst = max(failed, key=lambda r: (r["never_set"], r["abs_error"] / (atol + rtol * abs(r["numerical"]))))
    if worst["never_set"]:
        return (f"gradcheck: the gradient of {worst['name']} was never set: backward left its grad as it was "
                f"(numerical {worst['numerical']:.8g} at {worst['index']})")
    return (f"gradcheck: the gradient of {worst['name']} is wrong at {worst['index']}: numerical "
            f"{worst['numerical']:.8g}, analytical {worst['analytical']:.8g} (|difference| "
            f"{worst['abs_error']:.3g} > atol {atol:g} + rtol {rtol:g} * |numerical|)")


def _first_failing_layer(model, x, options):
    """Check each layer of `model` alone, on the input it gets inside the model; say which fails first.

    A wrong backward high up spreads into every gradient below it, so the worst gradient of the whole model is
    often a low layer's; the first layer that fails on its own is the one to read. A layer's input is moved only
    as the model's input moves it: after a ReLU its zeros stay zero, so a max-pool's tied zeros are never pulled
    apart (a tie has no derivative, and the whole model never meets one there).
    """
    eps, training = options["eps"], options["training"]
    generators = [l.rng for l in model.layers() if isinstance(getattr(l, "rng", None), np.random.Generator)]
    start_states = [g.bit_generator.state for g in generators]
    buffers = [(b, b.copy()) for _, b in model.named_buffers()]

    def trace(x_now):                                   # every node's input, with the same dropout masks
        for g, state in zip(generators, start_states):
            g.bit_generator.state = state
        return [u for _, _, u in model.node_inputs(x_now, training)]

    rng = np.random.default_rng(options["seed"])
    ds = [rng.standard_normal(np.shape(x)) for _ in range(options["directions"])]
    here, pluses, minuses = trace(x), [trace(x + eps * d) for d in ds], [trace(x - eps * d) for d in ds]
    for buffer, saved in buffers:                       # the traced passes moved BatchNorm's statistics
        buffer[...] = saved
    with backward_after_evaluation():
        for k, (_, layer, _) in enumerate(model.nodes):
            moved = [(plus[k], minus[k]) for plus, minus in zip(pluses, minuses)]
            records = _compare(layer, here[k], training, eps, options["full_limit"], options["directions"],
                               options["seed"], moved)
            message = _verdict(records, options["atol"], options["rtol"])
            if message is not None:
                return f"Checked alone, layer by layer, the first to fail is {layer.label()}: {message}"
    return (f"Checked alone, every layer passes: the fault is in how {type(model).__name__} joins them "
            f"(its backward, where gradients are passed on and summed)")
