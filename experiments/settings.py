"""The settings of one ``run``/``rerun`` command (``RunSettings``), grouped by concern; what a
study hands back (``Outcome``); and the one exception for mistakes a user can fix (``UserInputError``).

- :class:`Invocation`: what the command asked of every experiment (epochs, seeds, device,
  quick). Every run logs it whole as the tag ``anncore.invocation`` (JSON) and ``rerun`` reads
  it back whole.
- :class:`CustomOptions`, :class:`SweepOptions` and ``target_accuracy``: one study's own options.
- :class:`Provenance`: where the command came from (the run it reruns, and which arms of it;
  the ``mlflow run`` that started it), tagged, never part of what is rerun.
- ``data_dir``, ``download``, ``progress``, ``cuda_graphs``, ``system_metrics``: this machine's
  concern, never logged.

Each options object is built by ``from_args(args, base)``: ``base`` (the defaults, or for
``rerun`` what the old run logged) with the options given on the command line in their place.
``main`` prints a ``UserInputError`` as a single ``error: ...`` line and exits with status 2,
so every message must name the bad value and say what is accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, TypeVar

if TYPE_CHECKING:
    from anncore.trainer import TrainConfig

# --quick: a slice of the data, a few batches per epoch and few epochs, for smoke tests.
QUICK_TRAIN_SIZE = 512
QUICK_TEST_SIZE = 256
QUICK_MAX_BATCHES = 4
QUICK_EPOCHS = 2
QUICK_SYNTHETIC_EPOCHS = 20
DEFAULT_DATA_DIR = Path("data")
INVOCATION_TAG = "anncore.invocation"  # on every run: its command's Invocation (JSON)
SWEEP_OPTIONS_TAG = "anncore.sweep_options"  # on a sweep parent: the last invocation's SweepOptions

Options = TypeVar("Options")


def _given(args: argparse.Namespace, names: Mapping[str, str]) -> dict[str, Any]:
    """The options among ``names`` (field -> argument) that the command line gave (not None)."""
    values = {field_name: getattr(args, arg_name, None) for field_name, arg_name in names.items()}
    return {key: value for key, value in values.items() if value is not None}


def _from_dict(cls: type[Options], values: Mapping[str, Any]) -> Options:
    """``cls`` from the dict ``asdict`` made of it (JSON lists back to tuples)."""
    return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


@dataclass(frozen=True)
class Invocation:
    """What one ``run``/``rerun`` command asked of every experiment it runs.

    Attributes
    ----------
    epochs : int or None
        Epochs for every training experiment; None means each experiment's own default
        (the notebook's), capped at ``QUICK_EPOCHS`` with ``quick``.
    seeds : tuple of int
        Studies run every arm once per seed; single runs use the first seed.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` as asked (the param ``device`` is the one resolved).
    quick : bool
        Smoke-test sizes (see the ``QUICK_*`` constants).
    """

    epochs: int | None = None
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    quick: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: Invocation | None = None) -> Invocation:
        """``base`` (default: the defaults) with the options the parsed command gives in their place."""
        given = _given(args, {"epochs": "epochs", "seeds": "seeds", "device": "device", "quick": "quick"})
        return dataclasses.replace(base or cls(), **given)

    def to_json(self) -> str:
        """The invocation as one JSON object (the tag ``anncore.invocation``)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Invocation:
        """The invocation :meth:`to_json` wrote."""
        return _from_dict(cls, json.loads(text))

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Invocation:
        """The nearest invocation for a run logged before the ``anncore.invocation`` tag.

        Its params hold the epochs as trained and the device as resolved, not as asked.
        """
        return cls(
            epochs=int(params["epochs"]) if "epochs" in params else None,
            seeds=tuple(int(part) for part in params.get("seeds", params.get("seed", "0")).split(",")),
            device=params.get("device", cls.device),
            quick=params.get("quick") == "true",
        )


@dataclass(frozen=True)
class Provenance:
    """Where a command came from; tagged on its runs, never itself rerun.

    Attributes
    ----------
    rerun_of : str or None
        Run id that this command reruns; tagged as ``anncore.rerun_of``.
    arms : tuple of str or None
        Restrict a study to these arms (``rerun`` of one child run).
    project_run_id : str or None
        The run ``mlflow run`` created for this command (an MLflow Project entry point);
        tagged as ``anncore.project_run_id``.
    """

    rerun_of: str | None = None
    arms: tuple[str, ...] | None = None
    project_run_id: str | None = None


@dataclass(frozen=True)
class RunSettings:
    """Options of one ``run``/``rerun`` command, already validated by the command line.

    Attributes
    ----------
    invocation : Invocation
        Epochs, seeds, device and quick, as the command asked (``seeds``, ``seed``, ``device``
        and ``quick`` read them).
    data_dir : Path
        Root holding ``FashionMNIST/raw``.
    download : bool
        Download FashionMNIST when missing (only for the default ``./data``).
    progress : bool
        Show progress bars.
    cuda_graphs : bool
        On CUDA, train through the captured step (``TrainConfig.cuda_graphs``); ``--no-cuda-graphs``.
    system_metrics : bool
        Every run logs MLflow's system metrics (CPU, memory, and GPU with ``nvidia-ml-py``);
        ``--no-system-metrics``.
    custom : CustomOptions
        The ``custom`` experiment's architecture and optimiser settings.
    target_accuracy : float
        Test accuracy that ``activation_study`` counts epochs to.
    sweep : SweepOptions
        The ``sweep`` experiment's budget, study, storage, workers and trials per batch.
    provenance : Provenance
        The run this command reruns (and its arms), the ``mlflow run`` that started it.
    """

    invocation: Invocation = field(default_factory=lambda: Invocation())
    data_dir: Path = DEFAULT_DATA_DIR
    download: bool = True
    progress: bool = True
    cuda_graphs: bool = True
    system_metrics: bool = True
    custom: CustomOptions = field(default_factory=lambda: CustomOptions())
    target_accuracy: float = 0.80
    sweep: SweepOptions = field(default_factory=lambda: SweepOptions())
    provenance: Provenance = field(default_factory=lambda: Provenance())

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: RunSettings | None = None) -> RunSettings:
        """The settings of a parsed ``run`` or ``rerun`` command.

        ``base`` (default: the defaults; for ``rerun``, what the old run logged) with the options
        the command gives in their place; the data folder, progress bars, ``--no-cuda-graphs``,
        ``--no-system-metrics`` and the ``mlflow run`` id always come from this command.
        """
        base = base or cls()
        target = getattr(args, "target_accuracy", None)
        return dataclasses.replace(
            base,
            invocation=Invocation.from_args(args, base.invocation),
            data_dir=args.data_dir or DEFAULT_DATA_DIR,
            download=args.data_dir is None,  # only the default ./data is downloaded into
            progress=args.progress,
            cuda_graphs=args.cuda_graphs,
            system_metrics=args.system_metrics,
            custom=CustomOptions.from_args(args, base.custom),
            target_accuracy=base.target_accuracy if target is None else target,
            sweep=SweepOptions.from_args(args, base.sweep),
            provenance=dataclasses.replace(base.provenance, project_run_id=getattr(args, "project_run_id", None)),
        )

    def to_json(self) -> str:
        """All the settings as one JSON object (how the search hands them to its worker processes)."""
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        """The settings :meth:`to_json` wrote."""
        values = json.loads(text)
        return cls(
            invocation=_from_dict(Invocation, values["invocation"]),
            data_dir=Path(values["data_dir"]),
            download=values["download"],
            progress=values["progress"],
            cuda_graphs=values["cuda_graphs"],
            system_metrics=values["system_metrics"],
            custom=_from_dict(CustomOptions, values["custom"]),
            target_accuracy=values["target_accuracy"],
            sweep=_from_dict(SweepOptions, values["sweep"]),
            provenance=_from_dict(Provenance, values["provenance"]),
        )

    @property
    def seeds(self) -> tuple[int, ...]:
        """The invocation's seeds."""
        return self.invocation.seeds

    @property
    def seed(self) -> int:
        """The seed of single (non-study) runs: the first of ``seeds``."""
        return self.invocation.seeds[0]

    @property
    def device(self) -> str:
        """The invocation's device, as asked (``"auto"``, ``"cpu"`` or ``"cuda"``)."""
        return self.invocation.device

    @property
    def quick(self) -> bool:
        """Whether the invocation asked for smoke-test sizes."""
        return self.invocation.quick

    def epochs_or(self, default: int, quick_default: int = QUICK_EPOCHS) -> int:
        """Return the epochs to train: ``--epochs`` if given, else ``default`` (``quick_default`` with ``quick``)."""
        if self.invocation.epochs is not None:
            return self.invocation.epochs
        return min(default, quick_default) if self.quick else default

    def train_config(self, **hyperparameters: Any) -> TrainConfig:
        """An ``anncore.trainer.TrainConfig`` with this invocation's run options and ``hyperparameters``.

        The seed (``seed``), device, progress bars and batches per epoch (``max_batches``) come
        from the settings; the rest are TrainConfig's defaults unless given, e.g.
        ``settings.train_config(epochs=5, learning_rate=settings.custom.learning_rate)``. A study derives
        per-run values from it with ``dataclasses.replace``.
        """
        from anncore.trainer import TrainConfig

        options = {"seed": self.seed, "device": self.device, "progress": self.progress, "max_batches": self.max_batches,
                   "cuda_graphs": self.cuda_graphs}
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
    def from_args(cls, args: argparse.Namespace, base: CustomOptions | None = None) -> CustomOptions:
        """``base`` (default: the defaults) with the options the parsed command gives in their place."""
        given = _given(args, {"hidden_sizes": "hidden_sizes", "dropout": "dropout", "learning_rate": "lr",
                              "activation": "activation"})
        return dataclasses.replace(base or cls(), **given)

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
    """The ``sweep`` experiment's invocation (``--trials``, ``--timeout``, ``--study-name``, ``--storage``, ``--workers``,
    ``--trials-per-batch``).

    None means the search's default (see :mod:`experiments.search.plan`; ``trials_per_batch``:
    :mod:`experiments.search.batching`, 1 on the CPU, what fits on CUDA). Every invocation
    writes them on the study's parent run as the tag ``anncore.sweep_options`` (JSON, the
    storage URL without its password), which ``rerun`` of the parent reads back whole.
    """

    trials: int | None = None
    timeout_s: float | None = None
    study_name: str | None = None
    storage: str | None = None
    workers: int = 1
    trials_per_batch: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: SweepOptions | None = None) -> SweepOptions:
        """``base`` (default: the defaults) with the options the parsed command gives in their place."""
        given = _given(args, {"trials": "trials", "timeout_s": "timeout", "study_name": "study_name",
                              "storage": "storage", "workers": "workers", "trials_per_batch": "trials_per_batch"})
        return dataclasses.replace(base or cls(), **given)

    def to_json(self) -> str:
        """The options as one JSON object (the caller removes a password from ``storage`` first)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SweepOptions:
        """The options :meth:`to_json` wrote."""
        return _from_dict(cls, json.loads(text))


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
