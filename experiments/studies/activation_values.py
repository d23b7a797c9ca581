"""Experiment ``activations``: every activation and its derivative on z in [-5, 5], checked numerically.

The analytic derivative of each function is compared with a central difference
(f(z + h) - f(z - h)) / 2h, h = 1e-6, on a grid that avoids the kink at z = 0 (where the
one-sided slopes of ReLU, Leaky ReLU and ELU differ and no finite difference can agree).
The largest gap is the metric ``max_derivative_gap``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.tracking import artifacts, runs
from experiments.settings import Outcome
from experiments.settings import RunSettings

NEEDS_FASHION_MNIST = False
Z_GRID = np.linspace(-5.0, 5.0, 200)  # an even count: 0 is not a grid point
STEP = 1e-6
ELU_ALPHAS = (0.5, 1.0, 1.5, 2.0)
LEAKY_RELU_ALPHA = 0.01


def activation_table(z: np.ndarray = Z_GRID, step: float = STEP) -> pd.DataFrame:
    """Values, analytic and numerical derivatives of every elementwise activation on ``z``.

    Returns
    -------
    pandas.DataFrame
        Columns ``function``, ``alpha`` (NaN for functions without one), ``z``, ``value``,
        ``derivative``, ``numerical_derivative``.
    """
    from anncore.activations import ACTIVATION_NAMES, get_activation

    variants: list[tuple[str, float | None]] = []
    for name in ACTIVATION_NAMES:
        if name == "softmax":  # not elementwise: no f(z) curve to draw
            continue
        if name == "elu":
            variants += [(name, alpha) for alpha in ELU_ALPHAS]
        elif name == "leaky_relu":
            variants.append((name, LEAKY_RELU_ALPHA))
        else:
            variants.append((name, None))
    frames = []
    for name, alpha in variants:
        activation = get_activation(name) if alpha is None else get_activation(name, alpha=alpha)
        numerical = (activation.fn(z + step) - activation.fn(z - step)) / (2 * step)
        frames.append(
            pd.DataFrame(
                {
                    "function": name,
                    "alpha": np.nan if alpha is None else alpha,
                    "z": z,
                    "value": activation.fn(z),
                    "derivative": activation.derivative(z),
                    "numerical_derivative": numerical,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _panel(concat, index: int):
    """One panel of an hconcat chart, carrying the concat's data, as a chart of its own."""
    panel = concat.hconcat[index].copy()
    panel.data = concat.data
    return panel


def run(settings: RunSettings) -> Outcome:
    """Log ``activations.csv``, the curves as HTML and PNG, and ``max_derivative_gap``."""
    from experiments.charts.activation_charts import activation_curves

    table = activation_table()
    gap = float((table["derivative"] - table["numerical_derivative"]).abs().max())
    params = {
        "z_min": float(Z_GRID[0]),
        "z_max": float(Z_GRID[-1]),
        "z_points": len(Z_GRID),
        "finite_difference_step": STEP,
        "elu_alphas": ",".join(map(str, ELU_ALPHAS)),
        "leaky_relu_alpha": LEAKY_RELU_ALPHA,
    }
    with runs.tracked_run(settings, "activations", params=params) as run:
        artifacts.log_csv(table, "activations.csv")
        runs.log_metrics({"max_derivative_gap": gap})
        curves = activation_curves(table)
        artifacts.log_chart_html(curves, "activations.html")
        artifacts.log_chart_png(_panel(curves, 0), "activations.png")
        artifacts.log_chart_png(_panel(curves, 1), "derivatives.png")
    return Outcome(run.info.run_id, "max_derivative_gap", gap)
