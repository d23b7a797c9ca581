"""Dense networks (multi-layer perceptrons) of the course, as ``torch.nn`` modules.

``SimpleANN`` and ``FashionMNISTClassifier`` are the notebook's models, with the same module
and parameter names; ``CustomANN`` is its TO-DO 3.1. Activations come by name from
``anncore.activations``, so "elu" means the same function here as in the NumPy reference.
``ModelConfig`` is a dense network's architecture as one value (beside ``trainer.TrainConfig``):
``CustomANN.config`` gives it back, ``ModelConfig.build()`` makes the network.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from anncore.activations import torch_activation

__all__ = [
    "CustomANN",
    "Dropout",
    "FashionMNISTClassifier",
    "SimpleANN",
    "architecture_string",
    "count_parameters",
    "parameter_table",
]


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a faster mask on the CPU; same distribution, same printout.

    Each element is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, exactly as
    ``nn.Dropout``. On the CPU torch's Bernoulli kernel made dropout about a fifth of a
    training epoch of the notebook's classifier; a uniform draw compared with ``p`` halves that
    cost. The random stream differs from ``nn.Dropout``'s, so runs are reproducible by seed
    but not bit-identical to a model built with ``nn.Dropout``. Elsewhere (GPU, in-place,
    ``p`` of 0 or 1, eval mode) it is ``nn.Dropout`` itself.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.inplace or x.device.type != "cpu" or not 0.0 < self.p < 1.0:
            return super().forward(x)
        return x * torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))


def check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    """Return ``layer_sizes`` as a list of ints, or raise if it is not >= 2 positive integers."""
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
        raise TypeError(
            f"layer_sizes must be a list of at least 2 positive integers, e.g. [784, 128, 10]; "
            f"got {layer_sizes!r}"
        )
    if len(layer_sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least 2 entries (input and output size), got {list(layer_sizes)!r}"
        )
    return [_check_size(f"layer_sizes[{i}]", size) for i, size in enumerate(layer_sizes)]


def _check_dropout(dropout_rate: object) -> float:
    if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, numbers.Real):
        raise TypeError(f"dropout_rate must be a number in [0, 1), got {dropout_rate!r}")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
    return float(dropout_rate)


def architecture_string(layer_sizes: Sequence[int]) -> str:
    """Return layer sizes written the course's way, e.g. ``[784, 128, 64, 10] -> "784-128-64-10"``."""
    return "-".join(str(size) for size in check_layer_sizes(layer_sizes))


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_table(model: nn.Module) -> pd.DataFrame:
    """Return one row per parameter tensor: ``name``, ``shape`` (e.g. "[8, 4]"), ``count``."""
    rows = [
        {"name": name, "shape": str(list(p.shape)), "count": p.numel()}
        for name, p in model.named_parameters()
    ]
    return pd.DataFrame(rows, columns=["name", "shape", "count"])


class SimpleANN(nn.Module):
    """The notebook's one-hidden-layer network: linear1 -> activation -> linear2.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer widths; ``SimpleANN(4, 8, 2)`` has 4*8 + 8 + 8*2 + 2 = 58 parameters.
    activation : str, default "relu"
        Hidden activation, any name in ``ACTIVATION_NAMES``.
    """

    def __init__(
        self, input_size: int, hidden_size: int, output_size: int, activation: str = "relu"
    ) -> None:
        super().__init__()
        self.layer_sizes = [
            _check_size("input_size", input_size),
            _check_size("hidden_size", hidden_size),
            _check_size("output_size", output_size),
        ]
        self.linear1 = nn.Linear(input_size, hidden_size)
        self.linear2 = nn.Linear(hidden_size, output_size)
        self.activation = torch_activation(activation)
        self.activation_name = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, input_size) inputs to (N, output_size) outputs (no output activation)."""
        return self.linear2(self.activation(self.linear1(x)))

    def count_parameters(self) -> int:
        """Return the number of trainable parameters."""
        return count_parameters(self)

    def linear_layers(self) -> list[nn.Linear]:
        """Return the linear layers in order."""
        return [self.linear1, self.linear2]

    def get_layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return [hidden activation output, network output]."""
        hidden = self.activation(self.linear1(x))
        return [hidden, self.linear2(hidden)]


