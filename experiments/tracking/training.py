"""Train one model inside the active MLflow run and log everything the contract asks of a training run.

The one training-run path of the suite: the studies and the search's trials both train through
:func:`train_logged`.

Params: the hyperparameters (``TrainConfig``) and the architecture (the model's ``ModelConfig``:
architecture, activation, dropout) each logged whole, the parameter count and the dataset.
Metrics: per-epoch series (``step = epoch``, written in batches by ``runs.EpochMetricsLogger``),
then ``final_train_loss``, ``final_train_acc``, ``final_test_loss``, ``final_test_acc`` and
``train_time_s`` (sum of the epochs' training time, evaluation excluded).
Artifacts: ``history.csv``.

Evaluated on a validation split instead (``evaluated_on="validation"``, the search's trials),
the evaluation columns and metrics are called ``val_*`` (``final_val_*``) and ``epochs_run``
is logged too, so nothing in the run is called "test".
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import pandas as pd

from experiments.tracking import artifacts, runs, store

if TYPE_CHECKING:
    from anncore.data import TensorData
    from anncore.models import CustomANN
    from anncore.trainer import Callback, TrainConfig, TrainResult

VALIDATION_NAMES = {"test_loss": "val_loss", "test_acc": "val_acc"}


def validation_row(row: dict) -> dict:
    """A trainer history row with its ``test_*`` columns renamed ``val_*`` (they were computed on validation)."""
    return {VALIDATION_NAMES.get(key, key): value for key, value in row.items()}


class _EpochRecorder:
    """Trainer callback: rename an epoch's row if it is validation, log it, keep it, pass it on to ``callbacks``."""

    def __init__(self, validation: bool, callbacks: Sequence[Callback]) -> None:
        self.validation = validation
        self.callbacks = list(callbacks)
        self.logger = runs.EpochMetricsLogger()
        self.rows: list[dict] = []

    def __call__(self, epoch: int, row: dict, model: CustomANN) -> None:
        row = validation_row(row) if self.validation else row
        self.rows.append(row)
        self.logger(epoch, row, model)
        for callback in self.callbacks:
            callback(epoch, dict(row), model)

    def finish(self, history: pd.DataFrame) -> None:
        """Write the epochs collected, the last one's values as ``final_*`` and ``history.csv``."""
        last = history.iloc[-1]
        evaluated = "val" if self.validation else "test"
        final = {
            "final_train_loss": last["train_loss"],
            "final_train_acc": last["train_acc"],
            f"final_{evaluated}_loss": last[f"{evaluated}_loss"],
            f"final_{evaluated}_acc": last[f"{evaluated}_acc"],
            "train_time_s": history["epoch_time_s"].sum(),
        }
        if self.validation:
            final["epochs_run"] = len(history)
        self.logger.flush(final=final)
        artifacts.log_csv(history, "history.csv")


def train_logged(
    build_model: Callable[[], CustomANN],
    train_data: TensorData,
    test_data: TensorData,
    config: TrainConfig,
    *,
    extra_params: dict[str, object] | None = None,
    dataset_params: dict[str, object] | None = None,
    evaluated_on: Literal["test", "validation"] = "test",
    callbacks: Sequence[Callback] = (),
    stops: tuple[type[BaseException], ...] = (),
) -> TrainResult:
    """Seed, build and train a model in the active run, logging params, metrics and ``history.csv``.

    Parameters
    ----------
    build_model : callable
        Returns a fresh ``CustomANN`` (its ``config``, the architecture, is logged whole with
        ``count_parameters()``); called right after seeding with ``config.seed`` so the initial
        weights are reproducible.
    train_data, test_data : anncore.data.TensorData
        ``test_data`` is evaluated after every epoch: the test set, or a validation split.
    config : anncore.trainer.TrainConfig
        How to train (``RunSettings.train_config`` fills in the device, progress bars, seed
        and ``quick``'s batches per epoch); its ``hyperparameters()`` are logged whole.
    extra_params, dataset_params : dict, optional
        More params, e.g. the dataset's name, sizes and checksum.
    evaluated_on : {"test", "validation"}
        What ``test_data`` is: with ``"validation"`` its metrics are named ``val_*``.
    callbacks : sequence of callables
        Called as ``callback(epoch, row, model)`` after each epoch is logged (``row`` named as
        logged); one may raise to stop training, e.g. Optuna's pruning.
    stops : tuple of exception types
        Exceptions that stop training as designed (``optuna.TrialPruned``): the epochs run are
        logged with their ``final_*`` values and ``history.csv`` before the exception propagates.

    Returns
    -------
    anncore.trainer.TrainResult
    """
    from anncore.trainer import set_seed, train

    set_seed(config.seed)
    model = build_model()
    runs.log_params(
        {
            **config.hyperparameters(),
            "max_batches": config.max_batches if config.max_batches is not None else "all",
            **model.config.hyperparameters(),
            "parameter_count": model.count_parameters(),
            **(dataset_params or {}),
            **(extra_params or {}),
        }
    )
    recorder = _EpochRecorder(evaluated_on == "validation", callbacks)
    try:
        result = train(model, train_data, test_data, config, callbacks=[recorder])
    except stops:
        recorder.finish(pd.DataFrame(recorder.rows))
        raise
    except BaseException as error:
        # Keep the epochs that finished before the failure or interruption; the error itself
        # matters more than a failed write, so a second error here does not replace it.
        with contextlib.suppress(Exception):
            with store.one_quick_try() if store.is_server_gone(error) else contextlib.nullcontext():
                recorder.logger.flush()
        raise
    recorder.finish(pd.DataFrame(recorder.rows) if recorder.validation else result.history)
    return result
