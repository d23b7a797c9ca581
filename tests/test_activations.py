"""Activations against the notebook's printed output, closed forms, finite differences and torch."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from anncore import activations as act
from anncore.activations import ACTIVATION_NAMES, ACTIVATIONS, get_activation, torch_activation

NOTEBOOK_INPUTS = [-5, -2, 0, 2, 5]

# Section 3 of the notebook, exactly as printed by NumPy (8 significant decimals).
NOTEBOOK_PRINTED = {
    "sigmoid": ("0.00669285 0.11920292 0.5 0.88079708 0.99330715", "0.00664806 0.10499359 0.25 0.10499359 0.00664806"),
    "tanh": (
        "-0.9999092 -0.96402758 0. 0.96402758 0.9999092",
        "1.81583231e-04 7.06508249e-02 1.00000000e+00 7.06508249e-02 1.81583231e-04",
    ),
    "relu": ("0 0 0 2 5", "0. 0. 0. 1. 1."),
    "leaky_relu": ("-0.05 -0.02 0. 2. 5.", "0.01 0.01 0.01 1. 1."),
}

ELEMENTWISE = [
    ("sigmoid", {}),
    ("tanh", {}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"alpha": 0.2}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("identity", {}),
]


def half_unit_of_last_digit(token: str) -> float:
    """Half a unit in the last printed place of a NumPy-printed number such as '1.81583231e-04'."""
    mantissa, _, exponent = token.partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (-decimals + int(exponent or 0))


@pytest.mark.parametrize("name", list(NOTEBOOK_PRINTED))
def test_values_and_derivatives_match_the_notebook_printout(name: str) -> None:
    activation = ACTIVATIONS[name]
    for printed, computed in zip(NOTEBOOK_PRINTED[name], (activation.fn, activation.derivative)):
        tokens = printed.split()
        ours = computed(NOTEBOOK_INPUTS)
        expected = np.array([float(t) for t in tokens])
        tolerance = np.array([half_unit_of_last_digit(t) for t in tokens])
        assert np.all(np.abs(ours - expected) <= tolerance), (name, ours, printed)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_elu_on_the_todo_inputs_matches_the_closed_form(alpha: float) -> None:
    z = [-2, -1, 0, 1, 2]
    expected = [alpha * math.expm1(v) if v <= 0 else v for v in z]
    expected_derivative = [alpha * math.exp(v) if v <= 0 else 1.0 for v in z]
    np.testing.assert_allclose(act.elu(z, alpha=alpha), expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(act.elu_derivative(z, alpha=alpha), expected_derivative, rtol=1e-15, atol=0)
    assert act.elu(-2, alpha=alpha) == pytest.approx(alpha * (math.exp(-2) - 1), rel=1e-14)


def test_elu_default_alpha_is_one() -> None:
    assert float(act.elu(-1.0)) == pytest.approx(math.exp(-1) - 1, rel=1e-15)
    assert ACTIVATIONS["elu"].params["alpha"] == 1.0
    assert ACTIVATIONS["leaky_relu"].params["alpha"] == 0.01


@pytest.mark.parametrize(("name", "params"), ELEMENTWISE)
def test_derivative_matches_central_finite_difference_away_from_kinks(name: str, params: dict) -> None:
    activation = get_activation(name, **params)
    z = np.linspace(-4.0, 4.0, 161)
    z = z[np.abs(z) > 1e-3]  # the kink of ReLU, Leaky ReLU and ELU (alpha != 1) is at 0
    h = 1e-6
    numerical = (activation.fn(z + h) - activation.fn(z - h)) / (2 * h)
    np.testing.assert_allclose(activation.derivative(z), numerical, rtol=0, atol=1e-8)


@pytest.mark.parametrize(("name", "params"), ELEMENTWISE)
def test_derivative_matches_torch_autograd_including_zero(name: str, params: dict) -> None:
    activation = get_activation(name, **params)
    z = np.concatenate([np.linspace(-6.0, 6.0, 121), [0.0, -0.0, 1e-12, -1e-12]])
    z_torch = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    activation.torch_module()(z_torch).sum().backward()
    np.testing.assert_allclose(activation.derivative(z), z_torch.grad.numpy(), rtol=1e-14, atol=1e-15)


def test_derivative_conventions_at_the_kink() -> None:
    assert float(act.relu_derivative(0.0)) == 0.0
    assert float(act.leaky_relu_derivative(0.0)) == 0.01
    assert float(act.leaky_relu_derivative(0.0, alpha=0.3)) == 0.3
    assert float(act.elu_derivative(0.0, alpha=0.5)) == 0.5
    assert float(act.sigmoid_derivative(0.0)) == 0.25
    assert float(act.tanh_derivative(0.0)) == 1.0


def test_softmax_jacobian_matches_torch_autograd_and_finite_differences() -> None:
    z = np.array([0.3, -1.2, 2.0, 0.0])
    jacobian = act.softmax_derivative(z)
    torch_jacobian = torch.autograd.functional.jacobian(
        lambda t: torch.softmax(t, dim=-1), torch.tensor(z, dtype=torch.float64)
    )
    np.testing.assert_allclose(jacobian, torch_jacobian.numpy(), rtol=0, atol=1e-15)
    h = 1e-6
    numerical = np.stack(
        [(act.softmax(z + h * e) - act.softmax(z - h * e)) / (2 * h) for e in np.eye(4)], axis=1
    )
    np.testing.assert_allclose(jacobian, numerical, rtol=0, atol=1e-9)
    np.testing.assert_allclose(jacobian, jacobian.T, atol=0)


def test_softmax_and_its_jacobian_are_batched_over_leading_axes() -> None:
    z = np.random.default_rng(0).normal(size=(2, 3, 5))
    s = act.softmax(z)
    np.testing.assert_allclose(s, torch.softmax(torch.tensor(z), dim=-1).numpy(), rtol=1e-14)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-15)
    jacobian = act.softmax_derivative(z)
    assert jacobian.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(jacobian[1, 2], act.softmax_derivative(z[1, 2]), atol=0)
    np.testing.assert_allclose(act.softmax(z, axis=0), torch.softmax(torch.tensor(z), dim=0).numpy(), rtol=1e-14)


@pytest.mark.parametrize(
    ("name", "params", "module_type", "module_attributes"),
    [
        ("sigmoid", {}, nn.Sigmoid, {}),
        ("tanh", {}, nn.Tanh, {}),
        ("relu", {}, nn.ReLU, {}),
        ("leaky_relu", {}, nn.LeakyReLU, {"negative_slope": 0.01}),
        ("leaky_relu", {"alpha": 0.2}, nn.LeakyReLU, {"negative_slope": 0.2}),
        ("elu", {}, nn.ELU, {"alpha": 1.0}),
        ("elu", {"alpha": 0.5}, nn.ELU, {"alpha": 0.5}),
        ("identity", {}, nn.Identity, {}),
        ("softmax", {}, nn.Softmax, {"dim": -1}),
    ],
)
def test_registry_gives_the_matching_torch_module_and_they_agree(
    name: str, params: dict, module_type: type, module_attributes: dict
) -> None:
    activation = get_activation(name, **params)
    module = torch_activation(name, **params)
    assert type(module) is module_type and type(activation.torch_module()) is module_type
    for attribute, value in module_attributes.items():
        assert getattr(module, attribute) == value
    grid = np.linspace(-8.0, 8.0, 64).reshape(8, 8)
    torch_values = module(torch.tensor(grid, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(activation.fn(grid), torch_values, rtol=1e-14, atol=1e-16)


def test_registry_holds_every_name_once() -> None:
    expected = {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "identity", "softmax"}
    assert set(ACTIVATION_NAMES) == expected and len(ACTIVATION_NAMES) == len(expected)
    assert list(ACTIVATIONS) == list(ACTIVATION_NAMES)
    assert all(ACTIVATIONS[name].name == name for name in ACTIVATION_NAMES)
    assert [name for name in ACTIVATION_NAMES if not ACTIVATIONS[name].elementwise] == ["softmax"]


@pytest.mark.parametrize("name", [n for n in act.ACTIVATION_NAMES if n != "softmax"])
def test_shapes_are_preserved_and_scalars_give_0d_arrays(name: str) -> None:
    activation = ACTIVATIONS[name]
    for function in (activation.fn, activation.derivative):
        scalar = function(3)
        assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar.dtype == np.float64
        assert function([1, -2, 3]).shape == (3,)
        assert function([[1.0, -2.0], [0.5, 4.0]]).shape == (2, 2)
        assert function(np.zeros((2, 3, 4), dtype=np.float32)).dtype == np.float64


def test_extreme_inputs_give_finite_results_without_warnings() -> None:
    z = np.array([-1e4, -1e3, -50.0, -1e-300, 0.0, 1e-300, 50.0, 1e3, 1e4])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        for name, params in ELEMENTWISE:
            activation = get_activation(name, **params)
            assert np.all(np.isfinite(activation.fn(z))), name
            assert np.all(np.isfinite(activation.derivative(z))), name
        assert act.sigmoid(1e4) == 1.0 and act.sigmoid(-1e4) == 0.0
        assert act.sigmoid_derivative(1e4) == 0.0 and act.sigmoid_derivative(-1e4) == 0.0
        assert act.elu(-1e4, alpha=0.5) == -0.5
        np.testing.assert_array_equal(act.softmax([1e4, 0.0, -1e4]), [1.0, 0.0, 0.0])
        np.testing.assert_allclose(act.softmax([1e4, 1e4]), [0.5, 0.5])
        assert np.all(np.isfinite(act.softmax_derivative([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])))


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("bad", ["abc", None, [1.0, "x"], 1 + 2j, {"z": 1}, [[1.0], [1.0, 2.0]]])
def test_non_numeric_input_is_rejected_with_a_clear_type_error(name: str, bad: object) -> None:
    activation = ACTIVATIONS[name]
    for function in (activation.fn, activation.derivative):
        with pytest.raises(TypeError, match="real number"):
            function(bad)


def test_unknown_activation_name_lists_the_accepted_names() -> None:
    with pytest.raises(ValueError, match="'gelu'") as error:
        get_activation("gelu")
    for name in ACTIVATION_NAMES:
        assert name in str(error.value)
    with pytest.raises(ValueError, match="accepted names"):
        torch_activation("Relu")
    with pytest.raises(TypeError, match="string"):
        get_activation(None)  # type: ignore[arg-type]


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"'relu'.*\['alpha'\].*no parameters"):
        get_activation("relu", alpha=0.1)
    with pytest.raises(TypeError, match="beta"):
        get_activation("elu", beta=1.0)
    with pytest.raises(ValueError, match="-0.5"):
        get_activation("leaky_relu", alpha=-0.5)
    with pytest.raises(ValueError, match="nan"):
        act.elu([1.0], alpha=float("nan"))
    with pytest.raises(TypeError, match="'big'"):
        act.leaky_relu([1.0], alpha="big")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scalar"):
        act.softmax(2.0)