class CustomANN(nn.Module):
    """A dense network of any depth (the notebook's TO-DO 3.1).

    Every hidden layer is Linear -> activation (-> Dropout when ``dropout_rate > 0``); the last
    layer is Linear, followed by ``output_activation`` if one is given. Leave it None for
    classification, where ``cross_entropy`` takes the logits. Inputs with more than two
    dimensions, such as images (N, 1, 28, 28), are flattened to (N, features).

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, at least two, e.g. ``[784, 128, 64, 10]``.
    activation : str, default "relu"
        Hidden activation, any name in ``ACTIVATION_NAMES``.
    output_activation : str, optional
        Activation after the last layer, e.g. "sigmoid" or "softmax".
    dropout_rate : float, default 0.0
        Dropout probability after each hidden activation, in [0, 1).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        output_activation: str | None = None,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.layer_sizes = check_layer_sizes(layer_sizes)
        torch_activation(activation)  # reject an unknown name even when there is no hidden layer
        self.activation_name = activation
        self.output_activation_name = output_activation
        self.dropout_rate = _check_dropout(dropout_rate)

        layers: list[nn.Module] = []
        self._output_positions: list[int] = []  # where in `network` each layer's output appears
        for fan_in, fan_out in zip(self.layer_sizes[:-2], self.layer_sizes[1:-1]):
            layers += [nn.Linear(fan_in, fan_out), torch_activation(activation)]
            self._output_positions.append(len(layers) - 1)
            if self.dropout_rate > 0:
                layers.append(Dropout(self.dropout_rate))
        layers.append(nn.Linear(self.layer_sizes[-2], self.layer_sizes[-1]))
        if output_activation is not None:
            layers.append(torch_activation(output_activation))
        self._output_positions.append(len(layers) - 1)
        self.network = nn.Sequential(*layers)

    @property
    def architecture(self) -> str:
        """The layer sizes as "784-128-64-10"."""
        return architecture_string(self.layer_sizes)

    @property
    def config(self) -> ModelConfig:
        """This network's architecture (sizes, hidden activation, dropout) as a :class:`ModelConfig`."""
        return ModelConfig(tuple(self.layer_sizes), self.activation_name, self.dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, layer_sizes[0]) inputs (or images, flattened) to (N, layer_sizes[-1])."""
        return self.network(x.flatten(1) if x.dim() > 2 else x)

    def count_parameters(self) -> int:
        """Return the number of trainable parameters."""
        return count_parameters(self)

    def linear_layers(self) -> list[nn.Linear]:
        """Return the linear layers in order, input to output."""
        return [module for module in self.network if isinstance(module, nn.Linear)]

    def get_layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return every layer's output, in order, for analysis.

        One tensor per linear layer: for a hidden layer its activation's output (before dropout),
        shape (N, layer_sizes[i + 1]); last, the network output exactly as ``forward`` gives it.
        """
        out = x.flatten(1) if x.dim() > 2 else x
        outputs = []
        for position, module in enumerate(self.network):
            out = module(out)
            if position in self._output_positions:
                outputs.append(out)
        return outputs


@dataclass(frozen=True)
class ModelConfig:
    """A dense network's architecture, the model's counterpart of ``trainer.TrainConfig``.

    Attributes
    ----------
    layer_sizes : tuple of int
        Widths from input to output, e.g. ``(784, 128, 64, 10)``.
    activation : str
        Hidden activation, any name in ``ACTIVATION_NAMES``.
    dropout_rate : float
        Dropout probability after each hidden activation, in [0, 1).
    """

    layer_sizes: tuple[int, ...]
    activation: str = "relu"
    dropout_rate: float = 0.0

    def build(self) -> CustomANN:
        """A new ``CustomANN`` with this architecture (initialised from torch's current seed)."""
        return CustomANN(self.layer_sizes, activation=self.activation, dropout_rate=self.dropout_rate)

    def hyperparameters(self) -> dict[str, object]:
        """The architecture as flat values to record: ``architecture`` ("784-128-10"), ``activation``, ``dropout_rate``."""
        return {"architecture": architecture_string(self.layer_sizes), "activation": self.activation,
                "dropout_rate": self.dropout_rate}


class FashionMNISTClassifier(CustomANN):
    """The notebook's FashionMNIST classifier: 784 -> hidden layers -> 10 logits.

    Each hidden layer is Linear -> activation -> Dropout, as in the notebook, whose printed
    architecture and parameter names (``network.0.weight``, ...) this reproduces. The defaults
    give 784-512-256-128-10 with dropout 0.3: 567,434 parameters.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (512, 256, 128)
        Widths of the hidden layers.
    num_classes : int, default 10
        Number of output logits.
    dropout_rate : float, default 0.3
        Dropout probability after each hidden activation, in [0, 1).
    activation : str, default "relu"
        Hidden activation, any name in ``ACTIVATION_NAMES``.
    """

    input_size = 28 * 28

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (512, 256, 128),
        num_classes: int = 10,
        dropout_rate: float = 0.3,
        activation: str = "relu",
    ) -> None:
        if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence):
            raise TypeError(f"hidden_sizes must be a list of positive integers, got {hidden_sizes!r}")
        _check_size("num_classes", num_classes)
        super().__init__(
            [self.input_size, *hidden_sizes, num_classes],
            activation=activation,
            dropout_rate=dropout_rate,
        )
        self.num_classes = num_classes

    def get_num_parameters(self) -> int:
        """The notebook's name for :meth:`count_parameters`."""
        return self.count_parameters()
