"""Charts of an architecture search, drawn from its ``trials.csv``.

- :func:`optimization_history`: every trial's validation accuracy by trial number (pruned
  trials at the last accuracy they reported, hollow) and the best-so-far line.
- :func:`parameter_panels`: one panel per searched parameter, validation accuracy against it.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from experiments.charts.i18n import N_, SOURCE_LANGUAGE, translator
from experiments.charts.inline_data import inline_data, require_columns

STATE_COLORS = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728"}
# What the legends call Optuna's trial states.
STATE_NAMES = {"COMPLETE": N_("complete"), "PRUNED": N_("pruned"), "FAIL": N_("failed")}
SHAPES = {"COMPLETE": "circle", "PRUNED": "square", "FAIL": "cross"}
# Reader-facing axis titles of the searched parameters (the sweep's names for them are identifiers).
PARAMETER_TITLES = {
    "n_hidden_layers": N_("number of hidden layers"),
    "width_1": N_("width of the first hidden layer"),
    "activation": N_("activation"),
    "dropout": N_("dropout rate"),
    "learning_rate": N_("learning rate"),
    "batch_size": N_("batch size"),
}


def _points(table: pd.DataFrame, language: str = SOURCE_LANGUAGE) -> pd.DataFrame:
    """Trials with a validation accuracy to show: the value if complete, else the last one reported;
    ``state_name`` is the state as the legend says it, in ``language``."""
    _ = translator(language)
    shown = table.assign(
        accuracy=table["value"].where(table["state"] == "COMPLETE", table["last_val_acc"]),
        state_name=table["state"].map(lambda state: _(STATE_NAMES.get(state, state))),
    )
    return shown[shown["accuracy"].notna()].reset_index(drop=True)


def _state_encodings(language: str) -> dict[str, alt.Color | alt.Shape]:
    """Colour and shape by trial state, with one scale domain and title so that Vega draws one legend."""
    _ = translator(language)
    domain = [_(STATE_NAMES[state]) for state in STATE_COLORS]
    title = _("trial state")
    return {
        "color": alt.Color("state_name:N", title=title, scale=alt.Scale(domain=domain, range=list(STATE_COLORS.values()))),
        "shape": alt.Shape("state_name:N", title=title, scale=alt.Scale(domain=domain, range=list(SHAPES.values()))),
    }


def optimization_history(
    table: pd.DataFrame, title: str | None = None, language: str = SOURCE_LANGUAGE
) -> alt.LayerChart:
    """Validation accuracy of every trial and the best complete trial so far.

    Parameters
    ----------
    table : pandas.DataFrame
        A ``trials.csv``: ``number``, ``state``, ``value``, ``last_val_acc``, ``architecture``.
    title : str, optional
        Chart title; default "Search history: validation accuracy by trial" in ``language``.
    language : str, default "en"
        Language of the texts (``experiments.charts.i18n``).

    Returns
    -------
    altair.LayerChart
    """
    require_columns(table, ["number", "state", "value", "last_val_acc"], "trials")
    _ = translator(language)
    title = _("Search history: validation accuracy by trial") if title is None else title
    accuracy = _("validation accuracy")
    points = _points(table, language)
    complete = table[table["state"] == "COMPLETE"].sort_values("number")
    best = pd.DataFrame({"number": complete["number"], "best": complete["value"].cummax()})
    scatter = alt.Chart(inline_data(points)).mark_point(size=60, filled=True).encode(
        x=alt.X("number:Q", title=_("trial number"), axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("accuracy:Q", title=accuracy, axis=alt.Axis(format=".0%"), scale=alt.Scale(zero=False)),
        **_state_encodings(language),
        tooltip=[
            alt.Tooltip("number:Q", title=_("trial")),
            alt.Tooltip("state_name:N", title=_("trial state")),
            alt.Tooltip("accuracy:Q", title=accuracy, format=".2%"),
            alt.Tooltip("architecture:N", title=_("architecture")),
            alt.Tooltip("epochs_run:Q", title=_("epochs run")),
        ],
    )
    layers = [scatter]
    if len(best):
        line = alt.Chart(inline_data(best)).mark_line(interpolate="step-after", color="black").encode(
            x="number:Q", y=alt.Y("best:Q"), tooltip=[alt.Tooltip("best:Q", title=_("best so far"), format=".2%")]
        )
        layers.append(line)
    return alt.layer(*layers).properties(title=title, width=480, height=260)


def parameter_panels(
    table: pd.DataFrame, parameters: list[str], title: str | None = None, language: str = SOURCE_LANGUAGE
) -> alt.ConcatChart:
    """One small scatter per parameter: the parameter's value (x) against validation accuracy (y).

    Parameters
    ----------
    table : pandas.DataFrame
        A ``trials.csv`` with ``param_<name>`` columns.
    parameters : list of str
        Parameter names (without ``param_``); numeric ones get a quantitative axis, the learning
        rate a log axis, the rest a nominal one.
    title : str, optional
        Chart title; default "Validation accuracy against each parameter" in ``language``.
    language : str, default "en"
        Language of the texts (``experiments.charts.i18n``).
    """
    require_columns(table, ["number", "state", "value", "last_val_acc", *(f"param_{p}" for p in parameters)], "trials")
    _ = translator(language)
    title = _("Validation accuracy against each parameter") if title is None else title
    points = _points(table, language)
    panels = []
    for name in parameters:
        column = f"param_{name}"
        axis_title = _(PARAMETER_TITLES.get(name, name.replace("_", " ")))
        panels.append(
            alt.Chart(inline_data(points[points[column].notna()])).mark_point(filled=True, size=40).encode(
                x=_parameter_axis(points[column], name, axis_title),
                y=alt.Y("accuracy:Q", title=_("validation accuracy"), axis=alt.Axis(format=".0%"), scale=alt.Scale(zero=False)),
                **_state_encodings(language),
                tooltip=[alt.Tooltip("number:Q", title=_("trial")), alt.Tooltip(f"{column}:N", title=axis_title),
                         alt.Tooltip("accuracy:Q", title=_("validation accuracy"), format=".2%")],
            ).properties(width=170, height=140)
        )
    return alt.concat(*panels, columns=3).properties(title=title)


def _parameter_axis(values: pd.Series, name: str, title: str) -> alt.X:
    """The x encoding of one parameter's panel.

    Numbers get a quantitative axis labelled at the values tried (integers such as the number
    of layers otherwise got ticks at 1.5, 2.5; powers of two such as widths, on a log axis, only
    some of theirs), the learning rate a log axis with few, short labels (they ran together);
    categories (activations) a nominal one, slanted when there are many.
    """
    column = f"param_{name}"
    tried = sorted(values.dropna().unique())
    if not (pd.api.types.is_numeric_dtype(values) and len(tried) > 3):
        axis = alt.Axis(labelAngle=-35 if len(tried) > 3 else 0)
        return alt.X(f"{column}:N", title=title, axis=axis)
    if name == "learning_rate":
        return alt.X(f"{column}:Q", title=title, scale=alt.Scale(type="log"),
                     axis=alt.Axis(tickCount=3, format="~g", labelOverlap="greedy", labelAngle=-35))  # fmt: skip
    integers = all(float(v).is_integer() for v in tried)
    powers_of_two = integers and all(v > 0 and int(v) & (int(v) - 1) == 0 for v in tried)
    scale = alt.Scale(type="log", base=2) if powers_of_two else alt.Scale(zero=False)
    axis = alt.Axis(values=[int(v) for v in tried], format="d", labelOverlap="greedy") if integers else alt.Axis()
    return alt.X(f"{column}:Q", title=title, scale=scale, axis=axis)
