"""The course notebook's worked examples, solved exactly, next to the numbers the notebook prints.

Examples (notebook section in brackets):

- ``single_neuron_<activation>`` [2]: x = (2, -1), w = (0.5, -0.3), b = 0.1 with sigmoid,
  tanh, ReLU and Leaky ReLU (alpha = 0.01), forward only;
- ``forward_2_3_1`` [6]: a 2-3-1 network, ReLU hidden and sigmoid output, forward only;
- ``backprop_2_2_1`` [7]: a 2-2-1 sigmoid network, 1/2 (y_hat - y)^2 loss, one SGD step
  with learning rate 0.1;
- ``todo_3_2_1`` [10, TO-DO 2.1/2.2]: a 3-2-1 network, ReLU hidden, sigmoid output,
  y = 0.8, 1/2 (y_hat - y)^2; the task asks for dL/dW^(2) and dL/db^(2) rounded to 4
  decimals, which :meth:`WorkedExample.presented` does; the trace itself stays exact.
  The task gives no learning rate, so the update uses the notebook's 0.1 from section 7.

Each example names its numbers the way the notebook writes them (``"z1_2"`` is z_2^(1),
``"W1_12*x2"`` the term W_12^(1) x_2, ``"dL/dW2_11"`` the gradient of W_11^(2)), keeps the
notebook's printed text for each, and :func:`notebook_discrepancies` lists every printed
number that is not the exact value rounded to the printed digits. They all come from the
notebook rounding intermediate results and carrying the rounded numbers on, plus one slip
in delta_1^(1) that propagates into dL/dW^(1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from anncore.activations import get_activation
from anncore.hand_calculation import DenseLayer, Trace, forward_backward


def printed_decimals(text: str) -> int:
    """Number of digits after the decimal point in a printed number (``"0.220"`` -> 3, ``"0"`` -> 0)."""
    _, _, fraction = text.partition(".")
    return len(fraction)


def matches_printed(exact: float, text: str) -> bool:
    """True if ``text`` is ``exact`` rounded to the digits ``text`` shows (either way at an exact tie)."""
    half_unit = 0.5 * 10.0 ** -printed_decimals(text)
    return abs(exact - float(text)) <= half_unit * (1 + 1e-9)


@dataclass(frozen=True)
class WorkedExample:
    """One worked example: the network, how to name its numbers, and what the notebook prints.

    Attributes
    ----------
    key, title : str
        Registry key and a human title.
    section : str
        Where the notebook has it.
    inputs : tuple of float
    layers : tuple of DenseLayer
    target : float or None
        ``None`` for forward-only examples.
    loss : str
    learning_rate : float
    quantities : callable
        ``quantities(trace) -> dict[str, float]``: the example's numbers, named as in the notebook.
    notebook_printed_text : Mapping[str, str]
        Each printed number exactly as the notebook writes it (trailing zeros matter: ``"0.220"``).
    presentation_decimals : int
        Decimals used by :meth:`presented`.
    """

    key: str
    title: str
    section: str
    inputs: tuple[float, ...]
    layers: tuple[DenseLayer, ...]
    target: float | None
    loss: str
    learning_rate: float
    quantities: Callable[[Trace], dict[str, float]] = field(repr=False)
    notebook_printed_text: Mapping[str, str] = field(default_factory=dict)
    presentation_decimals: int = 3

    def solve(self) -> Trace:
        """The exact trace of this example (float64, nothing rounded)."""
        return forward_backward(self.inputs, self.target, self.layers, self.loss, self.learning_rate)

    def exact_values(self) -> dict[str, float]:
        """Every named number of the example, exact."""
        return self.quantities(self.solve())

    @property
    def notebook_printed(self) -> dict[str, float]:
        """The values the notebook prints, as floats."""
        return {name: float(text) for name, text in self.notebook_printed_text.items()}

    def presented(self, decimals: int | None = None) -> dict[str, str]:
        """Every named number formatted with ``decimals`` (default ``presentation_decimals``) places."""
        places = self.presentation_decimals if decimals is None else decimals
        # round first, then add 0.0, so that tiny negatives print as 0.0000, not -0.0000
        return {name: f"{round(value, places) + 0.0:.{places}f}" for name, value in self.exact_values().items()}


@dataclass(frozen=True)
class Discrepancy:
    """A number the notebook prints that is not the exact value rounded to the printed digits."""

    example: str
    quantity: str
    printed: float
    exact: float
    note: str
    printed_text: str = ""


def _layer_terms(trace: Trace, layer: int, inputs: str) -> dict[str, float]:
    """Products W^(l)_ij * input_j, named like ``"W1_12*x2"``, for layer ``layer`` (1-based)."""
    weights = trace.layers[layer - 1].weights
    previous = trace.inputs if layer == 1 else trace.layers[layer - 2].a
    return {
        f"W{layer}_{i + 1}{j + 1}*{inputs}{j + 1}": float(weights[i, j] * previous[j])
        for i in range(weights.shape[0])
        for j in range(weights.shape[1])
    }


def _vector(name: str, values: np.ndarray) -> dict[str, float]:
    return {f"{name}_{i + 1}": float(v) for i, v in enumerate(values)}


def _matrix(name: str, values: np.ndarray) -> dict[str, float]:
    return {f"{name}_{i + 1}{j + 1}": float(values[i, j]) for i in range(values.shape[0]) for j in range(values.shape[1])}


def _single_neuron_quantities(trace: Trace) -> dict[str, float]:
    layer = trace.layers[0]
    z = float(layer.z[0])
    values = {
        "w1*x1": float(layer.weights[0, 0] * trace.inputs[0]),
        "w2*x2": float(layer.weights[0, 1] * trace.inputs[1]),
        "z": z,
    }
    if layer.activation.name == "sigmoid":
        values |= {"exp(-z)": math.exp(-z), "1+exp(-z)": 1 + math.exp(-z)}
    if layer.activation.name == "tanh":
        values |= {
            "exp(z)": math.exp(z),
            "exp(-z)": math.exp(-z),
            "exp(z)-exp(-z)": math.exp(z) - math.exp(-z),
            "exp(z)+exp(-z)": math.exp(z) + math.exp(-z),
        }
    return values | {"a": float(layer.a[0])}


def _two_layer_quantities(trace: Trace) -> dict[str, float]:
    """Named numbers of a network with one hidden layer and one output neuron."""
    hidden, output = trace.layers
    z2 = float(output.z[0])
    values = {
        **_layer_terms(trace, 1, "x"),
        **_vector("z1", hidden.z),
        **_vector("a1", hidden.a),
        **{
            f"W2_{j + 1}*a1_{j + 1}": float(output.weights[0, j] * hidden.a[j])
            for j in range(hidden.a.shape[0])
        },
        "z2": z2,
        "exp(-z2)": math.exp(-z2),
        "a2": float(output.a[0]),
        "y_hat": float(trace.y_hat[0]),
    }
    if trace.forward_only:
        return values
    values |= {
        "y_hat-y": float(trace.y_hat[0] - trace.target[0]),
        "loss": float(trace.loss),
        "dL/da2": float(output.grad_a[0]),
        "sigma'(z2)": float(output.activation_derivative[0]),
        "delta2": float(output.delta[0]),
        **_vector("f'(z1)", hidden.activation_derivative),
        **_vector("delta1", hidden.delta),
        **_vector("dL/dW2", output.grad_weights[0]),
        "dL/db2": float(output.grad_bias[0]),
        **_matrix("dL/dW1", hidden.grad_weights),
        **_vector("dL/db1", hidden.grad_bias),
        **_vector("-lr*dL/dW2", -trace.learning_rate * output.grad_weights[0]),
        **{f"W2_{j + 1}_new": float(w) for j, w in enumerate(output.weights_new[0])},
        "b2_new": float(output.bias_new[0]),
        **{f"W1_{name[-2:]}_new": value for name, value in _matrix("W1", hidden.weights_new).items()},
        **{f"b1_{i + 1}_new": float(b) for i, b in enumerate(hidden.bias_new)},
    }
    return values


def _backprop_2_2_1_quantities(trace: Trace) -> dict[str, float]:
    """As :func:`_two_layer_quantities`, plus the notebook's double-index names for the 1x2 W^(2)."""
    values = _two_layer_quantities(trace)
    for j in (1, 2):
        values[f"W2_1{j}*a1_{j}"] = values[f"W2_{j}*a1_{j}"]
        values[f"dL/dW2_1{j}"] = values[f"dL/dW2_{j}"]
        values[f"-lr*dL/dW2_1{j}"] = values[f"-lr*dL/dW2_{j}"]
        values[f"W2_1{j}_new"] = values[f"W2_{j}_new"]
    return values


