"""Training curves: loss and accuracy per epoch, train and test, from history.csv tables."""

from __future__ import annotations

import altair as alt
import pandas as pd

from experiments.charts.epoch_axis import epoch_axis
from experiments.charts.i18n import SOURCE_LANGUAGE, translator
from experiments.charts.inline_data import inline_data, require_columns

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")


def _long_history(history: pd.DataFrame, color: str | None, splits: dict[str, str]) -> pd.DataFrame:
    """One row per (run, epoch, split, quantity) with the value in ``value`` (``split`` as displayed)."""
    keep = ["epoch"] + ([color] if color else [])
    rows = []
    for split in ("train", "test"):
        for quantity in ("loss", "acc"):
            part = history[keep].copy()
            part["split"] = splits[split]
            part["quantity"] = quantity
            part["value"] = history[f"{split}_{quantity}"].astype(float)
            rows.append(part)
    return pd.concat(rows, ignore_index=True)


def training_curves(
    history: pd.DataFrame, color: str | None = None, language: str = SOURCE_LANGUAGE, color_title: str | None = None
) -> alt.HConcatChart:
    """Loss and accuracy per epoch, train (solid) and test (dashed), side by side.

    Parameters
    ----------
    history : pandas.DataFrame
        A history.csv table: ``epoch``, ``train_loss``, ``train_acc``, ``test_loss``,
        ``test_acc`` (accuracies as fractions, shown as %), plus ``color`` when given.
    color : str, optional
        Column (such as ``"arm"``) whose values get one colour each, to overlay several runs.
        Where a colour has several rows per epoch (several seeds), the line is their mean.
    language : str, default "en"
        Language of the titles, labels and legend entries (``experiments.charts.i18n``).
    color_title : str, optional
        The legend's title for ``color`` (e.g. ``"architecture"``); default the column's name.
        Translated like the other titles.

    Returns
    -------
    altair.HConcatChart
    """
    if color is not None and not isinstance(color, str):
        raise TypeError(f"color must be a column name (str) or None, got {type(color).__name__}: {color!r}")
    require_columns(history, HISTORY_COLUMNS + ((color,) if color else ()), "history")
    _ = translator(language)
    splits = {"train": _("train"), "test": _("test")}
    long = _long_history(history, color, splits)

    group = ["epoch", "split", "quantity"] + ([color] if color else [])
    averaged = bool(long.duplicated(group).any())
    mean_note = " " + _("(mean over seeds)") if averaged else ""
    domain = [splits["train"], splits["test"]]
    color_title = _(color_title or color) if color else None

    # Legends show line samples (solid train, dashed test), not the points drawn on the lines.
    legend = alt.Legend(symbolType="stroke", symbolStrokeWidth=2, symbolSize=300)
    split = alt.StrokeDash(
        "split:N",
        title=_("split"),
        legend=legend,
        scale=alt.Scale(domain=domain, range=[[1, 0], [6, 3]]),
    )
    line_color = (
        alt.Color(f"{color}:N", title=color_title, sort=list(pd.unique(history[color])), legend=legend)
        if color
        else alt.Color("split:N", title=_("split"), scale=alt.Scale(domain=domain), legend=legend)
    )
    tooltip = [
        alt.Tooltip("epoch:Q", title=_("epoch")),
        alt.Tooltip("split:N", title=_("split")),
        *([alt.Tooltip(f"{color}:N", title=color_title)] if color else []),
    ]

    epochs = sorted(pd.unique(history["epoch"]))
    x = alt.X("epoch:Q", title=_("epoch"), axis=epoch_axis(epochs))

    def panel(quantity: str, title: str, axis_format: str, tooltip_format: str) -> alt.LayerChart:
        base = alt.Chart().transform_filter(alt.datum.quantity == quantity).encode(
            x=x,
            y=alt.Y("mean(value):Q", title=title, axis=alt.Axis(format=axis_format), scale=alt.Scale(zero=False)),
            color=line_color,
        )
        lines = base.mark_line(strokeWidth=2).encode(strokeDash=split)
        # Points in their own layer so that the legend shows line styles, not dots.
        points = base.mark_point(filled=True, size=30).encode(
            tooltip=tooltip + [alt.Tooltip("mean(value):Q", title=title, format=tooltip_format)],
        )
        return alt.layer(lines, points).properties(title=f"{title}{mean_note}", width=270, height=220)

    return (
        alt.hconcat(
            panel("loss", _("loss"), "", ".4f"),
            panel("acc", _("accuracy"), ".0%", ".2%"),
            data=inline_data(long),
        )
        .properties(title=_("Training curves"))
    )
