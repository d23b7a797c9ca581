"""Train one model inside the active MLflow run and log everything the contract asks of a training run.

Params: the hyperparameters, architecture, activation, dropout, parameter count and dataset.
Metrics: per-epoch series (``step = epoch``, written in batches by ``runs.EpochMetricsLogger``),
then ``final_train_loss``, ``final_train_acc``, ``final_test_loss``, ``final_test_acc`` and
``train_time_s`` (sum of the epochs' training time, evaluation excluded).
Artifacts: ``history.csv``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

from experiments import artifacts, runs
from experiments.settings import RunSettings


@dataclass(frozen=True)
class Hyperparameters:
    """How one model is trained; logged as params and passed to ``anncore.trainer.TrainConfig``."""

    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    track_grad_norms: bool = False


def train_logged(
    build_model: Callable[[], object],
    train_data: object,
    test_data: object,
    hyper: Hyperparameters,
    settings: RunSettings,
    *,
    activation: str,
    dropout_rate: float,
    extra_params: dict[str, object] | None = None,
    dataset_params: dict[str, object] | None = None,
) -> object:
    """Seed, build and train a model in the active run, logging params, metrics and ``history.csv``.

    Parameters
    ----------
    build_model : callable
        Returns a fresh model with ``layer_sizes`` and ``count_parameters()``; called right
        after seeding with ``hyper.seed`` so the initial weights are reproducible.
    train_data, test_data : anncore.data.TensorData
    hyper : Hyperparameters
    settings : RunSettings
        Device, progress bars and ``quick`` (a few batches per epoch).
    activation, dropout_rate
        Logged as params.
    extra_params, dataset_params : dict, optional
        More params, e.g. the dataset's name, sizes and checksum.

    Returns
    -------
    anncore.trainer.TrainResult
    """
    from anncore.models import architecture_string
    from anncore.trainer import TrainConfig, set_seed, train

    set_seed(hyper.seed)
    model = build_model()
    config = TrainConfig(
        epochs=hyper.epochs,
        batch_size=hyper.batch_size,
        learning_rate=hyper.learning_rate,
        optimizer=hyper.optimizer,
        seed=hyper.seed,
        device=settings.device,
        progress=settings.progress,
        max_batches=settings.max_batches,
        track_grad_norms=hyper.track_grad_norms,
    )
    runs.log_params(
        {
            "epochs": hyper.epochs,
            "batch_size": hyper.batch_size,
            "learning_rate": hyper.learning_rate,
            "optimizer": hyper.optimizer,
            "max_batches": settings.max_batches if settings.max_batches is not None else "all",
            "architecture": architecture_string(model.layer_sizes),
            "activation": activation,
            "dropout_rate": dropout_rate,
            "parameter_count": model.count_parameters(),
            **(dataset_params or {}),
            **(extra_params or {}),
        }
    )
    metrics_logger = runs.EpochMetricsLogger()
    try:
        result = train(model, train_data, test_data, config, callbacks=[metrics_logger])
    except BaseException:
        # Keep the epochs that finished before the failure or interruption; the error itself
        # matters more than a failed write, so a second error here does not replace it.
        with contextlib.suppress(Exception):
            metrics_logger.flush()
        raise
    history = result.history
    last = history.iloc[-1]
    metrics_logger.flush(
        final={
            "final_train_loss": last["train_loss"],
            "final_train_acc": last["train_acc"],
            "final_test_loss": last["test_loss"],
            "final_test_acc": last["test_acc"],
            "train_time_s": history["epoch_time_s"].sum(),
        }
    )
    artifacts.log_csv(history, "history.csv")
    return result
