"""Every layer and loss tinycnn exports has a twin in reference.py, a property test against it in float32 and
float64 (hypothesis draws shapes and memory layouts), and a float64 gradcheck. This is README's table.

Each named test is also run here on a few examples with the twins and gradcheck counted: a test that only
names a twin in a comment, or whose gradcheck is never reached, fails here."""
import importlib
import inspect

import numpy as np
import pytest
from hypothesis import settings

import tinycnn as tc
from tinycnn import reference

# exported class: (its twin's functions in reference.py, the property test, the gradcheck test)
COVERAGE = {
    "Conv2d": (["conv2d_forward", "conv2d_backward"], "test_conv.test_conv_forward_and_backward_equal_reference",
               "test_conv.test_conv_passes_gradcheck"),
    "ConvTranspose2d": (["conv_transpose2d_forward", "conv_transpose2d_backward"],
                        "test_conv_transpose.test_conv_transpose_forward_and_backward_equal_reference",
                        "test_conv_transpose.test_conv_transpose_passes_gradcheck"),
    "MaxPool2d": (["maxpool2d_forward", "maxpool2d_backward"], "test_pool.test_maxpool_equals_reference",
                  "test_pool.test_maxpool_passes_gradcheck"),
    "AdaptiveAvgPool2d": (["adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward"],
                          "test_graph.test_adaptive_average_pool_equals_reference",
                          "test_graph.test_adaptive_average_pool_passes_gradcheck"),
    "LocalResponseNorm": (["lrn_forward", "lrn_backward"], "test_lrn.test_lrn_equals_reference",
                          "test_lrn.test_lrn_passes_gradcheck"),
    "BatchNorm1d": (["batchnorm_forward", "batchnorm_backward"],
                    "test_batchnorm.test_batchnorm_training_equals_reference",
                    "test_batchnorm.test_batchnorm_passes_gradcheck"),
    "BatchNorm2d": (["batchnorm_forward", "batchnorm_eval_backward"],
                    "test_batchnorm.test_batchnorm_evaluation_equals_reference_with_running_statistics",
                    "test_batchnorm.test_batchnorm_passes_gradcheck"),
    "ReLU": (["relu_forward", "relu_backward"], "test_dense_activation_dropout.test_relu_equals_reference",
             "test_dense_activation_dropout.test_elementwise_layers_pass_gradcheck_in_any_layout"),
    "Tanh": (["tanh_forward", "tanh_backward"],
             "test_dense_activation_dropout.test_tanh_equals_its_twin_written_from_exponentials",
             "test_dense_activation_dropout.test_elementwise_layers_pass_gradcheck_in_any_layout"),
    "Dropout": (["dropout_mask"],
                "test_dense_activation_dropout.test_dropout_equals_its_twin_with_the_mask_drawn_the_same_way",
                "test_dense_activation_dropout.test_elementwise_layers_pass_gradcheck_in_any_layout"),
    "Dense": (["dense_forward", "dense_backward"], "test_dense_activation_dropout.test_dense_equals_reference",
              "test_dense_activation_dropout.test_dense_passes_gradcheck"),
    "Flatten": (["flatten_forward"], "test_dense_activation_dropout.test_flatten_equals_reference",
                "test_dense_activation_dropout.test_elementwise_layers_pass_gradcheck_in_any_layout"),
    "Concat": (["concat_forward", "concat_backward"], "test_graph.test_concat_equals_reference",
               "test_graph.test_concat_passes_gradcheck_inside_a_graph_in_float64"),
    "SoftmaxCrossEntropy": (["softmax_cross_entropy"], "test_loss_optim.test_softmax_cross_entropy_equals_reference",
                            "test_loss_optim.test_softmax_cross_entropy_passes_gradcheck"),
    "MSELoss": (["mse"], "test_loss_optim.test_mse_equals_reference", "test_loss_optim.test_mse_passes_gradcheck"),
}


def exported_layers_and_losses():
    classes = {name: getattr(tc, name) for name in tc.__all__ if isinstance(getattr(tc, name), type)}
    containers = {"Layer", "Sequential", "Graph"}
    return {name for name, cls in classes.items()
            if (issubclass(cls, tc.Layer) or hasattr(cls, "backward")) and name not in containers}


def find(path):
    module, function = path.split(".")
    return getattr(importlib.import_module(module), function)


def test_every_exported_layer_and_loss_is_in_the_table():
    assert exported_layers_and_losses() == set(COVERAGE)


@pytest.mark.parametrize("name", sorted(COVERAGE))
def test_each_has_a_twin_a_property_test_in_both_dtypes_and_a_gradcheck(name):
    twins, property_test, gradcheck_test = COVERAGE[name]
    tests = inspect.getsource(importlib.import_module(property_test.split(".")[0]))
    for twin in twins:
        assert callable(getattr(reference, twin)) and f"ref.{twin}(" in tests, twin
    marks = [m for m in getattr(find(property_test), "pytestmark", []) if m.name == "parametrize"]
    dtypes = [set(m.args[1]) for m in marks if m.args[0] == "dtype"]
    assert dtypes and {np.float32, np.float64} <= dtypes[0], f"{property_test} does not run in both dtypes"
    assert hasattr(find(property_test), "hypothesis"), f"{property_test} draws no examples"
    assert "layout" in inspect.getsource(find(property_test)), f"{property_test} draws no memory layouts"
    assert "tc.gradcheck(" in inspect.getsource(find(gradcheck_test)), f"{gradcheck_test} runs no gradcheck"


def run_briefly(test, **given):
    """Run a hypothesis test on 3 examples, each pytest parameter set as given or to its first value."""
    args = {}
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            names = [name.strip() for name in mark.args[0].split(",")]
            first = mark.args[1][0]
            args.update(zip(names, first if len(names) > 1 else [first]))
    args.update(given)
    profile = settings.get_current_profile_name()
    settings.register_profile("brief", settings.get_profile(profile), max_examples=3, database=None, derandomize=True)
    settings.load_profile("brief")
    try:
        test(**args)
    finally:
        settings.load_profile(profile)


def counting(function, calls):
    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)
    return counted


@pytest.mark.parametrize("name", sorted(COVERAGE))
def test_each_property_test_calls_its_twins_in_both_dtypes_and_the_gradcheck_test_checks_the_class(name,
                                                                                                   monkeypatch):
    twins, property_test, gradcheck_test = COVERAGE[name]
    for dtype in (np.float32, np.float64):
        calls = {twin: [] for twin in twins}
        for twin in twins:
            monkeypatch.setattr(reference, twin, counting(getattr(reference, twin), calls[twin]))
        run_briefly(find(property_test), dtype=dtype)
        for twin in twins:
            monkeypatch.undo()
        never = [twin for twin in twins if not calls[twin]]
        assert not never, f"{property_test} never called {never} in {np.dtype(dtype).name}"
    checked = []
    monkeypatch.setattr(tc, "gradcheck", counting(tc.gradcheck, checked))
    run_briefly(find(gradcheck_test))
    checked_classes = set()
    for args in checked:                     # the layers of what was checked, and a loss held by a LossAsLayer
        for layer in args[0].layers():
            checked_classes |= {type(layer).__name__} | {type(v).__name__ for v in vars(layer).values()}
    assert name in checked_classes, f"{gradcheck_test} never gradchecked a {name}: it checked {checked_classes}"
