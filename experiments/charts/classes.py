"""Per-class views of a classifier: accuracy per class and the confusion matrix."""

from __future__ import annotations

import altair as alt
import pandas as pd

from experiments.charts.inline_data import inline_data, require_columns


def _check_title(title: object) -> None:
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}: {title!r}")


def per_class_accuracy(df: pd.DataFrame, title: str = "Accuracy per class") -> alt.LayerChart:
    """Horizontal bars of test accuracy per class, labelled in %.

    Parameters
    ----------
    df : pandas.DataFrame
        A per_class_accuracy.csv table: ``class_name`` and ``accuracy`` (fraction), optionally
        ``class_index``, ``correct`` and ``total`` (shown in the tooltip). Rows keep their order.
    title : str, default "Accuracy per class"
        Chart title.

    Returns
    -------
    altair.LayerChart
    """
    _check_title(title)
    require_columns(df, ["class_name", "accuracy"], "per_class_accuracy")
    table = df.copy()
    table["class_name"] = table["class_name"].astype(str)
    classes = list(table["class_name"])
    tooltip = [alt.Tooltip("class_name:N", title="class"), alt.Tooltip("accuracy:Q", title="accuracy", format=".2%")]
    tooltip += [alt.Tooltip(f"{c}:Q", title=c) for c in ("correct", "total") if c in table.columns]

    base = alt.Chart().encode(
        y=alt.Y("class_name:N", title=None, sort=classes),
        x=alt.X("accuracy:Q", title="accuracy", axis=alt.Axis(format=".0%"),
                scale=alt.Scale(domain=[0, 1])),
    )
    bars = base.mark_bar(color="#4c78a8").encode(tooltip=tooltip)
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("accuracy:Q", format=".1%"))
    return alt.layer(bars, labels, data=inline_data(table)).properties(
        title=title, width=360, height=alt.Step(22)
    )


def confusion_matrix(df: pd.DataFrame, title: str = "Confusion matrix") -> alt.LayerChart:
    """Heatmap of counts, rows = true class, columns = predicted class, shaded by row share.

    Parameters
    ----------
    df : pandas.DataFrame
        A confusion_matrix.csv table read with ``index_col=0``: a square table of counts whose
        index (true class) and columns (predicted class) are the class names in the same order.
    title : str, default "Confusion matrix"
        Chart title.

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

    base = alt.Chart().encode(
        x=alt.X("predicted:N", title="predicted class", sort=predicted_names, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("true:N", title="true class", sort=true_names),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("row_share:Q", title="share of true class", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=alt.Legend(format=".0%")),
        tooltip=[
            alt.Tooltip("true:N", title="true"),
            alt.Tooltip("predicted:N", title="predicted"),
            alt.Tooltip("count:Q", title="count"),
            alt.Tooltip("row_share:Q", title="share of true class", format=".1%"),
        ],
    )
    numbers = base.mark_text(fontSize=10).encode(
        text="count:Q",
        color=alt.condition(alt.datum.row_share > 0.5, alt.value("white"), alt.value("black")),
    )
    return alt.layer(cells, numbers, data=inline_data(long)).properties(
        title=title, width=alt.Step(38), height=alt.Step(30)
    )
