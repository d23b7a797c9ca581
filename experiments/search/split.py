"""The search's validation split: trials train on a seeded 80 % of the training set and are judged on the rest.

Selection on validation, never on test: no trial sees the test set; only the champion is
evaluated on it, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from anncore.data import TensorData

VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    """The training set cut in two by a seeded permutation: trials train on ``train``, are judged on ``validation``."""

    train: TensorData
    validation: TensorData
    train_indices: torch.Tensor
    validation_indices: torch.Tensor


def validation_split(train: TensorData, seed: int, fraction: float = VALIDATION_FRACTION) -> Split:
    """Split ``train`` into disjoint train and validation parts, seeded by ``seed``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator)
    n_validation = max(1, round(len(train) * fraction))
    validation_indices, train_indices = order[:n_validation].sort().values, order[n_validation:].sort().values
    return Split(_subset(train, train_indices), _subset(train, validation_indices), train_indices, validation_indices)


def _subset(data: TensorData, indices: torch.Tensor) -> TensorData:
    """The examples of ``data`` at ``indices``, same classes."""
    from anncore.data import TensorData

    return TensorData(data.x[indices], data.y[indices], data.num_classes, data.class_names)