_SINGLE_NEURON_Z = {"w1*x1": "1.0", "w2*x2": "0.3", "z": "1.4"}

_SINGLE_NEURON_PRINTED = {
    "sigmoid": {"exp(-z)": "0.247", "1+exp(-z)": "1.247", "a": "0.802"},
    "tanh": {
        "exp(z)": "4.055",
        "exp(-z)": "0.247",
        "exp(z)-exp(-z)": "3.808",
        "exp(z)+exp(-z)": "4.302",
        "a": "0.885",
    },
    "relu": {"a": "1.4"},
    "leaky_relu": {"a": "1.4"},
}


def _single_neuron(activation: str) -> WorkedExample:
    title = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "leaky_relu": "Leaky ReLU (alpha = 0.01)"}
    return WorkedExample(
        key=f"single_neuron_{activation}",
        title=f"Single neuron, {title[activation]}",
        section="2. Activation functions: hand calculation",
        inputs=(2.0, -1.0),
        layers=(DenseLayer([[0.5, -0.3]], [0.1], get_activation(activation)),),
        target=None,
        loss="half_squared_error",
        learning_rate=0.1,
        quantities=_single_neuron_quantities,
        notebook_printed_text={**_SINGLE_NEURON_Z, **_SINGLE_NEURON_PRINTED[activation]},
    )


