"""What one invocation of the suite was asked to do (``RunSettings``), what a study hands back
(``Outcome``), and the one exception for mistakes a user can fix (``UserInputError``).

``main`` prints a ``UserInputError`` as a single ``error: ...`` line and exits with status 2,
so every message must name the bad value and say what is accepted.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

# --quick: a slice of the data, a few batches per epoch and few epochs, for smoke tests.
QUICK_TRAIN_SIZE = 512
QUICK_TEST_SIZE = 256
QUICK_MAX_BATCHES = 4
QUICK_EPOCHS = 2
QUICK_SYNTHETIC_EPOCHS = 20
SWEEP_OPTIONS_TAG = "anncore.sweep_options"  # on a sweep parent: the last invocation's SweepOptions


@dataclass(frozen=True)
class RunSettings:
    """Options of one ``run``/``rerun`` command, already validated by the command line.

    Attributes
    ----------
    epochs : int or None
        Epochs for every training experiment; None means each experiment's own default
        (the notebook's), capped at ``QUICK_EPOCHS`` with ``quick``.
    seeds : tuple of int
        Studies run every arm once per seed; single runs use the first seed.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    data_dir : Path
        Root holding ``FashionMNIST/raw``.
    download : bool
        Download FashionMNIST when missing (only for the default ``./data``).
    quick : bool
        Smoke-test sizes (see the ``QUICK_*`` constants).
    progress : bool
        Show progress bars.
    custom : CustomOptions
        The ``custom`` experiment's architecture and optimiser settings.
    target_accuracy : float
        Test accuracy that ``activation_study`` counts epochs to.
    arms : tuple of str or None
        Restrict a study to these arms (``rerun`` of one child run).
    rerun_of : str or None
        Run id that this invocation reruns; tagged as ``anncore.rerun_of``.
    project_run_id : str or None
        The run ``mlflow run`` created for this command (an MLflow Project entry point);
        tagged as ``anncore.project_run_id``.
    sweep : SweepOptions
        The ``sweep`` experiment's budget, study, storage and workers.
    """

    epochs: int | None = None
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    data_dir: Path = field(default_factory=lambda: Path("data"))
    download: bool = True
    quick: bool = False
    progress: bool = True
    custom: CustomOptions = field(default_factory=lambda: CustomOptions())
    target_accuracy: float = 0.80
    arms: tuple[str, ...] | None = None
    rerun_of: str | None = None
    project_run_id: str | None = None
    sweep: SweepOptions = field(default_factory=lambda: SweepOptions())

    def to_json(self) -> str:
        """All the settings as one JSON object (how the search hands them to its worker processes)."""
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        """The settings :meth:`to_json` wrote."""
        values = json.loads(text)
        values["data_dir"] = Path(values["data_dir"])
        values["seeds"] = tuple(values["seeds"])
        values["arms"] = None if values["arms"] is None else tuple(values["arms"])
        values["custom"] = CustomOptions(**{**values["custom"], "hidden_sizes": tuple(values["custom"]["hidden_sizes"])})
        values["sweep"] = SweepOptions(**values["sweep"])
        return cls(**values)

    @property
    def seed(self) -> int:
        """The seed of single (non-study) runs: the first of ``seeds``."""
        return self.seeds[0]

    def epochs_or(self, default: int, quick_default: int = QUICK_EPOCHS) -> int:
        """Return the epochs to train: ``--epochs`` if given, else ``default`` (``quick_default`` with ``quick``)."""
        if self.epochs is not None:
            return self.epochs
        return min(default, quick_default) if self.quick else default

    def train_config(self, **hyperparameters: object):
        """An ``anncore.trainer.TrainConfig`` with this invocation's run options and ``hyperparameters``.

        The seed (``seed``), device, progress bars and batches per epoch (``max_batches``) come
        from the settings; the rest are TrainConfig's defaults unless given, e.g.
        ``settings.train_config(epochs=5, learning_rate=settings.custom.learning_rate)``. A study derives
        per-run values from it with ``dataclasses.replace``.
        """
        from anncore.trainer import TrainConfig

        options = {"seed": self.seed, "device": self.device, "progress": self.progress, "max_batches": self.max_batches}
        return TrainConfig(**{**options, **hyperparameters})

    @property
    def max_batches(self) -> int | None:
        """Batches per training epoch: ``QUICK_MAX_BATCHES`` with ``quick``, else all."""
        return QUICK_MAX_BATCHES if self.quick else None


@dataclass(frozen=True)
class CustomOptions:
    """The ``custom`` experiment's model and optimiser (``--hidden-sizes``, ``--dropout``, ``--lr``, ``--activation``).

    The command line's defaults are these fields' defaults; a ``custom`` run logs them as the
    params ``hidden_sizes``, ``dropout_rate``, ``learning_rate`` and ``activation``, and
    :meth:`from_params` reads them back for ``rerun``.
    """

    hidden_sizes: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    learning_rate: float = 1e-3
    activation: str = "relu"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CustomOptions:
        """The options a parsed ``run`` command gives, defaults for those it does not."""
        given = {"hidden_sizes": getattr(args, "hidden_sizes", None), "dropout": getattr(args, "dropout", None),
                 "learning_rate": getattr(args, "lr", None), "activation": getattr(args, "activation", None)}
        return cls(**{key: value for key, value in given.items() if value is not None})

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> CustomOptions:
        """The options a run logged (what it did not log keeps the default)."""
        defaults = cls()
        sizes = params.get("hidden_sizes")
        return cls(
            hidden_sizes=tuple(int(part) for part in sizes.split(",")) if sizes else defaults.hidden_sizes,
            dropout=float(params.get("dropout_rate", defaults.dropout)),
            learning_rate=float(params.get("learning_rate", defaults.learning_rate)),
            activation=params.get("activation", defaults.activation),
        )


@dataclass(frozen=True)
class SweepOptions:
    """The ``sweep`` experiment's invocation (``--trials``, ``--timeout``, ``--study-name``, ``--storage``, ``--workers``).

    None means the search's default (see :mod:`experiments.search.plan`). Every invocation
    writes them on the study's parent run as the tag ``anncore.sweep_options`` (JSON, the
    storage URL without its password), which ``rerun`` of the parent reads back whole.
    """

    trials: int | None = None
    timeout_s: float | None = None
    study_name: str | None = None
    storage: str | None = None
    workers: int = 1

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SweepOptions:
        """The options a parsed ``run`` command gives, defaults for those it does not."""
        given = {"trials": getattr(args, "trials", None), "timeout_s": getattr(args, "timeout", None),
                 "study_name": getattr(args, "study_name", None), "storage": getattr(args, "storage", None),
                 "workers": getattr(args, "workers", None)}
        return cls(**{key: value for key, value in given.items() if value is not None})

    def to_json(self) -> str:
        """The options as one JSON object (the caller removes a password from ``storage`` first)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SweepOptions:
        """The options :meth:`to_json` wrote."""
        return cls(**json.loads(text))


class UserInputError(ValueError):
    """A bad option, store, dataset or run id; reported as one line, exit status 2."""


@dataclass(frozen=True)
class Outcome:
    """The run an experiment created and its headline number, for the suite's summary table.

    Attributes
    ----------
    run_id : str
        The MLflow run (the parent run for a study).
    metric : str
        Name of the key metric, e.g. ``"final_test_acc"`` or ``"best: deep mean_final_test_acc"``.
    value : float
        Its value.
    """

    run_id: str
    metric: str
    value: float
