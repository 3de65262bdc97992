"""Graph (a named DAG) and Concat: branches, shared activations, and the paper's two towers."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import reference as ref
from tinycnn.models import alexnet, two_towers

from helpers import assert_close, away_from_zero, in_layout, layouts


def test_a_shared_activation_sums_the_gradients_of_its_branches():
    """input -> relu feeds two convs whose outputs are concatenated: dL/d(relu) is the sum over both paths."""
    rng = np.random.default_rng(0)
    graph = tc.Graph([
        ("relu", tc.ReLU(), "input"),
        ("left", tc.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng), "relu"),
        ("right", tc.Conv2d(2, 2, 1, dtype=np.float64, rng=rng), "relu"),
        ("both", tc.Concat(), ["left", "right"]),
        ("pool", tc.MaxPool2d(3, 2), "both"),
    ])
    x = away_from_zero(rng, (2, 2, 7, 6))
    assert graph.output_shape((2, 7, 6)) == (5, 3, 2)
    assert tc.gradcheck(graph, x)


def test_gradcheck_fails_if_the_graph_overwrote_instead_of_summing():
    """Planted bug: keep only the last branch's gradient for a shared activation. Every layer passes alone, so
    gradcheck blames the container's joining."""

    class OverwritingGraph(tc.Graph):
        def backward(self, dy):
            grads = {self.nodes[-1][0]: dy}
            for name, layer, inputs in reversed(self.nodes):
                dx = layer.backward(grads.pop(name))
                for source, d in ([(inputs, dx)] if isinstance(inputs, str) else zip(inputs, dx)):
                    grads[source] = d                                   # = where += is needed
            return grads["input"]

    rng = np.random.default_rng(0)
    graph = OverwritingGraph([("a", tc.Dense(3, 2, dtype=np.float64, rng=rng), "input"),
                              ("b", tc.Dense(3, 2, dtype=np.float64, rng=rng), "input"),
                              ("ab", tc.Concat(), ["a", "b"])])
    with pytest.raises(tc.GradcheckError, match="(?s)input.*every layer passes: the fault is in how "
                                                "OverwritingGraph joins"):
        tc.gradcheck(graph, rng.standard_normal((2, 3)))


def test_graph_refuses_unknown_inputs_and_duplicate_names():
    with pytest.raises(ValueError, match=r"node 'b' reads \['nowhere'\]"):
        tc.Graph([("a", tc.ReLU(), "input"), ("b", tc.ReLU(), "nowhere")])
    with pytest.raises(ValueError, match="'a' is used twice"):
        tc.Graph([("a", tc.ReLU(), "input"), ("a", tc.ReLU(), "a")])


def test_one_layer_object_at_two_nodes_is_refused_naming_both():
    """Issue #21: the second node's forward overwrote what the first node's backward needs, and gradcheck of
    such a Graph failed (numerical 0, analytical -0.615). Refused when the network is built."""
    relu = tc.ReLU()
    with pytest.raises(ValueError, match=r"Graph: node 'r1' and node 'r2' are the same ReLU object"):
        tc.Graph([("r1", relu, "input"), ("d", tc.Dense(3, 3), "r1"), ("r2", relu, "d")])
    with pytest.raises(ValueError, match=r"Sequential: node 'a' and node 'b' are the same ReLU object"):
        tc.Sequential({"a": relu, "b": relu})
    with pytest.raises(ValueError, match=r"Sequential: node 're_lu' and node 're_lu_1' are the same ReLU"):
        tc.Sequential([relu, relu])
    inner = tc.Sequential({"relu": relu})
    with pytest.raises(ValueError, match=r"'block.relu' in node 'block' and node 'again' are the same ReLU"):
        tc.Graph([("block", inner, "input"), ("again", relu, "block")])


