"""One trial of the architecture search: train a configuration on the search's train split, judge it on validation.

A trial trains through the suite's one training-run path, ``tracking.training.train_logged``,
with the validation split as its evaluation data (``evaluated_on="validation"``): the run logs
``val_loss`` and ``val_acc`` (and ``final_val_*``), nothing in it is called "test" and the test
set is never touched. Each epoch's validation accuracy is reported to Optuna, whose pruner may
stop the trial; a pruned trial keeps the epochs it ran (metrics, ``history.csv``, ``epochs_run``).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from experiments.search import runs
from experiments.search.space import layer_sizes, model_config, suggest
from experiments.search.split import Split
from experiments.settings import RunSettings
from experiments.tracking import datasets
from experiments.tracking.training import train_logged

if TYPE_CHECKING:
    import optuna
    from torch import nn

    from anncore.models import CustomANN
    from experiments.tracking.datasets import FashionMNIST


def objective(trial: optuna.Trial, study_name: str, parent_id: str, epochs: int,
              settings: RunSettings, data: FashionMNIST, split: Split) -> float:
    """Optuna objective: the final validation accuracy of the configuration ``trial`` draws."""
    from anncore.models import architecture_string

    params = suggest(trial)
    sizes = layer_sizes(params)
    trial.set_user_attr("architecture", architecture_string(sizes))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    with runs.trial_run(settings, study_name, parent_id, trial):
        datasets.log_input(data)
        return train_trial(trial, params, settings, epochs, data, split)


class _PruningReporter:
    """Trainer callback: report the epoch's validation accuracy to Optuna, stop the trial if its pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def __call__(self, epoch: int, row: dict, model: nn.Module) -> None:
        import optuna

        self.trial.report(row["val_acc"], epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"validation accuracy {row['val_acc']:.4f} after epoch {epoch} is below the median")


def train_trial(trial: optuna.Trial, params: dict, settings: RunSettings, epochs: int,
                data: FashionMNIST, split: Split) -> float:
    """Seed, build, train on ``split.train`` and validate on ``split.validation`` each epoch."""
    import optuna

    config = settings.train_config(epochs=epochs, batch_size=int(params["batch_size"]),
                                   learning_rate=float(params["learning_rate"]), progress=False)
    architecture = model_config(params)

    def build_model() -> CustomANN:
        model = architecture.build()
        trial.set_user_attr("parameter_count", model.count_parameters())
        return model

    result = train_logged(
        build_model, split.train, split.validation, config,
        dataset_params=data.params(),
        extra_params={"n_hidden_layers": params["n_hidden_layers"], "trial_number": trial.number,
                      "evaluated_on": "validation", "search_train_size": len(split.train),
                      "validation_size": len(split.validation)},
        evaluated_on="validation", callbacks=[_PruningReporter(trial)], stops=(optuna.TrialPruned,),
    )
    return float(result.history["test_acc"].iloc[-1])
