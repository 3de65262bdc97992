"""Bad input raises ValueError naming the layer, what it got and what it expected."""
import numpy as np
import pytest

import tinycnn as tc


@pytest.mark.parametrize("layer, x, expected", [
    (tc.Conv2d(3, 8, 3), np.ones((3, 32, 32), np.float32), r"Conv2d.*expected input of shape \(N, 3, H, W\), got \(3, 32, 32\)"),
    (tc.Conv2d(3, 8, 3), np.ones((1, 4, 32, 32), np.float32), r"Conv2d.*expected .*\(N, 3, H, W\), got \(1, 4, 32, 32\)"),
    (tc.Conv2d(3, 8, 3), np.ones((1, 3, 8, 8)), r"Conv2d.*expected float32 input like its parameters, got float64"),
    (tc.Conv2d(3, 8, 5), np.ones((1, 3, 4, 4), np.float32), r"Conv2d.*4x4 pixels is too small for a 5x5 window"),
    (tc.Conv2d(3, 8, 3), np.ones((1, 3, 2, 2), np.float32), r"Conv2d.*2x2 pixels is too small for a 3x3 window"),
    (tc.Conv2d(3, 8, 3), np.ones((1, 3, 8, 8), np.int64), r"Conv2d.*expected float32 or float64 input, got int64"),
    (tc.Dense(10, 2), np.ones((2, 11), np.float32), r"Dense.*expected input of shape \(N, 10\), got \(2, 11\)"),
    (tc.Dense(10, 2), [[1.0] * 10], r"Dense.*expected a numpy array, got list"),
    (tc.MaxPool2d(3, 2), np.ones((2, 5, 5), np.float32), r"MaxPool2d.*expected input of shape \(N, C, H, W\)"),
    (tc.MaxPool2d(3, 2), np.ones((1, 1, 2, 2), np.float32), r"MaxPool2d.*too small for a 3x3 window"),
    (tc.LocalResponseNorm(), np.ones((2, 5), np.float32), r"LocalResponseNorm.*expected input of shape \(N, C, H, W\)"),
    (tc.BatchNorm2d(4), np.ones((2, 3, 2, 2), np.float32), r"BatchNorm2d.*expected input of shape \(N, 4, H, W\)"),
    (tc.BatchNorm1d(4), np.ones((2, 4, 1, 1), np.float32), r"BatchNorm1d.*expected input of shape \(N, 4\)"),
    (tc.Flatten(), np.ones(5, np.float32), r"Flatten.*at least 2 axes, got \(5,\)"),
    (tc.ReLU(), np.ones(5, np.int32), r"ReLU.*expected float32 or float64 input, got int32"),
])
def test_wrong_input_names_the_layer_what_it_got_and_what_it_expected(layer, x, expected):
    with pytest.raises(ValueError, match=expected):
        layer.forward(x)


def test_errors_inside_a_sequential_name_the_layer():
    model = tc.Sequential({"conv1": tc.Conv2d(3, 4, 3), "fc": tc.Dense(4, 2)})
    with pytest.raises(ValueError, match=r"Conv2d 'conv1'.*got \(1, 1, 8, 8\)"):
        model.forward(np.ones((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Dense 'fc'.*expected input of shape \(N, 4\), got \(N, 4, 6, 6\)"):
        model.output_shape((3, 8, 8))


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="Conv2d.*backward called before forward"):
        tc.Conv2d(1, 1, 1).backward(np.ones((1, 1, 1, 1), np.float32))


def test_backward_with_the_wrong_shape_is_an_error():
    pool = tc.MaxPool2d(2)
    pool.forward(np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d.*expected dy of shape \(1, 1, 2, 2\), got \(1, 1, 3, 3\)"):
        pool.backward(np.ones((1, 1, 3, 3), np.float32))


EVERY_LAYER = [tc.Conv2d(4, 6, 3, padding=1), tc.Conv2d(4, 6, 3, stride=2), tc.ConvTranspose2d(4, 2, 3, stride=2),
               tc.MaxPool2d(3, 2), tc.AdaptiveAvgPool2d(2), tc.LocalResponseNorm(3), tc.BatchNorm2d(4), tc.ReLU(),
               tc.Tanh(), tc.Dropout(0.5, rng=0), tc.Flatten()]


@pytest.mark.parametrize("dtype, other", [(np.float32, np.float64), (np.float64, np.float32)])
@pytest.mark.parametrize("layer", EVERY_LAYER + [tc.Dense(4, 3), tc.BatchNorm1d(4), tc.Concat()],
                         ids=lambda layer: type(layer).__name__)
def test_backward_refuses_dy_of_another_dtype_or_shape_and_names_the_layer(layer, dtype, other):
    """Regression: a float64 dy given to a float32 layer failed deep inside gemm, naming the kernel."""
    for p in layer.parameters():
        p.data = p.data.astype(dtype)
    x = np.ones((2, 4, 5, 5) if layer in EVERY_LAYER else (2, 4), dtype)
    y = layer.forward([x, x] if isinstance(layer, tc.Concat) else x, training=True)
    with pytest.raises(ValueError, match=rf"{type(layer).__name__}.*backward expected dy of dtype "
                                         rf"{np.dtype(dtype)} like its output, got {np.dtype(other)}"):
        layer.backward(y.astype(other))
    with pytest.raises(ValueError, match=rf"{type(layer).__name__}.*backward expected dy of shape "):
        layer.backward(np.ones(y.shape[:-1] + (y.shape[-1] + 1,), dtype))


def test_concat_refuses_inputs_of_different_dtypes():
    with pytest.raises(ValueError, match="Concat.*expected float32 input like its first input, got float64"):
        tc.Concat().forward([np.ones((1, 2), np.float32), np.ones((1, 2), np.float64)])


@pytest.mark.parametrize("make, expected", [
    (lambda: tc.Conv2d(3, 8, 3, groups=2), "multiples of groups"),
    (lambda: tc.Conv2d(3, 8, 0), "kernel_size >= 1"),
    (lambda: tc.Conv2d(3, 8, 3, dtype=np.int32), "float32 or float64"),
    (lambda: tc.MaxPool2d(3, padding=2), "at most half"),
    (lambda: tc.Dropout(1.0), r"p must be in \[0, 1\)"),
    (lambda: tc.Dense(0, 3), "positive sizes"),
    (lambda: tc.Sequential([tc.ReLU(), "relu"]), "expected a tinycnn Layer"),
])
def test_bad_constructor_arguments_are_refused(make, expected):
    with pytest.raises(ValueError, match=expected):
        make()


@pytest.mark.parametrize("bad, counts", [(np.nan, "1 NaN and 0 inf"), (np.inf, "0 NaN and 1 inf"),
                                          (-np.inf, "0 NaN and 1 inf")])
@pytest.mark.parametrize("make", [
    lambda: tc.Sequential({"conv1": tc.Conv2d(3, 4, 3), "relu": tc.ReLU()}),
    lambda: tc.Graph([("conv_a", tc.Conv2d(3, 4, 3), "input"), ("conv_b", tc.Conv2d(3, 4, 3), "input"),
                      ("both", tc.Concat(), ["conv_a", "conv_b"])]),
])
def test_a_model_refuses_nan_or_inf_input_and_says_where(make, bad, counts):
    x = np.ones((2, 3, 6, 6), np.float32)
    x[1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match=rf"input: expected finite numbers, got {counts} values "
                                         rf"\(the first at index \(1, 2, 3, 4\)\)"):
        make().forward(x)