def test_one_parameter_in_two_layers_is_refused_naming_both():
    """Each backward sets p.grad, so the second layer's would overwrite the first's: refused, like a shared layer."""
    a, b = tc.Dense(3, 3), tc.Dense(3, 3)
    b.weight = a.weight
    with pytest.raises(ValueError, match=r"'a.weight' in node 'a' and 'b.weight' in node 'b' are the same Parameter"):
        tc.Sequential({"a": a, "b": b})


def test_copies_of_one_layer_at_two_nodes_pass_gradcheck():
    """What the refusal suggests: copy.deepcopy(layer) at the second node, which then keeps its own values."""
    import copy
    rng = np.random.default_rng(0)
    relu, dense = tc.ReLU(), tc.Dense(3, 3, dtype=np.float64, rng=rng)
    dense.bias.data[:] = [0.3, -0.2, 0.1]                       # no output at ReLU's kink, 0
    graph = tc.Graph([("r1", relu, "input"), ("d", dense, "r1"), ("r2", copy.deepcopy(relu), "d")])
    assert tc.gradcheck(graph, away_from_zero(rng, (2, 3)))


def test_concat_refuses_mismatched_maps():
    with pytest.raises(ValueError, match="Concat.*must agree"):
        tc.Concat().forward([np.ones((1, 2, 3, 3)), np.ones((1, 2, 4, 4))])


def test_lrn_groups_normalise_each_block_of_channels_on_its_own():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 3, 3))
    y = tc.LocalResponseNorm(5, 1.0, 0.75, 2.0, groups=2).forward(x)
    assert_close(y[:, :4], ref.lrn_forward(x[:, :4], 5, 1.0, 0.75, 2.0))
    assert_close(y[:, 4:], ref.lrn_forward(x[:, 4:], 5, 1.0, 0.75, 2.0))
    assert tc.gradcheck(tc.LocalResponseNorm(3, 1.0, 0.75, 2.0, groups=2), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(n=st.integers(1, 3), channels=st.lists(st.integers(1, 3), min_size=1, max_size=4),
       hw=st.sampled_from([(), (2, 3), (1, 1)]), seed=st.integers(0, 999), layout=layouts, dy_layout=layouts)
def test_concat_equals_reference(n, channels, hw, seed, layout, dy_layout, dtype):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((n, c) + hw).astype(dtype) for c in channels]
    concat = tc.Concat()
    y = concat.forward([in_layout(x, layout) for x in xs])
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref.concat_forward(xs))
    dy = rng.standard_normal(y.shape).astype(dtype)
    for dx, expected in zip(concat.backward(in_layout(dy, dy_layout)), ref.concat_backward(dy, channels),
                            strict=True):
        np.testing.assert_array_equal(dx, expected)


@st.composite
def adaptive_cases(draw):
    """Any input size against any output size: windows that overlap, and windows of one pixel."""
    out = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 13)),
                       draw(st.integers(1, 13))), output_size=out, seed=draw(st.integers(0, 999)),
                x_layout=draw(layouts), dy_layout=draw(layouts))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=adaptive_cases())
def test_adaptive_average_pool_equals_reference(case, dtype):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(dtype)
    pool = tc.AdaptiveAvgPool2d(case["output_size"])
    y = pool.forward(in_layout(x, case["x_layout"]))
    assert y.dtype == dtype
    assert_close(y, ref.adaptive_avgpool2d_forward(x, pool.output_size))
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(pool.backward(in_layout(dy, case["dy_layout"])), ref.adaptive_avgpool2d_backward(x.shape, dy))


@given(case=adaptive_cases())
def test_adaptive_average_pool_passes_gradcheck(case):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    assert tc.gradcheck(tc.AdaptiveAvgPool2d(case["output_size"]), in_layout(x, case["x_layout"]))


def test_concat_passes_gradcheck_inside_a_graph_in_float64():
    rng = np.random.default_rng(0)
    graph = tc.Graph([("a", tc.Dense(3, 2, dtype=np.float64, rng=rng), "input"),
                      ("b", tc.Dense(3, 4, dtype=np.float64, rng=rng), "input"),
                      ("ab", tc.Concat(), ["a", "b"])])
    assert tc.gradcheck(graph, rng.standard_normal((2, 3)))


