"""Charts that compare the arms of a study: a metric per arm, gradient norms per layer."""

from __future__ import annotations

import re

import altair as alt
import pandas as pd

from experiments.charts.epoch_axis import epoch_axis
from experiments.charts.i18n import N_, SOURCE_LANGUAGE, translator
from experiments.charts.inline_data import inline_data, require_columns


# How the summary metrics read on an axis (others: the name with spaces for underscores).
METRIC_TITLES = {
    "final_test_acc": N_("test accuracy"),
    "final_train_acc": N_("train accuracy"),
    "train_time_s": N_("training time (s)"),
}


def _is_fraction_metric(metric: str) -> bool:
    """Accuracies are stored as fractions in [0, 1] and shown as %."""
    return metric.endswith("_acc") or metric.endswith("accuracy")


def arm_comparison(
    summary: pd.DataFrame, metric: str, title: str, language: str = SOURCE_LANGUAGE, arm_title: str = N_("arm")
) -> alt.LayerChart:
    """Bars of a metric's mean per arm, with ±1 std error bars when several seeds were run.

    Parameters
    ----------
    summary : pandas.DataFrame
        A summary.csv table: ``arm``, ``mean_<metric>``, and optionally ``std_<metric>`` and
        ``n_seeds``. Bars keep the table's row order.
    metric : str
        The metric's name without the prefix, e.g. ``"final_test_acc"`` or ``"train_time_s"``
        (accuracies are shown as %).
    title : str
        Chart title.
    language : str, default "en"
        Language of the axis titles and tooltips (``experiments.charts.i18n``).
    arm_title : str, default "arm"
        What an arm is, for the axis title and tooltip (``"architecture"``, ``"activation"``);
        translated like the other titles. The arms are labelled as ``summary`` names them.

    Returns
    -------
    altair.LayerChart
        Bars with value labels, plus error bars where ``std_<metric>`` exists and ``n_seeds > 1``.
    """
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric must be a non-empty metric name such as 'final_test_acc', got {metric!r}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}: {title!r}")
    if isinstance(summary, pd.DataFrame) and "arm" not in summary.columns and summary.index.name == "arm":
        summary = summary.reset_index()
    mean_column, std_column = f"mean_{metric}", f"std_{metric}"
    require_columns(summary, ["arm", mean_column], "summary")

    table = pd.DataFrame({"arm": summary["arm"].astype(str), "mean": summary[mean_column].astype(float)})
    n_seeds = summary["n_seeds"].astype(int) if "n_seeds" in summary.columns else pd.Series(1, index=summary.index)
    table["n_seeds"] = n_seeds.to_numpy()
    has_std = std_column in summary.columns
    table["std"] = summary[std_column].astype(float).to_numpy() if has_std else float("nan")
    table["low"] = table["mean"] - table["std"]
    table["high"] = table["mean"] + table["std"]
    show_error_bars = has_std and bool((table["n_seeds"] > 1).any())

    as_percent = _is_fraction_metric(metric)
    axis_format, value_format = (".0%", ".2%") if as_percent else ("~g", ".4~g")
    _ = translator(language)
    metric_title = _(METRIC_TITLES[metric]) if metric in METRIC_TITLES else metric.replace("_", " ")
    axis_title = metric_title + (" " + _("(mean ± std)") if show_error_bars else "")
    arms = list(table["arm"])

    base = alt.Chart().encode(
        x=alt.X("arm:N", title=_(arm_title), sort=arms, axis=alt.Axis(labelAngle=0)),
    )
    bars = base.mark_bar(opacity=0.85).encode(
        y=alt.Y("mean:Q", title=axis_title, axis=alt.Axis(format=axis_format)),
        color=alt.Color("arm:N", sort=arms, legend=None),
        tooltip=[
            alt.Tooltip("arm:N", title=_(arm_title)),
            alt.Tooltip("mean:Q", title=_("mean: {metric}").format(metric=metric_title), format=value_format),
            alt.Tooltip("std:Q", title=_("std: {metric}").format(metric=metric_title), format=value_format),
            alt.Tooltip("n_seeds:Q", title=_("seeds")),
        ],
    )
    labels = base.mark_text(dy=-6, baseline="bottom").encode(
        y="mean:Q",
        text=alt.Text("mean:Q", format=value_format),
    )
    layers = [bars, labels]
    if show_error_bars:
        error_bars = (
            base.transform_filter(alt.datum.n_seeds > 1)
            .mark_errorbar(ticks=True, color="black")
            .encode(y=alt.Y("low:Q", title=axis_title), y2="high:Q")
        )
        # Labels must sit above the error bar, not inside it.
        labels = labels.encode(y="high:Q")
        layers = [bars, error_bars, labels]
    # Labels above the bar need a little headroom.
    return alt.layer(*layers, data=inline_data(table)).properties(title=title, width=min(600, max(240, 90 * len(arms))), height=260)


