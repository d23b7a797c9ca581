"""Experiment ``simple_ann``: the notebook's SimpleANN(4, 8, 2) demo and its parameter table."""

from __future__ import annotations

from experiments.tracking import artifacts, runs
from experiments.settings import Outcome
from experiments.settings import RunSettings

NEEDS_FASHION_MNIST = False
INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE = 4, 8, 2


def run(settings: RunSettings) -> Outcome:
    """Log ``parameters.csv``, ``model_summary.txt`` and the metric ``parameter_count``."""
    from anncore.models import SimpleANN, architecture_string, parameter_table
    from anncore.trainer import set_seed

    set_seed(settings.seed)
    model = SimpleANN(INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE, activation="relu")
    table = parameter_table(model)
    count = model.count_parameters()
    summary = f"{model}\n\nTotal parameters: {count}\nTrainable parameters: {count}\n"
    params = {
        "architecture": architecture_string([INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE]),
        "activation": "relu",
        "parameter_count": count,
    }
    with runs.tracked_run(settings, "simple_ann", params=params) as run:
        artifacts.log_csv(table, "parameters.csv")
        artifacts.log_text(summary, "model_summary.txt")
        runs.log_metrics({"parameter_count": count})
    return Outcome(run.info.run_id, "parameter_count", count)
