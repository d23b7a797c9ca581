"""Experiment ``synthetic``: CustomANN on the synthetic 4-class data for 100 epochs (TO-DO 3.2).

The notebook's "2-4-1" is realised as 2-4-4 (``anncore.data.SYNTHETIC_LAYER_SIZES``): one
output cannot carry four classes under cross-entropy. The 400 points are split 80/20 into
train and test with a seeded permutation. Logged: the training run, ``predictions.csv`` for
every point (with its split), the model's decision over a grid (``decision_grid.csv``) and
the decision-region chart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.tracking import artifacts, runs
from experiments.settings import Outcome
from experiments.settings import QUICK_SYNTHETIC_EPOCHS, RunSettings
from experiments.tracking.training import train_logged

NEEDS_FASHION_MNIST = False
EPOCHS = 100
N_PER_CLASS = 100
TEST_FRACTION = 0.2
BATCH_SIZE = 32
LEARNING_RATE = 0.01
GRID_POINTS = 80  # per axis
GRID_MARGIN = 1.0


def split(data, seed: int, test_fraction: float = TEST_FRACTION):
    """Shuffle ``data`` with ``seed`` and return (train, test, is_test mask in the original order)."""
    import torch

    from anncore.data import TensorData

    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(data)))
    test_index, train_index = order[:n_test], order[n_test:]
    is_test = np.zeros(len(data), dtype=bool)
    is_test[test_index.numpy()] = True

    def part(index):
        return TensorData(data.x[index], data.y[index], data.num_classes, data.class_names)

    return part(train_index), part(test_index), is_test


def predict(model, x) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class and its softmax probability for inputs ``x`` (N, 2)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        probabilities = torch.softmax(model(x.to(device)), dim=1).cpu()
    confidence, predicted = probabilities.max(dim=1)
    return predicted.numpy(), confidence.numpy()


def decision_grid(model, x: np.ndarray, points: int = GRID_POINTS, margin: float = GRID_MARGIN) -> pd.DataFrame:
    """The predicted class on a regular ``points`` x ``points`` grid covering ``x`` plus ``margin``."""
    import torch

    low, high = x.min(axis=0) - margin, x.max(axis=0) + margin
    x1, x2 = np.meshgrid(np.linspace(low[0], high[0], points), np.linspace(low[1], high[1], points))
    grid = np.column_stack([x1.ravel(), x2.ravel()]).astype(np.float32)
    predicted, _ = predict(model, torch.from_numpy(grid))
    return pd.DataFrame({"x1": grid[:, 0], "x2": grid[:, 1], "predicted": predicted})


def run(settings: RunSettings) -> Outcome:
    """Train 2-4-4 on the synthetic blobs and log predictions and decision regions."""
    from anncore.data import SYNTHETIC_LAYER_SIZES, make_synthetic_classes
    from anncore.models import CustomANN
    from experiments.charts.synthetic import decision_regions

    data = make_synthetic_classes(n_per_class=N_PER_CLASS, seed=settings.seed)
    train_data, test_data, is_test = split(data, settings.seed)
    config = settings.train_config(
        epochs=settings.epochs_or(EPOCHS, QUICK_SYNTHETIC_EPOCHS), batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE
    )
    dataset_params = {
        "dataset": "synthetic_4_classes",
        "dataset_train_size": len(train_data),
        "dataset_test_size": len(test_data),
        "n_per_class": N_PER_CLASS,
    }
    with runs.tracked_run(settings, "synthetic") as run:
        result = train_logged(
            lambda: CustomANN(SYNTHETIC_LAYER_SIZES, activation="relu"),
            train_data,
            test_data,
            config,
            dataset_params=dataset_params,
        )
        predicted, confidence = predict(result.model, data.x)
        x = data.x.numpy()
        points = pd.DataFrame(
            {
                "x1": x[:, 0],
                "x2": x[:, 1],
                "label": data.y.numpy(),
                "predicted": predicted,
                "confidence": confidence,
                "split": np.where(is_test, "test", "train"),
            }
        )
        grid = decision_grid(result.model, x)
        artifacts.log_csv(points, "predictions.csv")
        artifacts.log_csv(grid, "decision_grid.csv")
        artifacts.log_chart(decision_regions(grid, points), "decision_regions")
    return Outcome(run.info.run_id, "final_test_acc", float(result.history["test_acc"].iloc[-1]))
