"""Train one model inside the active MLflow run and log everything the contract asks of a training run.

Params: the hyperparameters, architecture, activation, dropout, parameter count and dataset.
Metrics: per-epoch series (``step = epoch``, written in batches by ``runs.EpochMetricsLogger``),
then ``final_train_loss``, ``final_train_acc``, ``final_test_loss``, ``final_test_acc`` and
``train_time_s`` (sum of the epochs' training time, evaluation excluded).
Artifacts: ``history.csv``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable

from experiments.tracking import artifacts, runs

if TYPE_CHECKING:
    from anncore.trainer import TrainConfig


def train_logged(
    build_model: Callable[[], object],
    train_data: object,
    test_data: object,
    config: TrainConfig,
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
        after seeding with ``config.seed`` so the initial weights are reproducible.
    train_data, test_data : anncore.data.TensorData
    config : anncore.trainer.TrainConfig
        How to train (``RunSettings.train_config`` fills in the device, progress bars, seed
        and ``quick``'s batches per epoch); its ``hyperparameters()`` are logged whole.
    activation, dropout_rate
        Logged as params.
    extra_params, dataset_params : dict, optional
        More params, e.g. the dataset's name, sizes and checksum.

    Returns
    -------
    anncore.trainer.TrainResult
    """
    from anncore.models import architecture_string
    from anncore.trainer import set_seed, train

    set_seed(config.seed)
    model = build_model()
    runs.log_params(
        {
            **config.hyperparameters(),
            "max_batches": config.max_batches if config.max_batches is not None else "all",
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