def grad_norm_curves(
    grad_norms: pd.DataFrame, language: str = SOURCE_LANGUAGE, arm_title: str = N_("arm")
) -> alt.FacetChart:
    """Per-layer weight-gradient norm per epoch, one colour per arm, one panel per layer.

    Parameters
    ----------
    grad_norms : pandas.DataFrame
        A grad_norms.csv table: ``arm``, ``seed``, ``epoch``, ``layer``, ``grad_norm``.
        Several seeds are averaged per (arm, layer, epoch).
    language : str, default "en"
        Language of the titles and labels (``experiments.charts.i18n``).
    arm_title : str, default "arm"
        What an arm is, for the legend and tooltip (e.g. ``"activation"``).

    Returns
    -------
    altair.FacetChart
        Log-scale y axis when every norm is positive (norms span orders of magnitude).
    """
    require_columns(grad_norms, ["arm", "seed", "epoch", "layer", "grad_norm"], "grad_norms")
    table = grad_norms[["arm", "seed", "epoch", "layer", "grad_norm"]].copy()
    table["arm"] = table["arm"].astype(str)
    table["layer"] = table["layer"].astype(str)
    layers = sorted(pd.unique(table["layer"]), key=lambda name: (len(name), name))  # layer2 < layer10
    arms = list(pd.unique(table["arm"]))
    several_seeds = table.groupby(["arm", "layer", "epoch"]).size().max() > 1
    log_scale = bool((table["grad_norm"] > 0).all())
    _ = translator(language)
    # The logged names (layer1, layer2, ...) become panel titles in the chart's language ("слой 1").
    shown = {name: re.sub(r"^layer(\d+)$", lambda match: f"{_('layer')} {match.group(1)}", name) for name in layers}
    table["layer"] = table["layer"].map(shown)
    layers = [shown[name] for name in layers]
    y_title = "‖∂L/∂W‖₂" + (" " + _("(mean over seeds)") if several_seeds else "")

    return (
        alt.Chart(inline_data(table))
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title=_("epoch"), axis=epoch_axis(sorted(pd.unique(table["epoch"])))),
            y=alt.Y("mean(grad_norm):Q", title=y_title,
                    scale=alt.Scale(type="log") if log_scale else alt.Scale(zero=False)),
            color=alt.Color("arm:N", title=_(arm_title), sort=arms),
            tooltip=[
                alt.Tooltip("arm:N", title=_(arm_title)),
                alt.Tooltip("layer:N", title=_("layer")),
                alt.Tooltip("epoch:Q", title=_("epoch")),
                alt.Tooltip("mean(grad_norm):Q", title=_("gradient norm"), format=".3e"),
            ],
        )
        .properties(width=170, height=200)
        .facet(column=alt.Column("layer:N", title=_("layer"), sort=layers))
        .properties(title=_("Weight-gradient norm per layer"))
    )
