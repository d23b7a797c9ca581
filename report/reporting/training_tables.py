"""Shared shaping of training results: final metrics as a table, accuracies as percentages."""

from __future__ import annotations

import math

import pandas as pd

from reporting.i18n import _
from reporting.store import StoredRun


def percent(fraction: float, decimals: int = 2) -> str:
    """A fraction in [0, 1] as a percentage string: ``0.8748`` -> ``87.48%``."""
    return _("n/a") if fraction is None or math.isnan(fraction) else f"{100 * fraction:.{decimals}f}%"


def final_metrics_frame(run: StoredRun) -> pd.DataFrame:
    """The run's final accuracies, losses and training time as a two-column table."""
    m, na = run.metrics, _("n/a")
    param = run.params.get
    rows = [
        (_("train accuracy (last epoch)"), percent(m.get("final_train_acc", math.nan))),
        (_("test accuracy"), percent(m.get("final_test_acc", math.nan))),
        (_("train loss (last epoch)"), f"{m['train_loss']:.4f}" if "train_loss" in m else na),
        (_("test loss"), f"{m['final_test_loss']:.4f}" if "final_test_loss" in m else na),
        (_("training time"), _("{seconds} s").format(seconds=f"{m['train_time_s']:.1f}") if "train_time_s" in m else na),
        (_("architecture"), param("architecture", na)),
        (_("activation, dropout"), f"{param('activation', na)}, {param('dropout_rate', na)}"),
        (_("optimizer, learning rate"), f"{param('optimizer', na)}, {param('learning_rate', na)}"),
        (_("epochs, batch size"), f"{param('epochs', na)}, {param('batch_size', na)}"),
        (_("train / test samples"), f"{param('dataset_train_size', '?')} / {param('dataset_test_size', '?')}"),
    ]
    return pd.DataFrame(rows, columns=[_("quantity"), _("value")])
