"""Per-class views of a classifier: accuracy per class and the confusion matrix."""

from __future__ import annotations

import altair as alt
import pandas as pd

from experiments.charts.i18n import SOURCE_LANGUAGE, translator
from experiments.charts.inline_data import inline_data, require_columns


def _check_title(title: object) -> None:
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}: {title!r}")


def per_class_accuracy(
    df: pd.DataFrame, title: str | None = None, language: str = SOURCE_LANGUAGE
) -> alt.LayerChart:
    """Horizontal bars of test accuracy per class, labelled in %.

    Parameters
    ----------
    df : pandas.DataFrame
        A per_class_accuracy.csv table: ``class_name`` and ``accuracy`` (fraction), optionally
        ``class_index``, ``correct`` and ``total`` (shown in the tooltip). Rows keep their order.
    title : str, optional
        Chart title; default "Accuracy per class" in ``language``.
    language : str, default "en"
        Language of the texts (``experiments.charts.i18n``).

    Returns
    -------
    altair.LayerChart
    """
    _check_title(title)
    _ = translator(language)
    require_columns(df, ["class_name", "accuracy"], "per_class_accuracy")
    table = df.copy()
    table["class_name"] = table["class_name"].astype(str)
    classes = list(table["class_name"])
    tooltip = [alt.Tooltip("class_name:N", title=_("class")), alt.Tooltip("accuracy:Q", title=_("accuracy"), format=".2%")]
    counts = {"correct": _("correct"), "total": _("total")}
    tooltip += [alt.Tooltip(f"{c}:Q", title=title) for c, title in counts.items() if c in table.columns]

    base = alt.Chart().encode(
        y=alt.Y("class_name:N", title=None, sort=classes),
        x=alt.X("accuracy:Q", title=_("accuracy"), axis=alt.Axis(format=".0%"),
                scale=alt.Scale(domain=[0, 1])),
    )
    bars = base.mark_bar(color="#4c78a8").encode(tooltip=tooltip)
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("accuracy:Q", format=".1%"))
    return alt.layer(bars, labels, data=inline_data(table)).properties(
        title=_("Accuracy per class") if title is None else title, width=360, height=alt.Step(22)
    )


def confusion_matrix(df: pd.DataFrame, title: str | None = None, language: str = SOURCE_LANGUAGE) -> alt.LayerChart:
    """Heatmap of counts, rows = true class, columns = predicted class, shaded by row share.

    Parameters
    ----------
    df : pandas.DataFrame
        A confusion_matrix.csv table read with ``index_col=0``: a square table of counts whose
        index (true class) and columns (predicted class) are the class names in the same order.
    title : str, optional
        Chart title; default "Confusion matrix" in ``language``.
    language : str, default "en"
        Language of the texts (``experiments.charts.i18n``).

    Returns
    -------
    altair.LayerChart
        Colour is the fraction of the true class's samples (so rows of different sizes
        compare), the number in each cell is the count.
    """
    _check_title(title)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"confusion matrix must be a pandas DataFrame, got {type(df).__name__}")
    true_names = [str(name) for name in df.index]
    predicted_names = [str(name) for name in df.columns]
    if true_names != predicted_names:
        raise ValueError(
            "confusion matrix must have the same class names, in the same order, as index (true) and "
            f"columns (predicted); got index {true_names} and columns {predicted_names} "
            "(read confusion_matrix.csv with index_col=0)"
        )
    if df.empty:
        raise ValueError("confusion matrix has no rows; it needs one row and one column per class")
    counts = df.to_numpy()
    if not pd.api.types.is_numeric_dtype(counts.dtype) or (counts < 0).any():
        raise ValueError(f"confusion matrix must hold non-negative counts, got dtype {counts.dtype}")

    long = df.copy()
    long.index, long.columns = true_names, predicted_names
    long = long.rename_axis(index="true").reset_index().melt(id_vars="true", var_name="predicted", value_name="count")
    row_totals = long.groupby("true")["count"].transform("sum")
    long["row_share"] = (long["count"] / row_totals.where(row_totals > 0)).fillna(0.0)
    return _confusion_layers(long, true_names, predicted_names, translator(language), title)


def _confusion_layers(long: pd.DataFrame, true_names: list[str], predicted_names: list[str], _, title) -> alt.LayerChart:
    """The heatmap and its numbers, with texts from the translator ``_``."""
    base = alt.Chart().encode(
        x=alt.X("predicted:N", title=_("predicted class"), sort=predicted_names, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("true:N", title=_("true class"), sort=true_names),
    )
    share = _("share of true class")
    cells = base.mark_rect().encode(
        color=alt.Color("row_share:Q", title=share, scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=alt.Legend(format=".0%")),
        tooltip=[
            alt.Tooltip("true:N", title=_("true")),
            alt.Tooltip("predicted:N", title=_("predicted")),
            alt.Tooltip("count:Q", title=_("count")),
            alt.Tooltip("row_share:Q", title=share, format=".1%"),
        ],
    )
    numbers = base.mark_text(fontSize=10).encode(
        text="count:Q",
        color=alt.condition(alt.datum.row_share > 0.5, alt.value("white"), alt.value("black")),
    )
    return alt.layer(cells, numbers, data=inline_data(long)).properties(
        title=_("Confusion matrix") if title is None else title, width=alt.Step(38), height=alt.Step(30)
    )
