"""Forward and backward pass through a tiny dense network, by hand, in NumPy.

Given explicit weights, biases and activations, :func:`forward_backward` records every
number a student would write down (notebook section 7):

    z^(l) = W^(l) a^(l-1) + b^(l),          a^(l) = f^(l)(z^(l)),      a^(0) = x
    delta^(L) = (da^(L)/dz^(L))^T dL/da^(L)  (= dL/da^(L) * f'(z^(L)) for elementwise f)
    delta^(l) = (da^(l)/dz^(l))^T (W^(l+1))^T delta^(l+1)
    dL/dW^(l) = delta^(l) (a^(l-1))^T,      dL/db^(l) = delta^(l)
    W_new = W - learning_rate dL/dW,        b_new = b - learning_rate dL/db

The output delta uses the general chain rule (with the softmax Jacobian for a softmax
layer), so any activation can be paired with any loss; for sigmoid + binary
cross-entropy and softmax + softmax cross-entropy it equals y_hat - y up to rounding.

:func:`autograd_max_difference` recomputes the same network with ``torch.autograd`` in
float64 and reports the largest disagreement, as an independent check of the trace.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from anncore.activations import Activation, FloatArray, as_float_array, get_activation


def _finite_array(value: ArrayLike, name: str) -> FloatArray:
    array = as_float_array(value, name)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite numbers; got {value!r}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, init=False)
class DenseLayer:
    """One fully connected layer: a = f(W a_prev + b).

    Parameters
    ----------
    weights : array_like
        Shape ``(n_out, n_in)``; a 1-D list is read as the single row of a one-neuron
        layer, as the notebook writes ``W^(2) = [0.5, -0.3]``.
    bias : array_like
        Shape ``(n_out,)``; a scalar is accepted for a one-neuron layer.
    activation : str or Activation
        A registry name (``"relu"``) or ``get_activation("leaky_relu", alpha=0.1)``.
    """

    weights: FloatArray
    bias: FloatArray
    activation: Activation

    def __init__(self, weights: ArrayLike, bias: ArrayLike, activation: str | Activation = "identity") -> None:
        w = _finite_array(weights, "weights")
        if w.ndim == 1:
            w = w.reshape(1, -1)
        if w.ndim != 2 or w.size == 0:
            raise ValueError(f"weights must be a non-empty (n_out, n_in) matrix or one row; got shape {w.shape}")
        b = _finite_array(bias, "bias").reshape(-1)
        if b.shape != (w.shape[0],):
            raise ValueError(
                f"bias must have one value per output neuron, {w.shape[0]} for weights of shape "
                f"{w.shape}; got shape {np.shape(bias)}"
            )
        if not isinstance(activation, Activation):
            activation = get_activation(activation)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)
        object.__setattr__(self, "activation", activation)

    @property
    def n_in(self) -> int:
        """Number of inputs."""
        return self.weights.shape[1]

    @property
    def n_out(self) -> int:
        """Number of neurons."""
        return self.weights.shape[0]


@dataclass(frozen=True)
class Loss:
    """A per-sample loss L(y_hat, y) (summed over output units) and its gradient dL/dy_hat.

    ``output_activation`` names the activation the final layer must have, if any.
    """

    name: str
    value: Callable[[FloatArray, FloatArray], float]
    gradient: Callable[[FloatArray, FloatArray], FloatArray]
    output_activation: str | None = None


def _check_probabilities(y_hat: FloatArray, loss: str) -> None:
    if np.any(y_hat <= 0) or np.any(y_hat >= 1):
        raise ValueError(
            f"{loss} needs predictions strictly inside (0, 1) (use a sigmoid output layer); "
            f"got y_hat = {y_hat.tolist()}"
        )


def _bce_value(y_hat: FloatArray, y: FloatArray) -> float:
    _check_probabilities(y_hat, "binary_cross_entropy")
    return float(-np.sum(y * np.log(y_hat) + (1.0 - y) * np.log1p(-y_hat)))


def _bce_gradient(y_hat: FloatArray, y: FloatArray) -> FloatArray:
    return (y_hat - y) / (y_hat * (1.0 - y_hat))


def _softmax_ce_value(y_hat: FloatArray, y: FloatArray) -> float:
    if np.any(y_hat[y > 0] <= 0):
        raise ValueError(f"softmax_cross_entropy is infinite: a target class has probability 0 in {y_hat.tolist()}")
    return float(-np.sum(y[y > 0] * np.log(y_hat[y > 0])))


def _softmax_ce_gradient(y_hat: FloatArray, y: FloatArray) -> FloatArray:
    gradient = np.zeros_like(y_hat)
    gradient[y > 0] = -y[y > 0] / y_hat[y > 0]
    return gradient


LOSSES: Mapping[str, Loss] = MappingProxyType(
    {
        "half_squared_error": Loss(
            "half_squared_error",
            value=lambda y_hat, y: float(0.5 * np.sum((y_hat - y) ** 2)),
            gradient=lambda y_hat, y: y_hat - y,
        ),
        "binary_cross_entropy": Loss("binary_cross_entropy", _bce_value, _bce_gradient),
        "softmax_cross_entropy": Loss(
            "softmax_cross_entropy", _softmax_ce_value, _softmax_ce_gradient, output_activation="softmax"
        ),
    }
)
"""Losses by name: ``half_squared_error`` 1/2 sum (y_hat - y)^2, ``binary_cross_entropy``
-sum [y ln y_hat + (1 - y) ln(1 - y_hat)], ``softmax_cross_entropy`` -sum y ln y_hat."""


def _target_vector(y: Any, n_out: int, loss: str) -> tuple[FloatArray, int | None]:
    """The target as a length-n_out vector, and the class index when one was given."""
    if loss == "softmax_cross_entropy" and isinstance(y, numbers.Integral) and not isinstance(y, bool):
        if not 0 <= y < n_out:
            raise ValueError(f"class index y must be in 0..{n_out - 1} for {n_out} outputs; got {y}")
        return np.eye(n_out)[int(y)], int(y)
    target = _finite_array(y, "y").reshape(-1)
    if target.shape != (n_out,):
        raise ValueError(f"y must have {n_out} value(s), one per output neuron; got shape {np.shape(y)}")
    if loss == "binary_cross_entropy" and np.any((target < 0) | (target > 1)):
        raise ValueError(f"binary_cross_entropy targets must lie in [0, 1]; got {target.tolist()}")
    if loss == "softmax_cross_entropy" and (np.any(target < 0) or not math.isclose(target.sum(), 1.0)):
        raise ValueError(
            f"softmax_cross_entropy needs a class index or a one-hot / probability vector "
            f"(non-negative, summing to 1); got {target.tolist()}"
        )
    return target, None


def _check_learning_rate(learning_rate: Any) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"learning_rate must be a real number > 0; got {learning_rate!r}")
    if not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a finite number > 0; got {learning_rate!r}")
    return float(learning_rate)


def _check_layers(layers: Sequence[DenseLayer], n_inputs: int) -> None:
    if isinstance(layers, DenseLayer) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise TypeError(f"layers must be a non-empty sequence of DenseLayer; got {layers!r}")
    for index, layer in enumerate(layers, start=1):
        if not isinstance(layer, DenseLayer):
            raise TypeError(f"layer {index} must be a DenseLayer; got {layer!r}")
    expected = n_inputs
    for index, layer in enumerate(layers, start=1):
        if layer.n_in != expected:
            source = "x has" if index == 1 else f"layer {index - 1} outputs"
            raise ValueError(
                f"layer {index} weights have shape {layer.weights.shape} and take {layer.n_in} input(s), "
                f"but {source} {expected} value(s); weights must be (n_out, n_in)"
            )
        expected = layer.n_out


def _json_safe(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


@dataclass(frozen=True)
class LayerTrace:
    """Everything computed for one layer. Backward fields are ``None`` in forward-only traces.

    Attributes
    ----------
    index : int
        1-based layer number, as in W^(1), W^(2).
    activation : Activation
    weights, bias : numpy.ndarray
        The parameters used in the forward pass.
    z, a : numpy.ndarray
        Pre-activation and activation.
    grad_a : numpy.ndarray or None
        dL/da of this layer's output.
    activation_derivative : numpy.ndarray or None
        f'(z) elementwise, or the Jacobian da/dz (n_out x n_out) for softmax.
    delta : numpy.ndarray or None
        dL/dz.
    grad_weights, grad_bias : numpy.ndarray or None
        dL/dW = delta a_prev^T and dL/db = delta.
    weights_new, bias_new : numpy.ndarray or None
        Parameters after one gradient-descent step.
    """

    index: int
    activation: Activation
    weights: FloatArray
    bias: FloatArray
    z: FloatArray
    a: FloatArray
    grad_a: FloatArray | None = None
    activation_derivative: FloatArray | None = None
    delta: FloatArray | None = None
    grad_weights: FloatArray | None = None
    grad_bias: FloatArray | None = None
    weights_new: FloatArray | None = None
    bias_new: FloatArray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (floats and nested lists; ``None`` for absent backward values)."""
        arrays = (
            "weights", "bias", "z", "a", "grad_a", "activation_derivative",
            "delta", "grad_weights", "grad_bias", "weights_new", "bias_new",
        )  # fmt: skip
        return {
            "index": self.index,
            "activation": self.activation.name,
            "activation_params": dict(self.activation.params),
            "n_in": int(self.weights.shape[1]),
            "n_out": int(self.weights.shape[0]),
            **{name: _json_safe(getattr(self, name)) for name in arrays},
        }


