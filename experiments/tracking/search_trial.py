"""One trial of the architecture search: train a configuration on the search's train split, judge it on validation.

The trainer evaluates its ``test_data`` after every epoch; a trial passes the validation split
there, and the run logs those numbers as ``val_loss`` and ``val_acc`` (and ``final_val_*``), so
nothing in a trial's run is called "test" and the test set is never touched. Each epoch's
validation accuracy is reported to Optuna, whose pruner may stop the trial; a pruned trial
keeps the epochs it ran (metrics, ``history.csv``, ``epochs_run``).
"""

from __future__ import annotations

import contextlib
import os
import socket

from experiments.tracking import artifacts, datasets, runs, search_runs

VALIDATION_NAMES = {"test_loss": "val_loss", "test_acc": "val_acc"}


def validation_row(row: dict) -> dict:
    """A trainer history row with its ``test_*`` columns renamed ``val_*`` (they were computed on validation)."""
    return {VALIDATION_NAMES.get(key, key): value for key, value in row.items()}


def objective(trial, context, settings, data, split) -> float:
    """Optuna objective: the final validation accuracy of the configuration ``trial`` draws."""
    from anncore.models import architecture_string

    from experiments.studies.sweep import layer_sizes, suggest

    params = suggest(trial)
    sizes = layer_sizes(params)
    trial.set_user_attr("architecture", architecture_string(sizes))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    with search_runs.trial_run(settings, context.study_name, context.parent_id, trial):
        datasets.log_input(data)
        return train_trial(trial, params, sizes, settings, context.epochs, data, split)


class _EpochReporter:
    """Trainer callback: log the epoch (as ``val_*``), report it to Optuna, prune if told to."""

    def __init__(self, trial) -> None:
        self.trial = trial
        self.logger = runs.EpochMetricsLogger()
        self.rows: list[dict] = []

    def __call__(self, epoch: int, row: dict, model: object) -> None:
        import optuna

        row = validation_row(row)
        self.rows.append(row)
        self.logger(epoch, row, model)
        self.trial.report(row["val_acc"], epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"validation accuracy {row['val_acc']:.4f} after epoch {epoch} is below the median")

    def finish(self) -> None:
        """Write the epochs run, the last ones' values as ``final_*`` and ``history.csv``."""
        import pandas as pd

        history = pd.DataFrame(self.rows)
        last = history.iloc[-1]
        self.logger.flush(
            final={
                "final_train_loss": last["train_loss"],
                "final_train_acc": last["train_acc"],
                "final_val_loss": last["val_loss"],
                "final_val_acc": last["val_acc"],
                "train_time_s": history["epoch_time_s"].sum(),
                "epochs_run": len(history),
            }
        )
        artifacts.log_csv(history, "history.csv")


def train_trial(trial, params: dict, sizes: list[int], settings, epochs: int, data, split) -> float:
    """Seed, build, train on ``split.train`` and validate on ``split.validation`` each epoch."""
    import optuna

    from anncore.models import CustomANN, architecture_string
    from anncore.trainer import set_seed, train

    config = settings.train_config(epochs=epochs, batch_size=int(params["batch_size"]),
                                   learning_rate=float(params["learning_rate"]), progress=False)
    set_seed(config.seed)
    model = CustomANN(sizes, activation=str(params["activation"]), dropout_rate=float(params["dropout"]))
    trial.set_user_attr("parameter_count", model.count_parameters())
    runs.log_params(
        {
            **config.hyperparameters(),
            "max_batches": config.max_batches if config.max_batches is not None else "all",
            "architecture": architecture_string(sizes),
            "n_hidden_layers": params["n_hidden_layers"],
            "activation": params["activation"],
            "dropout_rate": params["dropout"],
            "parameter_count": model.count_parameters(),
            "trial_number": trial.number,
            "evaluated_on": "validation",
            "search_train_size": len(split.train),
            "validation_size": len(split.validation),
            **data.params(),
        }
    )
    reporter = _EpochReporter(trial)
    try:
        train(model, split.train, split.validation, config, callbacks=[reporter])
    except optuna.TrialPruned:
        reporter.finish()
        raise
    except BaseException:
        with contextlib.suppress(Exception):  # keep the finished epochs; the error matters more
            reporter.logger.flush()
        raise
    reporter.finish()
    return float(reporter.rows[-1]["val_acc"])
