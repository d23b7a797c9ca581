"""The hand-calculation engine against closed forms and torch autograd, and its bad-input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from anncore.activations import get_activation
from anncore.hand_calculation import LOSSES, DenseLayer, autograd_max_difference, forward_backward


def random_network(sizes: list[int], hidden: str, output: str, seed: int) -> list[DenseLayer]:
    rng = np.random.default_rng(seed)
    activations = [hidden] * (len(sizes) - 2) + [output]
    return [
        DenseLayer(rng.normal(size=(n_out, n_in)), rng.normal(size=n_out), activation)
        for n_in, n_out, activation in zip(sizes[:-1], sizes[1:], activations)
    ]


NETWORKS = [
    # sizes, hidden activation, output activation, loss, target
    ([2, 3, 1], "relu", "sigmoid", "half_squared_error", [0.3]),
    ([3, 4, 2], "tanh", "identity", "half_squared_error", [1.5, -0.7]),
    ([4, 5, 3, 3], "elu", "softmax", "softmax_cross_entropy", 2),
    ([4, 5, 3, 3], "leaky_relu", "softmax", "softmax_cross_entropy", [0.0, 1.0, 0.0]),
    ([3, 3, 4], "sigmoid", "softmax", "softmax_cross_entropy", [0.1, 0.2, 0.3, 0.4]),
    ([2, 4, 4, 2], "relu", "sigmoid", "binary_cross_entropy", [1.0, 0.0]),
    ([5, 2, 1], "identity", "sigmoid", "binary_cross_entropy", [0.25]),
    ([1, 1], "tanh", "tanh", "half_squared_error", [0.5]),
    ([3, 3, 3], "softmax", "elu", "half_squared_error", [0.1, -0.2, 0.3]),
    ([2, 6, 6, 6, 3], "tanh", "softmax", "half_squared_error", [0.0, 0.0, 1.0]),
]


@pytest.mark.parametrize(("sizes", "hidden", "output", "loss", "target"), NETWORKS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_networks_agree_with_torch_autograd(sizes, hidden, output, loss, target, seed) -> None:
    layers = random_network(sizes, hidden, output, seed)
    x = np.random.default_rng(100 + seed).normal(size=sizes[0])
    trace = forward_backward(x, target, layers, loss, learning_rate=0.37)
    assert autograd_max_difference(trace) < 1e-10
    assert len(trace.layers) == len(sizes) - 1
    assert trace.architecture == "-".join(map(str, sizes))


def test_leaky_relu_alpha_reaches_both_numpy_and_torch() -> None:
    hidden = DenseLayer([[1.0, 0.0], [0.0, -1.0]], [-2.0, 0.0], get_activation("leaky_relu", alpha=0.2))
    trace = forward_backward([0.5, 1.0], [1.0], [hidden, DenseLayer([[1.0, 1.0]], [0.0], "identity")])
    np.testing.assert_allclose(trace.layers[0].a, [-0.3, -0.2])  # 0.2 * (-1.5), 0.2 * (-1.0)
    np.testing.assert_allclose(trace.layers[0].activation_derivative, [0.2, 0.2])
    assert autograd_max_difference(trace) < 1e-12


def test_single_sigmoid_neuron_matches_the_closed_form() -> None:
    w, b, x, y, lr = 0.7, -0.2, 1.5, 0.9, 0.5
    trace = forward_backward([x], [y], [DenseLayer([[w]], [b], "sigmoid")], "half_squared_error", lr)
    z = w * x + b
    s = 1 / (1 + math.exp(-z))
    delta = (s - y) * s * (1 - s)
    layer = trace.layers[0]
    assert layer.z[0] == pytest.approx(z, abs=1e-15)
    assert trace.y_hat[0] == pytest.approx(s, abs=1e-15)
    assert trace.loss == pytest.approx(0.5 * (s - y) ** 2, abs=1e-15)
    assert layer.delta[0] == pytest.approx(delta, abs=1e-15)
    assert layer.grad_weights[0, 0] == pytest.approx(delta * x, abs=1e-15)
    assert layer.grad_bias[0] == pytest.approx(delta, abs=1e-15)
    assert layer.weights_new[0, 0] == pytest.approx(w - lr * delta * x, abs=1e-15)
    assert layer.bias_new[0] == pytest.approx(b - lr * delta, abs=1e-15)


def test_sigmoid_with_binary_cross_entropy_gives_delta_y_hat_minus_y() -> None:
    layers = random_network([3, 4, 2], "tanh", "sigmoid", seed=5)
    trace = forward_backward([0.2, -0.4, 1.0], [1.0, 0.0], layers, "binary_cross_entropy", 0.1)
    np.testing.assert_allclose(trace.layers[-1].delta, trace.y_hat - [1.0, 0.0], rtol=0, atol=1e-15)
    expected_loss = -math.log(trace.y_hat[0]) - math.log(1 - trace.y_hat[1])
    assert trace.loss == pytest.approx(expected_loss, rel=1e-14)


def test_softmax_with_cross_entropy_gives_delta_y_hat_minus_one_hot() -> None:
    layers = random_network([2, 3, 4], "relu", "softmax", seed=6)
    trace = forward_backward([1.0, -1.0], 1, layers, "softmax_cross_entropy", 0.1)
    np.testing.assert_array_equal(trace.target, [0.0, 1.0, 0.0, 0.0])
    assert trace.target_class == 1
    z = trace.layers[-1].z
    assert trace.loss == pytest.approx(math.log(np.exp(z).sum()) - z[1], rel=1e-14)
    np.testing.assert_allclose(trace.layers[-1].delta, trace.y_hat - trace.target, rtol=0, atol=1e-15)
    one_hot = forward_backward([1.0, -1.0], [0, 1, 0, 0], layers, "softmax_cross_entropy", 0.1)
    np.testing.assert_array_equal(one_hot.layers[0].grad_weights, trace.layers[0].grad_weights)


def test_forward_only_trace_has_no_backward_values() -> None:
    layers = random_network([3, 2, 1], "relu", "sigmoid", seed=7)
    trace = forward_backward([1.0, 2.0, 3.0], None, layers)
    assert trace.forward_only and trace.loss is None and trace.target is None
    for layer in trace.layers:
        assert layer.delta is None and layer.grad_weights is None and layer.weights_new is None
    assert autograd_max_difference(trace) < 1e-12
    data = json.loads(json.dumps(trace.to_dict(), allow_nan=False))
    assert data["forward_only"] is True and data["loss"] is None
    assert data["layers"][1]["grad_weights"] is None


def test_to_dict_is_json_safe_and_holds_everything_needed_to_redraw() -> None:
    layers = [
        DenseLayer([[0.1, 0.3], [0.2, 0.4]], [0.1, 0.2], get_activation("elu", alpha=0.5)),
        DenseLayer([[0.5, 0.6]], [0.1], "sigmoid"),
    ]
    trace = forward_backward([0.1, 0.2], 0.8, layers, "half_squared_error", 0.1)
    data = json.loads(json.dumps(trace.to_dict(), allow_nan=False))
    assert data["loss_name"] == "half_squared_error" and data["learning_rate"] == 0.1
    assert data["inputs"] == [0.1, 0.2] and data["target"] == [0.8] and data["architecture"] == "2-2-1"
    first, second = data["layers"]
    assert first["activation"] == "elu" and first["activation_params"] == {"alpha": 0.5}
    assert first["weights"] == [[0.1, 0.3], [0.2, 0.4]] and first["bias"] == [0.1, 0.2]
    assert second["activation"] == "sigmoid" and second["weights"] == [[0.5, 0.6]]
    for key in ("z", "a", "grad_a", "activation_derivative", "delta", "grad_weights", "grad_bias",
                "weights_new", "bias_new"):  # fmt: skip
        assert isinstance(second[key], list), key
    assert data["loss"] == trace.loss and data["y_hat"] == trace.y_hat.tolist()


def test_losses_registry_names() -> None:
    assert set(LOSSES) == {"half_squared_error", "binary_cross_entropy", "softmax_cross_entropy"}


TWO_LAYERS = [DenseLayer([[0.1, 0.3], [0.2, 0.4]], [0.1, 0.2], "sigmoid"), DenseLayer([[0.5, 0.6]], [0.1], "sigmoid")]


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: forward_backward([1.0, 2.0, 3.0], 0.8, TWO_LAYERS), ValueError, r"\(2, 2\).*2 input.*x has 3"),
        (lambda: DenseLayer([[1.0, 2.0]], [0.1, 0.2], "relu"), ValueError, r"bias.*1 for weights.*\(1, 2\).*\(2,\)"),
        (lambda: DenseLayer([[[1.0]]], [0.1], "relu"), ValueError, r"\(n_out, n_in\).*\(1, 1, 1\)"),
        (lambda: forward_backward([1.0, 2.0], 0.8, [TWO_LAYERS[0], DenseLayer([[1.0, 2.0, 3.0]], [0.0])]),
         ValueError, r"layer 2 weights have shape \(1, 3\).*layer 1 outputs 2"),
        (lambda: forward_backward([1.0, 2.0], [0.8, 0.1], TWO_LAYERS), ValueError, r"y must have 1 value.*\(2,\)"),
        (lambda: forward_backward([1.0, 2.0], 0.8, TWO_LAYERS, learning_rate=0.0), ValueError, "learning_rate.*> 0.*0.0"),
        (lambda: forward_backward([1.0, 2.0], 0.8, TWO_LAYERS, learning_rate=-0.1), ValueError, r"> 0.*-0\.1"),
        (lambda: forward_backward([1.0, 2.0], 0.8, TWO_LAYERS, learning_rate=math.inf), ValueError, "inf"),
        (lambda: forward_backward([1.0, 2.0], 0.8, TWO_LAYERS, learning_rate="0.1"), TypeError, "learning_rate.*'0.1'"),
        (lambda: forward_backward("ab", 0.8, TWO_LAYERS), TypeError, "x must be a real number.*'ab'"),
        (lambda: forward_backward([1.0, None], 0.8, TWO_LAYERS), TypeError, "x must be"),
        (lambda: forward_backward([1.0, math.nan], 0.8, TWO_LAYERS), ValueError, "x must contain only finite"),
        (lambda: forward_backward([1.0, 2.0], "high", TWO_LAYERS), TypeError, "y must be.*'high'"),
        (lambda: DenseLayer([["a", "b"]], [0.0]), TypeError, "weights must be"),
        (lambda: forward_backward([1.0, 2.0], 0.8, TWO_LAYERS, loss="mse"), ValueError, "'mse'.*half_squared_error"),
        (lambda: DenseLayer([[1.0]], [0.0], "swish"), ValueError, "'swish'.*accepted names"),
        (lambda: forward_backward([1.0, 2.0], 1, TWO_LAYERS, loss="softmax_cross_entropy"), ValueError,
         "'softmax' output layer.*'sigmoid'"),
        (lambda: forward_backward([1.0], 3, [DenseLayer([[1.0], [2.0], [3.0]], [0, 0, 0], "softmax")],
                                  loss="softmax_cross_entropy"), ValueError, r"0\.\.2.*got 3"),
        (lambda: forward_backward([1.0], [0.5, 0.6, 0.0], [DenseLayer([[1.0], [2.0], [3.0]], [0, 0, 0], "softmax")],
                                  loss="softmax_cross_entropy"), ValueError, "summing to 1"),
        (lambda: forward_backward([1.0, 2.0], 1.5, TWO_LAYERS, loss="binary_cross_entropy"), ValueError, r"\[0, 1\].*1\.5"),
        (lambda: forward_backward([1.0], 0.5, [DenseLayer([[1.0]], [0.0], "relu")], loss="binary_cross_entropy"),
         ValueError, r"strictly inside \(0, 1\)"),
        (lambda: forward_backward([1.0, 2.0], 0.8, []), TypeError, "non-empty sequence of DenseLayer"),
        (lambda: forward_backward([1.0, 2.0], 0.8, TWO_LAYERS[0]), TypeError, "sequence of DenseLayer"),
        (lambda: forward_backward([1.0, 2.0], 0.8, [[[0.1, 0.2]]]), TypeError, "layer 1 must be a DenseLayer"),
        (lambda: autograd_max_difference({"layers": []}), TypeError, "Trace"),
    ],
)  # fmt: skip
def test_bad_input_is_rejected_with_a_message_naming_it(call, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        call()

