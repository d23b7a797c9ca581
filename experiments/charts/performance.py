"""Charts of the benchmark: how long each training pipeline takes for the same images."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from experiments.charts.i18n import SOURCE_LANGUAGE, translator
from experiments.charts.inline_data import inline_data, require_columns

SECONDS = "seconds_per_60000_images"


def pipeline_seconds(
    figures: pd.DataFrame, title: str | None = None, language: str = SOURCE_LANGUAGE
) -> alt.LayerChart:
    """Horizontal bars of seconds per 60,000 training images, one per pipeline, labelled.

    Parameters
    ----------
    figures : pandas.DataFrame
        One row per pipeline: ``pipeline`` and ``seconds_per_60000_images`` (the training pass
        only, as ``benchmark.json`` records it), optionally ``description`` (shown in the
        tooltip). Bars keep the table's row order.
    title : str, optional
        Chart title; default "Training time per 60,000 images" in ``language``.
    language : str, default "en"
        Language of the texts (``experiments.charts.i18n``).

    Returns
    -------
    altair.LayerChart
        Bars and, at their ends, their values to three significant digits.

    Raises
    ------
    ValueError
        A column is missing, the table is empty, or a time is not a finite number >= 0.
    """
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}: {title!r}")
    _ = translator(language)
    title = _("Training time per 60,000 images") if title is None else title
    require_columns(figures, ["pipeline", SECONDS], "figures")
    columns = ["pipeline", SECONDS] + (["description"] if "description" in figures.columns else [])
    table = figures[columns].copy()
    table["pipeline"] = table["pipeline"].astype(str)
    table[SECONDS] = pd.to_numeric(table[SECONDS], errors="coerce").astype(float)
    _check_seconds(table)
    pipelines = list(table["pipeline"])

    tooltip = [
        alt.Tooltip("pipeline:N", title=_("pipeline")),
        alt.Tooltip(f"{SECONDS}:Q", title=_("s per 60,000 images"), format=",.4~r"),
    ]
    if "description" in table.columns:
        tooltip.append(alt.Tooltip("description:N", title=_("what it runs")))
    base = alt.Chart().encode(
        y=alt.Y("pipeline:N", title=None, sort=pipelines),
        x=alt.X(f"{SECONDS}:Q", title=_("seconds per 60,000 training images (training pass)")),
    )
    bars = base.mark_bar().encode(color=alt.Color("pipeline:N", sort=pipelines, legend=None), tooltip=tooltip)
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text(f"{SECONDS}:Q", format=",.3~r"))
    return alt.layer(bars, labels, data=inline_data(table)).properties(
        title=title, width=360, height=alt.Step(28)
    )


def _check_seconds(table: pd.DataFrame) -> None:
    """Raise ValueError naming the pipelines whose time is missing, infinite or negative."""
    seconds = table[SECONDS].to_numpy()
    bad = ~np.isfinite(seconds) | (seconds < 0)
    if bad.any():
        named = ", ".join(f"{p}={s}" for p, s in zip(table["pipeline"][bad], seconds[bad]))
        raise ValueError(f"{SECONDS} must be finite numbers >= 0; got {named}")
