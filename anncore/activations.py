"""Activation functions and their derivatives in NumPy, and one registry shared with PyTorch.

Every function takes a real scalar, a (nested) list or an array and returns a float64
``numpy.ndarray`` of the same shape; a scalar gives a 0-d array (``float(result)`` or
``result.item()`` turns it into a Python float). Non-numeric input raises ``TypeError``.

Conventions at the kinks follow the course notebook and agree with ``torch.autograd``:
``relu_derivative(0) == 0``, ``leaky_relu_derivative(0) == alpha`` and
``elu_derivative(0) == alpha`` (the ``z <= 0`` branch is taken at zero).

The registry maps one name to an :class:`Activation` that carries the NumPy function,
its derivative and the matching ``torch.nn`` module, so a name means the same function
in the hand calculations and in the PyTorch models::

    act = get_activation("leaky_relu", alpha=0.1)
    act.fn([-1.0, 2.0])        # array([-0.1,  2. ])
    act.torch_module()         # LeakyReLU(negative_slope=0.1)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray
from torch import nn

FloatArray = NDArray[np.float64]


def as_float_array(z: ArrayLike, name: str = "z") -> FloatArray:
    """Convert real numeric input to a float64 array, keeping its shape.

    Parameters
    ----------
    z : array_like
        A real number, a (nested) list of real numbers or an array (bool, int or float).
    name : str
        The argument's name, used in the error message.

    Returns
    -------
    numpy.ndarray
        ``z`` as float64; a scalar becomes a 0-d array.

    Raises
    ------
    TypeError
        If ``z`` is not real numeric (strings, ``None``, complex numbers, objects).
    """
    try:
        array = np.asarray(z)
    except (TypeError, ValueError) as error:  # ragged lists and the like
        raise TypeError(
            f"{name} must be a real number or an array-like of real numbers; got {z!r} ({error})"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a real number or an array-like of real numbers "
            f"(bool, int or float); got {z!r} with dtype {array.dtype}"
        )
    return array.astype(np.float64)


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a real number >= 0; got {alpha!r}")
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite real number >= 0; got {alpha!r}")
    return float(alpha)


def sigmoid(z: ArrayLike) -> FloatArray:
    """Logistic function 1 / (1 + e^-z), computed without overflow for any |z|.

    Uses e^-|z|, which is always <= 1: for z >= 0 the result is 1 / (1 + e^-z), for
    z < 0 it is e^z / (1 + e^z).
    """
    z = as_float_array(z)
    e = np.exp(-np.abs(z))
    return np.asarray(np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


def sigmoid_derivative(z: ArrayLike) -> FloatArray:
    """sigma'(z) = sigma(z) (1 - sigma(z)), with 1 - sigma(z) taken as sigma(-z) to keep precision."""
    z = as_float_array(z)
    return np.asarray(sigmoid(z) * sigmoid(-z))


def tanh(z: ArrayLike) -> FloatArray:
    """Hyperbolic tangent (e^z - e^-z) / (e^z + e^-z)."""
    return np.asarray(np.tanh(as_float_array(z)))


def tanh_derivative(z: ArrayLike) -> FloatArray:
    """tanh'(z) = 1 - tanh(z)^2."""
    return np.asarray(1.0 - np.tanh(as_float_array(z)) ** 2)


def relu(z: ArrayLike) -> FloatArray:
    """Rectified linear unit max(0, z)."""
    return np.asarray(np.maximum(as_float_array(z), 0.0))


def relu_derivative(z: ArrayLike) -> FloatArray:
    """ReLU'(z) = 1 for z > 0, else 0 (0 at z = 0, as in the notebook and torch)."""
    return np.asarray((as_float_array(z) > 0).astype(np.float64))


def leaky_relu(z: ArrayLike, alpha: float = 0.01) -> FloatArray:
    """Leaky ReLU: z for z > 0, alpha z otherwise."""
    alpha = _check_alpha(alpha)
    z = as_float_array(z)
    return np.asarray(np.where(z > 0, z, alpha * z))


def leaky_relu_derivative(z: ArrayLike, alpha: float = 0.01) -> FloatArray:
    """Leaky ReLU'(z) = 1 for z > 0, else alpha (alpha at z = 0, as in the notebook and torch)."""
    alpha = _check_alpha(alpha)
    z = as_float_array(z)
    return np.asarray(np.where(z > 0, 1.0, alpha))


def elu(z: ArrayLike, alpha: float = 1.0) -> FloatArray:
    """Exponential linear unit (notebook TO-DO 1.1): z for z > 0, alpha (e^z - 1) otherwise."""
    alpha = _check_alpha(alpha)
    z = as_float_array(z)
    # expm1 of min(z, 0) never overflows and stays precise near zero.
    return np.asarray(np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0))))


def elu_derivative(z: ArrayLike, alpha: float = 1.0) -> FloatArray:
    """ELU'(z) = 1 for z > 0, else alpha e^z (alpha at z = 0, as in torch)."""
    alpha = _check_alpha(alpha)
    z = as_float_array(z)
    return np.asarray(np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0))))


def identity(z: ArrayLike) -> FloatArray:
    """Identity (linear output layer): z."""
    return np.asarray(as_float_array(z))


def identity_derivative(z: ArrayLike) -> FloatArray:
    """Derivative of the identity: ones of z's shape."""
    return np.ones_like(as_float_array(z))