FORWARD_2_3_1 = WorkedExample(
    key="forward_2_3_1",
    title="Forward pass through a 2-3-1 network (ReLU hidden, sigmoid output)",
    section="6. Network architectures: hand calculation",
    inputs=(0.5, -0.3),
    layers=(
        DenseLayer([[0.2, 0.4], [-0.1, 0.3], [0.6, -0.2]], [0.1, -0.2, 0.0], "relu"),
        DenseLayer([[0.5, -0.3, 0.7]], [0.1], "sigmoid"),
    ),
    target=None,
    loss="half_squared_error",
    learning_rate=0.1,
    quantities=_two_layer_quantities,
    notebook_printed_text={
        "W1_11*x1": "0.1", "W1_12*x2": "-0.12", "z1_1": "0.08",
        "W1_21*x1": "-0.05", "W1_22*x2": "-0.09", "z1_2": "-0.34",
        "W1_31*x1": "0.3", "W1_32*x2": "0.06", "z1_3": "0.36",
        "a1_1": "0.08", "a1_2": "0", "a1_3": "0.36",
        "W2_1*a1_1": "0.04", "W2_2*a1_2": "0", "W2_3*a1_3": "0.252",
        "z2": "0.392", "exp(-z2)": "0.676", "a2": "0.597",
    },  # fmt: skip
)

BACKPROP_2_2_1 = WorkedExample(
    key="backprop_2_2_1",
    title="Backpropagation through a 2-2-1 sigmoid network, one SGD step (learning rate 0.1)",
    section="7. Forward and backward pass: hand calculation",
    inputs=(0.1, 0.2),
    layers=(
        DenseLayer([[0.1, 0.3], [0.2, 0.4]], [0.1, 0.2], "sigmoid"),
        DenseLayer([[0.5, 0.6]], [0.1], "sigmoid"),
    ),
    target=0.8,
    loss="half_squared_error",
    learning_rate=0.1,
    quantities=_backprop_2_2_1_quantities,
    notebook_printed_text={
        "W1_11*x1": "0.01", "W1_12*x2": "0.06", "z1_1": "0.17",
        "W1_21*x1": "0.02", "W1_22*x2": "0.08", "z1_2": "0.3",
        "a1_1": "0.542", "a1_2": "0.574",
        "W2_11*a1_1": "0.271", "W2_12*a1_2": "0.344", "z2": "0.715",
        "y_hat": "0.672", "y_hat-y": "-0.128", "loss": "0.0082",
        "dL/da2": "-0.128", "sigma'(z2)": "0.220", "delta2": "-0.0282",
        "delta1_1": "-0.00341", "delta1_2": "-0.00413",
        "dL/dW2_11": "-0.0153", "dL/dW2_12": "-0.0162",
        "dL/dW1_11": "-0.000341", "dL/dW1_12": "-0.000682",
        "-lr*dL/dW2_11": "0.00153", "-lr*dL/dW2_12": "0.00162",
        "W2_11_new": "0.50153", "W2_12_new": "0.60162",
    },  # fmt: skip
)

