"""Decision regions of a 2-D classifier with the data points on top."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from experiments.charts.i18n import SOURCE_LANGUAGE, translator
from experiments.charts.inline_data import inline_data, require_columns


def _half_step(values: pd.Series) -> float:
    """Half the spacing of a regular grid axis (1 when the axis has a single value)."""
    centres = np.unique(values.to_numpy(dtype=float))
    return float(np.median(np.diff(centres))) / 2 if len(centres) > 1 else 0.5


def decision_regions(grid: pd.DataFrame, points: pd.DataFrame, language: str = SOURCE_LANGUAGE) -> alt.LayerChart:
    """Shaded predicted class over the input plane, with the data points coloured by true class.

    Parameters
    ----------
    grid : pandas.DataFrame
        A decision_grid.csv table: ``x1``, ``x2`` on a regular grid and ``predicted`` class.
    points : pandas.DataFrame
        A predictions.csv table: ``x1``, ``x2``, ``label``, ``predicted``, ``confidence``.
        Misclassified points are drawn as crosses.
    language : str, default "en"
        Language of the titles, labels and legend entries (``experiments.charts.i18n``).

    Returns
    -------
    altair.LayerChart
    """
    require_columns(grid, ["x1", "x2", "predicted"], "grid")
    require_columns(points, ["x1", "x2", "label", "predicted", "confidence"], "points")
    _ = translator(language)
    outcomes = [_("correct"), _("misclassified")]

    cells = pd.DataFrame({"x1": grid["x1"].astype(float), "x2": grid["x2"].astype(float),
                          "predicted": grid["predicted"].astype(str)})
    half1, half2 = _half_step(cells["x1"]), _half_step(cells["x2"])

    dots = points[["x1", "x2", "confidence"]].astype(float)
    dots["label"] = points["label"].astype(str)
    dots["predicted"] = points["predicted"].astype(str)
    dots["outcome"] = np.where(dots["label"] == dots["predicted"], *outcomes)

    classes = sorted(set(cells["predicted"]) | set(dots["label"]) | set(dots["predicted"]), key=lambda c: (len(c), c))
    class_color = alt.Scale(domain=classes, scheme="category10")
    x_domain = [min(cells["x1"].min() - half1, dots["x1"].min()), max(cells["x1"].max() + half1, dots["x1"].max())]
    y_domain = [min(cells["x2"].min() - half2, dots["x2"].min()), max(cells["x2"].max() + half2, dots["x2"].max())]
    x_domain, y_domain = [float(v) for v in x_domain], [float(v) for v in y_domain]
    x = alt.X("x1_low:Q", title="x1", scale=alt.Scale(domain=x_domain, nice=False, zero=False))
    y = alt.Y("x2_low:Q", title="x2", scale=alt.Scale(domain=y_domain, nice=False, zero=False))

    regions = (
        alt.Chart(inline_data(cells))
        # Cell edges are computed in Vega to keep the embedded grid small.
        .transform_calculate(
            x1_low=f"datum.x1 - {half1!r}", x1_high=f"datum.x1 + {half1!r}",
            x2_low=f"datum.x2 - {half2!r}", x2_high=f"datum.x2 + {half2!r}",
        )
        .mark_rect(opacity=0.3)
        .encode(x=x, x2="x1_high:Q", y=y, y2="x2_high:Q",
                color=alt.Color("predicted:N", title=_("class"), scale=class_color))
    )
    scatter = (
        alt.Chart(inline_data(dots))
        .mark_point(filled=True, size=45, opacity=0.9, stroke="black", strokeWidth=0.4)
        .encode(
            x=alt.X("x1:Q", title="x1"),
            y=alt.Y("x2:Q", title="x2"),
            color=alt.Color("label:N", title=_("class"), scale=class_color),
            shape=alt.Shape("outcome:N", title=_("prediction"),
                            scale=alt.Scale(domain=outcomes, range=["circle", "cross"])),
            tooltip=[
                alt.Tooltip("x1:Q", title="x1", format=".3f"),
                alt.Tooltip("x2:Q", title="x2", format=".3f"),
                alt.Tooltip("label:N", title=_("true class")),
                alt.Tooltip("predicted:N", title=_("predicted class")),
                alt.Tooltip("confidence:Q", title=_("confidence"), format=".1%"),
            ],
        )
    )
    title = _("Decision regions and predictions")
    return alt.layer(regions, scatter).properties(title=title, width=400, height=400)
