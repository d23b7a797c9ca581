"""Experiment ``custom``: the notebook's interactive architecture experiment as a command.

``run custom --hidden-sizes 512,256 --dropout 0.3 --lr 0.001 --epochs 3 --activation relu``
trains a FashionMNISTClassifier with those settings (defaults: the notebook widget's).
The options are parsed strictly by the command line; nothing is evaluated.
"""

from __future__ import annotations

from experiments.tracking import artifacts, datasets, runs
from experiments.settings import Outcome
from experiments.settings import RunSettings
from experiments.tracking.training import train_logged

NEEDS_FASHION_MNIST = True
EPOCHS = 3


def run(settings: RunSettings) -> Outcome:
    """Train the architecture given on the command line; log history and per-class accuracy."""
    from anncore.models import FashionMNISTClassifier

    data = datasets.load(settings)
    options = settings.custom
    config = settings.train_config(epochs=settings.epochs_or(EPOCHS), learning_rate=options.learning_rate)
    with runs.tracked_run(settings, "custom") as run:
        datasets.log_input(data)
        result = train_logged(
            lambda: FashionMNISTClassifier(options.hidden_sizes, dropout_rate=options.dropout, activation=options.activation),
            data.train,
            data.test,
            config,
            dataset_params=data.params(),
            extra_params={"hidden_sizes": ",".join(map(str, options.hidden_sizes))},
        )
        artifacts.log_csv(result.evaluation.per_class_accuracy, "per_class_accuracy.csv")
    return Outcome(run.info.run_id, "final_test_acc", float(result.history["test_acc"].iloc[-1]))
