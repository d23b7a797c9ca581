"""Experiment ``baseline``: the notebook's FashionMNIST classifier, trained, evaluated and logged as a model.

784-512-256-128-10 with ReLU and dropout 0.3, Adam lr 1e-3, batch 128, 5 epochs (section 9).
Besides the training run's params, metrics and ``history.csv``: per-class accuracy, the
confusion matrix, 16 test predictions with confidence (CSV and a picture), a grid of train
images per class, and the trained model (``mlflow.pytorch.log_model`` with a signature and
an input example), registered as ``anncore-fashion-mnist`` with alias ``baseline``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.tracking import artifacts, datasets, registry, runs
from experiments.charts.image_grids import class_samples_grid, predictions_grid, to_uint8
from experiments.settings import Outcome
from experiments.settings import RunSettings
from experiments.tracking.training import train_logged
from experiments.tracking.logged_model import log_model

NEEDS_FASHION_MNIST = True
HIDDEN_SIZES = (512, 256, 128)
DROPOUT = 0.3
EPOCHS = 5
SAMPLE_PREDICTIONS = 16
IMAGES_PER_CLASS = 6


def evaluation_tables(evaluation, class_names) -> dict[str, pd.DataFrame]:
    """``per_class_accuracy``, ``confusion_matrix`` (labelled by class name) and ``sample_predictions``."""
    confusion = pd.DataFrame(evaluation.confusion_matrix, index=list(class_names), columns=list(class_names))
    confusion.index.name = "true"
    n = min(SAMPLE_PREDICTIONS, len(evaluation.labels))
    true, predicted = evaluation.labels[:n], evaluation.predictions[:n]
    samples = pd.DataFrame(
        {
            "index": np.arange(n),
            "true_label": true,
            "true_name": [class_names[k] for k in true],
            "predicted_label": predicted,
            "predicted_name": [class_names[k] for k in predicted],
            "confidence": evaluation.probabilities[np.arange(n), predicted],
        }
    )
    return {"per_class_accuracy": evaluation.per_class_accuracy, "confusion_matrix": confusion, "sample_predictions": samples}


def run(settings: RunSettings) -> Outcome:
    """Train the baseline and log it with its evaluation artifacts and the model."""
    from anncore.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD
    from anncore.models import FashionMNISTClassifier

    data = datasets.load(settings)
    config = settings.train_config(epochs=settings.epochs_or(EPOCHS))
    with runs.tracked_run(settings, "baseline") as run:
        datasets.log_input(data)
        result = train_logged(
            lambda: FashionMNISTClassifier(HIDDEN_SIZES, dropout_rate=DROPOUT),
            data.train,
            data.test,
            config,
            dataset_params=data.params(),
        )
        names = data.test.class_names
        tables = evaluation_tables(result.evaluation, names)
        artifacts.log_csv(tables["per_class_accuracy"], "per_class_accuracy.csv")
        artifacts.log_csv(tables["confusion_matrix"], "confusion_matrix.csv", index=True)
        samples = tables["sample_predictions"]
        artifacts.log_csv(samples, "sample_predictions.csv")
        test_images = to_uint8(data.test.x[: len(samples)].numpy(), FASHION_MNIST_MEAN, FASHION_MNIST_STD)
        artifacts.log_image(
            predictions_grid(test_images, samples["true_label"].to_numpy(), samples["predicted_label"].to_numpy(),
                             samples["confidence"].to_numpy(), names),
            "sample_predictions.png",
        )
        train_images = to_uint8(data.train.x[:2000].numpy(), FASHION_MNIST_MEAN, FASHION_MNIST_STD)
        artifacts.log_image(
            class_samples_grid(train_images, data.train.y[:2000].numpy(), names, IMAGES_PER_CLASS),
            "sample_images.png",
        )
        model_info = log_model(result.model, data.test.x[:2].numpy().reshape(2, -1))
        registry.register(model_info.model_uri, registry.BASELINE_ALIAS, "the baseline experiment's classifier")
    accuracy = float(result.history["test_acc"].iloc[-1])
    return Outcome(run.info.run_id, "final_test_acc", accuracy)