TODO_3_2_1 = WorkedExample(
    key="todo_3_2_1",
    title="TO-DO 2.1/2.2: forward and backward pass through a 3-2-1 network (ReLU hidden, sigmoid output)",
    section="10. TO-DO, tasks 2.1 and 2.2",
    inputs=(0.2, -0.1, 0.5),
    layers=(
        DenseLayer([[0.1, 0.2, -0.1], [0.3, -0.2, 0.4]], [0.1, -0.1], "relu"),
        DenseLayer([[0.5, -0.3]], [0.2], "sigmoid"),
    ),
    target=0.8,
    loss="half_squared_error",
    learning_rate=0.1,
    quantities=_two_layer_quantities,
    presentation_decimals=4,
)

WORKED_EXAMPLES: dict[str, WorkedExample] = {
    example.key: example
    for example in (
        *(_single_neuron(name) for name in ("sigmoid", "tanh", "relu", "leaky_relu")),
        FORWARD_2_3_1,
        BACKPROP_2_2_1,
        TODO_3_2_1,
    )
}

# Why each printed number is off. Every entry here must be found by notebook_discrepancies().
_NOTES: dict[tuple[str, str], str] = {
    ("single_neuron_tanh", "exp(z)-exp(-z)"): "4.055 - 0.247 subtracts exponentials already rounded to 3 decimals",
    ("backprop_2_2_1", "W2_12*a1_2"): "0.6 * 0.574 = 0.3444 uses a1_2 rounded to 3 decimals",
    ("backprop_2_2_1", "z2"): "sum of the rounded terms 0.271 + 0.344 + 0.1",
    ("backprop_2_2_1", "sigma'(z2)"): "0.672 * (1 - 0.672) = 0.2204 from the rounded y_hat",
    ("backprop_2_2_1", "delta2"): "-0.128 * 0.220 = -0.02816 from rounded factors",
    ("backprop_2_2_1", "delta1_1"): "slip: even the notebook's own factors give 0.5 * (-0.0282) * 0.542 * 0.458 = -0.00350",
    ("backprop_2_2_1", "delta1_2"): "rounded factors give 0.6 * (-0.0282) * 0.574 * 0.426 = -0.00414, printed -0.00413",
    ("backprop_2_2_1", "dL/dW2_12"): "-0.0282 * 0.574 = -0.01619 from the rounded delta2",
    ("backprop_2_2_1", "dL/dW1_11"): "carries the slip in delta1_1 (-0.00341 * 0.1)",
    ("backprop_2_2_1", "dL/dW1_12"): "carries the slip in delta1_1 (-0.00341 * 0.2)",
    ("backprop_2_2_1", "-lr*dL/dW2_12"): "0.1 * 0.0162 from the rounded gradient",
    ("backprop_2_2_1", "W2_12_new"): "0.6 + 0.00162 from the rounded gradient",
}


def notebook_discrepancies() -> list[Discrepancy]:
    """Every printed number that is not its exact value rounded to the printed digits.

    Found by comparing each example's ``notebook_printed_text`` with its exact values;
    the note says why the notebook's arithmetic differs.

    Returns
    -------
    list of Discrepancy
        In example order, then in the notebook's order of the numbers.
    """
    found = []
    for key, example in WORKED_EXAMPLES.items():
        exact = example.exact_values()
        for quantity, text in example.notebook_printed_text.items():
            if not matches_printed(exact[quantity], text):
                note = _NOTES.get((key, quantity), "not explained yet")
                found.append(Discrepancy(key, quantity, float(text), exact[quantity], note, text))
    return found