@pytest.mark.parametrize("training", [False, True])
def test_two_towers_compute_exactly_what_the_groups_2_network_computes(training):
    """The paper's two GPUs as a graph equal one network with groups=2 (and LRN within each group)."""
    model = alexnet(num_classes=7, variant="paper", groups=2, rng=0, dtype=np.float64, input_size=99)
    rng = np.random.default_rng(1)
    towers = two_towers(model)
    assert sum(p.size for p in towers.parameters()) == sum(p.size for p in model.parameters())
    x = rng.standard_normal((2, 3, 99, 99)) * 50
    with tc.backward_after_evaluation():                        # the evaluation pass keeps what backward needs
        y_model = model.forward(x, training)
        y_towers = towers.forward(x, training)                  # same dropout masks: the Generators were copied
    np.testing.assert_allclose(y_towers, y_model, rtol=1e-12, atol=1e-15)
    dy = rng.standard_normal(y_model.shape)
    np.testing.assert_allclose(towers.backward(dy), model.backward(dy), rtol=1e-9, atol=1e-15)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        for kind in ("weight", "bias"):
            whole = getattr(model[name], kind).grad
            halves = np.concatenate([getattr(towers[f"{name}_{t}"], kind).grad for t in "ab"])
            np.testing.assert_allclose(halves, whole, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(towers["fc6"].weight.grad, model["fc6"].weight.grad, rtol=1e-9, atol=1e-15)


def test_two_towers_have_the_papers_kernel_counts():
    towers = two_towers(alexnet(variant="paper", groups=2, rng=0))
    counts = [towers[f"conv{i}_a"].out_channels for i in range(1, 6)]
    assert counts == [48, 128, 192, 192, 128]
    assert towers["conv3_a"].in_channels == 256 and towers["conv4_a"].in_channels == 192
    assert towers.output_shape((3, 227, 227)) == (1000,)
    assert sum(r["params"] for r in towers.profile((3, 227, 227))) == 60_965_224


@pytest.mark.parametrize("make", [
    lambda rng: tc.Sequential({"conv": tc.Conv2d(3, 4, 3, rng=rng), "relu": tc.ReLU(), "norm": tc.LocalResponseNorm(),
                               "pool": tc.MaxPool2d(2), "flat": tc.Flatten(), "fc": tc.Dense(4 * 3 * 3, 2, rng=rng)}),
    lambda rng: tc.Graph([("a", tc.Conv2d(3, 4, 3, rng=rng), "input"), ("b", tc.Conv2d(3, 2, 3, rng=rng), "input"),
                          ("ab", tc.Concat(), ["a", "b"]), ("relu", tc.ReLU(), "ab")]),
], ids=["Sequential", "Graph"])
def test_an_evaluation_pass_keeps_nothing_for_backward(make):
    """Predicting needs no backward: after forward(training=False) no layer of the model holds its saved values,
    and backward says why it cannot run. Inside tc.backward_after_evaluation() it can."""
    model = make(np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = model.forward(x, training=False)
    for layer in model.layers()[1:]:
        with pytest.raises(RuntimeError, match="evaluation pass .* keeps nothing for backward"):
            layer.saved()
    with pytest.raises(RuntimeError, match="backward_after_evaluation"):
        model.backward(np.ones_like(y))
    with tc.backward_after_evaluation():
        y = model.forward(x, training=False)
    assert model.backward(np.ones_like(y)).shape == x.shape


def test_an_evaluation_pass_takes_a_node_that_reads_one_value_twice():
    """The value is dropped once, after its last reader (dropping it once per mention raised KeyError)."""
    model = tc.Graph([("a", tc.ReLU(), "input"), ("aa", tc.Concat(), ["a", "a"]), ("flat", tc.Flatten(), "aa")])
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x, training=False), model.forward(x, training=True))