@dataclass(frozen=True)
class Trace:
    """A full hand calculation: inputs, every layer's numbers, the loss and the update.

    ``target``, ``loss`` and the backward fields of the layers are ``None`` for a
    forward-only trace (``y=None``).
    """

    inputs: FloatArray
    layers: tuple[LayerTrace, ...]
    loss_name: str
    learning_rate: float
    target: FloatArray | None = None
    target_class: int | None = None
    loss: float | None = None
    y_hat: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "y_hat", self.layers[-1].a)

    @property
    def forward_only(self) -> bool:
        """True when no target was given, so nothing was propagated backwards."""
        return self.target is None

    @property
    def architecture(self) -> str:
        """Layer sizes joined by dashes, e.g. ``"2-2-1"``."""
        sizes = [self.layers[0].weights.shape[1]] + [layer.weights.shape[0] for layer in self.layers]
        return "-".join(str(size) for size in sizes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary with everything needed to redraw the calculation step by step."""
        return {
            "architecture": self.architecture,
            "forward_only": self.forward_only,
            "loss_name": self.loss_name,
            "learning_rate": self.learning_rate,
            "inputs": self.inputs.tolist(),
            "target": _json_safe(self.target),
            "target_class": self.target_class,
            "loss": self.loss,
            "y_hat": self.y_hat.tolist(),
            "layers": [layer.to_dict() for layer in self.layers],
        }


def _forward(inputs: FloatArray, layers: Sequence[DenseLayer]) -> tuple[list[FloatArray], list[FloatArray]]:
    """Pre-activations z of every layer, and activations a (the input first, then each layer's)."""
    zs, activations = [], [inputs]
    for layer in layers:
        z = layer.weights @ activations[-1] + layer.bias
        zs.append(z)
        activations.append(layer.activation.fn(z))
    return zs, activations


def _backward(
    layers: Sequence[DenseLayer],
    zs: list[FloatArray],
    activations: list[FloatArray],
    grad_output: FloatArray,
    lr: float,
) -> list[dict[str, FloatArray]]:
    """Backpropagate dL/da of the output layer; per layer (first layer first) every gradient and the SGD step."""
    backward: list[dict[str, FloatArray]] = []
    grad_a = grad_output
    for i in reversed(range(len(layers))):
        layer, z, a_prev = layers[i], zs[i], activations[i]
        derivative = layer.activation.derivative(z)
        # delta = dL/dz by the chain rule, dL/dz = (da/dz)^T dL/da. An elementwise activation
        # has a diagonal Jacobian, stored as its diagonal f'(z), so the product is grad_a * f'(z);
        # softmax mixes its outputs (da_i/dz_j = a_i (1[i=j] - a_j)), so it needs the full J.T @ grad_a.
        delta = grad_a * derivative if layer.activation.elementwise else derivative.T @ grad_a
        grad_weights = np.outer(delta, a_prev)  # z = W a_prev + b, so dL/dW_jk = delta_j a_prev_k
        backward.append(
            {
                "grad_a": grad_a,
                "activation_derivative": derivative,
                "delta": delta,
                "grad_weights": grad_weights,
                "grad_bias": delta,
                "weights_new": layer.weights - lr * grad_weights,
                "bias_new": layer.bias - lr * delta,
            }
        )
        grad_a = layer.weights.T @ delta  # dL/da of the layer below, through the old weights
    backward.reverse()
    return backward


def forward_backward(
    x: ArrayLike,
    y: ArrayLike | int | None,
    layers: Sequence[DenseLayer],
    loss: str = "half_squared_error",
    learning_rate: float = 0.1,
) -> Trace:
    """Run one sample forward, and with a target backward plus one SGD step, recording everything.

    Parameters
    ----------
    x : array_like
        Input vector of length ``layers[0].n_in``.
    y : array_like, int or None
        Target: one value per output neuron; for ``softmax_cross_entropy`` a class index or
        a one-hot (probability) vector. ``None`` computes the forward pass only.
    layers : sequence of DenseLayer
        The network, first layer first; each layer's ``n_in`` must equal the previous ``n_out``.
    loss : str
        A key of :data:`LOSSES`.
    learning_rate : float
        Step size (> 0) for ``W_new = W - learning_rate * dL/dW``.

    Returns
    -------
    Trace

    Raises
    ------
    ValueError
        Mismatched shapes, unknown loss, learning rate <= 0, a target that does not fit the
        loss, or a softmax loss without a softmax output layer.
    TypeError
        Non-numeric ``x``/``y``/``learning_rate``, or ``layers`` that are not DenseLayers.
    """
    inputs = _finite_array(x, "x").reshape(-1)
    _check_layers(layers, inputs.shape[0])
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; accepted losses: {list(LOSSES)}")
    lr = _check_learning_rate(learning_rate)
    loss_fn = LOSSES[loss]

    zs, activations = _forward(inputs, layers)
    if y is None:
        traces = tuple(
            LayerTrace(i + 1, layer.activation, layer.weights, layer.bias, zs[i], activations[i + 1])
            for i, layer in enumerate(layers)
        )
        return Trace(inputs=inputs, layers=traces, loss_name=loss, learning_rate=lr)

    output_name = layers[-1].activation.name
    if loss_fn.output_activation is not None and output_name != loss_fn.output_activation:
        raise ValueError(
            f"loss {loss!r} needs a {loss_fn.output_activation!r} output layer; the last layer uses {output_name!r}"
        )
    target, target_class = _target_vector(y, layers[-1].n_out, loss)
    y_hat = activations[-1]
    loss_value = loss_fn.value(y_hat, target)

    backward = _backward(layers, zs, activations, loss_fn.gradient(y_hat, target), lr)
    traces = tuple(
        LayerTrace(i + 1, layer.activation, layer.weights, layer.bias, zs[i], activations[i + 1], **backward[i])
        for i, layer in enumerate(layers)
    )
    return Trace(
        inputs=inputs,
        layers=traces,
        loss_name=loss,
        learning_rate=lr,
        target=target,
        target_class=target_class,
        loss=loss_value,
    )


_TORCH_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "half_squared_error": lambda y_hat, y: 0.5 * F.mse_loss(y_hat, y, reduction="sum"),
    "binary_cross_entropy": lambda y_hat, y: F.binary_cross_entropy(y_hat, y, reduction="sum"),
    "softmax_cross_entropy": lambda y_hat, y: -(torch.xlogy(y, y_hat)).sum(),
}


def _float64(array: ArrayLike, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=requires_grad)


def _torch_forward(trace: Trace) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor], list[torch.Tensor]]:
    """The trace's network rebuilt in float64 torch and run forward: (W, b) per layer, z's and a's (grads kept)."""
    a = _float64(trace.inputs)
    parameters, zs, outputs = [], [], []
    for layer in trace.layers:
        weights, bias = _float64(layer.weights, True), _float64(layer.bias, True)
        z = weights @ a + bias
        a = layer.activation.torch_module()(z)
        z.retain_grad()
        a.retain_grad()
        parameters.append((weights, bias))
        zs.append(z)
        outputs.append(a)
    return parameters, zs, outputs


