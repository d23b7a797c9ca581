"""Decision regions of a 2-D classifier with the data points on top."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from charts.inline_data import inline_data, require_columns


def _cell_edges(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges of the grid cell centred on each value of a regular grid axis."""
    centres = np.unique(values.to_numpy(dtype=float))
    step = float(np.median(np.diff(centres))) if len(centres) > 1 else 1.0
    x = values.to_numpy(dtype=float)
    return x - step / 2, x + step / 2


def decision_regions(grid: pd.DataFrame, points: pd.DataFrame) -> alt.LayerChart:
    """Shaded predicted class over the input plane, with the data points coloured by true class.

    Parameters
    ----------
    grid : pandas.DataFrame
        A decision_grid.csv table: ``x1``, ``x2`` on a regular grid and ``predicted`` class.
    points : pandas.DataFrame
        A predictions.csv table: ``x1``, ``x2``, ``label``, ``predicted``, ``confidence``.
        Misclassified points are drawn as crosses.

    Returns
    -------
    altair.LayerChart
    """
    require_columns(grid, ["x1", "x2", "predicted"], "grid")
    require_columns(points, ["x1", "x2", "label", "predicted", "confidence"], "points")

    cells = pd.DataFrame({"predicted": grid["predicted"].astype(str)})
    cells["x1_low"], cells["x1_high"] = _cell_edges(grid["x1"])
    cells["x2_low"], cells["x2_high"] = _cell_edges(grid["x2"])

    dots = points[["x1", "x2", "confidence"]].astype(float)
    dots["label"] = points["label"].astype(str)
    dots["predicted"] = points["predicted"].astype(str)
    dots["outcome"] = np.where(dots["label"] == dots["predicted"], "correct", "misclassified")

    classes = sorted(set(cells["predicted"]) | set(dots["label"]) | set(dots["predicted"]), key=lambda c: (len(c), c))
    class_color = alt.Scale(domain=classes, scheme="category10")
    x_domain = [float(min(cells["x1_low"].min(), dots["x1"].min())), float(max(cells["x1_high"].max(), dots["x1"].max()))]
    y_domain = [float(min(cells["x2_low"].min(), dots["x2"].min())), float(max(cells["x2_high"].max(), dots["x2"].max()))]
    x = alt.X("x1_low:Q", title="x₁", scale=alt.Scale(domain=x_domain, nice=False, zero=False))
    y = alt.Y("x2_low:Q", title="x₂", scale=alt.Scale(domain=y_domain, nice=False, zero=False))

    regions = (
        alt.Chart(inline_data(cells))
        .mark_rect(opacity=0.3)
        .encode(x=x, x2="x1_high:Q", y=y, y2="x2_high:Q",
                color=alt.Color("predicted:N", title="class", scale=class_color))
    )
    scatter = (
        alt.Chart(inline_data(dots))
        .mark_point(filled=True, size=45, opacity=0.9, stroke="black", strokeWidth=0.4)
        .encode(
            x=alt.X("x1:Q", title="x₁"),
            y=alt.Y("x2:Q", title="x₂"),
            color=alt.Color("label:N", title="class", scale=class_color),
            shape=alt.Shape("outcome:N", title="prediction",
                            scale=alt.Scale(domain=["correct", "misclassified"], range=["circle", "cross"])),
            tooltip=[
                alt.Tooltip("x1:Q", title="x₁", format=".3f"),
                alt.Tooltip("x2:Q", title="x₂", format=".3f"),
                alt.Tooltip("label:N", title="true class"),
                alt.Tooltip("predicted:N", title="predicted class"),
                alt.Tooltip("confidence:Q", title="confidence", format=".1%"),
            ],
        )
    )
    return alt.layer(regions, scatter).properties(title="Decision regions and predictions", width=420, height=420)