def softmax(z: ArrayLike, axis: int = -1) -> FloatArray:
    """Softmax e^z_i / sum_j e^z_j along ``axis``, stable for any z (the maximum is subtracted first).

    Raises
    ------
    ValueError
        If ``z`` is a scalar (softmax needs at least one axis).
    """
    z = as_float_array(z)
    if z.ndim == 0:
        raise ValueError(f"softmax needs an array with at least one axis; got the scalar {float(z)!r}")
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return np.asarray(e / np.sum(e, axis=axis, keepdims=True))


def softmax_derivative(z: ArrayLike) -> FloatArray:
    """Jacobian of the softmax over the last axis: J = diag(s) - s s^T, batched over leading axes.

    Returns
    -------
    numpy.ndarray
        Shape ``z.shape + (n,)`` where ``n = z.shape[-1]``; ``J[..., i, j] = ds_i / dz_j``.
    """
    s = softmax(z, axis=-1)
    return np.asarray(s[..., :, None] * np.eye(s.shape[-1]) - s[..., :, None] * s[..., None, :])


@dataclass(frozen=True)
class Activation:
    """One activation function: the NumPy function, its derivative and the matching torch module.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"leaky_relu"``.
    fn : callable
        NumPy function ``fn(z) -> ndarray`` with the parameters already bound.
    derivative : callable
        ``derivative(z)``: elementwise f'(z), or for softmax the Jacobian (see ``elementwise``).
    params : Mapping[str, float]
        The bound parameters, e.g. ``{"alpha": 0.01}``; empty for parameter-free functions.
    elementwise : bool
        False only for softmax, whose output mixes its inputs.
    torch_factory : callable
        Builds the ``torch.nn`` module from ``params``; use :meth:`torch_module`.
    """

    name: str
    fn: Callable[[ArrayLike], FloatArray] = field(repr=False)
    derivative: Callable[[ArrayLike], FloatArray] = field(repr=False)
    params: Mapping[str, float] = field(default_factory=dict)
    elementwise: bool = True
    torch_factory: Callable[..., nn.Module] = field(default=nn.Identity, repr=False)

    def torch_module(self) -> nn.Module:
        """A new ``torch.nn`` module computing the same function (softmax over ``dim=-1``)."""
        return self.torch_factory(**self.params)

    def jacobian(self, z: ArrayLike) -> FloatArray:
        """da/dz for a vector ``z`` (last axis), as a matrix: diag(f'(z)) when elementwise."""
        if not self.elementwise:
            return self.derivative(z)
        d = self.derivative(z)
        return np.asarray(d[..., :, None] * np.eye(d.shape[-1]))


def _leaky_relu_module(alpha: float) -> nn.Module:
    return nn.LeakyReLU(negative_slope=alpha)


def _softmax_module() -> nn.Module:
    return nn.Softmax(dim=-1)


# name -> (function, derivative, default parameters, elementwise, torch factory)
_SPECS: dict[str, tuple[Callable, Callable, dict[str, float], bool, Callable[..., nn.Module]]] = {
    "sigmoid": (sigmoid, sigmoid_derivative, {}, True, nn.Sigmoid),
    "tanh": (tanh, tanh_derivative, {}, True, nn.Tanh),
    "relu": (relu, relu_derivative, {}, True, nn.ReLU),
    "leaky_relu": (leaky_relu, leaky_relu_derivative, {"alpha": 0.01}, True, _leaky_relu_module),
    "elu": (elu, elu_derivative, {"alpha": 1.0}, True, nn.ELU),
    "identity": (identity, identity_derivative, {}, True, nn.Identity),
    "softmax": (softmax, softmax_derivative, {}, False, _softmax_module),
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(_SPECS)


def get_activation(name: str, **params: float) -> Activation:
    """Look up an activation by name, binding its parameters (only ``alpha`` exists).

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATION_NAMES`.
    **params : float
        ``alpha`` for ``leaky_relu`` (default 0.01) and ``elu`` (default 1.0).

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        Unknown name (the message lists the accepted names) or a bad ``alpha``.
    TypeError
        A parameter the activation does not take, or a non-string name.
    """
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a string, one of {list(ACTIVATION_NAMES)}; got {name!r}")
    if name not in _SPECS:
        raise ValueError(f"unknown activation {name!r}; accepted names: {list(ACTIVATION_NAMES)}")
    fn, derivative, defaults, elementwise, factory = _SPECS[name]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        accepted = list(defaults) or "no parameters"
        raise TypeError(f"activation {name!r} got unknown parameter(s) {unknown}; it accepts {accepted}")
    bound = {key: _check_alpha(params.get(key, value)) for key, value in defaults.items()}
    if bound:
        fn = functools.partial(fn, **bound)
        derivative = functools.partial(derivative, **bound)
    return Activation(
        name=name,
        fn=fn,
        derivative=derivative,
        params=MappingProxyType(bound),
        elementwise=elementwise,
        torch_factory=factory,
    )


def torch_activation(name: str, **params: float) -> nn.Module:
    """The ``torch.nn`` module for a registry name, e.g. ``torch_activation("elu", alpha=0.5)``."""
    return get_activation(name, **params).torch_module()


ACTIVATIONS: Mapping[str, Activation] = MappingProxyType({name: get_activation(name) for name in ACTIVATION_NAMES})
"""Registry: every name with its default parameters."""
