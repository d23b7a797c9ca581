"""Shared shaping of training results: final metrics as a table, accuracies as percentages."""

from __future__ import annotations

import math

import pandas as pd

from reporting.store import StoredRun


def percent(fraction: float, decimals: int = 2) -> str:
    """A fraction in [0, 1] as a percentage string: ``0.8748`` -> ``87.48%``."""
    return "n/a" if fraction is None or math.isnan(fraction) else f"{100 * fraction:.{decimals}f}%"


def final_metrics_frame(run: StoredRun) -> pd.DataFrame:
    """The run's final accuracies, losses and training time as a two-column table."""
    m = run.metrics
    rows = [
        ("train accuracy (last epoch)", percent(m.get("final_train_acc", math.nan))),
        ("test accuracy", percent(m.get("final_test_acc", math.nan))),
        ("train loss (last epoch)", f"{m['train_loss']:.4f}" if "train_loss" in m else "n/a"),
        ("test loss", f"{m['final_test_loss']:.4f}" if "final_test_loss" in m else "n/a"),
        ("training time", f"{m['train_time_s']:.1f} s" if "train_time_s" in m else "n/a"),
        ("architecture", run.params.get("architecture", "n/a")),
        ("activation, dropout", f"{run.params.get('activation', 'n/a')}, {run.params.get('dropout_rate', 'n/a')}"),
        ("optimizer, learning rate", f"{run.params.get('optimizer', 'n/a')}, {run.params.get('learning_rate', 'n/a')}"),
        ("epochs, batch size", f"{run.params.get('epochs', 'n/a')}, {run.params.get('batch_size', 'n/a')}"),
        ("train / test samples", f"{run.params.get('dataset_train_size', '?')} / {run.params.get('dataset_test_size', '?')}"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])