def autograd_max_difference(trace: Trace) -> float:
    """Largest absolute difference between ``trace`` and the same network run through torch autograd.

    The network is rebuilt in float64 from the trace's original weights, biases and
    activations (their ``torch.nn`` modules); the loss is computed with torch's own
    functions, gradients with ``backward()`` and the update with ``torch.optim.SGD``.
    Compared: every z and a, and with a target the loss, dL/da, delta (= dL/dz), dL/dW,
    dL/db and the updated W and b.

    Parameters
    ----------
    trace : Trace
        The output of :func:`forward_backward`.

    Returns
    -------
    float
        The maximum absolute difference over all compared numbers.
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a Trace from forward_backward; got {type(trace).__name__}")

    parameters, zs, outputs = _torch_forward(trace)
    pairs: list[tuple[ArrayLike, torch.Tensor]] = []
    for layer, z, out in zip(trace.layers, zs, outputs):
        pairs += [(layer.z, z), (layer.a, out)]

    if not trace.forward_only:
        loss = _TORCH_LOSSES[trace.loss_name](outputs[-1], _float64(trace.target))
        loss.backward()
        optimizer = torch.optim.SGD([p for pair in parameters for p in pair], lr=trace.learning_rate)
        pairs.append((trace.loss, loss))
        for layer, z, out, (weights, bias) in zip(trace.layers, zs, outputs, parameters):
            pairs += [
                (layer.grad_a, out.grad),
                (layer.delta, z.grad),
                (layer.grad_weights, weights.grad),
                (layer.grad_bias, bias.grad),
            ]
        optimizer.step()
        for layer, (weights, bias) in zip(trace.layers, parameters):
            pairs += [(layer.weights_new, weights), (layer.bias_new, bias)]

    return max(
        float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - theirs.detach().numpy()), initial=0.0))
        for ours, theirs in pairs
    )
